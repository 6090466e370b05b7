//! Building an index (the write path): the norm-ranging transform, hashing, the per-range bucket
//! tables as CSR (offsets + item ids sorted by key) and the long scan codes.

use std::path::Path;
use std::time::Instant;

use rayon::prelude::*;

use super::format::*;
use super::hash;
use crate::error::{Error, Result};
use crate::store::atomic::write_atomic;

/// Index parameters.
#[derive(Clone, Debug)]
pub struct BuildConfig {
    /// Bits per bucket key (0: choose from the range size).
    pub bits: usize,
    pub tables: usize,
    /// Norm ranges (1 is plain simple-LSH).
    pub ranges: usize,
    /// Bits of the long Hamming-scan codes (a multiple of 64; 0 for none).
    pub scan_bits: usize,
    pub seed: u64,
    /// Keep a copy of the item vectors in the index, in norm-range order, for the scan's
    /// re-rank (`dim × 4` more bytes per item; the candidates of one range then lie together
    /// in memory instead of scattered over the whole item matrix).
    pub vectors: bool,
}

impl Default for BuildConfig {
    fn default() -> Self {
        BuildConfig {
            bits: 0,
            tables: 8,
            ranges: 8,
            scan_bits: 256,
            seed: 42,
            vectors: true,
        }
    }
}

/// An index built in memory (what `data.bin` holds).
pub struct Built {
    pub meta: IndexMeta,
    pub planes: Vec<f32>,
    pub scan: Vec<f32>,
    pub order: Vec<u32>,
    pub offsets: Vec<u32>,
    pub ids: Vec<u32>,
    pub codes: Vec<u64>,
    /// The item vectors in `order` (empty unless [`BuildConfig::vectors`]).
    pub vectors: Vec<f32>,
    /// The item norms in `order` (always built; an index without them, as written before
    /// they existed, scans whole ranges).
    pub norms: Vec<f32>,
}

/// The transformed (d+1) vector of item `v` in a range of largest norm `m`.
#[inline]
pub fn transform_item(v: &[f32], m: f32, out: &mut [f32]) {
    let n2: f32 = v.iter().map(|x| x * x).sum();
    for (o, x) in out.iter_mut().zip(v) {
        *o = x / m;
    }
    out[v.len()] = (1.0 - n2 / (m * m)).max(0.0).sqrt();
}

/// Bucket keys of at most log2(this × items per range) bits are accepted.
const MAX_BUCKETS_PER_ITEM: usize = 64;
/// Bucket keys of up to this many bits are accepted on any number of items.
const MIN_BITS_ALWAYS: usize = 12;

