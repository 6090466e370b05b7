//! What the serving commands share: where the embeddings come from (`--model` or `.npy`
//! files), the LSH search knobs, the index beside a model, item names, and `--exclude-items`.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::error::{Error, Result};
use crate::index::{Index, Mode, SearchParams};
use crate::store::Model;

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

pub(super) fn open_index(path: &Option<PathBuf>, model: &Model) -> Result<Option<Index>> {
    match path {
        None => Ok(None),
        Some(p) => {
            let idx = Index::open(p)?;
            idx.check_model(model.meta.fingerprint(), model.n_items(), model.dim())?;
            Ok(Some(idx))
        }
    }
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

/// The ids of a list file (`--user-list`, `--exclude-items`) mapped by `lookup`, each with its
/// line; an id `lookup` does not know is an error on its line that expects `expected`.
pub(super) fn resolve_list(
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
pub(super) fn blocked_items(
    path: Option<&Path>,
    model: &Model,
    idx: Option<&Index>,
) -> Result<Vec<u32>> {
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
