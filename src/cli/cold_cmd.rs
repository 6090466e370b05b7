//! `lshrec embed-item`: the cold-start vector of a new item from its features.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::serve_cmd::ModelArgs;
use crate::error::{Error, Result};

/// `lshrec embed-item`
#[derive(Debug, Args)]
#[command(
    after_help = "The vector is the sum of the model's feature vectors (item_features.npy: a map from genres, release decade and --item-features attributes to vectors, fitted to the training interactions), so it scores against users like any trained item.\n\nExamples:\n  lshrec embed-item --model model/ --genres Comedy,Romance --year 1996\n  lshrec embed-item --model model/ --feature brand=acme --feature category=shoes\n  lshrec embed-item --model model/ --genres Sci-Fi --year 1997 --out new.npy\n  lshrec index append --index model/index --model model/ --vectors new.npy --ids new-ids.txt"
)]
pub struct EmbedItemArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Genres, comma-separated, as named in the training data.
    #[arg(long, value_delimiter = ',')]
    pub genres: Vec<String>,
    /// Release year (its decade counts, and the year itself when training saw it; a decade the
    /// model never saw takes the nearest one it has, with a note).
    #[arg(long)]
    pub year: Option<u16>,
    /// An attribute from the training --item-features file, as COLUMN=VALUE (repeat, or
    /// separate with commas).
    #[arg(long, value_delimiter = ',', value_name = "COLUMN=VALUE")]
    pub feature: Vec<String>,
    /// Write the vector as a 1 × dim float32 .npy (for `index append --vectors`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Show this many catalogue items nearest to the new one (by cosine).
    #[arg(long, default_value_t = 5)]
    pub similar: usize,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Similar {
    item: String,
    title: Option<String>,
    cosine: f32,
}

/// Runs `lshrec embed-item`.
pub fn run_embed_item(a: EmbedItemArgs) -> Result<()> {
    let model = a.model.open()?;
    let genres: Vec<&str> = a
        .genres
        .iter()
        .map(|g| g.trim())
        .filter(|g| !g.is_empty())
        .collect();
    let tags = crate::data::features::parse_tags(&a.feature, "--feature")?;
    if let Some((y, near)) = a.year.and_then(|y| Some((y, model.decade_stand_in(y)?))) {
        eprintln!(
            "note: the model knows no movie from the {}s; the {}s' vector stands in for its decade",
            y / 10 * 10,
            near.trim_start_matches("decade:")
        );
    }
    let v = model.item_vector(&genres, a.year, &tags)?;
    if let Some(p) = &a.out {
        crate::store::npy::write_f32(p, &[1, v.len()], &v)?;
    }
    let d = model.dim();
    let norm = crate::simd::dot(&v, &v).sqrt();
    let items = model.items.as_slice();
    let mut sims: Vec<(f32, usize)> = (0..model.n_items())
        .map(|i| {
            let y = &items[i * d..(i + 1) * d];
            let n = crate::simd::dot(y, y).sqrt() * norm;
            (
                if n > 0.0 {
                    crate::simd::dot(y, &v) / n
                } else {
                    0.0
                },
                i,
            )
        })
        .collect();
    sims.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let similar: Vec<Similar> = sims
        .iter()
        .take(a.similar)
        .map(|&(c, i)| Similar {
            item: model.meta.item_ids[i].clone(),
            title: model.meta.catalogue.get(i).and_then(|e| e.title.clone()),
            cosine: c,
        })
        .collect();
    let mut out = std::io::stdout().lock();
    let res = if a.json {
        writeln!(
            out,
            "{}",
            serde_json::json!({ "dim": d, "norm": norm, "vector": v, "similar": similar,
                "out": a.out.as_ref().map(|p| p.display().to_string()) })
        )
    } else {
        let mut s = format!("vector of dimension {d}, norm {norm:.4}");
        if let Some(p) = &a.out {
            s.push_str(&format!(", written to {}", p.display()));
        }
        s.push('\n');
        if !similar.is_empty() {
            s.push_str("nearest catalogue items:\n");
            for x in &similar {
                s.push_str(&format!(
                    "  {:>6.3}  {}\n",
                    x.cosine,
                    x.title
                        .clone()
                        .unwrap_or_else(|| format!("item {}", x.item))
                ));
            }
        }
        write!(out, "{s}")
    };
    res.map_err(|e| Error::io("<stdout>", e))
}
