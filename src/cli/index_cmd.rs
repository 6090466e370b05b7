//! `lshrec index build` and `lshrec index append`.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde::Serialize;

use super::serve_cmd::ModelArgs;
use crate::error::{Error, Result};
use crate::index::{self, BuildConfig, Index};
use crate::store::Model;

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
