//! The serving commands end to end through the binary: outputs, and exit code 2 with one clear
//! line for every kind of bad input the serving issue lists.

use std::path::Path;

mod common;
use common::{lshrec, ok, synth};

fn bad(args: &[&str], needle: &str) {
    let (code, _, err) = lshrec(args);
    assert_eq!(code, 2, "{args:?} should exit 2: {err}");
    assert!(
        err.starts_with("error: ") && err.contains(needle),
        "{args:?}: {err}"
    );
}

fn train(dir: &Path, name: &str, seed: &str) -> String {
    let data = dir.join("data");
    if !data.exists() {
        synth(data.to_str().unwrap(), 60, 120, 2400, &["--to", "generic"]);
    }
    let m = dir.join(name);
    ok(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--model",
        "ials",
        "--dim",
        "8",
        "--epochs",
        "2",
        "--seed",
        seed,
        "--out",
        m.to_str().unwrap(),
        "-q",
    ]);
    m.to_str().unwrap().to_string()
}

#[test]
fn serving_commands_and_their_errors() {
    let t = tempfile::tempdir().unwrap();
    let m = train(t.path(), "m", "1");
    let idx = t.path().join("idx");
    let idx = idx.to_str().unwrap();
    // --json summaries: the index's shape, as asked for and as auto-chosen.
    let built: serde_json::Value = serde_json::from_str(&ok(&[
        "index", "build", "--model", &m, "--out", idx, "--tables", "6", "--json",
    ]))
    .unwrap();
    assert_eq!(
        (&built["items"], &built["dim"], &built["tables"]),
        (&120.into(), &8.into(), &6.into())
    );
    assert_eq!(built["vectors_included"], true);
    ok(&["index", "build", "--model", &m, "--out", idx]);

    let out = ok(&[
        "query", "--model", &m, "--index", idx, "--user", "7", "--k", "5", "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["recommendations"].as_array().unwrap().len(), 5);
    assert_eq!(v["method"], "lsh");
    ok(&["query", "--model", &m, "--user", "7"]);
    // A probe-only index (no scan codes): probing serves, the scan is refused with the way out.
    let probe_only = t.path().join("idx0");
    let probe_only = probe_only.to_str().unwrap();
    ok(&[
        "index",
        "build",
        "--model",
        &m,
        "--out",
        probe_only,
        "--scan-bits",
        "0",
    ]);
    let user7 = [
        "--model", &m, "--index", probe_only, "--user", "7", "--k", "5",
    ];
    ok(&[&["query"][..], &user7, &["--mode", "probe"]].concat());
    // Search knobs are never silently ignored: without an index, with --exact, and the npy
    // inputs' bias and seen pairs beside --model are refused.
    let exact7 = ["query", "--model", &m, "--user", "7"];
    bad(
        &[&exact7[..], &["--mode", "probe"]].concat(),
        "--index <INDEX>",
    );
    bad(
        &[&exact7[..], &["--probes", "9"]].concat(),
        "--index <INDEX>",
    );
    bad(
        &[
            &["query"][..],
            &user7,
            &["--exact", "--max-candidates", "9"],
        ]
        .concat(),
        "cannot be used with",
    );
    bad(
        &[&exact7[..], &["--seen", "pairs.tsv"]].concat(),
        "cannot be used with",
    );
    bad(&[&["query"][..], &user7].concat(), "--scan-bits 0");
    let all = [
        "recommend-all",
        "--model",
        &m,
        "--index",
        probe_only,
        "--k",
        "5",
        "--out",
    ];
    let recs = t.path().join("r0.tsv");
    bad(
        &[&all[..], &[recs.to_str().unwrap()]].concat(),
        "--mode probe",
    );

    bad(
        &["query", "--model", &m, "--user", "nobody"],
        "unknown user",
    );
    bad(
        &["query", "--model", &m, "--user", "7", "--k", "0"],
        "invalid k",
    );
    bad(
        &["query", "--model", &m, "--user", "7", "--k", "121"],
        "invalid k",
    );
    bad(
        &["query", "--model", "/nonexistent", "--user", "7"],
        "model",
    );

    for ext in ["tsv", "jsonl", "npy"] {
        let p = t.path().join(format!("recs.{ext}"));
        ok(&[
            "recommend-all",
            "--model",
            &m,
            "--index",
            idx,
            "--k",
            "4",
            "--out",
            p.to_str().unwrap(),
        ]);
        let bytes = std::fs::read(&p).unwrap();
        match ext {
            "tsv" => assert_eq!(String::from_utf8_lossy(&bytes).lines().count(), 1 + 60 * 4),
            "jsonl" => assert_eq!(String::from_utf8_lossy(&bytes).lines().count(), 60),
            _ => assert!(String::from_utf8_lossy(&bytes[..80]).contains("'shape': (60, 4)")),
        }
    }
    // The .npy's companions name its rows and item rows and hold the scores: user 1's first
    // recommendation reads as in the .tsv.
    let text = |name: &str| std::fs::read_to_string(t.path().join(name)).unwrap();
    let (users, items) = (text("recs.users.txt"), text("recs.items.txt"));
    let (users, items): (Vec<&str>, Vec<&str>) = (users.lines().collect(), items.lines().collect());
    assert_eq!((users.len(), items.len()), (60, 120));
    let body = |name: &str| {
        let b = std::fs::read(t.path().join(name)).unwrap();
        let header = u16::from_le_bytes([b[8], b[9]]) as usize;
        b[10 + header..].to_vec()
    };
    let row0 = i64::from_le_bytes(body("recs.npy")[..8].try_into().unwrap());
    let score0 = f32::from_le_bytes(body("recs.scores.npy")[..4].try_into().unwrap());
    let tsv = text("recs.tsv");
    let first: Vec<&str> = tsv.lines().nth(1).unwrap().split('\t').collect();
    assert_eq!(
        (
            users[0],
            "1",
            items[row0 as usize],
            score0.to_string().as_str()
        ),
        (first[0], first[1], first[2], first[3])
    );
    let shard = t.path().join("shard.tsv");
    let k3 = ["recommend-all", "--model", &m, "--k", "3"];
    let to_shard = ["--out", shard.to_str().unwrap()];
    ok(&[&k3[..], &["--exact", "--shard", "1/4"], &to_shard].concat());
    assert_eq!(
        std::fs::read_to_string(&shard).unwrap().lines().count(),
        1 + 15 * 3
    );
    let summary: serde_json::Value =
        serde_json::from_str(&ok(
            &[&k3[..], &["--shard", "1/4", "--json"], &to_shard].concat()
        ))
        .unwrap();
    assert_eq!(
        (
            &summary["users"],
            &summary["first_user_row"],
            &summary["method"]
        ),
        (&15.into(), &15.into(), &"exact".into())
    );
    assert!(summary["users_per_second"].as_f64().unwrap() > 0.0);
    bad(
        &[&k3[..], &["--shard", "4/4"], &to_shard].concat(),
        "--shard",
    );
    bad(
        &[
            "recommend-all",
            "--model",
            &m,
            "--k",
            "3",
            "--out",
            "recs.parquet",
        ],
        "--out",
    );

    let out = ok(&[
        "bench",
        "--model",
        &m,
        "--index",
        idx,
        "--json",
        "--latency-queries",
        "5",
        "--min-time",
        "0",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["rows"][0]["method"], "exact");
    assert_eq!(v["rows"][0]["recall"], 1.0);
    assert!(v["rows"][1]["recall"].as_f64().unwrap() > 0.5);
    // No minimum time: one timed pass after the warm-up, for every row.
    for r in v["rows"].as_array().unwrap() {
        assert_eq!(r["passes"], 1, "{r}");
    }
    for t in ["-1", "NaN", "1e9"] {
        let arg = format!("--min-time={t}");
        bad(&["bench", "--model", &m, &arg], "--min-time");
    }
    for arg in [
        "--target=2",
        "--target=NaN",
        "--latency-queries=0",
        "--plot=p.png",
    ] {
        let flag = arg.split('=').next().unwrap();
        bad(&["bench", "--model", &m, arg], &format!("invalid {flag}"));
    }
    // A synthetic set too large to generate, or degenerate, is refused before any allocation
    // (items=99999999999 aborted on the allocation; clusters=0 has no centres to draw from).
    for (spec, want) in [
        ("items=99999999999,users=5,dim=4", "at most 2147483648"),
        ("items=1000,users=5,dim=100000000", "at most 2147483648"),
        ("items=100,users=5,dim=4,clusters=0", "must be positive"),
        ("items=100,users=5,dim=4,sigma=-1", "≥ 0"),
    ] {
        bad(&["bench", "--synthetic", spec], want);
    }

    // An index built from another model is refused.
    let other = train(t.path(), "other", "2");
    bad(
        &["query", "--model", &other, "--index", idx, "--user", "7"],
        "another model",
    );

    // A truncated model file is refused before it is mapped.
    let items = Path::new(&m).join("items.npy");
    let b = std::fs::read(&items).unwrap();
    std::fs::write(&items, &b[..b.len() - 7]).unwrap();
    bad(&["query", "--model", &m, "--user", "7"], "items.npy");

    // Embeddings from elsewhere: NaN and a dimension mismatch are refused.
    let u = t.path().join("u.npy");
    let i = t.path().join("i.npy");
    let (us, is) = (u.to_str().unwrap(), i.to_str().unwrap());
    let external = [
        "query", "--users", us, "--items", is, "--user", "0", "--k", "1",
    ];
    lshrec::store::npy::write_f32(&u, &[2, 3], &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]).unwrap();
    lshrec::store::npy::write_f32(&i, &[2, 4], &[1.0; 8]).unwrap();
    bad(&external, "same number of columns: expected 4 columns");
    lshrec::store::npy::write_f32(&i, &[6], &[1.0; 6]).unwrap();
    bad(
        &external,
        "expected 1 column, as in the items' file (a 1-D array is one column)",
    );
    lshrec::store::npy::write_f32(&i, &[0, 3], &[]).unwrap();
    bad(
        &external,
        "an empty array (0 x 3): expected one item vector per row",
    );
    lshrec::store::npy::write_f32(&i, &[2, 3], &[1.0, f32::NAN, 0.0, 0.0, 1.0, 0.0]).unwrap();
    bad(&external, "not finite");
    lshrec::store::npy::write_f32(&i, &[2, 3], &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]).unwrap();
    let out = ok(&[
        "query",
        "--users",
        u.to_str().unwrap(),
        "--items",
        i.to_str().unwrap(),
        "--user",
        "1",
        "--k",
        "1",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["recommendations"][0]["item"], "1");
    // Seen pairs are row numbers: one beyond the arrays is refused at its line (the loader
    // sorts rows, so the line is looked up again), header and blank lines counted.
    let seen = t.path().join("seen.tsv");
    std::fs::write(&seen, "user\titem\n0\t1\n\n1\t0\n0\t5\n").unwrap();
    let with_seen = [&external[..], &["--seen", seen.to_str().unwrap()]].concat();
    bad(
        &with_seen,
        "seen.tsv:5: field `item`: expected a row number below 2, found \"5\"",
    );
    std::fs::write(&seen, "0,1\n7,0\n").unwrap();
    bad(
        &with_seen,
        "seen.tsv:2: field `user`: expected a row number below 2",
    );
    // A header may name the columns in either order: the line is looked up in the item column.
    std::fs::write(&seen, "item\tuser\n1\t0\n5\t1\n0\t5\n").unwrap();
    bad(
        &with_seen,
        "seen.tsv:3: field `item`: expected a row number below 2, found \"5\"",
    );
    // Comment lines above the header and among the rows are not rows.
    std::fs::write(&seen, "# pairs\nuser\titem\n# was\t5\n0\t1\n1\t5\n").unwrap();
    bad(
        &with_seen,
        "seen.tsv:5: field `item`: expected a row number below 2, found \"5\"",
    );
}

#[test]
fn a_short_list_says_why_it_is_short() {
    // User 1 rated two of the three items, user 3 all three: their top 3 cannot be full.
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("r.csv");
    std::fs::write(
        &data,
        "user,item,rating\n1,10,5\n1,11,4\n2,10,3\n2,12,5\n3,11,4\n3,12,2\n3,10,5\n",
    )
    .unwrap();
    let m = t.path().join("m");
    let m = m.to_str().unwrap();
    let d = data.to_str().unwrap();
    ok(&[
        "train", "--data", d, "--epochs", "2", "--seed", "1", "--out", m,
    ]);
    let out = ok(&["query", "--model", m, "--user", "3", "--k", "3", "--exact"]);
    assert!(
        out.contains(
            "(nothing left: the other 3 are excluded as the user's own; --keep-seen includes them)"
        ),
        "{out}"
    );
    let out = ok(&["query", "--model", m, "--user", "1", "--k", "3", "--exact"]);
    assert!(out.contains("  1. ") && !out.contains("  2. "), "{out}");
    assert!(
        out.contains("(only 1 item left: the other 2 are excluded"),
        "{out}"
    );
    let out = ok(&[
        "query",
        "--model",
        m,
        "--user",
        "1",
        "--k",
        "3",
        "--exact",
        "--keep-seen",
    ]);
    assert!(out.contains("  3. ") && !out.contains("left"), "{out}");
    // Items listed in --exclude-items count apart from the user's own.
    let ex = t.path().join("ex.txt");
    std::fs::write(&ex, "12\n").unwrap();
    let ex = ex.to_str().unwrap();
    let q = ["query", "--model", m, "--user", "1", "--k", "3", "--exact"];
    let out = ok(&[&q[..], &["--exclude-items", ex]].concat());
    assert!(
        out.contains("(nothing left: the others are the user's own (2; --keep-seen includes them) or listed in --exclude-items (1))"),
        "{out}"
    );
    let out = ok(&[&q[..], &["--exclude-items", ex, "--keep-seen"]].concat());
    assert!(
        out.contains("(only 2 items left: the other 1 is listed in --exclude-items)"),
        "{out}"
    );
}

#[test]
fn an_interrupted_batch_keeps_the_old_output_and_leaves_no_temporary_file() {
    // SIGTERM (a cancelled Slurm or Kubernetes job) in the middle of recommend-all: exit 130,
    // the previous output as it was, and no half-written temporary file behind. 200k users
    // against 50k items at one thread take seconds; the signal comes as soon as the output's
    // temporary file exists.
    let t = tempfile::tempdir().unwrap();
    let mut r = lshrec::rng::Rng::new(5);
    let (users, items) = (t.path().join("u.npy"), t.path().join("i.npy"));
    let d = 32;
    lshrec::store::npy::write_f32(
        &users,
        &[200_000, d],
        &common::normals(&mut r, 200_000 * d, 1.0),
    )
    .unwrap();
    lshrec::store::npy::write_f32(
        &items,
        &[50_000, d],
        &common::normals(&mut r, 50_000 * d, 1.0),
    )
    .unwrap();
    let out = t.path().join("recs.tsv");
    std::fs::write(&out, "old\n").unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lshrec"))
        .args(["--threads", "1", "recommend-all", "--k", "10"])
        .args([
            "--users".as_ref(),
            users.as_os_str(),
            "--items".as_ref(),
            items.as_os_str(),
        ])
        .args(["--out".as_ref(), out.as_os_str()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let tmp = t.path().join(format!(".recs.tsv.tmp-{}", child.id()));
    let start = std::time::Instant::now();
    while !tmp.exists() {
        assert!(
            start.elapsed().as_secs() < 60,
            "no temporary output after 60 s"
        );
        assert!(child.try_wait().unwrap().is_none(), "exited before writing");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let done = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(130), "{err}");
    assert!(
        err.contains("interrupted: 1 unfinished output file(s) removed"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "old\n");
    let mut names: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["i.npy", "recs.tsv", "u.npy"]);
}

/// A `recommend-all` .tsv as (user, [(item, score)]) in its row order.
fn read_recs(path: &str) -> Vec<(String, Vec<(String, f32)>)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out: Vec<(String, Vec<(String, f32)>)> = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let rec = (f[2].to_string(), f[3].parse::<f32>().unwrap());
        match out.last_mut() {
            Some((u, list)) if u == f[0] => list.push(rec),
            _ => out.push((f[0].to_string(), vec![rec])),
        }
    }
    out
}

#[test]
fn a_user_list_and_excluded_items_restrict_the_batch() {
    let t = tempfile::tempdir().unwrap();
    let m = train(t.path(), "m", "3");
    let p = |s: &str| t.path().join(s).to_str().unwrap().to_string();
    // Every user's top 40 (exact): what the restricted runs must agree with.
    ok(&[
        "recommend-all",
        "--model",
        &m,
        "--k",
        "40",
        "--out",
        &p("all.tsv"),
        "-q",
    ]);
    let all = read_recs(&p("all.tsv"));
    assert_eq!(all.len(), 60);
    // Excluded: the first choice of five users, and an item no one's top 40 holds last.
    let mut excluded: Vec<String> = all[..5].iter().map(|(_, l)| l[0].0.clone()).collect();
    excluded.push(all[9].1[39].0.clone());
    std::fs::write(
        p("ex.txt"),
        format!("# withdrawn\n{}\n\n", excluded.join("\n")),
    )
    .unwrap();
    let picked = [&all[10].0, &all[3].0, &all[0].0];
    std::fs::write(
        p("users.txt"),
        format!(
            "# picked\n{}\n\n  {}  \n{}\n",
            picked[0], picked[1], picked[2]
        ),
    )
    .unwrap();
    let want = |u: &str, k: usize| -> Vec<(String, f32)> {
        let list = &all.iter().find(|(x, _)| x == u).unwrap().1;
        let kept = list.iter().filter(|(i, _)| !excluded.contains(i));
        kept.take(k).cloned().collect()
    };
    let same = |got: &[(String, f32)], want: &[(String, f32)], what: &str| {
        let items = |l: &[(String, f32)]| l.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
        assert_eq!(items(got), items(want), "{what}");
        for (g, w) in got.iter().zip(want) {
            assert!((g.1 - w.1).abs() < 1e-5, "{what}: {g:?} against {w:?}");
        }
    };
    let batch = [
        "recommend-all",
        "--model",
        &m,
        "--k",
        "5",
        "--user-list",
        &p("users.txt"),
        "--exclude-items",
        &p("ex.txt"),
        "-q",
    ];
    // The listed users in the list's order, each with the top 5 of the items not excluded:
    // the unrestricted top 40 without the excluded ones, cut to 5.
    ok(&[&batch[..], &["--out", &p("some.tsv")]].concat());
    let some = read_recs(&p("some.tsv"));
    let users: Vec<&String> = some.iter().map(|(u, _)| u).collect();
    assert_eq!(users, picked);
    for (u, got) in &some {
        same(got, &want(u, 5), &format!("user {u}"));
    }
    let mut distinct = excluded.clone();
    distinct.sort();
    distinct.dedup();
    let summary = ok(&[&batch[..], &["--out", &p("some.tsv"), "--json"]].concat());
    let v: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(
        (&v["users"], &v["excluded_items"]),
        (&3.into(), &distinct.len().into())
    );
    // A shard is a part of the list.
    ok(&[&batch[..], &["--out", &p("half.tsv"), "--shard", "1/2"]].concat());
    let half = read_recs(&p("half.tsv"));
    assert_eq!(half.iter().map(|(u, _)| u).collect::<Vec<_>>(), picked[1..]);
    // `query` skips them as well.
    let q = ok(&[
        "query",
        "--model",
        &m,
        "--user",
        picked[0],
        "--k",
        "5",
        "--exclude-items",
        &p("ex.txt"),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&q).unwrap();
    let got: Vec<(String, f32)> = (v["recommendations"].as_array().unwrap().iter())
        .map(|r| {
            (
                r["item"].as_str().unwrap().into(),
                r["score"].as_f64().unwrap() as f32,
            )
        })
        .collect();
    same(&got, &want(picked[0], 5), "query");
    // Through the index: no excluded item either.
    let idx = p("idx");
    ok(&["index", "build", "--model", &m, "--out", &idx, "-q"]);
    ok(&[&batch[..], &["--out", &p("lsh.tsv"), "--index", &idx]].concat());
    for (u, got) in read_recs(&p("lsh.tsv")) {
        assert_eq!(got.len(), 5, "user {u}");
        assert!(
            got.iter().all(|(i, _)| !excluded.contains(i)),
            "user {u}: {got:?}"
        );
    }

    // Bad lists: the file, the line and what was expected.
    let out = p("x.tsv");
    let run = |list: &str, ex: &str| {
        vec![
            "recommend-all".to_string(),
            "--model".into(),
            m.clone(),
            "--user-list".into(),
            p(list),
            "--exclude-items".into(),
            p(ex),
            "--out".into(),
            out.clone(),
        ]
    };
    let bad_with = |args: Vec<String>, needle: &str| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        bad(&args, needle);
    };
    std::fs::write(p("unknown.txt"), format!("{}\nnobody\n", picked[0])).unwrap();
    bad_with(
        run("unknown.txt", "ex.txt"),
        "unknown.txt:2: field `user id`: expected a user id of the model (60 users), found \"nobody\"",
    );
    std::fs::write(
        p("twice.txt"),
        format!("{0}\n{1}\n{0}\n", picked[0], picked[1]),
    )
    .unwrap();
    bad_with(
        run("twice.txt", "ex.txt"),
        "twice.txt:3: field `user id`: expected each user once (this one is on line 1 too)",
    );
    std::fs::write(p("none.txt"), "# nobody yet\n\n").unwrap();
    bad_with(run("none.txt", "ex.txt"), "none.txt: no user ids");
    std::fs::write(p("badex.txt"), "# withdrawn\nno-such-item\n").unwrap();
    bad_with(
        run("users.txt", "badex.txt"),
        "badex.txt:2: field `item id`: expected an item id of the model (120 items)",
    );
    std::fs::write(p("table.txt"), format!("{}\tTitle\n", excluded[0])).unwrap();
    bad_with(
        run("users.txt", "table.txt"),
        "table.txt:1: field `item id`: expected an id without a tab",
    );
    assert!(!Path::new(&out).exists());
}

#[test]
fn similar_items_are_the_nearest_by_cosine() {
    // Embeddings from elsewhere with an item bias: the bias column folded into the item
    // vectors must not count in the cosine.
    let t = tempfile::tempdir().unwrap();
    let p = |s: &str| t.path().join(s).to_str().unwrap().to_string();
    let (ni, d) = (300, 6);
    let mut r = lshrec::rng::Rng::new(5);
    let items = common::normals(&mut r, ni * d, 1.0);
    let users = common::normals(&mut r, 4 * d, 1.0);
    let bias: Vec<f32> = (0..ni).map(|i| 100.0 * (i % 7) as f32).collect();
    let npy = lshrec::store::npy::write_f32;
    npy(Path::new(&p("items.npy")), &[ni, d], &items).unwrap();
    npy(Path::new(&p("users.npy")), &[4, d], &users).unwrap();
    npy(Path::new(&p("bias.npy")), &[ni], &bias).unwrap();
    let cos = |a: usize, b: usize| {
        let (x, y) = (&items[a * d..][..d], &items[b * d..][..d]);
        let dot = |u: &[f32], v: &[f32]| u.iter().zip(v).map(|(a, b)| a * b).sum::<f32>();
        dot(x, y) / (dot(x, x).sqrt() * dot(y, y).sqrt())
    };
    let excluded = [3, 17, 250];
    std::fs::write(p("ex.txt"), "3\n# and\n17\n250\n").unwrap();
    for item in [0, 17, 299] {
        let mut want: Vec<(usize, f32)> = (0..ni)
            .filter(|&i| i != item && !excluded.contains(&i))
            .map(|i| (i, cos(item, i)))
            .collect();
        want.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let out = ok(&[
            "similar",
            "--users",
            &p("users.npy"),
            "--items",
            &p("items.npy"),
            "--item-bias",
            &p("bias.npy"),
            "--item",
            &item.to_string(),
            "--k",
            "12",
            "--exclude-items",
            &p("ex.txt"),
            "--json",
        ]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["item"], item.to_string());
        let got: Vec<(usize, f32)> = (v["similar"].as_array().unwrap().iter())
            .map(|s| {
                let i = s["item"].as_str().unwrap().parse().unwrap();
                (i, s["score"].as_f64().unwrap() as f32)
            })
            .collect();
        assert_eq!(got.len(), 12, "item {item}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.0, w.0, "item {item}: {got:?}");
            assert!((g.1 - w.1).abs() < 1e-5, "item {item}: {g:?} against {w:?}");
        }
    }
    let base = [
        "similar",
        "--users",
        &p("users.npy"),
        "--items",
        &p("items.npy"),
    ];

    // --all: every item's neighbours, as the brute force ranks them (the GEMM rounds apart
    // from the one-item pass, so near-ties may swap: each rank's score must match, and each
    // listed item's true cosine must be its score). The excluded items get lists of their own
    // but appear in none.
    let (bias_npy, ex_txt) = (p("bias.npy"), p("ex.txt"));
    let all = |extra: &[&str]| {
        let args = ["--item-bias", &bias_npy, "--all", "--k", "12"];
        ok(&[&base[..], &args, &["--exclude-items", &ex_txt], extra].concat())
    };
    all(&["--out", &p("sims.tsv")]);
    let tsv = std::fs::read_to_string(p("sims.tsv")).unwrap();
    let mut lines = tsv.lines();
    assert_eq!(lines.next(), Some("item\trank\tsimilar\tscore"));
    let mut lists: Vec<Vec<(usize, f32)>> = vec![Vec::new(); ni];
    for line in lines {
        let f: Vec<&str> = line.split('\t').collect();
        let (item, rank): (usize, usize) = (f[0].parse().unwrap(), f[1].parse().unwrap());
        assert_eq!(rank, lists[item].len() + 1, "{line}");
        lists[item].push((f[2].parse().unwrap(), f[3].parse().unwrap()));
    }
    for (item, got) in lists.iter().enumerate() {
        let mut want: Vec<f32> = (0..ni)
            .filter(|&i| i != item && !excluded.contains(&i))
            .map(|i| cos(item, i))
            .collect();
        want.sort_by(|a, b| b.total_cmp(a));
        assert_eq!(got.len(), 12, "item {item}");
        for (&(i, s), w) in got.iter().zip(&want) {
            assert!(i != item && !excluded.contains(&i), "item {item}: {got:?}");
            assert!(
                (s - w).abs() < 1e-5,
                "item {item}: {got:?} against {want:?}"
            );
            assert!((s - cos(item, i)).abs() < 1e-5, "item {item}: {i} at {s}");
        }
    }
    // A shard in .npy: its rows are items 100..200, each list as in the .tsv.
    let summary = all(&["--out", &p("sims.npy"), "--shard", "1/3", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(
        (v["items"].as_u64(), v["first_item_row"].as_u64()),
        (Some(100), Some(100))
    );
    let rows = std::fs::read_to_string(p("sims.rows.txt")).unwrap();
    let want_rows: Vec<String> = (100..200).map(|i| i.to_string()).collect();
    assert_eq!(rows.lines().collect::<Vec<_>>(), want_rows);
    let body = |name: &str| {
        let b = std::fs::read(p(name)).unwrap();
        let header = u16::from_le_bytes([b[8], b[9]]) as usize;
        b[10 + header..].to_vec()
    };
    let (ids, scores) = (body("sims.npy"), body("sims.scores.npy"));
    let npy: Vec<(usize, f32)> = (ids.chunks_exact(8).zip(scores.chunks_exact(4)))
        .map(|(i, s)| {
            let id = i64::from_le_bytes(i.try_into().unwrap()) as usize;
            (id, f32::from_le_bytes(s.try_into().unwrap()))
        })
        .collect();
    assert_eq!(npy, lists[100..200].concat());
    bad(
        &[&base[..], &["--all", "--out", &p("x.csv")]].concat(),
        "expected a .tsv, .jsonl or .npy file",
    );
    bad(
        &[&base[..], &["--all", "--out", &p("x.tsv"), "--k", "301"]].concat(),
        "invalid k = 301",
    );
    assert!(!Path::new(&p("x.tsv")).exists());
    bad(
        &[&base[..], &["--item", "300"]].concat(),
        "unknown item id \"300\"",
    );
    bad(
        &[&base[..], &["--item", "1", "--k", "0"]].concat(),
        "invalid k = 0",
    );
}
