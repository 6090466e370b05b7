//! `lshrec index build`, `query` and `recommend-all`.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::index::{self, BuildConfig, Index, Mode, SearchParams};
use crate::recommend::{recommend, recommend_queries, Method};
use crate::score::Scored;
use crate::store::atomic::{commit_together, AtomicFile};
use crate::store::npy::NpyWriter;
use crate::store::Model;
use rayon::prelude::*;

/// Where the embeddings come from.
#[derive(Debug, Args, Clone)]
pub struct ModelArgs {
    /// Model directory written by `lshrec train`.
    #[arg(long, conflicts_with_all = ["users", "items"])]
    pub model: Option<PathBuf>,
    /// User embeddings trained elsewhere (NumPy .npy, n_users × d; float32 is memory-mapped,
    /// float16, float64, big-endian and Fortran-order arrays are converted).
    #[arg(long, requires = "items")]
    pub users: Option<PathBuf>,
    /// Item embeddings trained elsewhere (n_items × d).
    #[arg(long, requires = "users")]
    pub items: Option<PathBuf>,
    /// Optional item bias (n_items), folded into the score.
    // `requires` alone lets `--model DIR --item-bias B` through (clap does not ask for an
    // argument that conflicts with one given), and the bias would be ignored.
    #[arg(long, requires = "items", conflicts_with = "model")]
    pub item_bias: Option<PathBuf>,
    /// Optional file of (user row, item row) pairs to exclude.
    #[arg(long, requires = "items", conflicts_with = "model")]
    pub seen: Option<PathBuf>,
}

impl ModelArgs {
    /// A model directory (`--model DIR`), or none.
    pub fn dir(model: Option<PathBuf>) -> ModelArgs {
        ModelArgs {
            model,
            users: None,
            items: None,
            item_bias: None,
            seen: None,
        }
    }

    /// Opens and verifies the model.
    pub fn open(&self) -> Result<Model> {
        match (&self.model, &self.users, &self.items) {
            (Some(m), _, _) => Model::open(m),
            (None, Some(u), Some(i)) => {
                Model::from_npy(u, i, self.item_bias.as_deref(), self.seen.as_deref())
            }
            _ => Err(Error::invalid(
                "model",
                "give --model DIR, or --users U.npy --items I.npy",
            )),
        }
    }
}

/// LSH search knobs shared by query, recommend-all and bench.
#[derive(Debug, Args, Clone)]
pub struct SearchArgs {
    /// How candidates are found: `scan` (Hamming scan of the long codes, the faster one at
    /// equal recall on norm-skewed data) or `probe` (multi-probe over the bucket tables).
    #[arg(long, value_enum, default_value = "scan")]
    pub mode: ModeArg,
    /// Buckets probed per norm range, over all tables (probe mode).
    #[arg(long, default_value_t = 64)]
    pub probes: usize,
    /// Candidates re-ranked exactly per norm range, at most.
    #[arg(long, default_value_t = 100)]
    pub max_candidates: usize,
}

/// `--mode`
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeArg {
    Scan,
    Probe,
}

impl SearchArgs {
    /// Validated search parameters for `k`.
    pub fn params(&self, k: usize) -> Result<SearchParams> {
        let scan = self.mode == ModeArg::Scan;
        if self.probes == 0 && !scan {
            return Err(Error::invalid("--probes", "must be at least 1"));
        }
        if self.max_candidates == 0 {
            return Err(Error::invalid("--max-candidates", "must be at least 1"));
        }
        Ok(SearchParams {
            k,
            probes: self.probes,
            max_candidates: self.max_candidates,
            mode: if scan { Mode::Scan } else { Mode::Probe },
        })
    }
}

/// `lshrec index …`
#[derive(Debug, Subcommand)]
pub enum IndexCommand {
    /// Build a random-hyperplane LSH index over a model's items.
    #[command(
        after_help = "Examples:\n  lshrec index build --model model/ --out model/index\n  lshrec index build --users U.npy --items I.npy --tables 8 --norm-ranges 32 --out idx/"
    )]
    Build(IndexBuildArgs),
    /// Add items (for example cold-start movies) to an index without rebuilding it.
    #[command(
        after_help = "Example:\n  lshrec index append --index model/index --model model/ --vectors new.npy --ids new-ids.txt\n\nAppended items are scored exactly by every LSH query; --ids and --titles hold one line per row of --vectors."
    )]
    Append(IndexAppendArgs),
}

/// `lshrec index append`
#[derive(Debug, Args)]
pub struct IndexAppendArgs {
    /// The index directory to grow.
    #[arg(long)]
    pub index: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    /// New item vectors (m × dim, .npy), in the model's serving space.
    #[arg(long)]
    pub vectors: PathBuf,
    /// Their ids, one per line (default: appended-1, appended-2, …).
    #[arg(long)]
    pub ids: Option<PathBuf>,
    /// Their titles, one per line.
    #[arg(long)]
    pub titles: Option<PathBuf>,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `lshrec index build`
#[derive(Debug, Args)]
pub struct IndexBuildArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub knobs: IndexKnobs,
    /// Output index directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Index build parameters shared by `index build`, `bench` and `demo`.
#[derive(Debug, Args, Clone)]
pub struct IndexKnobs {
    /// Bits per bucket key (0: about 8 items per bucket; at most 24, and at most log2 of 64 times
    /// the items per norm range).
    #[arg(long, default_value_t = 0)]
    pub bits: usize,
    /// Hash tables.
    #[arg(long, default_value_t = 8)]
    pub tables: usize,
    /// Norm ranges (1: plain simple-LSH; 0: about 16k items per range).
    #[arg(long, default_value_t = 0)]
    pub norm_ranges: usize,
    /// Bits of the long codes of the Hamming scan (a multiple of 64).
    #[arg(long, default_value_t = 256)]
    pub scan_bits: usize,
    /// Seed of the hyperplanes.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Leave the copy of the item vectors out of the index: dim × 4 bytes less per item, but
    /// the scan's re-rank then reads candidates scattered over the model's whole item matrix
    /// (1.2–1.4× slower at 1M items; no difference in the results).
    #[arg(long)]
    pub no_vectors: bool,
}

impl IndexKnobs {
    /// The defaults with `seed`.
    pub fn with_seed(seed: u64) -> Self {
        IndexKnobs {
            bits: 0,
            tables: 8,
            norm_ranges: 0,
            scan_bits: 256,
            seed,
            no_vectors: false,
        }
    }

