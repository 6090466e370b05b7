//! The index directory format, in one place.
//!
//! ```text
//! index/
//!   index.bin   magic "LSHRECIX", version u32, payload length u64, payload xxh3 u64, then the
//!               bincode IndexMeta (parameters, norm ranges, the model's fingerprint and the
//!               offset, length and xxh3 of every section of data.bin)
//!   data.bin    little-endian arrays, each starting on a 64-byte boundary:
//!                 planes     f32 [tables·bits × (dim+1)]   bucket hyperplanes
//!                 scan       f32 [64·words × (dim+1)]      Hamming-scan hyperplanes
//!                 order      u32 [n_items]                 item ids, largest-norm range first
//!                 offsets    u32 [ranges × tables × (2^bits + 1)]  bucket starts, per range
//!                 ids        u32 [ranges × tables × range size]    item ids sorted by bucket
//!                 codes      u64 [n_items × words]         long codes, in `order`
//!                 vectors    f32 [n_items × dim]           optional: the item vectors, in `order`
//!                 norms      f32 [n_items]                 optional: the item norms, in `order`
//!   appended-N.npy  f32 [m × dim]: items appended after the build (N = m), scored exactly at
//!               query time; index.bin records their ids, titles, length and checksum
//! ```
//!
//! **Growth.** `lshrec index append` adds items without a rebuild: it writes a new
//! `appended-N.npy` holding the old and new vectors, then atomically replaces `index.bin`, which
//! names it, then removes the older file. A crash leaves the previous, consistent index. Appended
//! items get ids `n_items..n_items + m` and are scored exactly by every LSH query.
//!
//! The optional sections may be absent (older indexes, `--no-vectors`); a reader skips what it
//! does not know, so older binaries read newer indexes.
//!
//! **Transform (norm-ranging simple-LSH).** Items are sorted by norm and cut into ranges of equal
//! size. Range r, with largest norm M_r, maps item v to `[v/M_r, sqrt(1 − |v|²/M_r²)]` and the
//! query q to `[q/|q|, 0]`, so that within a range the angle orders items by inner product. Each
//! range is searched largest-norm first, and the search stops once the K-th best score so far
//! is at least `|q|·M` of the next range: no item there can beat it. Within a range, positions
//! are in descending norm, so the scan reads codes only up to the first position whose norm `m`
//! has `|q|·m` below the K-th score so far (from the `norms` section): the same bound, per item.

use serde::{Deserialize, Serialize};

/// First bytes of `index.bin`.
pub const INDEX_MAGIC: &[u8; 8] = b"LSHRECIX";
/// Version of the index layout.
pub const INDEX_VERSION: u32 = 1;
pub const META_FILE: &str = "index.bin";
pub const DATA_FILE: &str = "data.bin";
/// The sections of `data.bin`, in file order.
pub const SECTION_NAMES: [&str; 6] = ["planes", "scan", "order", "offsets", "ids", "codes"];
/// The optional last section: a copy of the item vectors in `order`, so that the scan's
/// re-rank reads one norm range's candidates from a few contiguous megabytes instead of from
/// anywhere in the model's item matrix (see [`crate::index::BuildConfig::vectors`]).
pub const VECTORS_SECTION: &str = "vectors";
/// The optional section of item norms in `order` (descending within each range), with which
/// the scan stops reading a range where no item's norm can reach the K-th score found so far.
/// Indexes written before it existed lack it and scan whole ranges.
pub const NORMS_SECTION: &str = "norms";

/// One norm range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NormRange {
    /// First position in `order`.
    pub start: usize,
    pub len: usize,
    /// Largest item norm in the range.
    pub max_norm: f32,
}

/// One array of `data.bin`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Section {
    pub name: String,
    pub offset: u64,
    pub len: u64,
    pub xxh3: u64,
}

/// Everything `index.bin` records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IndexMeta {
    /// Dimension of the model's vectors (the transform adds one).
    pub dim: usize,
    pub n_items: usize,
    pub bits: usize,
    pub tables: usize,
    /// u64 words of the long Hamming-scan codes (0: no scan codes).
    pub words: usize,
    pub seed: u64,
    /// `norm-ranging` or `simple` (one range).
    pub transform: String,
    pub ranges: Vec<NormRange>,
    /// [`crate::store::ModelMeta::fingerprint`] of the model the index was built from.
    pub model_fingerprint: u64,
    pub sections: Vec<Section>,
    pub build_seconds: f64,
    /// Items appended after the build (see the module docs).
    pub appended: Vec<AppendedItem>,
    /// The file holding their vectors, with its length and checksum.
    pub appended_file: Option<Section>,
}

/// An item appended after the build.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppendedItem {
    pub id: String,
    pub title: Option<String>,
    pub genres: Vec<String>,
}

impl IndexMeta {
    /// Buckets per table.
    pub fn buckets(&self) -> usize {
        1usize << self.bits
    }

    /// A section by name.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// Total bytes of the index data divided by the number of items.
    pub fn bytes_per_item(&self) -> f64 {
        let total: u64 = self.sections.iter().map(|s| s.len).sum();
        total as f64 / self.n_items.max(1) as f64
    }

    /// Whether `data.bin` holds the copy of the item vectors.
    pub fn has_vectors(&self) -> bool {
        self.section(VECTORS_SECTION).is_some()
    }

    /// The index's size per item, said with what it holds: "332.1 bytes/item (a copy of each
    /// vector included: 256 bytes each)" or "76.1 bytes/item (beside the model's vectors: 256
    /// bytes each)".
    pub fn size_note(&self) -> String {
        let what = if self.has_vectors() {
            "a copy of each vector included"
        } else {
            "beside the model's vectors"
        };
        format!(
            "{:.1} bytes/item ({what}: {} bytes each)",
            self.bytes_per_item(),
            self.dim * 4
        )
    }
}
