//! `lshrec query`: one user's (or one new user's) recommendations, for people or as JSON.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::serve_cmd::{
    blocked_items, check_prior_weight, item_info, open_index, ModelArgs, SearchArgs,
};
use crate::error::{Error, Result};
use crate::index::Index;
use crate::recommend::{recommend, Method};
use crate::score::Scored;
use crate::store::Model;

/// `lshrec query`
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  lshrec query --model model/ --user 196 --k 10\n  lshrec query --model model/ --index model/index --user 196 --json",
    mut_arg("mode", |a| a.requires("index")),
    mut_arg("probes", |a| a.requires("index")),
    mut_arg("max_candidates", |a| a.requires("index")),
)]
pub struct QueryArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// LSH index directory (default: exact scoring).
    #[arg(long)]
    pub index: Option<PathBuf>,
    /// The user's id, as in your data.
    #[arg(long, required_unless_present_any = ["liked", "age", "gender", "occupation", "feature"], conflicts_with_all = ["liked", "disliked"])]
    pub user: Option<String>,
    /// A new user, by the items they liked (ids as in your data, comma-separated): their vector
    /// is folded in with the item vectors fixed (the iALS user step).
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    pub liked: Vec<String>,
    /// Items the new user saw and did not like (with --liked or demographics): known negatives
    /// in the fold-in, at the model's negative confidence, and never recommended.
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    pub disliked: Vec<String>,
    /// A new user's age in years, 1 to 120 (with the model's user-feature map; alone or with
    /// --liked). It enters as its MovieLens age bucket (<18, 18-24, …, 56+).
    #[arg(long, conflicts_with = "user", value_parser = clap::value_parser!(u16).range(1..=120))]
    pub age: Option<u16>,
    /// A new user's gender, as in the training users file (e.g. M, F).
    #[arg(long, conflicts_with = "user")]
    pub gender: Option<String>,
    /// A new user's occupation, as in the training users file (e.g. writer).
    #[arg(long, conflicts_with = "user")]
    pub occupation: Option<String>,
    /// A new user's attribute from the training --user-features file, as COLUMN=VALUE
    /// (repeat, or separate with commas).
    #[arg(
        long,
        conflicts_with = "user",
        value_delimiter = ',',
        value_name = "COLUMN=VALUE"
    )]
    pub feature: Vec<String>,
    /// With demographics and --liked: the share of the demographics' vector the fold-in pulls
    /// the new user toward (0: ignore them; 1: the full vector).
    #[arg(long, default_value_t = crate::train::coldstart::PRIOR_WEIGHT, conflicts_with = "user")]
    pub prior_weight: f32,
    /// The --liked items are the new user's first ratings, as at sign-up: take the vector from
    /// the model's first-ratings map, learned from how the training users' first ratings
    /// relate to their later ones, instead of the fold-in, which reads liked items as a random
    /// sample of the user's taste. (First ratings are mostly popular movies: folded in, they
    /// rank below the most popular movies; see the README's "User cold start".)
    #[arg(long, conflicts_with_all = ["user", "disliked", "prior_weight"])]
    pub first_ratings: bool,
    /// How many items to recommend (at most the number of items).
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Rank every item exactly even when an index is given (the items appended to it too).
    #[arg(long, conflicts_with_all = ["mode", "probes", "max_candidates"])]
    pub exact: bool,
    /// Include items the user already interacted with.
    #[arg(long)]
    pub keep_seen: bool,
    /// Never recommend the items listed in FILE, one id per line (blank and # lines skipped):
    /// withdrawn, out of stock, not licensed here.
    #[arg(long, value_name = "FILE")]
    pub exclude_items: Option<PathBuf>,
    #[command(flatten)]
    pub search: SearchArgs,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
pub(super) struct Rec {
    rank: usize,
    item: String,
    score: f32,
    title: Option<String>,
    genres: Vec<String>,
}

