//! Opening an index (the read path). `data.bin` is memory-mapped; its length, every section's
//! length and checksum and the bucket tables' structure are verified before any of it is used.

use std::path::Path;

use memmap2::Mmap;

use super::build::Built;
use super::format::*;
use crate::error::{Error, Result};
use crate::store::mmap;

enum Backing {
    Mapped(Mmap),
    /// u64-backed so every section is aligned for any cast.
    Owned(Vec<u64>, usize),
}

/// Positions in `Index::sec` of the sections read per range: the codes, and the two optional
/// sections after the six required ones.
const CODES: usize = 5;
const VECTORS: usize = 6;
const NORMS: usize = 7;

/// An opened, verified index.
pub struct Index {
    pub meta: IndexMeta,
    backing: Backing,
    sec: [(usize, usize); 8],
    appended: Option<crate::store::Matrix>,
}

/// Decodes and verifies `index.bin` bytes.
pub fn parse_meta(path: &Path, b: &[u8]) -> Result<IndexMeta> {
    crate::store::frame::decode(path, b, INDEX_MAGIC, INDEX_VERSION, "index.bin")
}

impl Index {
    /// Opens and verifies the index in `dir`.
    pub fn open(dir: &Path) -> Result<Index> {
        let mpath = dir.join(META_FILE);
        if !mpath.is_file() {
            return Err(Error::invalid(
                "index directory",
                format!(
                    "{} has no {META_FILE}; build one with `lshrec index build`",
                    dir.display()
                ),
            ));
        }
        let bytes = std::fs::read(&mpath).map_err(|e| Error::io(&mpath, e))?;
        let meta = parse_meta(&mpath, &bytes)?;
        let dpath = dir.join(DATA_FILE);
        let map = mmap::map(&dpath)?;
        let sec = Self::check(&dpath, &meta, &map)?;
        let appended = match &meta.appended_file {
            None => None,
            Some(f) => {
                let p = dir.join(&f.name);
                let len = std::fs::metadata(&p).map_err(|e| Error::io(&p, e))?.len();
                if len != f.len {
                    return Err(Error::corrupt(
                        &p,
                        format!("length {len} bytes, index.bin records {}", f.len),
                    ));
                }
                let (m, sum) = crate::store::npy::open(&p)?;
                if sum != f.xxh3 || m.rows() != meta.appended.len() || m.cols() != meta.dim {
                    return Err(Error::corrupt(
                        &p,
                        "appended vectors do not match index.bin",
                    ));
                }
                Some(m)
            }
        };
        Ok(Index {
            meta,
            backing: Backing::Mapped(map),
            sec,
            appended,
        })
    }

    /// Wraps an index built in memory (for `bench`, which need not write it).
    pub fn from_built(b: Built) -> Result<Index> {
        // The block drops the built arrays as soon as their copy exists.
        let (words, n, meta) = {
            let mut b = b;
            let (words, n) = b.data_words();
            (words, n, b.meta)
        };
        let sec = Self::check(
            Path::new("<memory>"),
            &meta,
            &bytemuck::cast_slice(&words)[..n],
        )?;
        Ok(Index {
            meta,
            backing: Backing::Owned(words, n),
            sec,
            appended: None,
        })
    }

