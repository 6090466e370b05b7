//! The command line: clap derive structs, turned into validated configurations before any work
//! starts, then dispatched. `main.rs` only maps errors to exit codes.

pub mod batch_out;
pub mod bench_cmd;
pub mod cold_cmd;
pub mod data_cmd;
pub mod demo_cmd;
pub mod eval_cmd;
pub mod index_cmd;
pub mod kernels_cmd;
pub mod query_cmd;
pub mod recommend_all_cmd;
pub mod serve_cmd;
pub mod similar_cmd;
pub mod train_cmd;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::data::{AttributeFile, Dataset, Format, GenericOptions, LoadOptions};
use crate::error::{Error, Result};

/// lshrec: train recommendation embeddings and serve top-K recommendations through LSH.
#[derive(Debug, Parser)]
#[command(
    name = "lshrec",
    version,
    about,
    long_about = "lshrec trains user and item embeddings from rating files (MovieLens or any \
user/item/rating file) and serves top-K recommendations from memory-mapped embeddings, exactly or \
through random-hyperplane LSH.",
    after_help = "Examples:\n  data/fetch-movielens.sh 100k\n  lshrec data stats data/ml-100k\n  lshrec data split data/ml-100k --method per-user:0.2 --min-rating 4 --out split/"
)]
pub struct Cli {
    /// No progress bars.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Worker threads (default: all cores).
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<usize>,
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Explore, split, convert and synthesise datasets.
    #[command(subcommand)]
    Data(DataCommand),
    /// Train a model (iALS, …) and save it as a model directory.
    Train(Box<train_cmd::TrainArgs>),
    /// Evaluate a model on a train/test pair with full ranking (training positives excluded).
    Eval(eval_cmd::EvalArgs),
    /// Build LSH indexes.
    #[command(subcommand)]
    Index(index_cmd::IndexCommand),
    /// One user's top-K recommendations, with titles, beside their own history; or a new
    /// user's, from liked items (--liked) and/or demographics.
    Query(query_cmd::QueryArgs),
    /// A vector for a new item known only by its genres and year (item cold start), ready for
    /// `index append`.
    EmbedItem(cold_cmd::EmbedItemArgs),
    /// Batch-score every user (or one shard of them) into a file.
    RecommendAll(recommend_all_cmd::RecommendAllArgs),
    /// The items most like one item ("more like this"), by the cosine of their vectors.
    Similar(similar_cmd::SimilarArgs),
    /// Measure users/s and recall@K of exact scoring and LSH settings, in one run.
    Bench(bench_cmd::BenchArgs),
    /// The main job: fetch MovieLens-100K, train, evaluate, index, benchmark, recommend.
    Demo(demo_cmd::DemoArgs),
    /// The CUDA kernels: list them, or compile them to PTX with NVRTC (no GPU needed).
    #[command(subcommand)]
    Kernels(kernels_cmd::KernelsCommand),
}

