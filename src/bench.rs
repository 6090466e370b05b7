//! Serving benchmark: exact scoring and every LSH setting measured in the same run on the same
//! embeddings, with recall@K against the exact lists, users per second over the whole batch,
//! single-query latency percentiles, and the recall/throughput Pareto front.

use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::error::Result;
use crate::eval::recall_vs_exact;
use crate::index::{Index, Mode, Scratch, SearchParams};
use crate::score::{topk_exact, Scored};

/// One measured configuration.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// `exact`, `probe` or `scan`.
    pub method: String,
    pub probes: usize,
    pub max_candidates: usize,
    pub recall: f64,
    pub users_per_s: f64,
    pub speedup: f64,
    pub candidates_per_query: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub pareto: bool,
}

/// The embeddings under test.
pub struct Workload<'a> {
    pub queries: &'a [f32],
    pub items: &'a [f32],
    pub dim: usize,
    /// Seen items per query (sorted), or empty.
    pub exclude: &'a (dyn Fn(usize) -> &'a [u32] + Sync),
    pub k: usize,
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Times exact scoring; returns its row and the exact lists (the ground truth).
pub fn exact(w: &Workload<'_>, latency_queries: usize) -> Result<(Row, Vec<Vec<Scored>>)> {
    let nq = w.queries.len() / w.dim;
    let start = Instant::now();
    let truth = topk_exact(w.queries, w.items, w.dim, w.k, w.exclude)?;
    let secs = start.elapsed().as_secs_f64();
    let mut lat = Vec::new();
    for q in 0..latency_queries.min(nq) {
        let t = Instant::now();
        let ex = (w.exclude)(q);
        topk_exact(
            &w.queries[q * w.dim..(q + 1) * w.dim],
            w.items,
            w.dim,
            w.k,
            &|_| ex,
        )?;
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let row = Row {
        method: "exact".into(),
        probes: 0,
        max_candidates: w.items.len() / w.dim,
        recall: 1.0,
        users_per_s: nq as f64 / secs,
        speedup: 1.0,
        candidates_per_query: (w.items.len() / w.dim) as f64,
        p50_us: percentile(&mut lat.clone(), 0.5),
        p99_us: percentile(&mut lat, 0.99),
        pareto: true,
    };
    Ok((row, truth))
}

/// Times one LSH setting against the exact lists.
pub fn lsh(
    w: &Workload<'_>,
    index: &Index,
    p: SearchParams,
    truth: &[Vec<Scored>],
    exact_ups: f64,
    latency_queries: usize,
) -> Row {
    let nq = w.queries.len() / w.dim;
    let n_items = w.items.len() / w.dim;
    let start = Instant::now();
    let res: Vec<(Vec<Scored>, usize)> = (0..nq)
        .into_par_iter()
        .map_init(
            || Scratch::new(n_items),
            |s, q| {
                index.search(
                    w.items,
                    &w.queries[q * w.dim..(q + 1) * w.dim],
                    (w.exclude)(q),
                    &p,
                    s,
                );
                (s.out.clone(), s.candidates)
            },
        )
        .collect();
    let secs = start.elapsed().as_secs_f64();
    let cands = res.iter().map(|r| r.1).sum::<usize>() as f64 / nq.max(1) as f64;
    let lists: Vec<Vec<Scored>> = res.into_iter().map(|r| r.0).collect();
    let mut lat = Vec::new();
    let mut s = Scratch::new(n_items);
    for q in 0..latency_queries.min(nq) {
        let t = Instant::now();
        index.search(
            w.items,
            &w.queries[q * w.dim..(q + 1) * w.dim],
            (w.exclude)(q),
            &p,
            &mut s,
        );
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let ups = nq as f64 / secs;
    Row {
        method: if p.mode == Mode::Scan {
            "scan".into()
        } else {
            "probe".into()
        },
        probes: p.probes,
        max_candidates: p.max_candidates,
        recall: recall_vs_exact(&lists, truth, w.k),
        users_per_s: ups,
        speedup: ups / exact_ups,
        candidates_per_query: cands,
        p50_us: percentile(&mut lat.clone(), 0.5),
        p99_us: percentile(&mut lat, 0.99),
        pareto: false,
    }
}

/// Marks the rows no other row beats on both recall and throughput.
pub fn mark_pareto(rows: &mut [Row]) {
    for i in 0..rows.len() {
        rows[i].pareto = !rows.iter().enumerate().any(|(j, o)| {
            j != i
                && o.recall >= rows[i].recall
                && o.users_per_s >= rows[i].users_per_s
                && (o.recall > rows[i].recall || o.users_per_s > rows[i].users_per_s)
        });
    }
}

/// The default sweep.
pub fn sweep(k: usize) -> Vec<SearchParams> {
    let mut v = Vec::new();
    for probes in [8, 16, 32, 64, 128, 256, 512] {
        v.push(SearchParams {
            k,
            probes,
            max_candidates: 1 << 20,
            mode: Mode::Probe,
        });
    }
    for c in [10, 20, 40, 60, 80, 120, 160, 240, 320, 640] {
        v.push(SearchParams {
            k,
            probes: 0,
            max_candidates: c.max(k),
            mode: Mode::Scan,
        });
    }
    v
}

/// A table for people.
pub fn table(rows: &[Row], k: usize) -> String {
    let mut s = format!(
        "{:<6} {:>6} {:>8} {:>9} {:>11} {:>8} {:>10} {:>9} {:>9}  pareto\n",
        "method",
        "probes",
        "max_cand",
        &format!("recall@{k}"),
        "users/s",
        "speedup",
        "cand/query",
        "p50 µs",
        "p99 µs"
    );
    for r in rows {
        s.push_str(&format!(
            "{:<6} {:>6} {:>8} {:>9.4} {:>11.0} {:>7.2}x {:>10.0} {:>9.1} {:>9.1}  {}\n",
            r.method,
            r.probes,
            if r.max_candidates >= 1 << 20 {
                "-".to_string()
            } else {
                r.max_candidates.to_string()
            },
            r.recall,
            r.users_per_s,
            r.speedup,
            r.candidates_per_query,
            r.p50_us,
            r.p99_us,
            if r.pareto { "*" } else { "" }
        ));
    }
    s
}

/// The honest one-line verdict.
pub fn verdict(rows: &[Row], target: f64) -> String {
    let best = rows
        .iter()
        .filter(|r| r.method != "exact" && r.recall >= target)
        .max_by(|a, b| a.users_per_s.total_cmp(&b.users_per_s));
    match best {
        Some(b) if b.speedup > 1.0 => format!("at recall@K ≥ {target}, the best LSH setting ({} {}) serves {:.0} users/s, {:.1}x exact", b.method, if b.method == "scan" { b.max_candidates } else { b.probes }, b.users_per_s, b.speedup),
        Some(b) => format!("exact scoring wins at this size: the best LSH setting with recall@K ≥ {target} reaches only {:.2}x exact", b.speedup),
        None => format!("no LSH setting reached recall@K ≥ {target}; exact scoring is the answer here"),
    }
}

/// An SVG plot of recall (x) against users/s (y, log scale).
pub fn svg(rows: &[Row], k: usize) -> String {
    let (w, h, m) = (640.0, 420.0, 60.0);
    let ymax = rows
        .iter()
        .map(|r| r.users_per_s)
        .fold(1.0, f64::max)
        .log10()
        .ceil();
    let ymin = rows
        .iter()
        .map(|r| r.users_per_s)
        .fold(f64::MAX, f64::min)
        .max(1.0)
        .log10()
        .floor();
    let xmin = rows
        .iter()
        .map(|r| r.recall)
        .fold(1.0, f64::min)
        .clamp(0.0, 0.5);
    let x = |r: f64| m + (r - xmin) / (1.0 - xmin).max(1e-9) * (w - 2.0 * m);
    let y = |u: f64| h - m - (u.max(1.0).log10() - ymin) / (ymax - ymin).max(1e-9) * (h - 2.0 * m);
    let mut s = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    s.push_str(&format!("<line x1=\"{m}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n<line x1=\"{m}\" y1=\"{m}\" x2=\"{m}\" y2=\"{}\" stroke=\"black\"/>\n", h - m, w - m, h - m, h - m));
    s.push_str(&format!("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">recall@{k}</text>\n<text x=\"15\" y=\"{}\" transform=\"rotate(-90 15 {})\" text-anchor=\"middle\">users/s (log)</text>\n", w / 2.0, h - 20.0, h / 2.0, h / 2.0));
    for e in ymin as i32..=ymax as i32 {
        let yy = y(10f64.powi(e));
        s.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">1e{e}</text>\n",
            m - 5.0,
            yy + 4.0
        ));
    }
    for t in 0..=5 {
        let r = xmin + (1.0 - xmin) * t as f64 / 5.0;
        s.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{r:.2}</text>\n",
            x(r),
            h - m + 16.0
        ));
    }
    for (method, colour) in [("probe", "#1f77b4"), ("scan", "#d62728")] {
        let pts: Vec<String> = rows
            .iter()
            .filter(|r| r.method == method)
            .map(|r| format!("{:.1},{:.1}", x(r.recall), y(r.users_per_s)))
            .collect();
        if !pts.is_empty() {
            s.push_str(&format!(
                "<polyline fill=\"none\" stroke=\"{colour}\" points=\"{}\"/>\n",
                pts.join(" ")
            ));
            for p in &pts {
                let (a, b) = p.split_once(',').unwrap_or(("0", "0"));
                s.push_str(&format!(
                    "<circle cx=\"{a}\" cy=\"{b}\" r=\"3\" fill=\"{colour}\"/>\n"
                ));
            }
        }
    }
    if let Some(e) = rows.iter().find(|r| r.method == "exact") {
        let yy = y(e.users_per_s);
        s.push_str(&format!("<line x1=\"{m}\" y1=\"{yy}\" x2=\"{}\" y2=\"{yy}\" stroke=\"gray\" stroke-dasharray=\"4\"/>\n<text x=\"{}\" y=\"{}\" fill=\"gray\">exact</text>\n", w - m, w - m - 40.0, yy - 4.0));
    }
    s.push_str("<text x=\"70\" y=\"20\" fill=\"#1f77b4\">multi-probe buckets</text><text x=\"220\" y=\"20\" fill=\"#d62728\">Hamming scan</text>\n</svg>\n");
    s
}
