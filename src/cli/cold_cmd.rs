//! `lshrec embed-item`: the cold-start vector of a new item from its features.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::serve_cmd::ModelArgs;
use crate::error::{Error, Result};
use crate::train::coldstart::ContentNeighbours;

/// `lshrec embed-item`
#[derive(Debug, Args)]
#[command(
    after_help = "The vector is the sum of the model's feature vectors (item_features.npy: a map from genres, release decade and --item-features attributes to vectors, fitted to the training interactions), so it scores against users like any trained item. With --genres or --feature, that vector is then averaged half and half with the mean trained vector of the catalogue items most like the new one (the same genres or attribute values, near years: --content-neighbours), a second estimate that lifted item cold start (protocol P3) by 2-3%.\n\nExamples:\n  lshrec embed-item --model model/ --genres Comedy,Romance --year 1996\n  lshrec embed-item --model model/ --feature brand=acme --feature category=shoes\n  lshrec embed-item --model model/ --feature price=23.50   (a numeric column: split between its knots)\n  lshrec embed-item --model model/ --genres Sci-Fi --year 1997 --out new.npy\n  lshrec index append --index model/index --model model/ --vectors new.npy --ids new-ids.txt"
)]
pub struct EmbedItemArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Genres, comma-separated, as named in the training data.
    #[arg(long, value_delimiter = ',')]
    pub genres: Vec<String>,
    /// Release year (its decade counts, and the year itself when training saw it; a decade the
    /// model never saw takes the nearest one it has, with a note).
    #[arg(long)]
    pub year: Option<u16>,
    /// An attribute from the training --item-features file, as COLUMN=VALUE (repeat, or
    /// separate with commas).
    #[arg(long, value_delimiter = ',', value_name = "COLUMN=VALUE")]
    pub feature: Vec<String>,
    /// Write the vector as a 1 × dim float32 .npy (for `index append --vectors`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Blend the feature map's vector half and half with the mean trained vector of this many
    /// catalogue items most like the new one by genres, attribute values (--feature) and year
    /// (ties with the last included; 0: the feature map alone).
    #[arg(long, default_value_t = ContentNeighbours::default().k, value_name = "N")]
    pub content_neighbours: usize,
    /// Show this many catalogue items nearest to the new one (by cosine).
    #[arg(long, default_value_t = 5)]
    pub similar: usize,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Similar {
    item: String,
    title: Option<String>,
    cosine: f32,
}

/// Runs `lshrec embed-item`.
pub fn run_embed_item(a: EmbedItemArgs) -> Result<()> {
    let model = a.model.open()?;
    let genres: Vec<&str> = a
        .genres
        .iter()
        .map(|g| g.trim())
        .filter(|g| !g.is_empty())
        .collect();
    let tags = crate::data::features::parse_tags(&a.feature, "--feature")?;
    let (map, stand_in) = model.item_vector(&genres, a.year, &tags)?;
    if let (Some(y), Some(near)) = (a.year, stand_in) {
        eprintln!(
            "note: the model knows no movie from the {}s; the {}s' vector stands in for its decade",
            y / 10 * 10,
            near.trim_start_matches("decade:")
        );
    }
    let cfg = ContentNeighbours {
        k: a.content_neighbours,
        ..Default::default()
    };
    let names = crate::data::features::content_names(&genres, &tags, model.item_knots());
    let near = model.content_neighbours(&names, a.year, &cfg);
    let neighbours = near.as_ref().map_or(0, |n| n.1);
    let v = cfg.blend(map, near.as_ref().map(|n| n.0.as_slice()));
    if let Some(p) = &a.out {
        crate::store::npy::write_f32(p, &[1, v.len()], &v)?;
    }
    let d = model.dim();
    let norm = crate::simd::dot(&v, &v).sqrt();
    let items = model.items.as_slice();
    let mut sims: Vec<(f32, usize)> = (0..model.n_items())
        .map(|i| {
            let y = &items[i * d..(i + 1) * d];
            let n = crate::simd::dot(y, y).sqrt() * norm;
            (
                if n > 0.0 {
                    crate::simd::dot(y, &v) / n
                } else {
                    0.0
                },
                i,
            )
        })
        .collect();
    sims.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let similar: Vec<Similar> = sims
        .iter()
        .take(a.similar)
        .map(|&(c, i)| Similar {
            item: model.meta.item_ids[i].clone(),
            title: model.meta.catalogue.get(i).and_then(|e| e.title.clone()),
            cosine: c,
        })
        .collect();
    let summary = serde_json::json!({ "dim": d, "norm": norm, "vector": v, "similar": similar,
        "content_neighbours": neighbours,
        "out": a.out.as_ref().map(|p| p.display().to_string()) });
    super::report(a.json, &summary, || {
        let mut s = format!("vector of dimension {d}, norm {norm:.4}");
        if neighbours > 0 {
            s.push_str(&format!(
                ", half from the {neighbours} trained items most like it by genres, attributes and year"
            ));
        }
        if let Some(p) = &a.out {
            s.push_str(&format!(", written to {}", p.display()));
        }
        s.push('\n');
        if !similar.is_empty() {
            s.push_str("nearest catalogue items:\n");
            for x in &similar {
                s.push_str(&format!(
                    "  {:>6.3}  {}\n",
                    x.cosine,
                    x.title
                        .clone()
                        .unwrap_or_else(|| format!("item {}", x.item))
                ));
            }
        }
        s
    })
}