/// `lshrec data …`
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Print counts, sparsity, the rating histogram, degree distributions, genres and
    /// demographics.
    #[command(
        after_help = "Examples:\n  lshrec data stats data/ml-100k\n  lshrec data stats ratings.csv --format generic --json"
    )]
    Stats {
        #[command(flatten)]
        input: InputArgs,
        /// Keep only ratings ≥ R (as implicit positives) before computing.
        #[arg(long, value_name = "R")]
        min_rating: Option<f32>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Split a dataset into train.tsv and test.tsv (user, item, rating, timestamp; your own ids).
    #[command(
        after_help = "Methods:\n  random:F          a random fraction F of all rows (protocol P1: random:0.2)\n  per-user:F[:MIN]  floor(F·n) of each user's rows, for users with ≥ MIN (default 5) rows (P2)\n  per-user-numpy:F[:MIN] the same, drawn as numpy.random.RandomState(seed).permutation draws it over each user's rows in item id order: a Python pipeline's split bit for bit (at --seed 42, the split the P2 references were measured on)\n  leave-last:N      each user's N latest rows (by timestamp)\n  kfold:K[:FOLD]    fold FOLD of a K-way partition\n  cold-items:F      a fraction F of the rated items with all their rows (P3: cold-items:0.1), drawn before --min-rating; lists them in cold_items.txt\n  cold-users:F[:MIN] a fraction F of the users with ≥ MIN (default 15) positives, with all their rows (user cold start, for eval --cold-users); lists them in cold_users.txt\n\nExamples:\n  lshrec data split data/ml-100k --method per-user:0.2 --min-rating 4 --seed 42 --out split/\n  lshrec data split data/ml-100k --method cold-items:0.1 --min-rating 4 --seed 1 --out p3/\n  lshrec data split data/ml-100k --method cold-users:0.1 --min-rating 4 --seed 1 --out cu/"
    )]
    Split {
        #[command(flatten)]
        input: InputArgs,
        /// Split method (see below).
        #[arg(long, default_value = "random:0.2")]
        method: String,
        /// Seed of the random split.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Keep only ratings ≥ R, as positives of weight 1, before splitting (train.tsv,
        /// test.tsv); the training part with its ratings, those below R included, also goes to
        /// train_rated.tsv (for iALS's known negatives: `train --train train_rated.tsv
        /// --min-rating R`).
        #[arg(long, value_name = "R")]
        min_rating: Option<f32>,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Generate a MovieLens-shaped dataset with planted structure.
    #[command(
        after_help = "Examples:\n  lshrec data synth --users 943 --items 1682 --ratings 100000 --out synth/ --to ml-100k\n  lshrec data synth --users 100000 --items 1000000 --ratings 10000000 --out big/ --to generic"
    )]
    Synth {
        /// Number of users.
        #[arg(long, default_value_t = 943)]
        users: usize,
        /// Number of items.
        #[arg(long, default_value_t = 1682)]
        items: usize,
        /// Number of ratings (distinct user–item pairs).
        #[arg(long, default_value_t = 100_000)]
        ratings: usize,
        /// Dimension of the planted taste space.
        #[arg(long, default_value_t = 16)]
        dim: usize,
        /// Zipf exponent of item popularity.
        #[arg(long, default_value_t = 0.9)]
        zipf: f64,
        /// Seed: the same seed gives the same files.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Output format.
        #[arg(long, value_enum, default_value = "ml-100k")]
        to: Format,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a synthetic maximum-inner-product set (users.npy, items.npy) shaped like trained
    /// embeddings: clustered directions, log-normal item norms.
    #[command(
        after_help = "Example:\n  lshrec data synth-mips --items 1000000 --users 10000 --dim 64 --out mips1m/"
    )]
    SynthMips {
        /// Number of item vectors.
        #[arg(long, default_value_t = 100_000)]
        items: usize,
        /// Number of user (query) vectors.
        #[arg(long, default_value_t = 10_000)]
        users: usize,
        /// Dimension of the vectors.
        #[arg(long, default_value_t = 64)]
        dim: usize,
        /// Number of direction clusters the vectors are drawn around.
        #[arg(long, default_value_t = 256)]
        clusters: usize,
        /// Standard deviation of log item norms.
        #[arg(long, default_value_t = 0.5)]
        sigma: f64,
        /// Seed: the same seed gives the same files.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Rewrite a dataset in another format.
    #[command(
        after_help = "Example:\n  lshrec data convert data/ml-100k --to ml-100k --out /tmp/ml-100k-grouplens"
    )]
    Convert {
        #[command(flatten)]
        input: InputArgs,
        /// Output format.
        #[arg(long, value_enum)]
        to: Format,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Where a dataset comes from and how to read it.
#[derive(Debug, Args)]
pub struct InputArgs {
    /// A dataset directory (format detected) or a ratings file.
    pub path: PathBuf,
    #[command(flatten)]
    pub read: ReadArgs,
}

impl InputArgs {
    /// The validated load options.
    pub fn load_options(&self) -> Result<LoadOptions> {
        self.read.load_options()
    }
}

/// How to read a dataset: format, generic-file columns and attribute files.
#[derive(Debug, Args, Default)]
pub struct ReadArgs {
    /// Override format detection.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Generic files: the delimiter (tab, comma, semicolon, pipe, ::, space); sniffed from the
    /// first line when not given.
    #[arg(long)]
    pub delimiter: Option<String>,
    /// Generic files: the user column's header name.
    #[arg(long)]
    pub user_col: Option<String>,
    /// Generic files: the item column's header name.
    #[arg(long)]
    pub item_col: Option<String>,
    /// Generic files: the rating column's header name.
    #[arg(long)]
    pub rating_col: Option<String>,
    /// Generic files: the timestamp column's header name.
    #[arg(long)]
    pub timestamp_col: Option<String>,
    /// Item attributes for any dataset: a delimited file with a header, the item id first, then
    /// categorical columns (several values in a cell separated by `|`). Each column:value is a
    /// side feature, like the genres of MovieLens (numbers: see --item-numeric-cols).
    #[arg(long, value_name = "FILE")]
    pub item_features: Option<PathBuf>,
    /// The --item-features columns to use (default: every column but the id).
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "COLS",
        requires = "item_features"
    )]
    pub item_feature_cols: Option<Vec<String>>,
    /// The --item-features columns that hold numbers (a price, a duration, a year): each cell
    /// one number or empty. A value is interpolated between the two nearest of up to ten
    /// quantile knots, so a new item's value that no training item had still has a vector.
    /// Other columns are categories: each value its own feature.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "COLS",
        requires = "item_features"
    )]
    pub item_numeric_cols: Vec<String>,
    /// User attributes, in the same layout as --item-features (the user id first).
    #[arg(long, value_name = "FILE")]
    pub user_features: Option<PathBuf>,
    /// The --user-features columns to use (default: every column but the id).
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "COLS",
        requires = "user_features"
    )]
    pub user_feature_cols: Option<Vec<String>>,
    /// The --user-features columns that hold numbers (an age, a tenure), as --item-numeric-cols.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "COLS",
        requires = "user_features"
    )]
    pub user_numeric_cols: Vec<String>,
}