    /// The build configuration for `n_items` items.
    pub fn config(&self, n_items: usize) -> BuildConfig {
        BuildConfig {
            bits: self.bits,
            tables: self.tables,
            ranges: if self.norm_ranges == 0 {
                auto_ranges(n_items)
            } else {
                self.norm_ranges
            },
            scan_bits: self.scan_bits,
            seed: self.seed,
            vectors: !self.no_vectors,
        }
    }
}

/// The default number of norm ranges for `n` items.
pub fn auto_ranges(n: usize) -> usize {
    (n / 16_384).clamp(1, 64)
}

/// Builds an index for `model`.
pub fn build_index(model: &Model, knobs: &IndexKnobs) -> Result<index::build::Built> {
    index::build(
        model.items.as_slice(),
        model.dim(),
        &knobs.config(model.n_items()),
        model.meta.fingerprint(),
    )
}

/// Runs `lshrec index …`.
pub fn run_index(cmd: IndexCommand) -> Result<()> {
    match cmd {
        IndexCommand::Build(a) => {
            crate::store::atomic::dir_target(&a.out)?;
            let model = a.model.open()?;
            let mut built = build_index(&model, &a.knobs)?;
            index::build::write(&mut built, &a.out)?;
            let m = &built.meta;
            if a.json {
                #[derive(Serialize)]
                struct J<'a> {
                    index: &'a Path,
                    transform: &'a str,
                    items: usize,
                    dim: usize,
                    tables: usize,
                    bits: usize,
                    norm_ranges: usize,
                    scan_bits: usize,
                    seed: u64,
                    vectors_included: bool,
                    bytes_per_item: f64,
                    build_seconds: f64,
                }
                return super::print_json(&J {
                    index: &a.out,
                    transform: &m.transform,
                    items: m.n_items,
                    dim: m.dim,
                    tables: m.tables,
                    bits: m.bits,
                    norm_ranges: m.ranges.len(),
                    scan_bits: m.words * 64,
                    seed: m.seed,
                    vectors_included: m.has_vectors(),
                    bytes_per_item: m.bytes_per_item(),
                    build_seconds: m.build_seconds,
                });
            }
            eprintln!(
                "built {} index over {} items × {} dims: {} tables × {} bits, {} norm ranges, {}-bit scan codes; {:.2} s, {}; saved to {}",
                m.transform, m.n_items, m.dim, m.tables, m.bits, m.ranges.len(), m.words * 64, m.build_seconds, m.size_note(), a.out.display()
            );
            Ok(())
        }
        IndexCommand::Append(a) => {
            let model = a.model.open()?;
            let idx = Index::open(&a.index)?;
            idx.check_model(model.meta.fingerprint(), model.n_items(), model.dim())?;
            let (v, _) = crate::store::npy::open(&a.vectors)?;
            v.non_empty(&a.vectors, "new item")?;
            if v.cols() != model.dim() {
                return Err(Error::Mismatch {
                    what: format!("{}: dimension", a.vectors.display()),
                    expected: model.dim().to_string(),
                    found: v.cols().to_string(),
                });
            }
            let lines = |p: &Option<PathBuf>| -> Result<Option<Vec<String>>> {
                match p {
                    None => Ok(None),
                    Some(p) => {
                        let text = crate::data::text::read_text(p)?;
                        let l: Vec<String> = text.lines().map(|s| s.trim().to_string()).collect();
                        if l.len() != v.rows() {
                            return Err(Error::Mismatch {
                                what: format!("{}: lines", p.display()),
                                expected: format!("{} (one per vector)", v.rows()),
                                found: l.len().to_string(),
                            });
                        }
                        Ok(Some(l))
                    }
                }
            };
            let ids = lines(&a.ids)?;
            let titles = lines(&a.titles)?;
            let mut known: std::collections::HashSet<String> = model
                .meta
                .item_ids
                .iter()
                .cloned()
                .chain(idx.meta.appended.iter().map(|a| a.id.clone()))
                .collect();
            let start = idx.meta.appended.len();
            let mut items = Vec::with_capacity(v.rows());
            for r in 0..v.rows() {
                let id = ids
                    .as_ref()
                    .map(|l| l[r].clone())
                    .unwrap_or_else(|| format!("appended-{}", start + r + 1));
                let at = || match &a.ids {
                    Some(p) => format!("{}:{}: ", p.display(), r + 1),
                    None => String::new(),
                };
                if id.is_empty() {
                    return Err(Error::invalid("--ids", format!("{}an empty item id", at())));
                }
                if !known.insert(id.clone()) {
                    let already = ids.as_ref().is_some_and(|l| l[..r].contains(&id));
                    return Err(Error::invalid(
                        "--ids",
                        match already {
                            true => format!("{}item id {id:?} is listed twice", at()),
                            false => format!("{}item id {id:?} already exists", at()),
                        },
                    ));
                }
                items.push(index::format::AppendedItem {
                    id,
                    title: titles.as_ref().map(|l| l[r].clone()),
                    genres: Vec::new(),
                });
            }
            drop(idx);
            let meta = index::build::append(&a.index, v.as_slice(), items)?;
            if a.json {
                #[derive(Serialize)]
                struct J<'a> {
                    index: &'a Path,
                    appended_now: usize,
                    built_items: usize,
                    appended_items: usize,
                }
                return super::print_json(&J {
                    index: &a.index,
                    appended_now: v.rows(),
                    built_items: meta.n_items,
                    appended_items: meta.appended.len(),
                });
            }
            eprintln!(
                "appended {} items; the index now serves {} built + {} appended items",
                v.rows(),
                meta.n_items,
                meta.appended.len()
            );
            Ok(())
        }
    }
}

fn open_index(path: &Option<PathBuf>, model: &Model) -> Result<Option<Index>> {
    match path {
        None => Ok(None),
        Some(p) => {
            let idx = Index::open(p)?;
            idx.check_model(model.meta.fingerprint(), model.n_items(), model.dim())?;
            Ok(Some(idx))
        }
    }
}

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
struct Rec {
    rank: usize,
    item: String,
    score: f32,
    title: Option<String>,
    genres: Vec<String>,
}

