//! `lshrec eval`: the metrics of a saved model on a test file, warm or cold (`--cold-items`,
//! `--cold-users`).

use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;

use super::train_cmd::{check_ks, check_test_against_train, overlap};
use crate::data::{self, Csr, Dataset};
use crate::error::{Error, Result};
use crate::eval::{self, RankingReport};
use crate::progress;
use crate::store;
use crate::train::{self, coldstart};

/// `lshrec eval`
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  lshrec eval --model model/ --train split/train.tsv --test split/test.tsv --min-rating 4 --k 10,20\n  lshrec eval --model p3/m --train p3/train.tsv --test p3/test.tsv --cold-items p3/cold_items.txt\n  lshrec eval --model cu/m --train cu/train.tsv --test cu/test.tsv --cold-users cu/cold_users.txt --reveal 0,1,3"
)]
pub struct EvalArgs {
    /// Model directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Training interactions (their positives are excluded from the ranking).
    #[arg(long)]
    pub train: PathBuf,
    /// Test interactions.
    #[arg(long)]
    pub test: PathBuf,
    #[command(flatten)]
    pub read: super::ReadArgs,
    /// Keep ratings ≥ R as positives (default: the threshold the model was trained with).
    #[arg(long, value_name = "R")]
    pub min_rating: Option<f32>,
    /// Cut-offs.
    #[arg(long, value_delimiter = ',', default_value = "10,20")]
    pub k: Vec<usize>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// Write per-user metrics (TSV) here.
    #[arg(long, conflicts_with = "cold_users")]
    pub per_user: Option<PathBuf>,
    /// Item cold start (protocol P3): the held-out items, one id per line (as written by
    /// `data split --method cold-items:0.1`). Their vectors come from their features (genres, year,
    /// --item-features attributes)
    /// through the model's feature map, blended as `embed-item` blends them with their content
    /// neighbours (--content-neighbours), and each user ranks only these items.
    #[arg(long, value_name = "FILE")]
    pub cold_items: Option<PathBuf>,
    /// With --cold-items: how many trained catalogue items of the same genres or attribute
    /// values and near years each cold item's map vector is averaged with, half and half (0: the
    /// feature map alone).
    #[arg(long, default_value_t = coldstart::ContentNeighbours::default().k, value_name = "N", requires = "cold_items")]
    pub content_neighbours: usize,
    /// User cold start: the held-out users, one id per line (as written by `data split --method
    /// cold-users:0.1`), without interactions in --train. Each one's test positives are shuffled
    /// (--seed) or put in time order (--reveal-order time); with N of them revealed, the user is
    /// folded in from those N and their demographics (the model's user map, from the users file
    /// beside --train) and ranks every item, the revealed excluded, against the rest. Reported
    /// for each N of --reveal, beside the most popular items.
    #[arg(long, value_name = "FILE", conflicts_with = "cold_items")]
    pub cold_users: Option<PathBuf>,
    /// With --cold-users: the numbers of positives to reveal (0: demographics alone).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0,1,3,5,10",
        value_name = "N,...",
        requires = "cold_users"
    )]
    pub reveal: Vec<usize>,
    /// With --cold-users: fold in from the revealed positives alone, without demographics.
    #[arg(long, requires = "cold_users")]
    pub no_demographics: bool,
    /// With --cold-users: the share of the demographic prior the fold-in pulls toward.
    #[arg(long, default_value_t = coldstart::PRIOR_WEIGHT, requires = "cold_users")]
    pub prior_weight: f32,
    /// With --cold-users: which positives are revealed first: `random` (a seeded shuffle) or
    /// `time` (the user's first ratings, as a new user gives them; ties shuffled).
    #[arg(long, value_enum, default_value_t = crate::eval::cold_users::RevealOrder::Random, requires = "cold_users")]
    pub reveal_order: crate::eval::cold_users::RevealOrder,
    /// With --cold-users: the seed of each user's reveal order (of the ties, by time).
    #[arg(long, default_value_t = 42, requires = "cold_users")]
    pub seed: u64,
}

