//! `lshrec bench`: exact against LSH, in one run, on the same embeddings.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::index_cmd::IndexKnobs;
use super::serve_cmd::{ModelArgs, SearchArgs};
use crate::bench::{self, Row};
use crate::data::synth::{mips, MipsConfig};
use crate::error::{Error, Result};
use crate::index::{self, Index};
use crate::store::Model;

/// `lshrec bench`
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  lshrec bench --model model/ --sweep\n  lshrec bench --synthetic items=1000000,users=10000,dim=64 --sweep --plot pareto.svg\n  lshrec bench --users U.npy --items I.npy --k 10 --json"
)]
pub struct BenchArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// A synthetic MIPS set instead of a model: items=N,users=Q,dim=D[,clusters=C,sigma=S,seed=X].
    #[arg(long, conflicts_with_all = ["model", "users", "items"])]
    pub synthetic: Option<String>,
    /// An existing index (default: build one with the knobs below).
    #[arg(long)]
    pub index: Option<PathBuf>,
    /// Items per query: recall@K and the timings are for this K.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Number of query users (the first N; default all, at most 10,000).
    #[arg(long)]
    pub queries: Option<usize>,
    /// Measure the default sweep of probe and scan settings.
    #[arg(long)]
    pub sweep: bool,
    /// Recall the verdict line aims for.
    #[arg(long, default_value_t = 0.9)]
    pub target: f64,
    /// Single-query latencies measured per setting.
    #[arg(long, default_value_t = 300)]
    pub latency_queries: usize,
    /// Seconds of timed passes per setting: after one untimed pass, the whole batch is scored
    /// again until the passes add up to this, and users/s comes from the median pass (0: one
    /// timed pass).
    #[arg(long, default_value_t = 0.2)]
    pub min_time: f64,
    #[command(flatten)]
    pub knobs: IndexKnobs,
    #[command(flatten)]
    pub search: SearchArgs,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// Write an SVG plot of the recall/throughput curve.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

/// Parses `items=1000000,users=10000,dim=64,…`.
pub fn parse_synthetic(s: &str) -> Result<MipsConfig> {
    let mut c = MipsConfig::default();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').ok_or_else(|| {
            Error::invalid("--synthetic", format!("{part:?}: expected key=value"))
        })?;
        let bad = || Error::invalid("--synthetic", format!("{part:?}: not a valid number"));
        match k.trim() {
            "items" => c.items = v.parse().map_err(|_| bad())?,
            "users" => c.users = v.parse().map_err(|_| bad())?,
            "dim" => c.dim = v.parse().map_err(|_| bad())?,
            "clusters" => c.clusters = v.parse().map_err(|_| bad())?,
            "sigma" => c.norm_sigma = v.parse().map_err(|_| bad())?,
            "spread" => c.spread = v.parse().map_err(|_| bad())?,
            "seed" => c.seed = v.parse().map_err(|_| bad())?,
            other => {
                return Err(Error::invalid(
                    "--synthetic",
                    format!(
                        "unknown key {other:?} (items, users, dim, clusters, sigma, spread, seed)"
                    ),
                ))
            }
        }
    }
    c.check()?;
    Ok(c)
}

#[derive(Serialize)]
struct Report<'a> {
    source: String,
    items: usize,
    queries: usize,
    dim: usize,
    k: usize,
    threads: usize,
    simd: String,
    index_build_seconds: f64,
    /// With the copy of the vectors when `index_has_vectors`.
    index_bytes_per_item: f64,
    index_has_vectors: bool,
    vector_bytes_per_item: usize,
    tables: usize,
    bits: usize,
    norm_ranges: usize,
    rows: &'a [Row],
    verdict: String,
}