    fn check(path: &Path, meta: &IndexMeta, data: &[u8]) -> Result<[(usize, usize); 8]> {
        let bad = |r: String| Error::corrupt(path, r);
        let d1 = meta.dim + 1;
        let n = meta.n_items;
        if meta.bits == 0 || meta.bits > 24 || meta.tables == 0 || meta.ranges.is_empty() {
            return Err(bad("implausible parameters".into()));
        }
        // The file ends exactly at the last section, padded to 64 bytes, as written.
        let end = meta
            .sections
            .iter()
            .map(|s| s.offset.saturating_add(s.len))
            .max()
            .unwrap_or(0);
        if end.div_ceil(64).saturating_mul(64) != data.len() as u64 {
            return Err(bad(format!(
                "length {} bytes, the sections need {}",
                data.len(),
                end.div_ceil(64) * 64
            )));
        }
        let mut covered = 0usize;
        for (r, range) in meta.ranges.iter().enumerate() {
            if range.start != covered || range.len == 0 {
                return Err(bad(format!(
                    "norm range {r} starts at {} with {} items, expected a non-empty range at {covered}",
                    range.start, range.len
                )));
            }
            covered = covered.saturating_add(range.len);
        }
        if covered != n {
            return Err(bad(format!(
                "norm ranges cover {covered} items, expected {n}"
            )));
        }
        let nb = meta.buckets();
        let expect = [
            meta.tables * meta.bits * d1 * 4,
            64 * meta.words * d1 * 4,
            n * 4,
            meta.ranges.len() * meta.tables * (nb + 1) * 4,
            meta.tables * n * 4,
            n * meta.words * 8,
            n * meta.dim * 4,
            n * 4,
        ];
        let optional = [VECTORS_SECTION, NORMS_SECTION];
        let mut sec = [(0usize, 0usize); 8];
        for (k, name) in SECTION_NAMES.iter().chain(&optional).enumerate() {
            let s = match meta.section(name) {
                Some(s) => s,
                None if optional.contains(name) => continue,
                None => return Err(bad(format!("section {name} missing"))),
            };
            let (o, l) = (s.offset as usize, s.len as usize);
            if l != expect[k] || o % 64 != 0 || o.checked_add(l).is_none_or(|e| e > data.len()) {
                return Err(bad(format!(
                    "section {name}: {l} bytes at {o}, expected {} within {} bytes",
                    expect[k],
                    data.len()
                )));
            }
            if xxhash_rust::xxh3::xxh3_64(&data[o..o + l]) != s.xxh3 {
                return Err(bad(format!("section {name}: checksum mismatch")));
            }
            sec[k] = (o, l);
        }
        // Sections do not overlap, and the padding between them (and after the last) is the
        // zeros written: no byte of the file goes unchecked.
        let mut spans: Vec<(usize, usize)> = sec.iter().copied().filter(|s| s.1 > 0).collect();
        spans.sort_unstable();
        let mut at = 0usize;
        for (o, l) in spans.into_iter().chain([(data.len(), 0)]) {
            if o < at {
                return Err(bad(format!("sections overlap at byte {o}")));
            }
            if let Some(p) = data[at..o].iter().position(|&b| b != 0) {
                return Err(bad(format!(
                    "padding byte {} is {:#04x}, expected 0",
                    at + p,
                    data[at + p]
                )));
            }
            at = o + l;
        }
        // Structure: offsets monotone and spanning each range; ids and order within range.
        let view =
            |k: usize| -> &[u32] { bytemuck::cast_slice(&data[sec[k].0..sec[k].0 + sec[k].1]) };
        let (order, offsets, ids) = (view(2), view(3), view(4));
        if order.iter().any(|&i| i as usize >= n) || ids.iter().any(|&i| i as usize >= n) {
            return Err(bad("item id out of range".into()));
        }
        // Norms descend within each range from its recorded largest, or the scan's cut-off
        // would skip items that can win.
        if sec[NORMS].1 > 0 {
            let (o, l) = sec[NORMS];
            let norms: &[f32] = bytemuck::cast_slice(&data[o..o + l]);
            for (r, range) in meta.ranges.iter().enumerate() {
                let v = &norms[range.start..range.start + range.len];
                if v.iter().any(|x| !x.is_finite() || *x < 0.0)
                    || v.windows(2).any(|w| w[0] < w[1])
                    || v.first().is_some_and(|&x| x > range.max_norm)
                {
                    return Err(bad(format!("item norms of range {r} are not descending")));
                }
            }
        }
        for (r, range) in meta.ranges.iter().enumerate() {
            for t in 0..meta.tables {
                let o = &offsets
                    [(r * meta.tables + t) * (nb + 1)..(r * meta.tables + t + 1) * (nb + 1)];
                if o[0] != 0 || o[nb] as usize != range.len || o.windows(2).any(|w| w[0] > w[1]) {
                    return Err(bad(format!(
                        "bucket offsets of range {r}, table {t} are inconsistent"
                    )));
                }
            }
        }
        Ok(sec)
    }

    fn bytes(&self) -> &[u8] {
        match &self.backing {
            Backing::Mapped(m) => m,
            Backing::Owned(w, n) => &bytemuck::cast_slice(w)[..*n],
        }
    }

    fn section<T: bytemuck::Pod>(&self, k: usize) -> &[T] {
        let (o, l) = self.sec[k];
        bytemuck::cast_slice(&self.bytes()[o..o + l])
    }