/// The external id, title and genres of item `id`, which may be an appended item of `idx`.
pub fn item_info(
    model: &Model,
    idx: Option<&Index>,
    id: u32,
) -> (String, Option<String>, Vec<String>) {
    if let Some(a) = idx.and_then(|i| i.appended_item(id)) {
        return (a.id.clone(), a.title.clone(), a.genres.clone());
    }
    let c = model.meta.catalogue.get(id as usize);
    (
        model
            .meta
            .item_ids
            .get(id as usize)
            .cloned()
            .unwrap_or_else(|| id.to_string()),
        c.and_then(|c| c.title.clone()),
        c.map(|c| c.genres.clone()).unwrap_or_default(),
    )
}

fn describe(model: &Model, idx: Option<&Index>, list: &[Scored]) -> Vec<Rec> {
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

/// Accepts a finite `--prior-weight` ≥ 0.
pub(crate) fn check_prior_weight(w: f32) -> Result<f32> {
    match w.is_finite() && w >= 0.0 {
        true => Ok(w),
        false => Err(Error::invalid(
            "--prior-weight",
            format!(
                "{w}: expected a finite weight ≥ 0 (default {})",
                crate::train::coldstart::PRIOR_WEIGHT
            ),
        )),
    }
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

/// `lshrec similar`
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  lshrec similar --model model/ --item 50 --k 10\n  lshrec similar --users u.npy --items i.npy --item 1234 --exclude-items withdrawn.txt --json\n  lshrec similar --model model/ --all --k 20 --out because_you_watched.tsv\n  lshrec similar --model model/ --all --out sims.npy --shard 3/16\n\nThe score is the cosine of the two item vectors (a folded bias column left out), ranked exactly over the whole catalogue.\n\n--all writes every item's neighbours, a \"because you watched\" table: .tsv (item, rank, similar, score), .jsonl (one item a line) or .npy (int64 item rows, with OUT.rows.txt, OUT.items.txt and OUT.scores.npy beside it, as recommend-all writes). It scores the items against each other as recommend-all scores users, a block at a time, so at a million items it takes about as long as recommend-all for a million users; --shard splits the items."
)]
pub struct SimilarArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The item to find neighbours of, by its id (a row number for --items embeddings).
    #[arg(long, required_unless_present = "all")]
    pub item: Option<String>,
    /// Every item's neighbours, into --out.
    #[arg(long, conflicts_with = "item", requires = "out")]
    pub all: bool,
    /// With --all, the output file: .tsv, .jsonl or .npy.
    #[arg(long, requires = "all")]
    pub out: Option<PathBuf>,
    /// With --all, only shard i of n (0-based), a contiguous range of the items.
    #[arg(long, value_name = "i/n", requires = "all")]
    pub shard: Option<String>,
    /// How many items (at most the number of items).
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Never list the items in FILE, one id per line (blank and # lines skipped). With --all
    /// they are still given neighbours of their own.
    #[arg(long, value_name = "FILE")]
    pub exclude_items: Option<PathBuf>,
    /// Machine-readable output (with --all, the summary).
    #[arg(long)]
    pub json: bool,
}

/// Runs `lshrec similar`.
pub fn run_similar(a: SimilarArgs) -> Result<()> {
    let model = a.model.open()?;
    let blocked = blocked_items(a.exclude_items.as_deref(), &model, None)?;
    let Some(item) = &a.item else {
        return run_similar_all(&a, &model, &blocked);
    };
    let item = model.item(item.trim())?;
    let start = std::time::Instant::now();
    let list = crate::recommend::similar_items(&model, item, a.k, &blocked)?;
    let micros = start.elapsed().as_secs_f64() * 1e6;
    let (id, title, genres) = item_info(&model, None, item);
    #[derive(Serialize)]
    struct J<'a> {
        item: &'a str,
        title: Option<&'a str>,
        genres: &'a [String],
        micros: f64,
        similar: &'a [Rec],
    }
    let similar = describe(&model, None, &list);
    let summary = J {
        item: &id,
        title: title.as_deref(),
        genres: &genres,
        micros,
        similar: &similar,
    };
    super::report(a.json, &summary, || {
        let mut s = format!(
            "{} items most like {} (cosine, exact, {micros:.0} µs)\n",
            a.k,
            item_label(&title, &id, &genres)
        );
        s.push_str(&ranked_lines(&similar));
        if similar.len() < a.k {
            let n = similar.len();
            s.push_str(&format!(
                "  (only {n} item{} left: the item itself and the {} in --exclude-items are not listed)\n",
                if n == 1 { "" } else { "s" },
                blocked.iter().filter(|&&i| i != item).count()
            ));
        }
        s
    })
}

/// `lshrec similar --all`: every item's (or one shard's) neighbours into `--out`.
fn run_similar_all(a: &SimilarArgs, model: &Model, blocked: &[u32]) -> Result<()> {
    let out = a.out.as_deref().expect("clap: --all requires --out");
    let ext = batch_ext(out)?;
    crate::score::check_k(a.k, model.n_items())?;
    let range = match &a.shard {
        Some(s) => shard_range(s, model.n_items())?,
        None => 0..model.n_items(),
    };
    let items: Vec<u32> = range.clone().map(|i| i as u32).collect();
    let cosine = crate::recommend::Cosine::new(model);
    let sink = RecSink::create(out, ext, model, None, Rows::Items, &items, a.k)?;
    let secs = write_batch(sink, &items, "scoring items", |chunk| {
        cosine.top(chunk, a.k, blocked)
    })?;
    #[derive(Serialize)]
    struct J<'a> {
        out: &'a Path,
        items: usize,
        first_item_row: usize,
        excluded_items: usize,
        k: usize,
        seconds: f64,
        items_per_second: f64,
        threads: usize,
    }
    let rate = items.len() as f64 / secs.max(1e-9);
    let summary = J {
        out,
        items: items.len(),
        first_item_row: range.start,
        excluded_items: blocked.len(),
        k: a.k,
        seconds: secs,
        items_per_second: rate,
        threads: rayon::current_num_threads(),
    };
    if a.json {
        return super::print_json(&summary);
    }
    eprintln!(
        "found the {} items most like each of {} items (cosine, exact) in {secs:.2} s: {rate:.0} items/s on {} threads; {}",
        a.k,
        items.len(),
        summary.threads,
        wrote(out, ext, Rows::Items)
    );
    Ok(())
}