impl ReadArgs {
    /// The validated load options.
    pub fn load_options(&self) -> Result<LoadOptions> {
        let delimiter = match &self.delimiter {
            None => None,
            Some(d) => Some(crate::data::text::Delimiter::parse(d).ok_or_else(|| {
                Error::invalid(
                    "--delimiter",
                    format!("{d:?}: expected tab, comma, semicolon, pipe, :: or space"),
                )
            })?),
        };
        let attributes =
            |path: &Option<PathBuf>, cols: &Option<Vec<String>>, numeric: &Vec<String>| {
                path.as_ref().map(|p| AttributeFile {
                    path: p.clone(),
                    columns: cols.clone(),
                    numeric: numeric.clone(),
                })
            };
        Ok(LoadOptions {
            format: self.format,
            generic: GenericOptions {
                delimiter,
                user_col: self.user_col.clone(),
                item_col: self.item_col.clone(),
                rating_col: self.rating_col.clone(),
                timestamp_col: self.timestamp_col.clone(),
            },
            item_attributes: attributes(
                &self.item_features,
                &self.item_feature_cols,
                &self.item_numeric_cols,
            ),
            user_attributes: attributes(
                &self.user_features,
                &self.user_feature_cols,
                &self.user_numeric_cols,
            ),
            no_side_files: false,
        })
    }
}

/// Validates a `--min-rating` value.
pub fn check_min_rating(r: Option<f32>) -> Result<Option<f32>> {
    match r {
        Some(v) if !v.is_finite() => Err(Error::invalid("--min-rating", "must be a finite number")),
        other => Ok(other),
    }
}

/// Refuses a `--min-rating` that no rating of `ds` (named `what`) reaches: there would be no
/// positive to train on or to evaluate, only zeros. Data without a rating column has nothing
/// to compare, and all its rows stay positives.
pub fn check_min_rating_reached(
    ds: &crate::data::Dataset,
    min_rating: Option<f32>,
    what: &std::path::Path,
) -> Result<()> {
    let Some(r) = min_rating else { return Ok(()) };
    if !ds.has_ratings || ds.interactions.is_empty() {
        return Ok(());
    }
    let (lo, hi) = crate::train::rating_range(ds);
    if hi < r {
        return Err(Error::invalid(
            "--min-rating",
            format!(
                "{r}: no rating of {} reaches it (they run from {lo} to {hi}), so nothing would be a positive",
                what.display()
            ),
        ));
    }
    Ok(())
}