/// A CSR in model ids, plus the (external id, appended dense id) of unknown users and items.
type MappedCsr = (Csr, Vec<(String, u32)>, Vec<(String, u32)>);

/// Maps a dataset's interactions into the model's dense ids. Unknown users or items are
/// appended as extra rows/columns (so test-only users and items still count in the metrics).
/// The item cold-start view of an evaluation: only the listed items, with feature vectors.
struct ColdSubset {
    items: Vec<f32>,
    train: Csr,
    test: Csr,
    note: String,
}

/// Reads the cold-item list at `path`, embeds each item from its features (looked up in
/// `ds`, the evaluation data with its side files) through the model's feature map, and restricts
/// `train`/`test` to those items (columns renumbered in list order). Feature values the model
/// never saw (say, a decade only cold movies have) are left out and counted in the note.
fn cold_subset(
    model: &store::Model,
    ds: &Dataset,
    path: &Path,
    column: &dyn Fn(&str) -> Option<u32>,
    train: &Csr,
    test: &Csr,
    neighbours: &coldstart::ContentNeighbours,
) -> Result<ColdSubset> {
    let mut cols: Vec<u32> = Vec::new();
    let mut items = Vec::new();
    let (mut unknown_features, mut no_features, mut blended) = (0usize, 0usize, 0usize);
    let (mut maps, mut keys) = (Vec::new(), Vec::new());
    // Numeric attribute values are split on the model's knots, as in its training.
    let knots = model.item_knots();
    for (line, id) in crate::data::text::read_id_list(path, "item")? {
        let id = id.as_str();
        let col = column(id).ok_or_else(|| Error::Parse {
            path: path.to_path_buf(),
            line,
            field: "item".into(),
            found: id.into(),
            expected: "an item id of the model or the test file".into(),
        })?;
        let found = ds.items.get(id);
        let pairs = match found {
            Some(i) => crate::data::features::item_row(ds, i, knots),
            None => Vec::new(),
        };
        let known: Vec<(String, f32)> = pairs
            .iter()
            .filter(|(n, _)| model.meta.item_features.contains(n))
            .cloned()
            .collect();
        unknown_features += pairs.len() - known.len();
        no_features += known.is_empty() as usize;
        maps.push(model.item_feature_vector(&known, "--cold-items")?);
        keys.push(found.map(|i| crate::data::features::item_content(ds, i, knots)));
        cols.push(col);
    }
    // Items with the same content and year have the same neighbours: each pair is searched for
    // once, the pairs in parallel (a large catalogue has many cold items, fewer such pairs).
    let mut distinct: Vec<&(Vec<String>, Option<u16>)> = keys.iter().flatten().collect();
    distinct.sort_unstable();
    distinct.dedup();
    use rayon::prelude::*;
    let near: std::collections::HashMap<_, _> = (distinct.par_iter())
        .filter_map(|&k| Some((k, model.content_neighbours(&k.0, k.1, neighbours)?.0)))
        .collect();
    for (map, key) in maps.into_iter().zip(&keys) {
        let mean = key.as_ref().and_then(|k| near.get(k));
        blended += mean.is_some() as usize;
        items.extend(neighbours.blend(map, mean.map(Vec::as_slice)));
    }
    if cols.is_empty() {
        return Err(Error::EmptyFile {
            path: path.to_path_buf(),
            expected: "one cold item id per line".into(),
        });
    }
    let mut pos = std::collections::HashMap::new();
    for (k, &c) in cols.iter().enumerate() {
        if pos.insert(c, k as u32).is_some() {
            return Err(Error::invalid(
                "--cold-items",
                format!("{} lists item column {c} twice", path.display()),
            ));
        }
    }
    let restrict = |m: &Csr| -> (Csr, usize) {
        let mut t = Vec::new();
        let mut dropped = 0;
        for r in 0..m.rows {
            for (c, v) in m.row(r).iter().zip(m.row_values(r)) {
                match pos.get(c) {
                    Some(&k) => t.push((r as u32, k, *v)),
                    None => dropped += 1,
                }
            }
        }
        (Csr::from_triples(m.rows, cols.len(), &t), dropped)
    };
    let (train, _) = restrict(train);
    let (test, dropped) = restrict(test);
    let note = format!(
        "cold start: ranked only the {} items of {} (vectors from their features, {} of them blended with content neighbours; {} feature values unknown to the model, {} items without any known feature; {} test interactions on other items ignored)",
        cols.len(),
        path.display(),
        blended,
        unknown_features,
        no_features,
        dropped
    );
    Ok(ColdSubset {
        items,
        train,
        test,
        note,
    })
}

