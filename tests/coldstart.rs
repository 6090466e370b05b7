//! Cold start end to end: a cold-item split, training with the feature maps, protocol P3 through
//! `eval --cold-items`, `embed-item`, and new users folded in by `query --liked` and
//! demographics.

mod common;
use common::{close, lshrec, ok, refused};

use std::collections::BTreeSet;

use lshrec::data::{features, synth};
use lshrec::train::{self, coldstart, ModelKind, TrainConfig};

/// On synthetic data whose tastes are planted through genres, the cold vector of a genre ranks
/// the warm items of that genre above the others (mean AUC over genres, by cosine).
#[test]
fn cold_item_vectors_rank_items_sharing_their_genres_first() {
    let cfg = synth::SynthConfig {
        users: 600,
        items: 500,
        ratings: 30_000,
        seed: 5,
        zipf: 0.5,
        ..Default::default()
    };
    println!("synthetic seed {}", cfg.seed);
    let ds = synth::generate(&cfg).unwrap().0.implicit(4.0);
    let mut tc = TrainConfig::defaults(ModelKind::Ials);
    tc.dim = 16;
    tc.valid_frac = 0.0;
    let t = train::fit(&tc, &ds, &mut |_, _| {}).unwrap();
    let f = features::items(&ds).unwrap();
    let by_item = ds.csr().transpose();
    let d = t.dim;
    let map = coldstart::fit_map_implicit(
        &f.rows,
        &by_item,
        &t.users,
        d,
        coldstart::FoldIn::default(),
        coldstart::MapReg::ridge(coldstart::MAP_RIDGE),
    )
    .unwrap();
    let cos = |a: &[f32], b: &[f32]| {
        let n = (lshrec::simd::dot(a, a) * lshrec::simd::dot(b, b)).sqrt();
        if n > 0.0 {
            lshrec::simd::dot(a, b) / n
        } else {
            0.0
        }
    };
    let mut aucs = Vec::new();
    for g in &ds.genre_names {
        let has: Vec<bool> = (0..ds.n_items())
            .map(|i| ds.genres_of(i as u32).contains(&g.as_str()))
            .collect();
        let n_has = has.iter().filter(|&&x| x).count();
        if n_has < 20 || n_has > ds.n_items() - 20 {
            continue;
        }
        let pairs = features::resolve(&f.names, &features::item_pairs(&[g], None)).unwrap();
        let c = coldstart::embed(&pairs, &map, d);
        let s: Vec<f32> = (0..ds.n_items())
            .map(|i| cos(&c, &t.items[i * d..(i + 1) * d]))
            .collect();
        let (mut wins, mut pairs_n) = (0f64, 0f64);
        for i in (0..ds.n_items()).filter(|&i| has[i]) {
            for j in (0..ds.n_items()).filter(|&j| !has[j]) {
                wins += if s[i] > s[j] {
                    1.0
                } else if s[i] == s[j] {
                    0.5
                } else {
                    0.0
                };
                pairs_n += 1.0;
            }
        }
        aucs.push(wins / pairs_n);
    }
    let mean = aucs.iter().sum::<f64>() / aucs.len() as f64;
    println!(
        "genre AUC over {} genres: mean {mean:.3}, min {:.3}",
        aucs.len(),
        aucs.iter().cloned().fold(1.0, f64::min)
    );
    assert!(aucs.len() >= 5);
    assert!(mean > 0.75, "mean AUC {mean}");
}