/// A ranked list for people: rank, score, title and genres, one item a line.
fn ranked_lines(list: &[Rec]) -> String {
    list.iter()
        .map(|r| {
            let label = item_label(&r.title, &r.item, &r.genres);
            format!("{:>3}. {:>8.4}  {label}\n", r.rank, r.score)
        })
        .collect()
}

/// An item for people: its title (or id), then its genres when it has any.
fn item_label(title: &Option<String>, item: &str, genres: &[String]) -> String {
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

/// `lshrec recommend-all`
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  lshrec recommend-all --model model/ --k 10 --out recs.tsv\n  lshrec recommend-all --model model/ --index model/index --k 20 --out part-3.jsonl --shard 3/16\n  lshrec recommend-all --model model/ --user-list active.txt --exclude-items withdrawn.txt --out recs.npy\n  lshrec recommend-all --model model/ --fold-in since-training.tsv --out new-users.tsv\n  lshrec recommend-all --model model/ --fold-in signups.tsv --first-ratings --fold-in-users signups-people.tsv --out signups-recs.tsv\n\nOutputs: .tsv (user, rank, item, score), .jsonl (one user per line), .npy (int64 item rows, n_users × k, -1 padded), with OUT.users.txt (the user id of each row), OUT.items.txt (the item id of each item row) and OUT.scores.npy (float32, NaN padded) beside it.",
    mut_arg("mode", |a| a.requires("index")),
    mut_arg("probes", |a| a.requires("index")),
    mut_arg("max_candidates", |a| a.requires("index")),
)]
pub struct RecommendAllArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// LSH index directory (default: exact scoring).
    #[arg(long)]
    pub index: Option<PathBuf>,
    /// How many items per user (at most the number of items).
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Output file: .tsv, .jsonl or .npy.
    #[arg(long)]
    pub out: PathBuf,
    /// Rank every item exactly even when an index is given (the items appended to it too).
    #[arg(long, conflicts_with_all = ["mode", "probes", "max_candidates"])]
    pub exact: bool,
    /// Include items the user already interacted with.
    #[arg(long)]
    pub keep_seen: bool,
    /// Score only the users listed in FILE, one id per line (blank and # lines skipped), in
    /// its order: the OUT.users.txt of an earlier .npy run is such a file. Embeddings given
    /// with --users take row numbers.
    #[arg(long, value_name = "FILE")]
    pub user_list: Option<PathBuf>,
    /// Never recommend the items listed in FILE, one id per line as in --user-list: withdrawn,
    /// out of stock, not licensed here. They are skipped for every user, beside the user's own.
    #[arg(long, value_name = "FILE")]
    pub exclude_items: Option<PathBuf>,
    /// Process only shard i of n (0-based), a contiguous range of users (of --user-list's
    /// users, or --fold-in's, when given).
    #[arg(long, value_name = "i/n")]
    pub shard: Option<String>,
    /// Score the users of FILE from its rows rather than from trained vectors: user and item
    /// columns, then optionally rating and timestamp, in any delimited layout, with or without a
    /// header. Each user is folded in
    /// (the iALS user step with the item vectors fixed, as `query --liked` does): a user the
    /// model has training items for, from those and FILE's rows; any other user, from FILE's
    /// rows alone. With a model trained at --min-rating R, a row rated below R is a known negative
    /// (as `query --disliked`). FILE's items are never recommended back unless --keep-seen.
    #[arg(long, value_name = "FILE", conflicts_with = "user_list")]
    pub fold_in: Option<PathBuf>,
    /// With --fold-in: FILE's new users (those the model has no training items for) are
    /// sign-ups, and their rows are their first ratings. Take their vectors from the model's
    /// first-ratings map, as `query --first-ratings` does, instead of the fold-in, which reads
    /// rows as a random sample of the user's taste: on ML-100K's cold users, in time order,
    /// NDCG@10 .50 against .33 from one rating, .47 against .30 from thirty (see the README's
    /// "User cold start"). Rows below the model's --min-rating enter no vector but are not
    /// recommended back; a new user may have only such rows. Users with training items are
    /// folded in as without this flag.
    #[arg(long, requires = "fold_in")]
    pub first_ratings: bool,
    /// With --fold-in: the users' demographics and attributes, for a model trained with user
    /// side information. A delimited file with a header row, the user id first (as an attribute
    /// file for `train --user-features`): a column `age` holds years (1 to 120, bucketed as in
    /// training) or a value the model has (25-34), `gender` and `occupation` are as in the training users file, any other
    /// column is an attribute (as `query --feature COLUMN=VALUE`). Each user's features are
    /// the prior the fold-in pulls toward (`query --age …`), or enter the first-ratings map.
    /// Users listed here without rows in --fold-in's file (sign-ups who rated nothing yet) are
    /// scored from their demographics alone. A column the model has no features for (say,
    /// zip) is left out with a note, and so is a value it never saw (a new occupation), counted;
    /// a file with no column the model knows is an error.
    #[arg(long, value_name = "FILE", requires = "fold_in")]
    pub fold_in_users: Option<PathBuf>,
    #[command(flatten)]
    pub search: SearchArgs,
    /// Print the summary (users, seconds, users/s) as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `--fold-in`: the users of a ratings file, each with its folded-in query vector and the items
/// not to recommend back.
struct FoldedIn {
    /// Every user of the file, in the file's (natural) id order.
    ids: Vec<String>,
    /// The first user folded in: only the shard's users are (`--shard`).
    first: usize,
    /// `own.len() × d`, row-major: the vectors of users `first..first + own.len()`.
    vectors: Vec<f32>,
    /// Each of those users' items in the file and, for a user the model knows, its training
    /// items; sorted.
    own: Vec<Vec<u32>>,
    /// How many of the users had training items in the model.
    known: usize,
    /// How many users' vectors came from the first-ratings map (`--first-ratings`).
    mapped: usize,
    /// How many values of `--fold-in-users` the model had no feature for (left out).
    unknown_values: usize,
    seconds: f64,
}

/// One user's features: rows of the model's user features, and weights.
type Features = Vec<(usize, f32)>;