pub(super) fn describe(model: &Model, idx: Option<&Index>, list: &[Scored]) -> Vec<Rec> {
    list.iter()
        .enumerate()
        .map(|(r, s)| {
            let (item, title, genres) = item_info(model, idx, s.item);
            Rec {
                rank: r + 1,
                item,
                score: s.score,
                title,
                genres,
            }
        })
        .collect()
}

/// Runs `lshrec query`.
pub fn run_query(a: QueryArgs) -> Result<()> {
    let model = a.model.open()?;
    // With --exact, the index still names its appended items, which are ranked too.
    let idx = open_index(&a.index, &model)?;
    let method = match &idx {
        Some(i) if !a.exact => Method::Lsh(i, a.search.params(a.k)?),
        i => Method::Exact(i.as_ref()),
    };
    let lsh = matches!(method, Method::Lsh(..));
    let blocked = blocked_items(a.exclude_items.as_deref(), &model, idx.as_ref())?;
    let start = std::time::Instant::now();
    let (label, recs, history, own) = match &a.user {
        Some(user) => {
            let u = model.user(user)?;
            let recs = recommend(&model, &[u], a.k, method, a.keep_seen, &blocked)?.remove(0);
            let own = match (&model.seen, a.keep_seen) {
                (Some(s), false) => s.row(u as usize).to_vec(),
                _ => Vec::new(),
            };
            (format!("user {user}"), recs, user_history(&model, u), own)
        }
        None => {
            let liked = a
                .liked
                .iter()
                .map(|id| model.item(id.trim()))
                .collect::<Result<Vec<u32>>>()?;
            let disliked = a
                .disliked
                .iter()
                .map(|id| model.item(id.trim()))
                .collect::<Result<Vec<u32>>>()?;
            // Named by id here; the fold-in's own check only knows rows.
            let mut ids: Vec<(&str, &str)> = (a.liked.iter().map(|s| (s.trim(), "liked")))
                .chain(a.disliked.iter().map(|s| (s.trim(), "disliked")))
                .collect();
            ids.sort_unstable();
            if let Some(w) = ids.windows(2).find(|w| w[0].0 == w[1].0) {
                let how = match w[0].1 == w[1].1 {
                    true => format!("twice in --{}", w[0].1),
                    false => "as liked and as disliked".to_string(),
                };
                return Err(Error::invalid(
                    "--liked / --disliked",
                    format!("item {} is listed {how}", w[0].0),
                ));
            }
            let tags = crate::data::features::parse_tags(&a.feature, "--feature")?;
            let q = match a.first_ratings {
                true => model.first_ratings_vector(
                    &liked,
                    a.age,
                    a.gender.as_deref(),
                    a.occupation.as_deref(),
                    &tags,
                )?,
                false => {
                    let prior = model.demographic_vector(
                        a.age,
                        a.gender.as_deref(),
                        a.occupation.as_deref(),
                        &tags,
                    )?;
                    crate::train::coldstart::fold_in(
                        model.items.as_slice(),
                        model.dim(),
                        &liked,
                        &disliked,
                        prior.as_deref(),
                        crate::train::coldstart::FoldIn {
                            prior_weight: check_prior_weight(a.prior_weight)?,
                            ..model.fold_in_config()
                        },
                    )?
                }
            };
            let history: Vec<Scored> = liked
                .iter()
                .map(|&i| Scored {
                    item: i,
                    score: 1.0,
                })
                .collect();
            let mut own = match a.keep_seen {
                true => Vec::new(),
                false => [&liked[..], &disliked[..]].concat(),
            };
            own.sort_unstable();
            let mut exclude = [&own[..], &blocked].concat();
            exclude.sort_unstable();
            exclude.dedup();
            let recs = crate::recommend::recommend_vector(&model, &q, &exclude, a.k, method)?;
            (
                match a.first_ratings {
                    true => "a new user (first-ratings map)",
                    false => "a new user (folded in)",
                }
                .to_string(),
                recs,
                history,
                own,
            )
        }
    };
    let micros = start.elapsed().as_secs_f64() * 1e6;
    let recs = describe(&model, idx.as_ref(), &recs);
    let history = describe(&model, None, &history);
    #[derive(Serialize)]
    struct J<'a> {
        user: &'a str,
        method: &'a str,
        micros: f64,
        recommendations: &'a [Rec],
        history: &'a [Rec],
    }
    let summary = J {
        user: a.user.as_deref().unwrap_or("(new)"),
        method: method.name(),
        micros,
        recommendations: &recs,
        history: &history,
    };
    super::report(a.json, &summary, || {
        let mut s = format!(
            "top {} for {label} ({}, {:.0} µs)\n",
            a.k,
            if lsh { "LSH" } else { "exact" },
            micros
        );
        s.push_str(&ranked_lines(&recs));
        if recs.len() < a.k {
            // `blocked` holds only served ids: blocked_items resolves appended items only with
            // the index that serves them.
            let served = idx.as_ref().map_or(model.n_items(), |i| i.n_served());
            let either = own.len() + blocked.len() - shared_count(&own, &blocked);
            s.push_str(&short_list_note(
                recs.len(),
                served - either,
                own.len(),
                blocked.len(),
                lsh,
            ));
        }
        if !history.is_empty() {
            s.push_str(if a.user.is_some() {
                "\nthe user's top-rated training items (up to 10):\n"
            } else {
                "\nliked:\n"
            });
            for r in &history {
                s.push_str(&format!(
                    "     {}\n",
                    item_label(&r.title, &r.item, &r.genres)
                ));
            }
        }
        s
    })
}