/// What `eval --cold-users` works on: the model, the test data with its side files, and the
/// evaluation's matrices in the model's ids (test-only users and items appended).
pub(crate) struct ColdUserCases<'a> {
    pub model: &'a crate::store::Model,
    pub ds: &'a crate::data::Dataset,
    pub path: &'a std::path::Path,
    /// Users unknown to the model: (external id, row in `train`/`test`).
    pub new_users: &'a [(String, u32)],
    /// Items unknown to the model: (external id, column in `train`/`test`).
    pub new_items: &'a [(String, u32)],
    /// Item vectors, zero rows for test-only items.
    pub items: &'a [f32],
    pub train: &'a crate::data::Csr,
    pub test: &'a crate::data::Csr,
}

/// `lshrec eval --cold-users FILE`: fold-in of held-out users at each `--reveal` count.
pub(crate) fn eval_cold_users(a: &super::eval_cmd::EvalArgs, c: ColdUserCases<'_>) -> Result<()> {
    use crate::eval::cold_users::{evaluate, ColdUser, RevealOrder};
    let (model, path) = (c.model, c.path);
    // When each test positive was given, by (user, item) of the test data, for --reveal-order
    // time; a pair given twice keeps its first time.
    let mut given: std::collections::HashMap<(u32, u32), i64> = Default::default();
    if a.reveal_order == RevealOrder::Time {
        if !c.ds.has_timestamps {
            return Err(Error::invalid(
                "--reveal-order time",
                "the test data has no timestamp column, so there is no order in time; use --reveal-order random",
            ));
        }
        for x in &c.ds.interactions {
            let t = given.entry((x.user, x.item)).or_insert(x.timestamp);
            *t = (*t).min(x.timestamp);
        }
    }
    let new_items: std::collections::HashMap<u32, &str> =
        (c.new_items.iter()).map(|x| (x.1, x.0.as_str())).collect();
    let item_ext = |col: u32| -> Option<&str> {
        match model.meta.item_ids.get(col as usize) {
            Some(s) => Some(s.as_str()),
            None => new_items.get(&col).copied(),
        }
    };
    let mut seen = std::collections::HashSet::new();
    let (mut users, mut unknown_values, mut without_prior) = (Vec::new(), 0usize, 0usize);
    let user_knots = model.user_knots();
    for (line, id) in crate::data::text::read_id_list(path, "user")? {
        let id = id.as_str();
        let parse = |expected: &str| Error::Parse {
            path: path.to_path_buf(),
            line,
            field: "user".into(),
            found: id.into(),
            expected: expected.into(),
        };
        // A model trained with `--train/--test` has a row for every user of the pair (and of
        // the users file), so a cold user may be known to it, but never with training data.
        let row = match model.user(id) {
            Ok(u) => u,
            Err(_) => (c.new_users.iter())
                .find(|(s, _)| s == id)
                .map(|x| x.1)
                .ok_or_else(|| parse("a user with positives in the test file"))?,
        };
        if (row as usize) < c.train.rows && c.train.degree(row as usize) > 0 {
            return Err(parse(
                "a held-out user, without interactions in the --train file (this one has some, so it is not cold)",
            ));
        }
        if c.test.degree(row as usize) == 0 {
            return Err(parse("a user with positives in the test file"));
        }
        if !seen.insert(row) {
            return Err(parse("each user once"));
        }
        let (prior, features) = match a.no_demographics {
            true => (None, Vec::new()),
            false => {
                let pairs = match c.ds.users.get(id) {
                    Some(u) => crate::data::features::user_row(c.ds, u, user_knots),
                    None => Vec::new(),
                };
                let (features, unknown) = model.known_user_features(&pairs)?;
                unknown_values += unknown;
                (model.user_feature_vector(&features), features)
            }
        };
        without_prior += prior.is_none() as usize;
        let positives = c.test.row(row as usize).to_vec();
        let times = match (a.reveal_order, c.ds.users.get(id)) {
            (RevealOrder::Time, Some(u)) => (positives.iter())
                .map(|&col| {
                    let i = item_ext(col).and_then(|e| c.ds.items.get(e));
                    i.and_then(|i| given.get(&(u, i)).copied()).unwrap_or(0)
                })
                .collect(),
            _ => Vec::new(),
        };
        users.push(ColdUser {
            positives,
            times,
            prior,
            features,
        });
    }
    if users.is_empty() {
        return Err(Error::EmptyFile {
            path: path.to_path_buf(),
            expected: "one cold user id per line".into(),
        });
    }
    let d = model.dim();
    // Training positives per item.
    let by_item = c.train.transpose_where(|v| v > 0.0);
    let popularity: Vec<f32> = (0..by_item.rows)
        .map(|i| by_item.degree(i) as f32)
        .collect();
    let demographics = match (a.no_demographics, model.user_features.is_some()) {
        (true, _) => "without demographics (--no-demographics)".to_string(),
        (false, false) => "without demographics (the model has no user map: it was trained without a users file)".to_string(),
        (false, true) => format!(
            "with demographics as the prior at weight {} ({without_prior} of {} users without any value the model knows, {unknown_values} unknown values left out)",
            a.prior_weight,
            users.len()
        ),
    };
    let mut reveal = a.reveal.clone();
    reveal.sort_unstable();
    reveal.dedup();
    // A count that leaves every user out would print a row of zeros for nobody.
    let most = users.iter().map(|u| u.positives.len()).max().unwrap_or(0);
    if let Some(&n) = reveal.iter().find(|&&n| n >= most) {
        return Err(Error::invalid(
            "--reveal",
            format!("{n}: every one of the {} users has {most} positives or fewer, so none would have any left to rank for; reveal at most {}", users.len(), most.saturating_sub(1)),
        ));
    }
    if reveal.contains(&0) && without_prior == users.len() {
        reveal.retain(|&n| n > 0);
        if reveal.is_empty() {
            return Err(Error::invalid(
                "--reveal",
                format!("0 revealed positives leave only demographics, and here there are none ({demographics}); reveal at least 1"),
            ));
        }
        eprintln!("note: N = 0 skipped: with nothing revealed only demographics are left, and here there are none ({demographics})");
    }
    let fold = crate::train::coldstart::FoldIn {
        prior_weight: super::serve_cmd::check_prior_weight(a.prior_weight)?,
        ..model.fold_in_config()
    };
    let solver = crate::train::coldstart::FoldInSolver::new(c.items, d, fold);
    let reports = evaluate(
        &solver,
        model.first_ratings_map(),
        &popularity,
        &users,
        &reveal,
        &a.k,
        a.reveal_order,
        a.seed,
    )?;
    #[derive(Serialize)]
    struct J<'a> {
        model: &'a std::path::Path,
        cold_users: usize,
        demographics: &'a str,
        reveal_order: RevealOrder,
        seed: u64,
        reveals: &'a [crate::eval::cold_users::RevealReport],
    }
    let summary = J {
        model: &a.model,
        cold_users: users.len(),
        demographics: &demographics,
        reveal_order: a.reveal_order,
        seed: a.seed,
        reveals: &reports,
    };
    super::report(a.json, &summary, || {
        let order = match a.reveal_order {
            RevealOrder::Random => format!("revealed in a random order, seed {}", a.seed),
            RevealOrder::Time => format!("their first N by time, ties by seed {}", a.seed),
        };
        let has_map = reports.iter().any(|r| r.first_ratings.is_some());
        let mut s = format!(
            "user cold start: {} users of {}, folded in from N of their positives ({order}) {demographics}; ranking over all items, the revealed excluded, against the rest{}\n   N  users   K      P      R   NDCG    MRR     HR | most popular: NDCG     HR{}\n",
            users.len(),
            path.display(),
            match has_map {
                true => "; beside them the vectors of the model's first-ratings map (query --first-ratings)",
                false => "",
            },
            match has_map {
                true => " | first ratings: NDCG     HR",
                false => "",
            },
        );
        for r in &reports {
            for (j, (m, p)) in r.model.at.iter().zip(&r.most_popular.at).enumerate() {
                s.push_str(&format!(
                    "{:>4} {:>6} {:>3} {:.4} {:.4} {:.4} {:.4} {:.4} |               {:.4} {:.4}",
                    r.revealed,
                    r.model.users,
                    m.k,
                    m.precision,
                    m.recall,
                    m.ndcg,
                    m.mrr,
                    m.hit_rate,
                    p.ndcg,
                    p.hit_rate
                ));
                if let Some(f) = r.first_ratings.as_ref().and_then(|f| f.at.get(j)) {
                    s.push_str(&format!(
                        " |                {:.4} {:.4}",
                        f.ndcg, f.hit_rate
                    ));
                }
                s.push('\n');
            }
            if r.users_left_out > 0 {
                let why = match r.revealed {
                    0 => "without demographics the model knows".to_string(),
                    n => format!("with {n} positives or fewer"),
                };
                s.push_str(&format!(
                    "     ({} users {why} left out at N = {})\n",
                    r.users_left_out, r.revealed
                ));
            }
        }
        s
    })
}