/// Refuses a split that held nothing out (`leave-last:1000` when every user has fewer
/// interactions): there would be nothing to evaluate on.
pub fn check_holds_out(test: &crate::data::Dataset, flag: &str, spec: &str) -> Result<()> {
    if test.interactions.is_empty() {
        return Err(Error::invalid(
            flag,
            format!("{spec} holds out nothing from this data ({} users, {} items: none qualifies), so there would be nothing to evaluate on", test.n_users(), test.n_items()),
        ));
    }
    Ok(())
}

/// The most worker threads `--threads` takes: more than the cores is allowed (to reproduce a
/// model trained with another thread count), but each thread costs a stack.
const MAX_THREADS: usize = 1024;

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    crate::progress::set_quiet(cli.quiet);
    if let Some(n) = cli.threads {
        if !(1..=MAX_THREADS).contains(&n) {
            return Err(Error::invalid(
                "--threads",
                format!(
                    "{n}: must be between 1 and {MAX_THREADS} (this machine has {} cores)",
                    std::thread::available_parallelism().map_or(1, |c| c.get())
                ),
            ));
        }
        // The global pool can only be built once; a second build in the same process is harmless.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global();
    }
    match cli.command {
        Command::Data(cmd) => data_cmd::run(cmd),
        Command::Train(a) => train_cmd::run_train(*a),
        Command::Eval(a) => eval_cmd::run_eval(a),
        Command::Index(c) => index_cmd::run_index(c),
        Command::Query(a) => query_cmd::run_query(a),
        Command::EmbedItem(a) => cold_cmd::run_embed_item(a),
        Command::RecommendAll(a) => recommend_all_cmd::run_recommend_all(a),
        Command::Similar(a) => similar_cmd::run_similar(a),
        Command::Bench(a) => bench_cmd::run(a),
        Command::Demo(a) => demo_cmd::run(a),
        Command::Kernels(c) => kernels_cmd::run(c),
    }
}

/// `println!` that returns a failed write as an [`Error::Io`] on `<stdout>` instead of
/// panicking: `lshrec kernels list | true` exits 0 (`main` takes a broken pipe for a reader
/// that had enough), and a full disk behind `> file` is an error, not a panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
            .map_err(|e| $crate::error::Error::io("<stdout>", e))
    }};
}
pub(crate) use say;

/// Prints a command's summary as pretty JSON on stdout (`--json`).
pub(crate) fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("summaries serialise");
    say!("{text}")
}

/// Prints a command's result on stdout: `value` as pretty JSON with `--json`, else the text
/// `human` builds for people, written as it is (it carries its own final newline). A failed
/// write is an [`Error::Io`] on `<stdout>`, as with [`say!`].
pub(crate) fn report<T: serde::Serialize>(
    json: bool,
    value: &T,
    human: impl FnOnce() -> String,
) -> Result<()> {
    if json {
        return print_json(value);
    }
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    out.write_all(human().as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("<stdout>", e))
}

/// Says on stderr what the readers noted about `ds`'s files ([`Dataset::notes`]: a header
/// column left unread, say).
pub(crate) fn note_reading(ds: &Dataset) {
    if crate::progress::is_quiet() {
        return;
    }
    for n in &ds.notes {
        eprintln!("note: {n}");
    }
}

/// [`note_reading`], then how many rows the duplicate rule dropped, so that no column or row
/// vanishes silently (`data stats` reports the duplicates on stdout).
pub(crate) fn note_dataset(ds: &Dataset) {
    note_reading(ds);
    if ds.duplicates == 0 || crate::progress::is_quiet() {
        return;
    }
    let files: Vec<String> = ds.sources.iter().map(|p| p.display().to_string()).collect();
    eprintln!(
        "note: {}: {} duplicate user-item row{} dropped (the latest timestamp wins, then the later line)",
        files.join(", "),
        ds.duplicates,
        if ds.duplicates == 1 { "" } else { "s" }
    );
}