/// Builds the index of `items` (n × d, row-major).
pub fn build(items: &[f32], d: usize, cfg: &BuildConfig, model_fingerprint: u64) -> Result<Built> {
    let start = Instant::now();
    if d == 0 || !items.len().is_multiple_of(d) || items.is_empty() {
        return Err(Error::invalid("items", "no item vectors to index"));
    }
    let n = items.len() / d;
    if cfg.tables == 0 || cfg.tables > 64 {
        return Err(Error::invalid("--tables", "must be between 1 and 64"));
    }
    if cfg.ranges == 0 || cfg.ranges > n {
        return Err(Error::invalid(
            "--norm-ranges",
            format!("must be between 1 and the number of items ({n})"),
        ));
    }
    if !cfg.scan_bits.is_multiple_of(64) || cfg.scan_bits > 1024 {
        return Err(Error::invalid(
            "--scan-bits",
            "must be a multiple of 64, at most 1024",
        ));
    }
    let per_range = n.div_ceil(cfg.ranges);
    let bits = if cfg.bits == 0 {
        // About 8 items per bucket.
        ((per_range as f64 / 8.0).log2().round() as usize).clamp(4, 20)
    } else {
        cfg.bits
    };
    if !(1..=24).contains(&bits) {
        return Err(Error::invalid("--bits", "must be between 1 and 24"));
    }
    // Each table of each range stores 2^bits + 1 bucket offsets: far more buckets than items
    // leaves them almost all empty and costs memory and build time for nothing (24 bits on
    // 1,682 items would be 4 GiB of offsets at 64 tables).
    let most_bits = (MAX_BUCKETS_PER_ITEM * per_range)
        .max(1 << MIN_BITS_ALWAYS)
        .ilog2() as usize;
    if bits > most_bits {
        return Err(Error::invalid(
            "--bits",
            format!("{bits} bits make {} buckets per table for about {per_range} items per norm range; at most {most_bits} here (0 picks about 8 items per bucket)", 1u64 << bits),
        ));
    }
    let d1 = d + 1;
    let words = cfg.scan_bits / 64;

    // Norm ranges, largest norms first.
    let norms: Vec<f32> = items
        .par_chunks_exact(d)
        .map(|v| v.iter().map(|x| x * x).sum::<f32>().sqrt())
        .collect();
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.sort_by(|&a, &b| {
        norms[b as usize]
            .total_cmp(&norms[a as usize])
            .then(a.cmp(&b))
    });
    let ranges: Vec<NormRange> = (0..cfg.ranges)
        .map(|r| {
            let s = (r * per_range).min(n);
            let e = ((r + 1) * per_range).min(n);
            NormRange {
                start: s,
                len: e - s,
                max_norm: if s < e {
                    norms[order[s] as usize].max(f32::MIN_POSITIVE)
                } else {
                    0.0
                },
            }
        })
        .filter(|r| r.len > 0)
        .collect();

    let planes = hash::hyperplanes(cfg.tables * bits, d1, cfg.seed, 0);
    let scan = hash::hyperplanes(64 * words, d1, cfg.seed, 1);

    // Hash in blocks of transformed rows.
    const BLOCK: usize = 8192;
    let tb = cfg.tables * bits;
    let range_of: Vec<f32> = {
        let mut m = vec![0f32; n];
        for r in &ranges {
            m[r.start..r.start + r.len].fill(r.max_norm);
        }
        m
    };
    let hashed: Vec<(Vec<u32>, Vec<u64>)> = (0..n.div_ceil(BLOCK))
        .into_par_iter()
        .map(|b| {
            let p0 = b * BLOCK;
            let p1 = (p0 + BLOCK).min(n);
            let mut rows = vec![0f32; (p1 - p0) * d1];
            for p in p0..p1 {
                let i = order[p] as usize;
                transform_item(
                    &items[i * d..(i + 1) * d],
                    range_of[p],
                    &mut rows[(p - p0) * d1..(p - p0 + 1) * d1],
                );
            }
            let proj = hash::project_rows(&rows, d1, &planes);
            let mut keys = Vec::with_capacity((p1 - p0) * cfg.tables);
            for row in proj.chunks_exact(tb) {
                for t in 0..cfg.tables {
                    keys.push(hash::key(&row[t * bits..(t + 1) * bits]));
                }
            }
            let mut codes = vec![0u64; (p1 - p0) * words];
            if words > 0 {
                let sp = hash::project_rows(&rows, d1, &scan);
                for (k, row) in sp.chunks_exact(64 * words).enumerate() {
                    hash::pack(row, &mut codes[k * words..(k + 1) * words]);
                }
            }
            (keys, codes)
        })
        .collect();
    let mut keys = Vec::with_capacity(n * cfg.tables);
    let mut codes = Vec::with_capacity(n * words);
    for (k, c) in hashed {
        keys.extend(k);
        codes.extend(c);
    }

    // Bucket tables per (range, table): counting sort by key.
    let nb = 1usize << bits;
    let tables: Vec<(Vec<u32>, Vec<u32>)> = ranges
        .par_iter()
        .flat_map_iter(|r| (0..cfg.tables).map(move |t| (r.clone(), t)))
        .map(|(r, t)| {
            let mut off = vec![0u32; nb + 1];
            for p in r.start..r.start + r.len {
                off[keys[p * cfg.tables + t] as usize + 1] += 1;
            }
            for k in 0..nb {
                off[k + 1] += off[k];
            }
            let mut next = off.clone();
            let mut ids = vec![0u32; r.len];
            for p in r.start..r.start + r.len {
                let k = keys[p * cfg.tables + t] as usize;
                ids[next[k] as usize] = order[p];
                next[k] += 1;
            }
            (off, ids)
        })
        .collect();
    let vectors: Vec<f32> = if cfg.vectors && words > 0 {
        let mut v = vec![0f32; n * d];
        v.par_chunks_exact_mut(d)
            .zip(order.par_iter())
            .for_each(|(row, &i)| {
                row.copy_from_slice(&items[i as usize * d..(i as usize + 1) * d])
            });
        v
    } else {
        Vec::new()
    };
    let in_order: Vec<f32> = order.iter().map(|&i| norms[i as usize]).collect();
    let mut offsets = Vec::with_capacity(tables.len() * (nb + 1));
    let mut ids = Vec::with_capacity(tables.len() * n);
    for (o, i) in tables {
        offsets.extend(o);
        ids.extend(i);
    }
    let meta = IndexMeta {
        dim: d,
        n_items: n,
        bits,
        tables: cfg.tables,
        words,
        seed: cfg.seed,
        transform: if ranges.len() > 1 {
            "norm-ranging".into()
        } else {
            "simple".into()
        },
        ranges,
        model_fingerprint,
        sections: Vec::new(),
        build_seconds: start.elapsed().as_secs_f64(),
        appended: Vec::new(),
        appended_file: None,
    };
    Ok(Built {
        meta,
        planes,
        scan,
        order,
        offsets,
        ids,
        codes,
        vectors,
        norms: in_order,
    })
}