#[test]
fn p3_pipeline_embed_item_and_fold_in() {
    let t = tempfile::tempdir().unwrap();
    let p = |s: &str| t.path().join(s).to_string_lossy().into_owned();
    small_synth(&p("s"), "ml-100k");
    p3_split(&p("s"), &p("p3"));
    let cold = std::fs::read_to_string(p("p3/cold_items.txt")).unwrap();
    // P3 holds out 10% of the rated movies, drawn before --min-rating keeps the positives: a
    // movie rated only below 4 can be cold (a candidate with no relevant rating).
    let ratings = std::fs::read_to_string(p("s/u.data")).unwrap();
    let rated: std::collections::HashSet<&str> = ratings
        .lines()
        .filter_map(|l| l.split('\t').nth(1))
        .collect();
    let positive: std::collections::HashSet<&str> = ratings
        .lines()
        .filter(|l| l.split('\t').nth(2).is_some_and(|r| r >= "4"))
        .filter_map(|l| l.split('\t').nth(1))
        .collect();
    assert!(
        positive.len() < rated.len(),
        "some movie has only low ratings"
    );
    assert_eq!(
        cold.lines().count(),
        (0.1 * rated.len() as f64).round() as usize,
        "{cold}"
    );
    assert!(
        std::path::Path::new(&p("p3/items.tsv")).exists()
            && std::path::Path::new(&p("p3/users.tsv")).exists()
    );
    // iALS (16 dims) on the P3 training part into `out`, with `extra` arguments.
    let train_p3 = |out: &str, extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = [
            "train",
            "--train",
            &p("p3/train.tsv"),
            "--test",
            &p("p3/test.tsv"),
            "--model",
            "ials",
            "--out",
            &p(out),
        ]
        .map(String::from)
        .to_vec();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    fn as_strs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    ok(&as_strs(&train_p3("m", &["--dim", "16", "--quiet"])));
    // The item map's unobserved weight defaults to MAP_UNOBSERVED_FACTOR times the model's
    // (.7 for iALS); naming that weight gives the same map, the model's own weight another one.
    // The user map keeps the model's weight either way. Bad values are refused before training.
    let map_of = |model: &str, file: &str| {
        lshrec::store::npy::open(&t.path().join(model).join(file))
            .unwrap()
            .0
            .as_slice()
            .to_vec()
    };
    let max_diff = |a: &[f32], b: &[f32]| {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max)
    };
    let default_w = (coldstart::MAP_UNOBSERVED_FACTOR * 0.7).to_string();
    for (dir, w) in [("m_default_w", default_w.as_str()), ("m_model_w", "0.7")] {
        let extra = ["--dim", "16", "--map-unobserved-weight", w, "--quiet"];
        ok(&as_strs(&train_p3(dir, &extra)));
        assert_eq!(
            map_of("m", "user_features.npy"),
            map_of(dir, "user_features.npy")
        );
    }
    let base = map_of("m", "item_features.npy");
    assert!(max_diff(&base, &map_of("m_default_w", "item_features.npy")) < 1e-4);
    assert!(max_diff(&base, &map_of("m_model_w", "item_features.npy")) > 1e-2);
    for (arg, flag) in [
        ("--map-unobserved-weight=-1", "--map-unobserved-weight"),
        ("--map-ridge=0", "--map-ridge"),
    ] {
        refused(&as_strs(&train_p3("m_bad", &[arg])), flag);
        assert!(!t.path().join("m_bad").exists());
    }

    let out = ok(&[
        "eval",
        "--model",
        &p("m"),
        "--train",
        &p("p3/train.tsv"),
        "--test",
        &p("p3/test.tsv"),
        "--cold-items",
        &p("p3/cold_items.txt"),
        "--json",
    ]);
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        j["cold_items"]
            .as_str()
            .unwrap()
            .contains("ranked only the"),
        "{out}"
    );
    let ndcg = j["at"][0]["ndcg"].as_f64().unwrap();
    let n_cold = cold.lines().count() as f64;
    let random = random_order_ndcg(&p("p3/test.tsv"), n_cold);
    println!("P3 NDCG@10 on synthetic data: {ndcg:.4} over {n_cold} cold items (random order: {random:.4})");
    assert!(ndcg > 1.5 * random, "{out}");

    // A bad cold list names the file and line.
    std::fs::write(
        p("bad.txt"),
        format!("{}\nno-such-item\n", cold.lines().next().unwrap()),
    )
    .unwrap();
    let (code, _, err) = lshrec(&[
        "eval",
        "--model",
        &p("m"),
        "--train",
        &p("p3/train.tsv"),
        "--test",
        &p("p3/test.tsv"),
        "--cold-items",
        &p("bad.txt"),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("bad.txt:2") && err.contains("no-such-item"),
        "{err}"
    );

    // embed-item writes a vector that index append accepts.
    let out = ok(&[
        "embed-item",
        "--model",
        &p("m"),
        "--genres",
        "Comedy,Romance",
        "--year",
        "1996",
        "--out",
        &p("new.npy"),
        "--json",
    ]);
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["vector"].as_array().unwrap().len(), 16);
    ok(&["index", "build", "--model", &p("m"), "--out", &p("idx")]);
    std::fs::write(p("ids.txt"), "brand-new\n").unwrap();
    let appended: serde_json::Value = serde_json::from_str(&ok(&[
        "index",
        "append",
        "--index",
        &p("idx"),
        "--model",
        &p("m"),
        "--vectors",
        &p("new.npy"),
        "--ids",
        &p("ids.txt"),
        "--json",
    ]))
    .unwrap();
    assert_eq!(
        (&appended["appended_now"], &appended["appended_items"]),
        (&1.into(), &1.into())
    );
    // The appended movie counts toward k through the index, not without it.
    let (idx, m) = (p("idx"), p("m"));
    let user = std::fs::read_to_string(p("p3/train.tsv")).unwrap();
    let user = user.lines().nth(1).unwrap().split('\t').next().unwrap();
    let (code, _, err) = lshrec(&["query", "--model", &m, "--user", user, "--k", "99999"]);
    assert_eq!(code, 2, "{err}");
    let n: usize = err
        .rsplit('(')
        .next()
        .unwrap()
        .trim_end_matches([')', '\n'])
        .parse()
        .unwrap();
    let k = |k: usize| k.to_string();
    let mut args = vec!["query", "--model", &m, "--user", user, "--index", &idx];
    args.extend(["--keep-seen", "--max-candidates", "100000"]);
    let j: serde_json::Value =
        serde_json::from_str(&ok(&[&args[..], &["--json", "--k", &k(n + 1)]].concat())).unwrap();
    let recs = j["recommendations"].as_array().unwrap();
    assert_eq!(recs.len(), n + 1);
    assert!(recs.iter().any(|r| r["item"] == "brand-new"), "{j}");
    refused(
        &[&args[..], &["--k", &k(n + 2)]].concat(),
        &format!("({})", n + 1),
    );
    // A fold-in row naming the appended movie is refused, saying why.
    std::fs::write(
        p("signups.csv"),
        "user,item,rating\nnew,1,5\nnew,brand-new,5\n",
    )
    .unwrap();
    let fold = ["recommend-all", "--model", &m, "--index", &idx, "--fold-in"];
    refused(
        &[&fold[..], &[&p("signups.csv"), "--out", &p("s.tsv")]].concat(),
        &format!("signups.csv:3: field `item`: expected an item id of the model ({n} items; this one was appended to the index after training"),
    );
    // --exact beside the index ranks the appended movie with the model's, at the score the
    // index gives it; --exclude-items can name it there too.
    let exact_args = ["query", "--model", &m, "--user", user, "--index", &idx];
    let exact_args = [&exact_args[..], &["--keep-seen", "--exact", "--json"]].concat();
    let listed = |extra: &[&str]| -> Vec<(String, f64)> {
        let out = ok(&[&exact_args[..], extra].concat());
        let j: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(j["method"], "exact");
        recs_scored(&out)
    };
    let exact = listed(&["--k", &k(n + 1)]);
    let score_of = |list: &[(String, f64)]| list.iter().find(|r| r.0 == "brand-new").unwrap().1;
    let lsh: Vec<(String, f64)> = (recs.iter())
        .map(|r| {
            (
                r["item"].as_str().unwrap().to_string(),
                r["score"].as_f64().unwrap(),
            )
        })
        .collect();
    assert!(
        (score_of(&exact) - score_of(&lsh)).abs() < 1e-4,
        "{exact:?}"
    );
    let ids = |l: &[(String, f64)]| l.iter().map(|r| r.0.clone()).collect::<BTreeSet<_>>();
    assert_eq!(ids(&exact), ids(&lsh));
    assert!(exact.windows(2).all(|w| w[0].1 >= w[1].1));
    std::fs::write(p("withdrawn.txt"), "brand-new\n").unwrap();
    let without = listed(&["--k", &k(n), "--exclude-items", &p("withdrawn.txt")]);
    assert_eq!(without.len(), n);
    assert!(without.iter().all(|r| r.0 != "brand-new"));
    refused(
        &[&exact_args[..], &["--k", &k(n + 2)]].concat(),
        &format!("({})", n + 1),
    );
    // The same id again, twice in one file, a blank one, or no vector at all: refused.
    let append_refused = |ids: &str, vectors: &str, want: &str| {
        std::fs::write(p("ids2.txt"), ids).unwrap();
        let ids = p("ids2.txt");
        let args = ["index", "append", "--index", &idx, "--model", &m];
        refused(
            &[&args[..], &["--vectors", vectors, "--ids", &ids]].concat(),
            want,
        );
    };
    let (one, two, none) = (p("new.npy"), p("two.npy"), p("none.npy"));
    append_refused(
        "brand-new\n",
        &one,
        "ids2.txt:1: item id \"brand-new\" already exists",
    );
    append_refused("\n", &one, "ids2.txt:1: an empty item id");
    let npy = |path: &str, rows: usize| {
        let data = vec![0.5f32; rows * 16];
        lshrec::store::npy::write_f32(std::path::Path::new(path), &[rows, 16], &data).unwrap();
    };
    npy(&two, 2);
    append_refused("x\nx\n", &two, "ids2.txt:2: item id \"x\" is listed twice");
    npy(&none, 0);
    append_refused("", &none, "an empty array (0 x 16)");
    let (code, _, err) = lshrec(&["embed-item", "--model", &p("m"), "--genres", "Nope"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("Comedy"), "lists the known genres: {err}");
    // A movie from a decade no training movie has takes the nearest decade's vector, and says so.
    let vector = |args: &[&str]| -> (Vec<f64>, String) {
        let (code, out, err) =
            lshrec(&[&["embed-item", "--model", &p("m"), "--json"], args].concat());
        assert_eq!(code, 0, "{err}");
        let j: serde_json::Value = serde_json::from_str(&out).unwrap();
        let v = j["vector"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap());
        (v.collect(), err)
    };
    let (far, err) = vector(&["--genres", "Comedy", "--year", "2150"]);
    assert!(err.contains("no movie from the 2150s"), "{err}");
    let (genre_only, _) = vector(&["--genres", "Comedy"]);
    assert_ne!(far, genre_only, "the stand-in decade counts");

    // Content neighbours: a trained movie whose genres and year no other trained movie shares
    // is its own only neighbour at --content-neighbours 1, so the vector is half the map's and
    // half that movie's trained vector; 0 gives the map's alone.
    let m = lshrec::store::Model::open(std::path::Path::new(&p("m"))).unwrap();
    let d = m.dim();
    let trained: std::collections::HashSet<u32> =
        (m.seen.as_ref().unwrap().indices.iter()).copied().collect();
    let key = |i: usize| {
        let c = &m.meta.catalogue[i];
        let mut g = c.genres.clone();
        g.sort();
        (g, c.year)
    };
    let mut count: std::collections::HashMap<_, usize> = Default::default();
    for &i in &trained {
        *count.entry(key(i as usize)).or_default() += 1;
    }
    let lone = (0..m.n_items())
        .find(|&i| {
            let (g, y) = key(i);
            trained.contains(&(i as u32)) && y.is_some() && !g.is_empty() && count[&(g, y)] == 1
        })
        .expect("a trained movie with a genre set and year of its own");
    let (genres, year) = key(lone);
    let (genres, year) = (genres.join(","), year.unwrap().to_string());
    let args = ["--genres", genres.as_str(), "--year", year.as_str()];
    let (map, _) = vector(&[&args[..], &["--content-neighbours", "0"]].concat());
    let (one, _) = vector(&[&args[..], &["--content-neighbours", "1"]].concat());
    let own = &m.items.as_slice()[lone * d..(lone + 1) * d];
    for k in 0..d {
        let want = 0.5 * map[k] + 0.5 * own[k] as f64;
        assert!(
            (one[k] - want).abs() < 1e-5,
            "{k}: {} against {want}",
            one[k]
        );
    }
    let (blended, _) = vector(&args);
    assert_ne!(blended, map, "the default blends in neighbours");

    // A new user: liked items, demographics, or both.
    let liked: Vec<String> = std::fs::read_to_string(p("p3/train.tsv"))
        .unwrap()
        .lines()
        .skip(1)
        .take(3)
        .map(|l| l.split('\t').nth(1).unwrap().to_string())
        .collect();
    // The ids `query --liked … --k 5 --json` recommends, with `extra` arguments.
    let (model, all) = (p("m"), liked.join(","));
    let query = |extra: &[&str]| {
        let mut args = vec![
            "query", "--model", &model, "--liked", &all, "--k", "5", "--json",
        ];
        args.extend(extra);
        rec_ids(&ok(&args))
    };
    let recs = query(&[]);
    assert_eq!(recs.len(), 5);
    assert!(
        recs.iter().all(|r| !liked.contains(&r.to_string())),
        "liked items are excluded"
    );
    // Disliking the first recommendation (a known negative in the fold-in) removes it and
    // moves the rest; an item both liked and disliked is refused.
    let after = query(&["--disliked", &recs[0]]);
    assert_eq!(after.len(), 5);
    assert!(!after.contains(&recs[0]), "{after:?}");
    refused(
        &[
            "query",
            "--model",
            &p("m"),
            "--liked",
            &all,
            "--disliked",
            &liked[0],
        ],
        &format!("item {} is listed as liked and as disliked", liked[0]),
    );
    // A repeated id is named, not its row.
    refused(
        &[
            "query",
            "--model",
            &p("m"),
            "--liked",
            &format!("{},{}", liked[0], liked[0]),
        ],
        &format!("item {} is listed twice in --liked", liked[0]),
    );
    refused(
        &["query", "--model", &p("m"), "--occupation", "astronaut"],
        "\"astronaut\" is not an occupation the model knows; known: administrator,",
    );
    refused(
        &["query", "--model", &p("m"), "--feature", "plan=pro"],
        "the model has no \"plan\" feature (trained without one); its features: age, gender, occupation",
    );
    let users = std::fs::read_to_string(p("p3/users.tsv")).unwrap();
    let first: Vec<&str> = users.lines().nth(1).unwrap().split('\t').collect();
    let demo = [
        "--age",
        first[1],
        "--gender",
        first[2],
        "--occupation",
        first[3],
    ];
    ok(&[&["query", "--model", &model, "--k", "5"][..], &demo].concat());
    refused(
        &["query", "--model", &model, "--age", "999"],
        "999 is not in 1..=120",
    );
    // The demographics' weight in the fold-in: at 0 they are ignored.
    let weighted = |w: &str| query(&[&demo[..], &["--prior-weight", w]].concat());
    assert_eq!(weighted("0"), recs);
    refused(
        &[
            &["query", "--model", &model, "--liked", &all][..],
            &demo,
            &["--prior-weight", "nan"],
        ]
        .concat(),
        "--prior-weight",
    );
    let (code, _, err) = lshrec(&[
        "query",
        "--model",
        &p("m"),
        "--liked",
        "no-such-item",
        "--k",
        "5",
    ]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = lshrec(&["query", "--model", &p("m"), "--k", "5"]);
    assert_eq!(code, 2, "needs --user, --liked or demographics: {err}");
}

/// A small synthetic dataset (300 users, 400 items, 15k ratings, seed 3) in `format` at `out`.
fn small_synth(out: &str, format: &str) {
    ok(&[
        "data",
        "synth",
        "--users",
        "300",
        "--items",
        "400",
        "--ratings",
        "15000",
        "--seed",
        "3",
        "--to",
        format,
        "--out",
        out,
    ]);
}

/// Protocol P3's split of `data` (10% of the rated items cold, positives ≥ 4, seed 1) into `out`.
fn p3_split(data: &str, out: &str) {
    ok(&[
        "data",
        "split",
        data,
        "--method",
        "cold-items:0.1",
        "--min-rating",
        "4",
        "--seed",
        "1",
        "--out",
        out,
    ]);
}

/// The user cold-start split of `data` (a tenth of the users with 15 or more positives ≥ 4
/// held out) into `out`; returns the command's stdout.
fn cold_users_split(data: &str, seed: &str, out: &str) -> String {
    ok(&[
        "data",
        "split",
        data,
        "--method",
        "cold-users:0.1:15",
        "--min-rating",
        "4",
        "--seed",
        seed,
        "--out",
        out,
    ])
}

/// A 16-dimensional iALS model at --min-rating 4 on `split`'s train.tsv (test.tsv beside it),
/// written to `out`, with `extra` arguments.
fn ials_on_split(split: &str, out: &str, extra: &[&str]) {
    let (train, test) = (format!("{split}/train.tsv"), format!("{split}/test.tsv"));
    let args = [
        "train",
        "--train",
        &train,
        "--test",
        &test,
        "--model",
        "ials",
        "--min-rating",
        "4",
        "--dim",
        "16",
        "--out",
        out,
        "-q",
    ];
    ok(&[&args[..], extra].concat());
}

/// The expected NDCG@10 of a random order of `n_cold` items, for the users of a test file.
fn random_order_ndcg(test: &str, n_cold: f64) -> f64 {
    let mut rel: std::collections::HashMap<String, usize> = Default::default();
    for l in std::fs::read_to_string(test).unwrap().lines().skip(1) {
        *rel.entry(l.split('\t').next().unwrap().to_string())
            .or_default() += 1;
    }
    let disc = |k: usize| 1.0 / ((k + 2) as f64).log2();
    rel.values()
        .map(|&r| {
            let dcg: f64 = (0..10).map(|k| disc(k) * r as f64 / n_cold).sum();
            dcg / (0..r.min(10)).map(disc).sum::<f64>()
        })
        .sum::<f64>()
        / rel.len() as f64
}

/// A small synthetic generic dataset in `dir/s` whose items and users are described only by
/// attribute files, `dir/item_attrs.csv` and `dir/user_attrs.tsv`: each a header and one line
/// per row of the synthetic items.tsv (item, title, genres, year) or users.tsv (user, age,
/// gender, occupation, zip), as `items` and `users` write them; and its P3 split in `dir/p3`.
type RowFn<'a> = &'a dyn Fn(&[&str]) -> String;
fn attribute_set(dir: &std::path::Path, items: (&str, RowFn), users: (&str, RowFn)) {
    let p = |s: &str| dir.join(s).to_string_lossy().into_owned();
    small_synth(&p("s"), "generic");
    for ((header, row), side, out) in [
        (items, "s/items.tsv", "item_attrs.csv"),
        (users, "s/users.tsv", "user_attrs.tsv"),
    ] {
        let text = std::fs::read_to_string(p(side)).unwrap();
        let mut body = format!("{header}\n");
        for l in text.lines().skip(1) {
            body += &row(&l.split('\t').collect::<Vec<_>>());
            body += "\n";
        }
        std::fs::write(p(out), body).unwrap();
        std::fs::remove_file(p(side)).unwrap();
    }
    p3_split(&p("s"), &p("p3"));
}

/// `eval --cold-items` of model `m` on a P3 split with attribute flags `attrs`: the cold-items
/// note, NDCG@10, and a random order's expected NDCG@10.
fn eval_cold_items(m: &str, tr: &str, te: &str, cold: &str, attrs: &[&str]) -> (String, f64, f64) {
    let mut eval = vec![
        "eval",
        "--model",
        m,
        "--train",
        tr,
        "--test",
        te,
        "--cold-items",
        cold,
        "--json",
    ];
    eval.extend(attrs);
    let out = ok(&eval);
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    let note = j["cold_items"].as_str().unwrap().to_string();
    let n_cold = std::fs::read_to_string(cold).unwrap().lines().count() as f64;
    (
        note,
        j["at"][0]["ndcg"].as_f64().unwrap(),
        random_order_ndcg(te, n_cold),
    )
}

/// Any dataset's own attributes (`--item-features`, `--user-features`) train the feature maps:
/// a generic dataset whose items are described only by an attribute file, protocol P3 through
/// it, and `embed-item --feature` / `query --feature` for new items and users.
#[test]
fn attribute_files_drive_cold_start() {
    let t = tempfile::tempdir().unwrap();
    let p = |s: &str| t.path().join(s).to_string_lossy().into_owned();
    // Re-express the planted genres as a `style` attribute and the demographics as a `segment`.
    attribute_set(
        t.path(),
        ("item_id,style,label", &|r| {
            format!("{},{},\"{}\"", r[0], r[2], r[1])
        }),
        ("user_id\tsegment", &|r| format!("{}\t{}", r[0], r[3])),
    );
    let (tr, te, m, cold) = (
        p("p3/train.tsv"),
        p("p3/test.tsv"),
        p("m"),
        p("p3/cold_items.txt"),
    );
    let (ia, ua) = (p("item_attrs.csv"), p("user_attrs.tsv"));
    let attrs = [
        "--item-features",
        &ia,
        "--item-feature-cols",
        "style",
        "--user-features",
        &ua,
    ];
    let mut train = vec![
        "train", "--train", &tr, "--test", &te, "--model", "ials", "--dim", "16", "--out", &m,
        "--quiet",
    ];
    train.extend(attrs);
    ok(&train);
    let (note, ndcg, random) = eval_cold_items(&m, &tr, &te, &cold, &attrs);
    assert!(note.contains("0 items without any known feature"), "{note}");
    assert!(
        note.contains("blended with content neighbours") && !note.contains(" 0 of them blended"),
        "cold items find neighbours by their attributes: {note}"
    );
    println!("P3 NDCG@10 from attribute files: {ndcg:.4} (random order: {random:.4})");
    // 40 cold items of a small synthetic set: split seeds 1-4 gave 1.4-2.0× random.
    assert!(ndcg > 1.3 * random, "{note}");

    let out = ok(&[
        "embed-item",
        "--model",
        &p("m"),
        "--feature",
        "style=Comedy",
        "--json",
    ]);
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["vector"].as_array().unwrap().len(), 16);

    // Content neighbours by attribute: `style=Comedy` is like each trained item whose styles
    // include Comedy by 1/|styles| (the Jaccard index of {Comedy} and its styles; no year), so
    // with every such item kept the vector is half the map's and half their similarity-weighted
    // mean. This also reads the styles back from the model's catalogue.
    let model = lshrec::store::Model::open(std::path::Path::new(&m)).unwrap();
    let d = model.dim();
    let trained: std::collections::BTreeSet<u32> = (model.seen.as_ref().unwrap().indices.iter())
        .copied()
        .collect();
    let (mut mean, mut total, mut like) = (vec![0f64; d], 0f64, 0usize);
    for &i in &trained {
        let tags = &model.meta.catalogue[i as usize].tags;
        if tags.iter().any(|(c, v)| c == "style" && v == "Comedy") {
            let s = 1.0 / tags.iter().filter(|(c, _)| c == "style").count() as f64;
            let y = &model.items.as_slice()[i as usize * d..(i as usize + 1) * d];
            for k in 0..d {
                mean[k] += s * y[k] as f64;
            }
            total += s;
            like += 1;
        }
    }
    assert!(like > 1, "the synthetic catalogue has trained comedies");
    let comedy = |extra: &[&str]| {
        let mut args = vec![
            "embed-item",
            "--model",
            &m,
            "--feature",
            "style=Comedy",
            "--json",
        ];
        args.extend(extra);
        let j: serde_json::Value = serde_json::from_str(&ok(&args)).unwrap();
        let v: Vec<f64> = (j["vector"].as_array().unwrap().iter())
            .map(|x| x.as_f64().unwrap())
            .collect();
        (v, j["content_neighbours"].as_u64().unwrap() as usize)
    };
    let (map, none) = comedy(&["--content-neighbours", "0"]);
    assert_eq!(none, 0);
    let (all, n) = comedy(&["--content-neighbours", "100000"]);
    assert_eq!(n, like, "every trained comedy is a neighbour");
    for k in 0..d {
        let want = 0.5 * map[k] + 0.5 * mean[k] / total;
        assert!(
            (all[k] - want).abs() < 1e-4,
            "{k}: {} against {want}",
            all[k]
        );
    }
    let (code, _, err) = lshrec(&["embed-item", "--model", &p("m"), "--feature", "style=Nope"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("Comedy"), "lists the known styles: {err}");
    let (code, _, err) = lshrec(&["embed-item", "--model", &p("m"), "--feature", "Comedy"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("COLUMN=VALUE"), "{err}");
    let out = ok(&[
        "query",
        "--model",
        &p("m"),
        "--feature",
        "segment=writer",
        "--k",
        "3",
        "--json",
    ]);
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["recommendations"].as_array().unwrap().len(), 3, "{out}");
}

/// Numeric attribute columns (`--item-numeric-cols`, `--user-numeric-cols`): each value is
/// split between the two quantile knots around it, so a value no training row had still has a
/// vector, and one that is not a number is refused by name.
#[test]
fn numeric_attributes_interpolate_between_knots() {
    let t = tempfile::tempdir().unwrap();
    let p = |s: &str| t.path().join(s).to_string_lossy().into_owned();
    // Items: a style and the release year as a number; users: a segment and their age.
    attribute_set(
        t.path(),
        ("item_id,style,released", &|r| {
            format!("{},{},{}", r[0], r[2], r[3])
        }),
        ("user_id\tsegment\tage_years", &|r| {
            format!("{}\t{}\t{}", r[0], r[3], r[1])
        }),
    );
    let (tr, te, m, cold, ia, ua) = (
        p("p3/train.tsv"),
        p("p3/test.tsv"),
        p("m"),
        p("p3/cold_items.txt"),
        p("item_attrs.csv"),
        p("user_attrs.tsv"),
    );
    let attrs = [
        "--item-features",
        &ia,
        "--item-numeric-cols",
        "released",
        "--user-features",
        &ua,
        "--user-numeric-cols",
        "age_years",
    ];
    let mut train = vec![
        "train", "--train", &tr, "--test", &te, "--model", "ials", "--dim", "16", "--out", &m,
    ];
    train.extend(attrs);
    let (code, _, err) = lshrec(&train);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("numeric item attribute \"released\": 10 knots")
            && err.contains("numeric user attribute \"age_years\""),
        "train names the knots: {err}"
    );
    assert!(!err.contains("id-like"), "{err}");
    let mut stats = vec!["data", "stats", &tr];
    stats.extend(attrs);
    let out = ok(&stats);
    assert!(
        out.contains("released (") && out.contains("values, numeric "),
        "stats show the numeric range: {out}"
    );

    let model = lshrec::store::Model::open(std::path::Path::new(&m)).unwrap();
    let knots = model.item_knots();
    let ks = knots.0["released"].clone();
    assert_eq!(ks.len(), 10, "{ks:?}");
    assert!(model.user_knots().is_numeric("age_years"));
    let names = &model.meta.item_features;
    let feats = model.item_features.as_ref().unwrap();
    let d = model.dim();
    let row = |k: f64| {
        let f = names
            .iter()
            .position(|n| *n == format!("released:~{k}"))
            .unwrap();
        feats.as_slice()[f * d..(f + 1) * d].to_vec()
    };
    let embed = |value: &str| -> Vec<f32> {
        let out = ok(&[
            "embed-item",
            "--model",
            &m,
            "--feature",
            &format!("released={value}"),
            "--content-neighbours",
            "0",
            "--json",
        ]);
        let j: serde_json::Value = serde_json::from_str(&out).unwrap();
        (j["vector"].as_array().unwrap().iter())
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    };
    // A quarter of the way between the fourth and fifth knots: no training item's year.
    let (a, b) = (ks[3], ks[4]);
    let x = a + 0.25 * (b - a);
    let (ra, rb) = (row(a), row(b));
    let want: Vec<f32> = (0..d).map(|k| 0.75 * ra[k] + 0.25 * rb[k]).collect();
    close(
        &embed(&x.to_string()),
        &want,
        1e-5,
        "interpolated between knots",
    );
    // Past the last knot: the last knot's vector alone.
    close(
        &embed("100000"),
        &row(ks[9]),
        1e-6,
        "clamped to the last knot",
    );
    let (code, _, err) = lshrec(&["embed-item", "--model", &m, "--feature", "released=old"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("expected a number"), "{err}");
    // A new user by a numeric age never seen in training.
    let out = ok(&[
        "query",
        "--model",
        &m,
        "--feature",
        "age_years=33.5",
        "--k",
        "3",
        "--json",
    ]);
    assert_eq!(rec_ids(&out).len(), 3, "{out}");

    // P3 through the numeric column: every cold item's year is known to the model.
    let (note, ndcg, random) = eval_cold_items(&m, &tr, &te, &cold, &attrs);
    assert!(note.contains("0 feature values unknown"), "{note}");
    println!("P3 NDCG@10 with a numeric year: {ndcg:.4} (random order: {random:.4})");
    assert!(ndcg > 1.3 * random, "{note}");

    // Bad numeric columns are refused with the file and line, or the header.
    let bad = |body: &str, col: &str, want: &str| {
        std::fs::write(p("bad.csv"), body).unwrap();
        refused(
            &[
                "data",
                "stats",
                &tr,
                "--item-features",
                &p("bad.csv"),
                "--item-numeric-cols",
                col,
            ],
            want,
        );
    };
    bad("item,w\n1,3\n2,3|4\n", "w", "bad.csv:3");
    bad("item,w\n1,heavy\n", "w", "one finite number");
    bad("item,w\n1,inf\n", "w", "one finite number");
    bad("item,w\n1,3\n", "weight", "a column named \"weight\"");
    bad("item,year\n1,1990\n", "year", "rename \"year\"");
    std::fs::write(p("bad.csv"), "item,w,v\n1,3,a\n").unwrap();
    refused(
        &[
            "data",
            "stats",
            &tr,
            "--item-features",
            &p("bad.csv"),
            "--item-feature-cols",
            "v",
            "--item-numeric-cols",
            "w",
        ],
        "among the columns used",
    );
}

/// The item ids of `query --json` output's recommendations.
fn rec_ids(out: &str) -> Vec<String> {
    recs_scored(out).into_iter().map(|r| r.0).collect()
}

/// The items and scores of `query --json` output's recommendations.
fn recs_scored(out: &str) -> Vec<(String, f64)> {
    let j: serde_json::Value = serde_json::from_str(out).unwrap();
    (j["recommendations"].as_array().unwrap().iter())
        .map(|r| {
            (
                r["item"].as_str().unwrap().to_string(),
                r["score"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// User cold start as a protocol: `data split --method cold-users` holds out a seeded tenth of
/// the users with enough positives, with everything they rated; `eval --cold-users` folds
/// each one in from N revealed positives and ranks for the rest, beside the most popular items.
#[test]
fn cold_users_split_and_eval() {
    let t = tempfile::tempdir().unwrap();
    let p = |s: &str| t.path().join(s).to_string_lossy().into_owned();
    small_synth(&p("s"), "ml-100k");
    let split = |out: &str, seed: &str| cold_users_split(&p("s"), seed, out);
    split(&p("cu"), "1");
    let read = |f: &str| std::fs::read_to_string(p(f)).unwrap();
    let cold: Vec<String> = read("cu/cold_users.txt")
        .lines()
        .map(String::from)
        .collect();
    // A tenth of the users with at least 15 positives (ratings ≥ 4 of the raw file).
    let raw = read("s/u.data");
    let mut positives: std::collections::HashMap<&str, usize> = Default::default();
    let mut users: std::collections::HashSet<&str> = Default::default();
    for l in raw.lines() {
        let f: Vec<&str> = l.split('\t').collect();
        users.insert(f[0]);
        if f[2] >= "4" {
            *positives.entry(f[0]).or_default() += 1;
        }
    }
    let eligible = positives.values().filter(|&&n| n >= 15).count();
    assert_eq!(cold.len(), (0.1 * eligible as f64).round() as usize);
    assert!(cold.iter().all(|u| positives[u.as_str()] >= 15));
    // They are in no training file; every positive of theirs is in test, nothing else is.
    let ids = |f: &str| -> Vec<(String, String)> {
        read(f)
            .lines()
            .skip(1)
            .map(|l| {
                let mut x = l.split('\t');
                (x.next().unwrap().into(), x.next().unwrap().into())
            })
            .collect()
    };
    let is_cold = |u: &str| cold.iter().any(|c| c == u);
    for f in ["cu/train.tsv", "cu/train_rated.tsv"] {
        assert!(!ids(f).iter().any(|(u, _)| is_cold(u)), "{f}");
    }
    let test = ids("cu/test.tsv");
    assert!(test.iter().all(|(u, _)| is_cold(u)));
    let want: usize = cold.iter().map(|u| positives[u.as_str()]).sum();
    assert_eq!(test.len(), want);
    // Seeded: the same seed draws the same users, another seed others.
    split(&p("cu_again"), "1");
    assert_eq!(read("cu_again/cold_users.txt"), read("cu/cold_users.txt"));
    split(&p("cu2"), "2");
    assert_ne!(read("cu2/cold_users.txt"), read("cu/cold_users.txt"));

    let (model, train, test) = (p("m"), p("cu/train.tsv"), p("cu/test.tsv"));
    let train_model = |out: &str, extra: &[&str]| ials_on_split(&p("cu"), out, extra);
    train_model(&model, &[]);
    let eval = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec![
            "eval", "--model", &model, "--train", &train, "--test", &test, "--k", "10", "--json",
        ];
        args.extend(extra);
        serde_json::from_str(&ok(&args)).unwrap()
    };
    let cold_file = p("cu/cold_users.txt");
    // Counts are taken in order, once each.
    let j = eval(&["--cold-users", &cold_file, "--reveal", "5,0,1,5"]);
    let ndcg = |r: &serde_json::Value, what: &str| r[what]["at"][0]["ndcg"].as_f64().unwrap();
    let reveals = j["reveals"].as_array().unwrap();
    assert_eq!(reveals.len(), 3);
    let counts: Vec<u64> = reveals
        .iter()
        .map(|r| r["revealed"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [0, 1, 5]);
    for r in reveals {
        println!(
            "revealed {}: fold-in {:.4}, most popular {:.4}, users {} ({} left out)",
            r["revealed"],
            ndcg(r, "model"),
            ndcg(r, "most_popular"),
            r["model"]["users"],
            r["users_left_out"]
        );
    }
    // Everyone has ≥ 15 positives: nobody is left out below that.
    for r in reveals {
        assert_eq!(r["model"]["users"].as_u64().unwrap() as usize, cold.len());
    }
    // Revealed positives say more the more there are (on this popularity-heavy synthetic set
    // the most popular items stay ahead; on ML-100K fold-in passes them from one revealed
    // positive on). N = 0 is the demographics' vector itself, not a solve. The synthetic
    // demographics are random, so it is close to a mean user's vector and ranks close to the
    // most popular items, above a fold-in from one positive: no order between N = 0 and N = 1
    // is a property (the unit test `zero_reveals_need_a_prior` checks the N = 0 vector).
    assert!(ndcg(&reveals[2], "model") > ndcg(&reveals[1], "model"));
    assert!(ndcg(&reveals[0], "model") > 0.8 * ndcg(&reveals[0], "most_popular"));
    // Demographics are the prior: without them N = 1 changes, and N = 0 has nothing to go on.
    let plain = eval(&[
        "--cold-users",
        &cold_file,
        "--reveal",
        "1",
        "--no-demographics",
    ]);
    assert_ne!(
        ndcg(&plain["reveals"][0], "model"),
        ndcg(&reveals[1], "model")
    );
    let base = [
        "eval", "--model", &model, "--train", &train, "--test", &test,
    ];
    let more = [
        "--cold-users",
        &cold_file,
        "--reveal",
        "0",
        "--no-demographics",
    ];
    refused(&[&base[..], &more].concat(), "reveal at least 1");
    // A count that would leave every user out (synthetic users have under 100 positives) is
    // refused with the largest usable one, as is --per-user, which is the warm report's.
    let all_out = ["--cold-users", &cold_file, "--reveal", "1,100"];
    refused(
        &[&base[..], &all_out].concat(),
        "so none would have any left to rank for; reveal at most",
    );
    let per_user = ["--cold-users", &cold_file, "--per-user", "x.tsv"];
    refused(&[&base[..], &per_user].concat(), "cannot be used with");
    // By time (--reveal-order time) each user's first positives are revealed, ties shuffled by
    // --seed. With every test time distinct the seed no longer matters, while the random
    // order's reports change with it; a test file without times is refused.
    let lines: Vec<String> = read("cu/test.tsv").lines().map(String::from).collect();
    assert!(lines[0].ends_with("timestamp"), "{}", lines[0]);
    let n = lines.len() as u64;
    let (mut timed, mut untimed) = (lines[0].clone() + "\n", String::from("user\titem\n"));
    for (k, l) in lines[1..].iter().enumerate() {
        let f: Vec<&str> = l.split('\t').collect();
        // Distinct times in an order unlike the file's (7919 is prime, n is not its multiple).
        let t = 900_000_000 + (k as u64 * 7919) % n;
        timed += &format!("{}\t{t}\n", f[..f.len() - 1].join("\t"));
        untimed += &format!("{}\t{}\n", f[0], f[1]);
    }
    std::fs::write(p("timed.tsv"), timed).unwrap();
    std::fs::write(p("untimed.tsv"), untimed).unwrap();
    let by = |file: &str, order: &str, seed: &str| -> serde_json::Value {
        let args = [
            "eval",
            "--model",
            &model,
            "--train",
            &train,
            "--test",
            &p(file),
            "--k",
            "10",
            "--json",
            "--cold-users",
            &cold_file,
            "--reveal",
            "1,3",
            "--reveal-order",
            order,
            "--seed",
            seed,
        ];
        serde_json::from_str(&ok(&args)).unwrap()
    };
    let (t1, t2) = (by("timed.tsv", "time", "1"), by("timed.tsv", "time", "2"));
    let (r1, r2) = (
        by("timed.tsv", "random", "1"),
        by("timed.tsv", "random", "2"),
    );
    assert_eq!(t1["reveal_order"], "time");
    assert_eq!(r1["reveal_order"], "random");
    assert_eq!(
        t1["reveals"], t2["reveals"],
        "no ties: the seed does not matter"
    );
    assert_ne!(
        r1["reveals"], r2["reveals"],
        "the random order follows the seed"
    );
    assert_ne!(t1["reveals"], r1["reveals"]);
    let untimed_args = [
        "--test",
        &p("untimed.tsv"),
        "--cold-users",
        &cold_file,
        "--reveal-order",
        "time",
    ];
    let head = ["eval", "--model", &model, "--train", &train];
    refused(&[&head[..], &untimed_args].concat(), "no timestamp column");

    // The first-ratings map (the training file has times): each reveal reports it beside the
    // fold-in, over the same users.
    for r in t1["reveals"].as_array().unwrap() {
        assert_eq!(r["first_ratings"]["users"], r["model"]["users"], "{r}");
        assert!(ndcg(r, "first_ratings") > 0.0);
    }
    // `query --first-ratings`: the vector is the map's constant row plus the rows of the liked
    // items and of the user's features (times their weights), ranked exactly, liked excluded.
    let m = lshrec::store::Model::open(std::path::Path::new(&model)).unwrap();
    let (d, ni) = (m.dim(), m.n_items());
    let map = m
        .first_ratings
        .as_ref()
        .expect("a first-ratings map")
        .as_slice();
    let nf = m.meta.user_features.len();
    assert_eq!(map.len(), (ni + nf + 1) * d);
    let liked: Vec<&str> = (m.meta.item_ids.iter().take(3))
        .map(|s| s.as_str())
        .collect();
    let gender = m.meta.user_features.iter().position(|f| f == "gender:F");
    let gender = gender.expect("a gender feature");
    let mut v = map[(ni + nf) * d..].to_vec();
    for k in [0, 1, 2, ni + gender] {
        for (a, b) in v.iter_mut().zip(&map[k * d..(k + 1) * d]) {
            *a += b;
        }
    }
    let score = |i: usize| -> f32 {
        let row = &m.items.as_slice()[i * d..(i + 1) * d];
        row.iter().zip(&v).map(|(a, b)| a * b).sum()
    };
    let mut want: Vec<usize> = (3..ni).collect();
    want.sort_by(|&a, &b| score(b).total_cmp(&score(a)));
    let want: Vec<String> = (want[..5].iter())
        .map(|&i| m.meta.item_ids[i].clone())
        .collect();
    let q = [
        "query",
        "--model",
        &model,
        "--liked",
        &liked.join(","),
        "--first-ratings",
        "--gender",
        "F",
        "--k",
        "5",
        "--json",
    ];
    assert_eq!(rec_ids(&ok(&q)), want);
    // Refused: with --disliked or --prior-weight (the fold-in's), or on a model without the map.
    refused(
        &[&q[..], &["--disliked", "9"]].concat(),
        "cannot be used with",
    );
    refused(
        &[&q[..], &["--prior-weight", "1"]].concat(),
        "cannot be used with",
    );
    train_model(&p("m_plain"), &["--no-first-ratings"]);
    let plain_model = p("m_plain");
    assert!(!std::path::Path::new(&plain_model)
        .join("first_ratings.npy")
        .exists());
    let mut q_plain = q.to_vec();
    q_plain[2] = &plain_model;
    refused(&q_plain, "this model has no first-ratings map");
    // A user with training data is not cold; a cold-users split is not a `train --split`.
    let warm = ids("cu/train.tsv")[0].0.clone();
    std::fs::write(p("warm.txt"), format!("{warm}\n")).unwrap();
    let warm_file = p("warm.txt");
    refused(
        &[&base[..], &["--cold-users", &warm_file]].concat(),
        "warm.txt:1",
    );
    refused(
        &[
            "train",
            "--data",
            &p("s"),
            "--split",
            "cold-users:0.1",
            "--out",
            &p("m2"),
        ],
        "eval --cold-users",
    );
}

/// `recommend-all --fold-in FILE` scores the users of a ratings file from their rows: a new
/// user exactly as `query --liked … --disliked …` folds them in (rows below the model's
/// --min-rating are the dislikes), a user the model knows from their training items and the
/// file's rows together; and a row naming an unknown item, or a user with nothing to fold in
/// from, is refused at its line.
#[test]
fn recommend_all_folds_in_users_from_a_file() {
    let t = tempfile::tempdir().unwrap();
    let p = |s: &str| t.path().join(s).to_string_lossy().into_owned();
    small_synth(&p("s"), "ml-100k");
    cold_users_split(&p("s"), "2", &p("cu"));
    let m = p("m");
    ials_on_split(&p("cu"), &m, &[]);
    let read = |f: &str| std::fs::read_to_string(p(f)).unwrap();
    let cold: Vec<String> = read("cu/cold_users.txt")
        .lines()
        .map(String::from)
        .collect();
    let rows_of = |file: &str, user: &str| -> Vec<(String, u32)> {
        (read(file).lines())
            .map(|l| l.split('\t').collect::<Vec<_>>())
            .filter(|f| f[0] == user)
            .map(|f| {
                (
                    f[1].to_string(),
                    f[2].parse::<f32>().map_or(5, |r| r as u32),
                )
            })
            .collect()
    };
    // A new user with all their ratings (some below 4); another with three; a trained user
    // with two rows on top of their training items.
    let all = rows_of("s/u.data", &cold[0]);
    assert!(all.iter().any(|r| r.1 < 4) && all.iter().any(|r| r.1 >= 4));
    let few: Vec<_> = (rows_of("s/u.data", &cold[1]).into_iter())
        .filter(|r| r.1 >= 4)
        .take(3)
        .collect();
    let train = read("cu/train.tsv");
    let known = train
        .lines()
        .nth(1)
        .unwrap()
        .split('\t')
        .next()
        .unwrap()
        .to_string();
    let trained: Vec<String> = rows_of("cu/train.tsv", &known)
        .into_iter()
        .map(|r| r.0)
        .collect();
    let extra: Vec<(String, u32)> = (1..=400)
        .map(|i| i.to_string())
        .filter(|i| !trained.contains(i))
        .take(2)
        .map(|i| (i, 5))
        .collect();
    let mut file = String::from("user,item,rating\n");
    for (user, rows) in [(&cold[0], &all), (&cold[1], &few), (&known, &extra)] {
        for (item, r) in rows.iter() {
            file += &format!("{user},{item},{r}\n");
        }
    }
    std::fs::write(p("fold.csv"), &file).unwrap();
    // `recommend-all --fold-in FILE --k 10 --out OUT` and `extra` arguments: its stdout.
    let fold_in = |file: &str, out: &str, extra: &[&str]| -> String {
        let args = [
            "recommend-all",
            "--model",
            &m,
            "--fold-in",
            &p(file),
            "--k",
            "10",
            "--out",
            &p(out),
        ];
        ok(&[&args[..], extra].concat())
    };
    let summary = fold_in("fold.csv", "f.jsonl", &["--json"]);
    let s: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(
        (s["users"].as_u64(), s["fold_in_known_users"].as_u64()),
        (Some(3), Some(1))
    );
    // Each user's list in a .jsonl output.
    let jsonl_lists = |f: &str| -> std::collections::HashMap<String, Vec<(String, f64)>> {
        (read(f).lines())
            .map(|l| {
                let j: serde_json::Value = serde_json::from_str(l).unwrap();
                let items = j["items"].as_array().unwrap().iter();
                let scores = j["scores"].as_array().unwrap().iter();
                let list = (items.zip(scores))
                    .map(|(i, s)| (i.as_str().unwrap().to_string(), s.as_f64().unwrap()))
                    .collect();
                (j["user"].as_str().unwrap().to_string(), list)
            })
            .collect()
    };
    let lists = jsonl_lists("f.jsonl");
    let query = |liked: Vec<String>, disliked: Vec<String>| -> Vec<(String, f64)> {
        let (liked, disliked) = (liked.join(","), disliked.join(","));
        let mut args = vec![
            "query", "--model", &m, "--k", "10", "--json", "--liked", &liked,
        ];
        if !disliked.is_empty() {
            args.extend(["--disliked", &disliked]);
        }
        recs_scored(&ok(&args))
    };
    let split = |rows: &[(String, u32)], liked: bool| -> Vec<String> {
        (rows.iter().filter(|r| (r.1 >= 4) == liked))
            .map(|r| r.0.clone())
            .collect()
    };
    let same = |got: &[(String, f64)], want: &[(String, f64)], who: &str| {
        assert_eq!(got.len(), want.len(), "{who}");
        for (g, w) in got.iter().zip(want) {
            assert!(
                g.0 == w.0 && (g.1 - w.1).abs() < 1e-5,
                "{who}: {got:?} against {want:?}"
            );
        }
    };
    same(
        &lists[&cold[0]],
        &query(split(&all, true), split(&all, false)),
        "all rows",
    );
    same(
        &lists[&cold[1]],
        &query(split(&few, true), vec![]),
        "three rows",
    );
    let union = [trained.clone(), split(&extra, true)].concat();
    same(&lists[&known], &query(union, vec![]), "a trained user");
    // A shard folds in and writes its own users only, each list as in the whole run (the
    // scores to the GEMM's rounding, which depends on how many users share a block).
    fold_in("fold.csv", "f1.jsonl", &["--shard", "1/3"]);
    let shard: Vec<serde_json::Value> = (read("f1.jsonl").lines())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(shard.len(), 1);
    let user = shard[0]["user"].as_str().unwrap().to_string();
    let whole: Vec<serde_json::Value> = (read("f.jsonl").lines())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(whole[1]["user"], shard[0]["user"], "the file's second user");
    let got: Vec<(String, f64)> = (shard[0]["items"].as_array().unwrap().iter())
        .zip(shard[0]["scores"].as_array().unwrap())
        .map(|(i, s)| (i.as_str().unwrap().to_string(), s.as_f64().unwrap()))
        .collect();
    same(&got, &lists[&user], "a shard");

    // --first-ratings: the new users' vectors come from the first-ratings map, as `query
    // --liked … --first-ratings` makes them; their low rows enter no vector but are not
    // recommended back; the trained user is folded in as before; a new user with low rows
    // only gets the map's N = 0 vector instead of a refusal.
    std::fs::write(p("fr.csv"), format!("{file}grumpy,2,1\ngrumpy,3,2\n")).unwrap();
    let s: serde_json::Value = serde_json::from_str(&fold_in(
        "fr.csv",
        "fr.jsonl",
        &["--first-ratings", "--json"],
    ))
    .unwrap();
    assert_eq!(
        (
            s["users"].as_u64(),
            s["fold_in_known_users"].as_u64(),
            s["first_ratings_users"].as_u64()
        ),
        (Some(4), Some(1), Some(3))
    );
    let mapped = jsonl_lists("fr.jsonl");
    // `query --first-ratings` excludes the liked items only: ask it for more and drop the
    // disliked ones.
    let query_first = |liked: Vec<String>, drop: &[String]| -> Vec<(String, f64)> {
        let liked = liked.join(",");
        let out = ok(&[
            "query",
            "--model",
            &m,
            "--k",
            "30",
            "--json",
            "--liked",
            &liked,
            "--first-ratings",
        ]);
        (recs_scored(&out).into_iter())
            .filter(|r| !drop.contains(&r.0))
            .take(10)
            .collect()
    };
    same(
        &mapped[&cold[1]],
        &query_first(split(&few, true), &[]),
        "three first ratings",
    );
    let disliked = split(&all, false);
    same(
        &mapped[&cold[0]],
        &query_first(split(&all, true), &disliked),
        "all rows as first ratings",
    );
    assert_ne!(
        mapped[&cold[0]], lists[&cold[0]],
        "the map is not the fold-in"
    );
    same(&mapped[&known], &lists[&known], "a trained user, folded in");
    assert_eq!(mapped["grumpy"].len(), 10);
    assert!(mapped["grumpy"].iter().all(|r| r.0 != "2" && r.0 != "3"));

    // --fold-in-users: each user's demographics as `query --age --gender --occupation` takes
    // them (the prior of the fold-in, or features of the map); a user listed there without
    // rows is scored from them alone; a column the model has no features for (zip) is left
    // out, a value it never saw is counted, a bad age is refused at its line.
    let users_tsv = read("cu/users.tsv");
    let demo = |user: &str| -> Vec<String> {
        let l = users_tsv
            .lines()
            .find(|l| l.starts_with(&format!("{user}\t")));
        l.unwrap().split('\t').map(String::from).collect()
    };
    let (d1, header) = (demo(&cold[1]), users_tsv.lines().next().unwrap());
    assert!(
        header.starts_with("user\tage\tgender\toccupation\tzip"),
        "{header}"
    );
    let users_file = format!(
        "{header}\n{}\nfresh\t31\tF\t{o}\t00000\nbucketed\t25-34\tF\t{o}\t00000\nodd\t40\tM\tastronaut\t00000\n",
        d1.join("\t"),
        o = d1[3]
    );
    // Written beside fold.csv under the split's side-file name: the fold-in must read it as
    // --fold-in-users only, not as fold.csv's side file (whose typed reader would refuse
    // the age 25-34).
    std::fs::write(p("users.tsv"), users_file).unwrap();
    let (fold, users) = (p("fold.csv"), p("users.tsv"));
    let users_args = [
        "recommend-all",
        "--model",
        &m,
        "--fold-in",
        &fold,
        "--fold-in-users",
        &users,
    ];
    let with_users = |extra: &[&str], out: &str| -> serde_json::Value {
        let args = [&["--fold-in-users", &users, "--json"], extra].concat();
        serde_json::from_str(&fold_in("fold.csv", out, &args)).unwrap()
    };
    let lists_of = |out: &str| -> std::collections::HashMap<String, Vec<(String, f64)>> {
        (read(out).lines().skip(1))
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (f[0].to_string(), (f[2].to_string(), f[3].parse().unwrap()))
            })
            .fold(Default::default(), |mut m, (u, r)| {
                m.entry(u).or_insert_with(Vec::new).push(r);
                m
            })
    };
    let query_demo = |liked: &[String], age: &str, gender: &str, occ: &str, first: bool| {
        let liked = liked.join(",");
        let mut args = vec![
            "query",
            "--model",
            &m,
            "--k",
            "10",
            "--json",
            "--age",
            age,
            "--gender",
            gender,
            "--occupation",
            occ,
        ];
        if !liked.is_empty() {
            args.extend(["--liked", &liked]);
        }
        if first {
            args.push("--first-ratings");
        }
        recs_scored(&ok(&args))
    };
    for first in [false, true] {
        let s = with_users(if first { &["--first-ratings"] } else { &[] }, "d.tsv");
        assert_eq!(
            (s["users"].as_u64(), s["unknown_feature_values"].as_u64()),
            (Some(6), Some(1)),
            "{s}"
        );
        let got = lists_of("d.tsv");
        let want = query_demo(&split(&few, true), &d1[1], &d1[2], &d1[3], first);
        same(&got[&cold[1]], &want, "three rows and demographics");
        assert_ne!(got[&cold[1]], mapped[&cold[1]], "demographics count");
        let want = query_demo(&[], "31", "F", &d1[3], first);
        same(&got["fresh"], &want, "demographics alone");
        same(
            &got["bucketed"],
            &want,
            "an age given as the model's bucket",
        );
        assert_eq!(
            got["odd"].len(),
            10,
            "a new occupation is left out, not refused"
        );
    }
    std::fs::write(p("users.tsv"), format!("{header}\nx\t0\tF\twriter\t0\n")).unwrap();
    refused(
        &[&users_args[..], &["--out", &p("x.tsv")]].concat(),
        "users.tsv:2: field `age`: expected an age in years, 1 to 120",
    );

    // A model without the map is refused before any work.
    ials_on_split(&p("cu"), &p("m_plain"), &["--no-first-ratings"]);
    refused(
        &[
            "recommend-all",
            "--model",
            &p("m_plain"),
            "--fold-in",
            &p("fr.csv"),
            "--first-ratings",
            "--out",
            &p("x.tsv"),
        ],
        "this model has no first-ratings map",
    );

    // Refusals, each at its line; nothing is written.
    let refused_at = |body: &str, needle: &str| {
        std::fs::write(p("bad.csv"), body).unwrap();
        refused(
            &[
                "recommend-all",
                "--model",
                &m,
                "--fold-in",
                &p("bad.csv"),
                "--out",
                &p("x.tsv"),
            ],
            needle,
        );
        assert!(!t.path().join("x.tsv").exists());
    };
    refused_at(
        "user,item,rating\nnew,1,5\nnew,no-such-item,4\n",
        "bad.csv:3: field `item`: expected an item id of the model",
    );
    refused_at(
        "user,item,rating\nok,1,5\ngrumpy,2,1\ngrumpy,3,2\n",
        "bad.csv:3: field `user`: expected a user with at least one row rated 4 or more",
    );
    refused(
        &[
            "recommend-all",
            "--model",
            &m,
            "--fold-in",
            &p("fold.csv"),
            "--user-list",
            &p("cu/cold_users.txt"),
            "--out",
            &p("x.tsv"),
        ],
        "cannot be used with",
    );
}
