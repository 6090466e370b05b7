//! `lshrec demo`: the main job, end to end on MovieLens-100K.

use std::path::{Path, PathBuf};

use clap::Args;

use super::bench_cmd::{self, BenchArgs};
use super::index_cmd::{build_index, IndexKnobs};
use super::query_cmd::{run_query, QueryArgs};
use super::say;
use super::serve_cmd::{ModeArg, ModelArgs, SearchArgs};
use super::train_cmd::{self, TrainArgs};
use crate::error::{Error, Result};
use crate::recommend::{recommend, Method};
use crate::store::{atomic::write_atomic, Model};
use crate::train::ModelKind;

/// `lshrec demo`
#[derive(Debug, Args)]
#[command(
    after_help = "Fetches MovieLens-100K into --data if it is missing (a built-in copy of data/fetch-movielens.sh: GroupLens, then the recbole wheel), from any directory, trains LightGCN (with the iALS objective) on the P2 protocol (ratings ≥ 4, per-user 80/20 split: the references' own, per-user-numpy), evaluates it with full ranking, builds the LSH index, benchmarks exact against LSH on ML-100K and on a 1M-item synthetic set, writes every user's top-10 with titles, and recommends for a new user known by their first three ratings and demographics."
)]
pub struct DemoArgs {
    /// MovieLens-100K directory.
    #[arg(long, default_value = "data/ml-100k")]
    pub data: PathBuf,
    /// Output directory (model, index, top-10 file).
    #[arg(long, default_value = "demo-out")]
    pub out: PathBuf,
    /// Items of the synthetic scale benchmark (0 skips it).
    #[arg(long, default_value_t = 1_000_000)]
    pub scale_items: usize,
    /// Seed of the split, the training, the index's hyperplanes and the synthetic set.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// `data/fetch-movielens.sh`, built in so that `demo` fetches its data from any directory.
const FETCH_SCRIPT: &str = include_str!("../../data/fetch-movielens.sh");

/// Fetches MovieLens-100K into `dir` when it is missing, with the built-in copy of
/// `data/fetch-movielens.sh` (GroupLens first, then the recbole wheel; needs bash and Python 3).
fn ensure_data(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    eprintln!("== fetching MovieLens-100K into {}", dir.display());
    // `bash -c SCRIPT NAME ARGS…` runs the script with $0 = NAME, $1 = 100k, $2 = destination.
    let status = std::process::Command::new("bash")
        .arg("-c")
        .arg(FETCH_SCRIPT)
        .arg("fetch-movielens.sh")
        .arg("100k")
        .arg(dir)
        .status()
        .map_err(|e| Error::io(Path::new("bash"), e))?;
    if status.success() && dir.is_dir() {
        return Ok(());
    }
    Err(Error::invalid(
        "--data",
        format!(
            "{} is missing and could not be fetched (see the messages above); \
             data/fetch-movielens.sh 100k DIR fetches it by hand",
            dir.display()
        ),
    ))
}

fn section(title: &str) -> Result<()> {
    say!("\n== {title}")
}

/// Runs `lshrec demo`.
pub fn run(a: DemoArgs) -> Result<()> {
    let t0 = std::time::Instant::now();
    ensure_data(&a.data)?;
    let model_dir = a.out.join("model");
    section("train LightGCN on MovieLens-100K, protocol P2 (ratings >= 4, per-user 80/20 split as the references drew it, full ranking)")?;
    train_cmd::run_train(TrainArgs {
        data: Some(a.data.clone()),
        train: None,
        test: None,
        read: Default::default(),
        model: ModelKind::Lightgcn,
        out: model_dir.clone(),
        min_rating: Some(4.0),
        // The P2 references' own split (NumPy's draw), so that the figure printed stands next
        // to theirs on the same test pairs.
        split: Some("per-user-numpy:0.2".into()),
        eval: true,
        seed: a.seed,
        dim: None,
        epochs: None,
        lr: None,
        reg: None,
        alpha: None,
        unobserved_weight: None,
        reg_exponent: None,
        cg_steps: None,
        layers: None,
        batch: None,
        valid_frac: None,
        k: vec![10, 20],
        json: false,
        map_ridge: crate::train::coldstart::MAP_RIDGE,
        map_unobserved_weight: None,
        no_first_ratings: false,
        features: None,
        patience: None,
        low_ratings: None,
        negative_confidence: None,
        loss: None,
        neg_per_pos: 1,
        hard_negatives: None,
        backend: crate::train::backend::BackendChoice::Cpu,
        weights: None,
    })?;

    section("build the LSH index")?;
    let model = Model::open(&model_dir)?;
    let mut built = build_index(&model, &IndexKnobs::with_seed(a.seed))?;
    crate::index::build::write(&mut built, &model_dir.join("index"))?;
    say!(
        "{} items: {} tables x {} bits, {} norm range(s), {}-bit scan codes; {:.3} s, {}",
        built.meta.n_items,
        built.meta.tables,
        built.meta.bits,
        built.meta.ranges.len(),
        64 * built.meta.words,
        built.meta.build_seconds,
        built.meta.size_note()
    )?;

    let search = SearchArgs {
        mode: ModeArg::Scan,
        probes: 64,
        max_candidates: 100,
    };
    let bench_args =
        |model: Option<PathBuf>, synthetic: Option<String>, queries: Option<usize>| BenchArgs {
            model: ModelArgs::dir(model),
            synthetic,
            index: None,
            k: 10,
            queries,
            sweep: true,
            target: 0.9,
            latency_queries: 200,
            min_time: 0.2,
            knobs: IndexKnobs::with_seed(a.seed),
            search: search.clone(),
            json: false,
            plot: None,
        };
    section("benchmark on MovieLens-100K: exact vs LSH (1,682 items: exact should win, and the bench says so)")?;
    bench_cmd::run(bench_args(Some(model_dir.clone()), None, None))?;
    if a.scale_items > 0 {
        section(&format!("benchmark at scale: a synthetic MIPS set of {} items x 64 dims (log-normal norms, clustered directions)", a.scale_items))?;
        let mut b = bench_args(
            None,
            Some(format!(
                "items={},users=2000,dim=64,seed={}",
                a.scale_items, a.seed
            )),
            None,
        );
        b.plot = Some(a.out.join("pareto.svg"));
        bench_cmd::run(b)?;
    }

    section("top-10 for every user")?;
    let users: Vec<u32> = (0..model.n_users() as u32).collect();
    let recs = recommend(&model, &users, 10, Method::Exact(None), false, &[])?;
    let path = a.out.join("top10.tsv");
    write_atomic(&path, |w| {
        writeln!(w, "user\trank\titem\tscore\ttitle\tgenres")?;
        for (u, list) in users.iter().zip(&recs) {
            for (r, s) in list.iter().enumerate() {
                let c = model.meta.catalogue.get(s.item as usize);
                writeln!(
                    w,
                    "{}\t{}\t{}\t{:.4}\t{}\t{}",
                    model.meta.user_ids[*u as usize],
                    r + 1,
                    model.meta.item_ids[s.item as usize],
                    s.score,
                    c.and_then(|c| c.title.clone()).unwrap_or_default(),
                    c.map(|c| c.genres.join("|")).unwrap_or_default()
                )?;
            }
        }
        Ok(())
    })?;
    say!("wrote {} ({} users x 10)", path.display(), users.len())?;
    if let Some(u) = model.meta.user_ids.first() {
        say!(
            "for one user, try: lshrec query --model {} --user {u}",
            model_dir.display()
        )?;
    }
    if let Some(i) = model.meta.item_ids.first() {
        say!(
            "for the items most like one, try: lshrec similar --model {} --item {i}",
            model_dir.display()
        )?;
    }

    let liked = ["50", "258", "100"];
    if liked.iter().any(|id| model.item(id).is_err()) {
        say!("\n(no new-user example: it needs MovieLens-100K's movies {liked:?})")?;
    } else {
        section("a new user, known only by their first three ratings (Star Wars, Contact, Fargo) and as a 25-year-old woman: the first-ratings map's vector, served through the index")?;
        say!(
            "(the same as: lshrec query --model {0} --index {0}/index --liked {1} --first-ratings --age 25 --gender F)",
            model_dir.display(),
            liked.join(",")
        )?;
        run_query(QueryArgs {
            model: ModelArgs::dir(Some(model_dir.clone())),
            index: Some(model_dir.join("index")),
            user: None,
            liked: liked.map(String::from).to_vec(),
            disliked: Vec::new(),
            age: Some(25),
            gender: Some("F".into()),
            occupation: None,
            feature: Vec::new(),
            prior_weight: crate::train::coldstart::PRIOR_WEIGHT,
            first_ratings: true,
            k: 10,
            exact: false,
            keep_seen: false,
            exclude_items: None,
            search,
            json: false,
        })?;
    }
    say!(
        "\ndemo finished in {:.1} s; model, index, plot and top-10 in {}",
        t0.elapsed().as_secs_f64(),
        a.out.display()
    )?;
    Ok(())
}