/// Runs `lshrec bench`.
pub fn run(a: BenchArgs) -> Result<()> {
    if !(a.min_time.is_finite() && (0.0..=3600.0).contains(&a.min_time)) {
        return Err(Error::invalid(
            "--min-time",
            format!("{}: expected seconds between 0 and 3600", a.min_time),
        ));
    }
    if !(a.target > 0.0 && a.target <= 1.0) {
        return Err(Error::invalid(
            "--target",
            format!("{}: expected a recall@K above 0 and at most 1", a.target),
        ));
    }
    if a.latency_queries == 0 {
        return Err(Error::invalid(
            "--latency-queries",
            "must be at least 1 (the p50/p99 columns come from them)",
        ));
    }
    if let Some(p) = &a.plot {
        if p.extension().and_then(|e| e.to_str()) != Some("svg") {
            return Err(Error::invalid(
                "--plot",
                format!("{}: expected an .svg file (the plot is SVG)", p.display()),
            ));
        }
    }
    let (source, model): (String, Option<Model>) = match &a.synthetic {
        Some(_) => (String::new(), None),
        None => {
            let m = a.model.open()?;
            (
                m.dir
                    .as_ref()
                    .map(|d| d.display().to_string())
                    .unwrap_or_else(|| "external .npy".into()),
                Some(m),
            )
        }
    };
    let synth;
    let (users, items, d, source): (&[f32], &[f32], usize, String) = match (&a.synthetic, &model) {
        (Some(s), _) => {
            let c = parse_synthetic(s)?;
            eprintln!(
                "generating a synthetic MIPS set: {} items, {} users, {} dims (seed {})",
                c.items, c.users, c.dim, c.seed
            );
            synth = mips(&c);
            (&synth.0, &synth.1, c.dim, format!("synthetic {s}"))
        }
        (None, Some(m)) => (m.users.as_slice(), m.items.as_slice(), m.dim(), source),
        _ => {
            return Err(Error::invalid(
                "input",
                "give --model, --users/--items or --synthetic",
            ))
        }
    };
    let n_users = users.len() / d;
    let nq = a.queries.unwrap_or(n_users.min(10_000)).min(n_users);
    if nq == 0 {
        return Err(Error::invalid("--queries", "must be at least 1"));
    }
    crate::score::check_k(a.k, items.len() / d)?;
    let queries = &users[..nq * d];
    let empty: &[u32] = &[];
    let seen = model.as_ref().and_then(|m| m.seen.as_ref());
    let exclude = move |q: usize| -> &[u32] {
        match seen {
            Some(s) if q < s.rows => s.row(q),
            _ => empty,
        }
    };
    let w = bench::Workload {
        queries,
        items,
        dim: d,
        exclude: &exclude,
        k: a.k,
    };

    let fingerprint = model.as_ref().map(|m| m.meta.fingerprint()).unwrap_or(0);
    let idx = match &a.index {
        Some(p) => {
            let i = Index::open(p)?;
            i.check_model(fingerprint, items.len() / d, d)?;
            i
        }
        None => {
            let n = items.len() / d;
            let cfg = a.knobs.config(n);
            Index::from_built(index::build(items, d, &cfg, fingerprint)?)?
        }
    };
    let m = idx.meta.clone();
    eprintln!(
        "index: {} tables × {} bits, {} norm ranges, {}-bit scan codes, built in {:.2} s, {}",
        m.tables,
        m.bits,
        m.ranges.len(),
        64 * m.words,
        m.build_seconds,
        m.size_note()
    );
    let timing = bench::Timing {
        min_secs: a.min_time,
        latency_queries: a.latency_queries,
    };
    let (exact_row, truth) = bench::exact(&w, timing)?;
    let exact_ups = exact_row.users_per_s;
    let mut rows = vec![exact_row];
    let settings = if a.sweep {
        let mut all = bench::sweep(a.k);
        if m.words == 0 {
            // A probe-only index (--scan-bits 0): the sweep's scan settings cannot run.
            all.retain(|p| idx.check_params(p).is_ok());
            if !crate::progress::is_quiet() {
                eprintln!("note: the index has no scan codes (built with --scan-bits 0): the sweep runs the probe settings only");
            }
        }
        all
    } else {
        let p = a.search.params(a.k)?;
        idx.check_params(&p)?;
        vec![p]
    };
    for p in settings {
        rows.push(bench::lsh(&w, &idx, p, &truth, exact_ups, timing));
    }
    bench::mark_pareto(&mut rows);
    let verdict = bench::verdict(&rows, a.target);
    if let Some(p) = &a.plot {
        crate::store::atomic::write_atomic(p, |wr| {
            wr.write_all(bench::svg(&rows, a.k).as_bytes())
        })?;
    }
    let report = Report {
        source,
        items: items.len() / d,
        queries: nq,
        dim: d,
        k: a.k,
        threads: rayon::current_num_threads(),
        simd: crate::simd::dispatch_names(m.words.max(1)),
        index_build_seconds: m.build_seconds,
        index_bytes_per_item: m.bytes_per_item(),
        index_has_vectors: m.has_vectors(),
        vector_bytes_per_item: d * 4,
        tables: m.tables,
        bits: m.bits,
        norm_ranges: m.ranges.len(),
        rows: &rows,
        verdict,
    };
    super::report(a.json, &report, || {
        format!(
            "{} items × {} dims, {} queries, k = {}, {} threads ({})\n{}{}\n",
            report.items,
            d,
            nq,
            a.k,
            report.threads,
            report.simd,
            bench::table(&rows, a.k),
            report.verdict
        )
    })
}
