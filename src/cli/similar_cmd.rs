//! `lshrec similar`: the items nearest to one item, or every item's neighbours into a file.

use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;

use super::batch_out::{batch_ext, shard_range, write_batch, wrote, RecSink, Rows};
use super::query_cmd::{describe, item_label, ranked_lines, Rec};
use super::serve_cmd::{blocked_items, item_info, ModelArgs};
use crate::error::Result;
use crate::store::Model;

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