fn to_model_csr(ds: &Dataset, model: &store::Model, n_users: usize, n_items: usize) -> MappedCsr {
    let mut triples = Vec::with_capacity(ds.interactions.len());
    let mut new_users: Vec<(String, u32)> = Vec::new();
    let mut new_items: Vec<(String, u32)> = Vec::new();
    let item_index: std::collections::HashMap<&str, u32> = model
        .meta
        .item_ids
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i as u32))
        .collect();
    let mut extra_u = std::collections::HashMap::new();
    let mut extra_i = std::collections::HashMap::new();
    for x in &ds.interactions {
        let ue = ds.users.ext(x.user);
        let u = match model.user(ue) {
            Ok(u) => u,
            Err(_) => *extra_u.entry(ue.to_string()).or_insert_with(|| {
                let id = (n_users + new_users.len()) as u32;
                new_users.push((ue.to_string(), id));
                id
            }),
        };
        let ie = ds.items.ext(x.item);
        let i = match item_index.get(ie) {
            Some(&i) => i,
            None => *extra_i.entry(ie.to_string()).or_insert_with(|| {
                let id = (n_items + new_items.len()) as u32;
                new_items.push((ie.to_string(), id));
                id
            }),
        };
        triples.push((u, i, x.rating));
    }
    let rows = n_users + extra_u.len();
    let cols = n_items + extra_i.len();
    (
        Csr::from_triples(rows, cols, &triples),
        new_users,
        new_items,
    )
}

/// RMSE/MAE of a rating model on `te`: r̂ = μ + b_u + users[u]·items[i], clipped to the
/// training range; a user or item the model does not know falls back to the baseline terms it
/// has (μ + b_i, μ + b_u, or μ), never dropped.
fn eval_ratings(
    a: &EvalArgs,
    model: &store::Model,
    mu: f32,
    tr: &Dataset,
    te: &Dataset,
) -> Result<()> {
    let d = model.dim();
    let item_index: std::collections::HashMap<&str, usize> = model
        .meta
        .item_ids
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    let (lo, hi) = train::rating_range(tr);
    let mut pred = Vec::with_capacity(te.interactions.len());
    let mut truth = Vec::with_capacity(te.interactions.len());
    let mut unknown = 0usize;
    for x in &te.interactions {
        let u = model.user(te.users.ext(x.user)).ok().map(|u| u as usize);
        let i = item_index.get(te.items.ext(x.item)).copied();
        let bu = u
            .and_then(|u| model.user_bias.as_ref().map(|b| b.row(u)[0]))
            .unwrap_or(0.0);
        let p = match (u, i) {
            (Some(u), Some(i)) => {
                mu + bu + crate::simd::dot(model.users.row(u), model.items.row(i))
            }
            // The last item column is the folded bias b_i.
            (None, Some(i)) if model.meta.folded_item_bias => mu + model.items.row(i)[d - 1],
            _ => {
                unknown += 1;
                mu + bu
            }
        };
        pred.push(p);
        truth.push(x.rating);
    }
    let (rmse, mae) = eval::rmse_mae(&pred, &truth, lo, hi);
    let report = eval::RatingReport {
        rmse,
        mae,
        n: truth.len(),
    };
    super::report(a.json, &report, || {
        format!(
            "rating prediction on {} test ratings (clipped to [{lo}, {hi}]): RMSE {rmse:.4}, MAE {mae:.4}; {unknown} with a user or item unknown to the model (baseline fallback)\n",
            report.n
        )
    })
}