/// Writes a built index to `dir` (atomically, data first, header last).
pub fn write(built: &mut Built, dir: &Path) -> Result<()> {
    let (words, len) = built.data_words();
    crate::store::atomic::create_dir(dir)?;
    write_atomic(&dir.join(DATA_FILE), |w| {
        w.write_all(&bytemuck::cast_slice::<u64, u8>(&words)[..len])
    })?;
    write_meta(&built.meta, dir)
}

impl Built {
    /// The contents of `data.bin`, held in u64 words so that every section is aligned for any
    /// cast, and its length in bytes: every section starts on a 64-byte boundary and the whole
    /// is padded to 64 bytes. Records each section's offset, length and checksum in
    /// `meta.sections`.
    pub fn data_words(&mut self) -> (Vec<u64>, usize) {
        let vectors = (!self.vectors.is_empty()).then(|| {
            (
                VECTORS_SECTION,
                bytemuck::cast_slice::<f32, u8>(&self.vectors),
            )
        });
        let norms = (!self.norms.is_empty())
            .then(|| (NORMS_SECTION, bytemuck::cast_slice::<f32, u8>(&self.norms)));
        let parts: Vec<(&str, &[u8])> = SECTION_NAMES
            .iter()
            .copied()
            .zip([
                bytemuck::cast_slice::<f32, u8>(&self.planes),
                bytemuck::cast_slice(&self.scan),
                bytemuck::cast_slice(&self.order),
                bytemuck::cast_slice(&self.offsets),
                bytemuck::cast_slice(&self.ids),
                bytemuck::cast_slice(&self.codes),
            ])
            .chain(vectors)
            .chain(norms)
            .collect();
        let padded = |n: usize| n.div_ceil(64) * 64;
        let total: usize = parts.iter().map(|(_, p)| padded(p.len())).sum();
        let mut words = vec![0u64; total / 8];
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
        let mut sections = Vec::with_capacity(parts.len());
        let mut at = 0;
        for (name, part) in parts {
            bytes[at..at + part.len()].copy_from_slice(part);
            sections.push(Section {
                name: name.to_string(),
                offset: at as u64,
                len: part.len() as u64,
                xxh3: xxhash_rust::xxh3::xxh3_64(part),
            });
            at += padded(part.len());
        }
        self.meta.sections = sections;
        (words, at)
    }
}

/// Writes `index.bin` atomically.
pub fn write_meta(meta: &IndexMeta, dir: &Path) -> Result<()> {
    let bytes = crate::store::frame::encode(INDEX_MAGIC, INDEX_VERSION, meta)?;
    write_atomic(&dir.join(META_FILE), |w| w.write_all(&bytes))
}

/// Appends items (`vectors`, m × dim) to the index in `dir` without a rebuild. The old appended
/// vectors are carried over into a new file, `index.bin` is replaced atomically to name it, and
/// only then is the old file removed.
pub fn append(dir: &Path, vectors: &[f32], items: Vec<AppendedItem>) -> Result<IndexMeta> {
    let idx = super::read::Index::open(dir)?;
    let mut meta = idx.meta.clone();
    let d = meta.dim;
    if vectors.len() != items.len() * d {
        return Err(Error::Mismatch {
            what: "appended vectors".into(),
            expected: format!("{} × {d} values", items.len()),
            found: vectors.len().to_string(),
        });
    }
    if let Some(p) = vectors.iter().position(|x| !x.is_finite()) {
        return Err(Error::invalid(
            "appended vectors",
            format!("value {p} is not finite"),
        ));
    }
    let mut all: Vec<f32> = idx.appended_vectors().to_vec();
    all.extend_from_slice(vectors);
    meta.appended.extend(items);
    let m = meta.appended.len();
    let name = format!("appended-{m}.npy");
    let xxh3 = crate::store::npy::write_f32(&dir.join(&name), &[m, d], &all)?;
    let len = std::fs::metadata(dir.join(&name))
        .map_err(|e| Error::io(dir.join(&name), e))?
        .len();
    let old = meta.appended_file.replace(Section {
        name: name.clone(),
        offset: 0,
        len,
        xxh3,
    });
    write_meta(&meta, dir)?;
    if let Some(o) = old {
        if o.name != name {
            let _ = std::fs::remove_file(dir.join(o.name));
        }
    }
    Ok(meta)
}