/// `--fold-in-users`: the features (rows of the model's user features, and weights) of each
/// user of `ds`, from the attribute columns its users file was read into, and how many values
/// the model does not know.
fn users_file_features(
    path: &Path,
    model: &Model,
    ds: &crate::data::Dataset,
) -> Result<(Vec<Features>, usize)> {
    use std::collections::BTreeSet;
    let names = &model.meta.user_features;
    let columns: BTreeSet<&str> = (names.iter())
        .filter_map(|n| n.split_once(':').map(|(c, _)| c))
        .collect();
    if columns.is_empty() {
        return Err(Error::invalid(
            "--fold-in-users",
            "this model was trained without user side information (no users file or --user-features)",
        ));
    }
    let tags = ds.user_info.as_ref().map_or(&[][..], |i| &i.tags[..]);
    let given: BTreeSet<&str> = (tags.iter().flatten()).map(|(c, _)| c.as_str()).collect();
    let unused: Vec<&str> = given.difference(&columns).copied().collect();
    if unused.len() == given.len() {
        return Err(Error::Header {
            path: path.to_path_buf(),
            line: 1,
            expected: format!(
                "user columns the model has features for ({}), after the user id",
                columns.iter().copied().collect::<Vec<_>>().join(", ")
            ),
            found: given.iter().map(|c| c.to_string()).collect(),
        });
    }
    if !unused.is_empty() {
        eprintln!(
            "note: the model has no features for column(s) {} of {}; they are left out",
            unused.join(", "),
            path.display()
        );
    }
    let mut unknown = 0;
    let mut out = Vec::with_capacity(ds.n_users());
    for u in 0..ds.n_users() {
        let t = tags.get(u).map_or(&[][..], |t| &t[..]);
        let used = t
            .iter()
            .filter(|(c, _)| columns.contains(c.as_str()))
            .cloned();
        // An age the model knows as it is written (a bucket such as 25-34, or the raw values
        // of an attribute file's `age` column) is an attribute; otherwise it is years.
        let (ages, rest): (Vec<_>, Vec<_>) = used.partition(|(c, v)| {
            c == "age"
                && !names
                    .iter()
                    .any(|n| n.strip_prefix("age:") == Some(v.as_str()))
        });
        let bad_age = |expected: String| -> Result<Option<u16>> {
            let id = ds.users.ext(u as u32);
            Err(Error::Parse {
                path: path.to_path_buf(),
                line: crate::store::read::attribute_line_with(path, id)?,
                field: "age".into(),
                expected,
                found: (ages.iter().map(|a| a.1.as_str()))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        };
        let age = match &ages[..] {
            [] => None,
            [(_, v)] => match v.parse::<u16>() {
                Ok(a) if (1..=120).contains(&a) => Some(a),
                _ => bad_age("an age in years, 1 to 120, or an age value of the model".into())?,
            },
            _ => bad_age(format!("one age for user {}", ds.users.ext(u as u32)))?,
        };
        let mut pairs = crate::data::features::user_pairs(age, None, None);
        pairs.extend(crate::data::features::tag_pairs(&rest, model.user_knots()));
        let (features, n) = model.known_user_features(&pairs)?;
        unknown += n;
        out.push(features);
    }
    Ok((out, unknown))
}

/// Reads `path`, checking every row, and folds in the users of `shard` (all of them without
/// one; see `RecommendAllArgs::fold_in`).
fn fold_in_file(
    a: &RecommendAllArgs,
    path: &Path,
    model: &Model,
    idx: Option<&Index>,
) -> Result<FoldedIn> {
    use crate::store::read::first_line_with;
    let users_file = a.fold_in_users.as_deref();
    let opts = crate::data::LoadOptions {
        format: Some(crate::data::Format::Generic),
        user_attributes: users_file.map(|p| crate::data::AttributeFile {
            path: p.to_path_buf(),
            columns: None,
            numeric: Vec::new(),
        }),
        // Demographics come from --fold-in-users only: a users.tsv that happens to sit beside
        // FILE (a split directory's training users) is not read.
        no_side_files: true,
        ..Default::default()
    };
    // Refused before the file is read, as `query --first-ratings` refuses it.
    let map = match a.first_ratings {
        true => Some(model.require_first_ratings_map()?),
        false => None,
    };
    let ds = crate::data::load(path, &opts)?;
    super::note_dataset(&ds);
    let min_rating = (model.train_config())
        .and_then(|c| c.min_rating)
        .filter(|_| ds.has_ratings);
    let index = model.item_index();
    let mut rows: Vec<(Vec<u32>, Vec<u32>)> = vec![Default::default(); ds.n_users()];
    for x in &ds.interactions {
        let ext = ds.items.ext(x.item);
        let Some(&i) = index.get(ext) else {
            return Err(Error::Parse {
                path: path.to_path_buf(),
                line: first_line_with(path, 1, ext)?,
                field: "item".into(),
                expected: match idx.is_some_and(|i| i.meta.appended.iter().any(|a| a.id == ext)) {
                    // Its vector is an estimate from its features, not a trained one: the
                    // fold-in solves against the trained items only.
                    true => format!("an item id of the model ({} items; this one was appended to the index after training, and fold-in reads trained items only: leave its rows out)", model.n_items()),
                    false => format!("an item id of the model ({} items)", model.n_items()),
                },
                found: ext.into(),
            });
        };
        let (liked, disliked) = &mut rows[x.user as usize];
        match min_rating {
            Some(r) if x.rating < r => disliked.push(i),
            _ => liked.push(i),
        }
    }
    let (features, unknown_values) = match users_file {
        Some(f) => users_file_features(f, model, &ds)?,
        None => (vec![Vec::new(); rows.len()], 0),
    };
    let range = match a.shard.as_deref() {
        Some(s) => shard_range(s, rows.len())?,
        None => 0..rows.len(),
    };
    let start = std::time::Instant::now();
    let d = model.dim();
    let solver = crate::train::coldstart::FoldInSolver::new(
        model.items.as_slice(),
        d,
        model.fold_in_config(),
    );
    let bar = crate::progress::count_bar(range.len() as u64, "folding in users");
    // Each user's vector, own items, and how the vector was made; errors are reported in the
    // users' order, so the same file always names the same line.
    #[derive(PartialEq)]
    enum Solved {
        /// Folded in from the file's rows alone.
        New,
        /// Folded in from the model's training items and the file's rows.
        Known,
        /// From the first-ratings map.
        Mapped,
    }
    type User = (Vec<f32>, Vec<u32>, Solved);
    let solved: Vec<Result<User>> = (rows[range.clone()].par_iter().zip(range.clone()))
        .map(|((liked, disliked), u)| {
            let id = ds.users.ext(u as u32);
            let mut liked = liked.clone();
            // A user the model holds with no training items (a test-only id) is new here.
            let trained = match (model.user(id), &model.seen) {
                (Ok(t), Some(seen)) => seen.row(t as usize),
                _ => &[],
            };
            let mut own = [&liked[..], &disliked[..], trained].concat();
            own.sort_unstable();
            own.dedup();
            if let (Some(map), true) = (&map, trained.is_empty()) {
                // A sign-up: its positive rows are its first ratings (none at all is the
                // map's N = 0).
                bar.inc(1);
                return Ok((map.vector(&liked, &features[u])?, own, Solved::Mapped));
            }
            let prior = model.user_feature_vector(&features[u]);
            let rated = !(liked.is_empty() && disliked.is_empty());
            liked.extend(trained.iter().filter(|i| !disliked.contains(i)));
            liked.sort_unstable();
            liked.dedup();
            if let (true, None, false, Some(f)) = (liked.is_empty(), &prior, rated, users_file) {
                // Listed in the users file only, with no value the model knows.
                return Err(Error::Parse {
                    path: f.to_path_buf(),
                    line: crate::store::read::attribute_line_with(f, id)?,
                    field: "user".into(),
                    expected: "a user with rows in the --fold-in file, or a demographic or attribute value the model knows".into(),
                    found: id.into(),
                });
            }
            if liked.is_empty() && prior.is_none() {
                return Err(Error::Parse {
                    path: path.to_path_buf(),
                    line: first_line_with(path, 0, id)?,
                    field: "user".into(),
                    expected: format!(
                        "a user with at least one row rated {} or more, to fold in from",
                        min_rating.unwrap_or_default()
                    ),
                    found: id.into(),
                });
            }
            let v = solver.solve(&liked, disliked, prior.as_deref())?;
            bar.inc(1);
            let how = match trained.is_empty() {
                true => Solved::New,
                false => Solved::Known,
            };
            Ok((v, own, how))
        })
        .collect();
    bar.finish_and_clear();
    let mut out = FoldedIn {
        ids: (0..rows.len() as u32)
            .map(|u| ds.users.ext(u).to_string())
            .collect(),
        first: range.start,
        vectors: Vec::with_capacity(range.len() * d),
        own: Vec::with_capacity(range.len()),
        known: 0,
        mapped: 0,
        unknown_values,
        seconds: 0.0,
    };
    for r in solved {
        let (v, own, how) = r?;
        out.vectors.extend_from_slice(&v);
        out.own.push(own);
        out.known += usize::from(how == Solved::Known);
        out.mapped += usize::from(how == Solved::Mapped);
    }
    out.seconds = start.elapsed().as_secs_f64();
    Ok(out)
}

/// Parses `i/n` into the user range of shard i.
pub fn shard_range(s: &str, n_users: usize) -> Result<std::ops::Range<usize>> {
    let bad = || {
        Error::invalid(
            "--shard",
            format!("{s:?}: expected i/n with 0 ≤ i < n, e.g. 3/16"),
        )
    };
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (usize, usize) = (
        i.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok(i * n_users / n..(i + 1) * n_users / n)
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

/// The ids of a list file (`--user-list`, `--exclude-items`) mapped by `lookup`, each with its
/// line; an id `lookup` does not know is an error on its line that expects `expected`.
fn resolve_list(
    path: &Path,
    field: &str,
    expected: &str,
    lookup: impl Fn(&str) -> Option<u32>,
) -> Result<Vec<(usize, u32)>> {
    let ids = crate::data::text::read_id_list(path, field)?;
    ids.into_iter()
        .map(|(line, id)| match lookup(&id) {
            Some(x) => Ok((line, x)),
            None => Err(Error::Parse {
                path: path.to_path_buf(),
                line,
                field: field.into(),
                expected: expected.into(),
                found: id,
            }),
        })
        .collect()
}

/// `--exclude-items`: the dense ids of the listed items (the model's, and an index's appended
/// ones), sorted and deduplicated; empty without a file.
fn blocked_items(path: Option<&Path>, model: &Model, idx: Option<&Index>) -> Result<Vec<u32>> {
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    let index = model.item_index();
    let appended = idx.map(|i| (i.meta.n_items, &i.meta.appended[..]));
    let lookup = |id: &str| {
        index.get(id).copied().or_else(|| {
            let (n, list) = appended?;
            let j = list.iter().position(|x| x.id == id)?;
            Some((n + j) as u32)
        })
    };
    let served = idx.map_or(model.n_items(), |i| i.n_served());
    let expected = format!("an item id of the model ({served} items)");
    let mut ids: Vec<u32> = resolve_list(path, "item id", &expected, lookup)?
        .into_iter()
        .map(|(_, i)| i)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// `--user-list`: the dense ids of the listed users, in the file's order. A user listed twice
/// is an error (each would get a row), and so is a list with no user.
fn listed_users(path: &Path, model: &Model) -> Result<Vec<u32>> {
    let expected = format!("a user id of the model ({} users)", model.n_users());
    let listed = resolve_list(path, "user id", &expected, |id| model.user(id).ok())?;
    let mut first = std::collections::HashMap::with_capacity(listed.len());
    for &(line, u) in &listed {
        if let Some(earlier) = first.insert(u, line) {
            return Err(Error::Parse {
                path: path.to_path_buf(),
                line,
                field: "user id".into(),
                expected: format!("each user once (this one is on line {earlier} too)"),
                found: model.meta.user_ids[u as usize].clone(),
            });
        }
    }
    if listed.is_empty() {
        return Err(Error::invalid(
            "--user-list",
            format!(
                "{}: no user ids (blank and # lines are skipped)",
                path.display()
            ),
        ));
    }
    Ok(listed.into_iter().map(|(_, u)| u).collect())
}

/// Runs `lshrec recommend-all`.
pub fn run_recommend_all(a: RecommendAllArgs) -> Result<()> {
    let model = a.model.open()?;
    let idx = open_index(&a.index, &model)?;
    let listed = match &a.user_list {
        Some(p) => Some(listed_users(p, &model)?),
        None => None,
    };
    let folded = match &a.fold_in {
        Some(p) => Some(fold_in_file(&a, p, &model, idx.as_ref())?),
        None => None,
    };
    let n_listed = match (&listed, &folded) {
        (Some(l), _) => l.len(),
        (_, Some(f)) => f.ids.len(),
        _ => model.n_users(),
    };
    let range = match &a.shard {
        Some(s) => shard_range(s, n_listed)?,
        None => 0..n_listed,
    };
    let ext = batch_ext(&a.out)?;
    // With --exact, the index's appended items are ranked too.
    let method = match &idx {
        Some(i) if !a.exact => Method::Lsh(i, a.search.params(a.k)?),
        i => Method::Exact(i.as_ref()),
    };
    let lsh = matches!(method, Method::Lsh(..));
    let blocked = blocked_items(a.exclude_items.as_deref(), &model, idx.as_ref())?;
    // Rows of the model's users, or positions in --fold-in's list.
    let users: Vec<u32> = match &listed {
        Some(l) => l[range.clone()].to_vec(),
        None => range.clone().map(|u| u as u32).collect(),
    };
    // Written as scored, a block of users at a time, so memory does not grow with the users;
    // users/s counts the scoring alone.
    let rows = folded.as_ref().map_or(Rows::Users, |f| Rows::Named(&f.ids));
    let sink = RecSink::create(&a.out, ext, &model, idx.as_ref(), rows, &users, a.k)?;
    let secs = write_batch(sink, &users, "scoring users", |chunk| match &folded {
        None => recommend(&model, chunk, a.k, method, a.keep_seen, &blocked),
        Some(f) => {
            // Chunks hold positions in the file's users; only the shard's were folded in.
            let d = model.dim();
            let at = |r: u32| r as usize - f.first;
            let q: Vec<f32> = (chunk.iter())
                .flat_map(|&r| &f.vectors[at(r) * d..][..d])
                .copied()
                .collect();
            let own = |r: usize| -> &[u32] {
                match a.keep_seen {
                    true => &[],
                    false => &f.own[at(chunk[r])],
                }
            };
            recommend_queries(&model, &q, a.k, method, &own, &blocked)
        }
    })?;
    if let Some(f) = folded.as_ref().filter(|f| f.unknown_values > 0) {
        eprintln!(
            "note: {} value(s) in {} the model has no feature for (a new occupation, say) were left out",
            f.unknown_values,
            a.fold_in_users.as_deref().unwrap_or(Path::new("")).display()
        );
    }
    if a.json {
        #[derive(Serialize)]
        struct J<'a> {
            out: &'a Path,
            method: &'a str,
            users: usize,
            /// The shard's first user: a row of the model, or a position in --user-list
            /// or --fold-in's users.
            first_user_row: usize,
            user_list: Option<&'a Path>,
            fold_in: Option<&'a Path>,
            /// With --fold-in: how many of its users had training items in the model.
            fold_in_known_users: Option<usize>,
            /// With --first-ratings: how many users' vectors came from the first-ratings map.
            first_ratings_users: Option<usize>,
            fold_in_users: Option<&'a Path>,
            /// With --fold-in-users: its values the model had no feature for (left out).
            unknown_feature_values: Option<usize>,
            fold_in_seconds: Option<f64>,
            excluded_items: usize,
            k: usize,
            seconds: f64,
            users_per_second: f64,
            threads: usize,
        }
        return super::print_json(&J {
            out: &a.out,
            method: method.name(),
            users: users.len(),
            first_user_row: range.start,
            user_list: a.user_list.as_deref(),
            fold_in: a.fold_in.as_deref(),
            fold_in_known_users: folded.as_ref().map(|f| f.known),
            first_ratings_users: (folded.as_ref())
                .filter(|_| a.first_ratings)
                .map(|f| f.mapped),
            fold_in_users: a.fold_in_users.as_deref(),
            unknown_feature_values: (folded.as_ref())
                .filter(|_| a.fold_in_users.is_some())
                .map(|f| f.unknown_values),
            fold_in_seconds: folded.as_ref().map(|f| f.seconds),
            excluded_items: blocked.len(),
            k: a.k,
            seconds: secs,
            users_per_second: users.len() as f64 / secs.max(1e-9),
            threads: rayon::current_num_threads(),
        });
    }
    if let Some(f) = &folded {
        let mapped = match a.first_ratings {
            true => format!(", {} from the first-ratings map", f.mapped),
            false => String::new(),
        };
        eprintln!(
            "folded in {} users from {} ({} of them with training items in the model{mapped}) in {:.2} s",
            f.own.len(),
            a.fold_in.as_deref().unwrap_or(Path::new("")).display(),
            f.known,
            f.seconds
        );
    }
    eprintln!(
        "scored {} users ({}) in {:.2} s: {:.0} users/s on {} threads; {}",
        users.len(),
        if lsh { "LSH" } else { "exact" },
        secs,
        users.len() as f64 / secs.max(1e-9),
        rayon::current_num_threads(),
        wrote(&a.out, ext, Rows::Users)
    );
    Ok(())
}

/// The extension of a batch output file, which must be `.tsv`, `.jsonl` or `.npy`.
fn batch_ext(out: &Path) -> Result<&str> {
    match out.extension().and_then(|e| e.to_str()) {
        Some(ext @ ("tsv" | "jsonl" | "npy")) => Ok(ext),
        _ => Err(Error::invalid(
            "--out",
            format!("{}: expected a .tsv, .jsonl or .npy file", out.display()),
        )),
    }
}

/// Scores `rows` a block at a time into `sink`, so memory does not grow with the rows, and
/// renames the output into place; returns the seconds spent scoring alone.
fn write_batch(
    mut sink: RecSink<'_>,
    rows: &[u32],
    what: &'static str,
    mut score: impl FnMut(&[u32]) -> Result<Vec<Vec<Scored>>>,
) -> Result<f64> {
    let bar = crate::progress::count_bar(rows.len() as u64, what);
    let mut secs = 0.0;
    for chunk in rows.chunks(4096) {
        let start = std::time::Instant::now();
        let lists = score(chunk)?;
        secs += start.elapsed().as_secs_f64();
        sink.write(chunk, &lists)?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    sink.finish()?;
    Ok(secs)
}

/// "wrote OUT", with the files written beside a `.npy`.
fn wrote(out: &Path, ext: &str, rows: Rows<'_>) -> String {
    let beside = match ext {
        "npy" => {
            let (r, i, s) = npy_companions(out, rows);
            format!(" with {}, {} and {}", r.display(), i.display(), s.display())
        }
        _ => String::new(),
    };
    format!("wrote {}{beside}", out.display())
}

/// The files `recommend-all --out OUT.npy` writes beside it: OUT.users.txt (the user id of
/// each row), OUT.items.txt (the item id of each item row) and OUT.scores.npy; for
/// `similar --all` the row ids are in OUT.rows.txt.
pub fn npy_companions(path: &Path, rows: Rows<'_>) -> (PathBuf, PathBuf, PathBuf) {
    (
        path.with_extension(match rows {
            Rows::Users | Rows::Named(_) => "users.txt",
            Rows::Items => "rows.txt",
        }),
        path.with_extension("items.txt"),
        path.with_extension("scores.npy"),
    )
}

/// What the rows of a batch output are: users (`recommend-all`, each with its recommended
/// items) or items (`similar --all`, each with the items most like it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rows<'a> {
    /// The model's users, by dense id.
    Users,
    /// The model's items, by dense id.
    Items,
    /// Users named by position in the list (`--fold-in`'s users, who may be new).
    Named(&'a [String]),
}

impl Rows<'_> {
    /// The column (and JSON key) naming a row, and the JSON key of its list.
    fn keys(self) -> (&'static str, &'static str) {
        match self {
            Rows::Users | Rows::Named(_) => ("user", "items"),
            Rows::Items => ("item", "similar"),
        }
    }

    /// The external id of row `r`.
    fn id(self, model: &Model, idx: Option<&Index>, r: u32) -> String {
        match self {
            Rows::Users => model.meta.user_ids[r as usize].clone(),
            Rows::Items => item_info(model, idx, r).0,
            Rows::Named(names) => names[r as usize].clone(),
        }
    }
}

/// Where `recommend-all` writes, block by block: a text file (`.tsv`, `.jsonl`), or the `.npy`
/// item rows with their scores and id lists. Nothing is renamed into place before
/// [`RecSink::finish`].
enum RecSink<'a> {
    Text {
        file: AtomicFile,
        jsonl: bool,
        rows: Rows<'a>,
        model: &'a Model,
        idx: Option<&'a Index>,
    },
    Npy(Box<NpyOut>),
}

/// The `.npy` side of [`RecSink`]: the id lists, the item rows and their scores.
struct NpyOut {
    ids: [AtomicFile; 2],
    rows: NpyWriter<i64>,
    scores: NpyWriter<f32>,
    k: usize,
}

impl<'a> RecSink<'a> {
    fn create(
        path: &Path,
        ext: &str,
        model: &'a Model,
        idx: Option<&'a Index>,
        rows: Rows<'a>,
        users: &[u32],
        k: usize,
    ) -> Result<Self> {
        if ext != "npy" {
            let mut file = AtomicFile::create(path)?;
            let jsonl = ext == "jsonl";
            if !jsonl {
                let header = match rows {
                    Rows::Users | Rows::Named(_) => "user\trank\titem\tscore",
                    Rows::Items => "item\trank\tsimilar\tscore",
                };
                writeln!(file, "{header}").map_err(|e| Error::io(path, e))?;
            }
            return Ok(RecSink::Text {
                file,
                jsonl,
                rows,
                model,
                idx,
            });
        }
        // The ids of the rows (users) and of the item rows, beside the arrays. The four files
        // are committed together when every user is written (`commit_together`): a failed run
        // leaves the previous run's files as they were, and a crash while renaming leaves no
        // item rows rather than old ones beside new ids.
        let (users_txt, items_txt, scores_npy) = npy_companions(path, rows);
        let mut user_ids = AtomicFile::create(&users_txt)?;
        (users.iter())
            .try_for_each(|&u| writeln!(user_ids, "{}", rows.id(model, idx, u)))
            .map_err(|e| Error::io(&users_txt, e))?;
        let mut item_ids = AtomicFile::create(&items_txt)?;
        let n_rows = model.n_items() + idx.map_or(0, |i| i.meta.appended.len());
        (0..n_rows as u32)
            .try_for_each(|i| writeln!(item_ids, "{}", item_info(model, idx, i).0))
            .map_err(|e| Error::io(&items_txt, e))?;
        Ok(RecSink::Npy(Box::new(NpyOut {
            ids: [user_ids, item_ids],
            rows: NpyWriter::create(path, &[users.len(), k])?,
            scores: NpyWriter::create(&scores_npy, &[users.len(), k])?,
            k,
        })))
    }

    /// Writes the lists of `users` (one per user, in order).
    fn write(&mut self, users: &[u32], lists: &[Vec<Scored>]) -> Result<()> {
        match self {
            RecSink::Text {
                file,
                jsonl,
                rows,
                model,
                idx,
            } => {
                let name = |i: u32| item_info(model, *idx, i).0;
                let (row_key, list_key) = rows.keys();
                let mut put = || -> std::io::Result<()> {
                    for (u, list) in users.iter().zip(lists) {
                        let user = rows.id(model, *idx, *u);
                        if *jsonl {
                            let items: Vec<String> = list.iter().map(|s| name(s.item)).collect();
                            let scores: Vec<f32> = list.iter().map(|s| s.score).collect();
                            let line = serde_json::json!({ row_key: user, list_key: items, "scores": scores });
                            writeln!(file, "{line}")?;
                        } else {
                            for (r, s) in list.iter().enumerate() {
                                writeln!(file, "{user}\t{}\t{}\t{}", r + 1, name(s.item), s.score)?;
                            }
                        }
                    }
                    Ok(())
                };
                put().map_err(|e| Error::io(file.path(), e))
            }
            RecSink::Npy(out) => {
                let NpyOut {
                    rows, scores, k, ..
                } = out.as_mut();
                let mut r = vec![-1i64; users.len() * *k];
                let mut v = vec![f32::NAN; users.len() * *k];
                for (u, list) in lists.iter().enumerate() {
                    for (j, s) in list.iter().enumerate() {
                        r[u * *k + j] = s.item as i64;
                        v[u * *k + j] = s.score;
                    }
                }
                rows.append(&r)?;
                scores.append(&v)
            }
        }
    }

    /// Renames what was written into place.
    fn finish(self) -> Result<()> {
        match self {
            RecSink::Text { file, .. } => file.commit(),
            RecSink::Npy(out) => {
                let NpyOut {
                    ids, rows, scores, ..
                } = *out;
                let [users, items] = ids;
                let companions = vec![users, items, scores.into_file()?];
                commit_together(rows.into_file()?, companions)
            }
        }
    }
}