    /// Bucket hyperplanes, `tables·bits × (dim+1)`.
    pub fn planes(&self) -> &[f32] {
        self.section(0)
    }

    /// Scan hyperplanes, `64·words × (dim+1)`.
    pub fn scan_planes(&self) -> &[f32] {
        self.section(1)
    }

    /// Item ids by position (largest-norm range first).
    pub fn order(&self) -> &[u32] {
        self.section(2)
    }

    /// Bucket offsets of range `r`, table `t`.
    pub fn offsets(&self, r: usize, t: usize) -> &[u32] {
        let nb = self.meta.buckets() + 1;
        let all: &[u32] = self.section(3);
        let k = r * self.meta.tables + t;
        &all[k * nb..(k + 1) * nb]
    }

    /// Item ids of range `r`, table `t`, sorted by bucket.
    pub fn ids(&self, r: usize, t: usize) -> &[u32] {
        let all: &[u32] = self.section(4);
        let range = &self.meta.ranges[r];
        let base = range.start * self.meta.tables + t * range.len;
        &all[base..base + range.len]
    }

    /// Range `r`'s rows of a section laid out by position (`width` values per item), or
    /// `None` for an optional section the index lacks.
    fn range_rows<T: bytemuck::Pod>(&self, k: usize, width: usize, r: usize) -> Option<&[T]> {
        if self.sec[k].1 == 0 {
            return None;
        }
        let all: &[T] = self.section(k);
        let range = &self.meta.ranges[r];
        Some(&all[range.start * width..(range.start + range.len) * width])
    }

    /// Long codes of range `r` (`len × words`).
    pub fn codes(&self, r: usize) -> &[u64] {
        self.range_rows(CODES, self.meta.words, r).unwrap_or(&[])
    }

    /// The item vectors of range `r` (`len × dim`), in `order`, if the index keeps a copy.
    pub fn range_vectors(&self, r: usize) -> Option<&[f32]> {
        self.range_rows(VECTORS, self.meta.dim, r)
    }

    /// The item norms of range `r`, descending, if the index records them.
    pub fn range_norms(&self, r: usize) -> Option<&[f32]> {
        self.range_rows(NORMS, 1, r)
    }

    /// Vectors of the items appended after the build (m × dim), possibly empty.
    pub fn appended_vectors(&self) -> &[f32] {
        self.appended.as_ref().map(|m| m.as_slice()).unwrap_or(&[])
    }

    /// How many items a search can return: the built ones and those appended since.
    pub fn n_served(&self) -> usize {
        self.meta.n_items + self.meta.appended.len()
    }

    /// The appended item with dense id `id` (ids from `n_items` on).
    pub fn appended_item(&self, id: u32) -> Option<&AppendedItem> {
        (id as usize)
            .checked_sub(self.meta.n_items)
            .and_then(|j| self.meta.appended.get(j))
    }

    /// Refuses a model that is not the one the index was built from.
    pub fn check_model(&self, fingerprint: u64, n_items: usize, dim: usize) -> Result<()> {
        if self.meta.n_items != n_items || self.meta.dim != dim {
            return Err(Error::Mismatch {
                what: "index and model shapes".into(),
                expected: format!(
                    "{} items × {} dims (index)",
                    self.meta.n_items, self.meta.dim
                ),
                found: format!("{n_items} items × {dim} dims (model)"),
            });
        }
        if self.meta.model_fingerprint != fingerprint {
            return Err(Error::Mismatch {
                what: "index built from another model".into(),
                expected: format!("model fingerprint {:016x}", self.meta.model_fingerprint),
                found: format!("{fingerprint:016x}; rebuild with `lshrec index build`"),
            });
        }
        Ok(())
    }

    /// Refuses search parameters this index cannot serve: the Hamming scan (`--mode scan`, the
    /// default) on an index built without scan codes (`--scan-bits 0`).
    pub fn check_params(&self, p: &super::SearchParams) -> Result<()> {
        if p.mode == super::Mode::Scan && self.meta.words == 0 {
            return Err(Error::invalid(
                "--mode",
                "scan needs the index's long codes, and this index was built without them (--scan-bits 0): use --mode probe, or rebuild with --scan-bits 256",
            ));
        }
        Ok(())
    }
}