/// Runs `lshrec eval`.
pub fn run_eval(a: EvalArgs) -> Result<()> {
    check_ks(&a.k)?;
    let model = store::Model::open(&a.model)?;
    let opts = a.read.load_options()?;
    let (tr, te) = data::load_pair(&a.train, &a.test, &opts)?;
    super::note_dataset(&tr);
    super::note_dataset(&te);
    if let Some(mu) = model.meta.global_mean {
        if a.cold_items.is_some() || a.cold_users.is_some() {
            return Err(Error::invalid(
                "--cold-items / --cold-users",
                "the cold-start protocols rank items, and this is a rating-prediction model (mf); train iALS, BPR or LightGCN for them",
            ));
        }
        if a.min_rating.is_some() {
            return Err(Error::invalid(
                "--min-rating",
                "this rating-prediction model (mf) is scored on every test rating; --min-rating makes positives for the ranking models",
            ));
        }
        if !te.has_ratings {
            return Err(Error::invalid(
                "--test",
                format!(
                    "{} has no rating column, and this rating-prediction model (mf) is scored by RMSE against test ratings",
                    a.test.display()
                ),
            ));
        }
        return eval_ratings(&a, &model, mu, &tr, &te);
    }
    // Without --min-rating, the threshold the model was trained with: evaluating a model
    // trained on ratings ≥ 4 with every rating a positive would exclude the low ratings from
    // the ranking and inflate every metric.
    let trained_at = model.train_config().and_then(|c| c.min_rating);
    let min_rating = match (super::check_min_rating(a.min_rating)?, trained_at) {
        (Some(r), _) => Some(r),
        (None, Some(r)) => {
            if !progress::is_quiet() && tr.has_ratings {
                eprintln!("note: --min-rating {r}, as the model was trained (give --min-rating to change it)");
            }
            Some(r)
        }
        (None, None) => None,
    };
    super::check_min_rating_reached(&tr, min_rating, &a.train)?;
    super::check_min_rating_reached(&te, min_rating, &a.test)?;
    let r = min_rating.unwrap_or(f32::NEG_INFINITY);
    let (tr, te) = (tr.implicit(r), te.implicit(r));
    let (nu, ni, d) = (model.n_users(), model.n_items(), model.dim());
    let (train_csr, _, _) = to_model_csr(&tr, &model, nu, ni);
    let (test_csr, new_users, new_items) = to_model_csr(&te, &model, nu, ni);
    // Users or items unknown to the model get zero vectors: they are evaluated, never dropped.
    let rows = test_csr.rows.max(train_csr.rows);
    let mut users = model.users.as_slice().to_vec();
    users.resize(rows * d, 0.0);
    let mut items = model.items.as_slice().to_vec();
    items.resize(test_csr.cols.max(ni) * d, 0.0);
    let pad = |m: &Csr, rows: usize, cols: usize| {
        let mut t = Vec::with_capacity(m.nnz());
        for r in 0..m.rows {
            for (c, v) in m.row(r).iter().zip(m.row_values(r)) {
                t.push((r as u32, *c, *v));
            }
        }
        Csr::from_triples(rows, cols, &t)
    };
    let cols = items.len() / d;
    let train_csr = pad(&train_csr, rows, cols);
    let test_csr = pad(&test_csr, rows, cols);
    let leaked = model
        .seen
        .as_ref()
        .map_or(0, |seen| overlap(seen, &test_csr));
    // A warning, not a note: --quiet does not hide it.
    if leaked > 0 {
        eprintln!(
            "warning: {leaked} of the {} test interactions were training interactions of this model ({}), so it has fit them and every metric is optimistic; evaluate on a test file held out from the data the model was trained on",
            test_csr.nnz(),
            a.model.join(store::model::SEEN_FILE).display()
        );
    }
    if let Some(path) = &a.cold_users {
        let cases = super::cold_cmd::ColdUserCases {
            model: &model,
            ds: &te,
            path,
            new_users: &new_users,
            new_items: &new_items,
            items: &items,
            train: &train_csr,
            test: &test_csr,
        };
        return super::cold_cmd::eval_cold_users(&a, cases);
    }
    let (items, train_csr, test_csr, cold_note) = match &a.cold_items {
        None => (items, train_csr, test_csr, None),
        Some(path) => {
            let item_index = model.item_index();
            let column = |id: &str| -> Option<u32> {
                item_index
                    .get(id)
                    .copied()
                    .or_else(|| new_items.iter().find(|(s, _)| s == id).map(|x| x.1))
            };
            let neighbours = coldstart::ContentNeighbours {
                k: a.content_neighbours,
                ..Default::default()
            };
            let c = cold_subset(
                &model,
                &tr,
                path,
                &column,
                &train_csr,
                &test_csr,
                &neighbours,
            )?;
            (c.items, c.train, c.test, Some(c.note))
        }
    };
    check_test_against_train(&train_csr, &test_csr, a.cold_items.is_none())?;
    let report = eval::ranking(&users, &items, d, &train_csr, &test_csr, &a.k)?;
    if let Some(p) = &a.per_user {
        let user_name = |u: u32| -> String {
            if (u as usize) < nu {
                model.meta.user_ids[u as usize].clone()
            } else {
                new_users
                    .iter()
                    .find(|(_, id)| *id == u)
                    .map(|(s, _)| s.clone())
                    .unwrap_or_default()
            }
        };
        store::atomic::write_atomic(p, |w| {
            write!(w, "user")?;
            for k in &a.k {
                write!(w, "\tp@{k}\tr@{k}\tndcg@{k}\tmrr@{k}\thr@{k}")?;
            }
            writeln!(w)?;
            for (u, ms) in &report.per_user {
                write!(w, "{}", user_name(*u))?;
                for m in ms {
                    write!(
                        w,
                        "\t{:.6}\t{:.6}\t{:.6}\t{:.6}\t{:.6}",
                        m.precision, m.recall, m.ndcg, m.mrr, m.hit_rate
                    )?;
                }
                writeln!(w)?;
            }
            Ok(())
        })?;
    }
    #[derive(Serialize)]
    struct J<'a> {
        model: &'a Path,
        users_unknown_to_model: usize,
        items_unknown_to_model: usize,
        /// Test interactions the model was trained on (its seen.bin): above 0, the
        /// metrics are optimistic.
        test_interactions_in_model_training: usize,
        #[serde(skip_serializing_if = "Option::is_none")]
        cold_items: Option<&'a str>,
        #[serde(flatten)]
        report: &'a RankingReport,
    }
    let summary = J {
        model: &a.model,
        users_unknown_to_model: new_users.len(),
        items_unknown_to_model: new_items.len(),
        test_interactions_in_model_training: leaked,
        cold_items: cold_note.as_deref(),
        report: &report,
    };
    super::report(a.json, &summary, || {
        let (cold, table) = match &cold_note {
            Some(n) => (
                format!("{n}\n"),
                report.table().replacen(
                    "ranking over all items",
                    "ranking over the cold items only",
                    1,
                ),
            ),
            None => (String::new(), report.table()),
        };
        format!(
            "{cold}{table}{} test users and {} test items unknown to the model (evaluated with zero vectors)\n",
            new_users.len(),
            new_items.len()
        )
    })
}