/// A ranked list for people: rank, score, title and genres, one item a line.
pub(super) fn ranked_lines(list: &[Rec]) -> String {
    list.iter()
        .map(|r| {
            let label = item_label(&r.title, &r.item, &r.genres);
            format!("{:>3}. {:>8.4}  {label}\n", r.rank, r.score)
        })
        .collect()
}

/// An item for people: its title (or id), then its genres when it has any.
pub(super) fn item_label(title: &Option<String>, item: &str, genres: &[String]) -> String {
    let name = title.clone().unwrap_or_else(|| format!("item {item}"));
    if genres.is_empty() {
        name
    } else {
        format!("{name}  [{}]", genres.join(", "))
    }
}

/// Why a top-K list is shorter than K: the user's own items are excluded (all but `left`), or
/// the index's candidates held fewer.
fn short_list_note(got: usize, left: usize, own: usize, blocked: usize, lsh: bool) -> String {
    if got == left {
        let only = match got {
            0 => "nothing left".to_string(),
            n => format!("only {n} item{} left", if n == 1 { "" } else { "s" }),
        };
        let why = match (own, blocked) {
            (_, 0) => {
                let verb = if own == 1 { "is" } else { "are" };
                format!("the other {own} {verb} excluded as the user's own; --keep-seen includes them")
            }
            (0, _) => {
                let verb = if blocked == 1 { "is" } else { "are" };
                format!("the other {blocked} {verb} listed in --exclude-items")
            }
            _ => format!("the others are the user's own ({own}; --keep-seen includes them) or listed in --exclude-items ({blocked})"),
        };
        format!("  ({only}: {why})\n")
    } else if lsh {
        format!("  (the index's candidates held only {got} of the {left} items not excluded; --exact ranks them all)\n")
    } else {
        String::new()
    }
}

/// A user's own training items, highest weight first (up to 10).
fn user_history(model: &Model, u: u32) -> Vec<Scored> {
    match &model.seen {
        Some(s) => {
            let mut v: Vec<Scored> = s
                .row(u as usize)
                .iter()
                .zip(s.row_values(u as usize))
                .map(|(&i, &w)| Scored { item: i, score: w })
                .collect();
            v.sort_by(crate::score::topk::rank_order);
            v.truncate(10);
            v
        }
        None => Vec::new(),
    }
}

/// How many ids two sorted, deduplicated lists share.
fn shared_count(a: &[u32], b: &[u32]) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => (i, j, n) = (i + 1, j + 1, n + 1),
        }
    }
    n
}
