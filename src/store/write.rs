//! Writing a model directory. Every file is written atomically; `model.bin`, which records the
//! checksums of the others, is written last, so a crash mid-save leaves the previous `model.bin`
//! whose checksums then refuse any half-replaced array.

use std::path::Path;

use super::atomic::write_atomic;
use super::model::*;
use super::npy;
use crate::data::Csr;
use crate::error::{Error, Result};

/// What a trainer hands to the store.
pub struct ModelParts<'a> {
    pub meta: ModelMeta,
    /// n_users × dim, row-major.
    pub users: &'a [f32],
    /// n_items × dim, row-major.
    pub items: &'a [f32],
    pub user_bias: Option<&'a [f32]>,
    /// Training interactions by user (excluded at serving time).
    pub seen: Option<&'a Csr>,
    /// Cold-start maps (`meta.item_features.len() × dim`, `meta.user_features.len() × dim`).
    pub item_feature_map: Option<&'a [f32]>,
    pub user_feature_map: Option<&'a [f32]>,
    /// The first-ratings map (`(n_items + meta.user_features.len() + 1) × dim`).
    pub first_ratings: Option<&'a [f32]>,
}

/// Serialises the seen-items CSR.
pub fn seen_bytes(seen: &Csr) -> Vec<u8> {
    let mut out = Vec::with_capacity(40 + seen.indptr.len() * 8 + seen.nnz() * 8);
    out.extend_from_slice(SEEN_MAGIC);
    out.extend_from_slice(&SEEN_VERSION.to_le_bytes());
    out.extend_from_slice(&[0u8; 4]);
    for v in [seen.rows as u64, seen.cols as u64, seen.nnz() as u64] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(bytemuck::cast_slice(&seen.indptr));
    out.extend_from_slice(bytemuck::cast_slice(&seen.indices));
    out.extend_from_slice(bytemuck::cast_slice(&seen.values));
    out
}

fn write_bytes(path: &Path, bytes: &[u8]) -> Result<FileEntry> {
    write_atomic(path, |w| w.write_all(bytes))?;
    Ok(FileEntry {
        name: path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        len: bytes.len() as u64,
        xxh3: xxhash_rust::xxh3::xxh3_64(bytes),
    })
}

fn npy_entry(dir: &Path, name: &str, shape: &[usize], data: &[f32]) -> Result<FileEntry> {
    let path = dir.join(name);
    let xxh3 = npy::write_f32(&path, shape, data)?;
    let len = std::fs::metadata(&path)
        .map_err(|e| Error::io(&path, e))?
        .len();
    Ok(FileEntry {
        name: name.to_string(),
        len,
        xxh3,
    })
}

/// Encodes `model.bin`: magic, version, payload length, payload checksum, payload.
pub fn meta_bytes(meta: &ModelMeta) -> Result<Vec<u8>> {
    super::frame::encode(MODEL_MAGIC, MODEL_VERSION, meta)
}

/// Writes a model directory.
pub fn save(dir: &Path, parts: ModelParts<'_>) -> Result<()> {
    let mut meta = parts.meta;
    let (nu, ni, d) = (meta.n_users, meta.n_items, meta.dim);
    if parts.users.len() != nu * d || parts.items.len() != ni * d {
        return Err(Error::Mismatch {
            what: "embedding shapes".into(),
            expected: format!("{nu}×{d} users and {ni}×{d} items"),
            found: format!("{} and {} values", parts.users.len(), parts.items.len()),
        });
    }
    if meta.user_ids.len() != nu || meta.item_ids.len() != ni {
        return Err(Error::Mismatch {
            what: "id map sizes".into(),
            expected: format!("{nu} users, {ni} items"),
            found: format!(
                "{} users, {} items",
                meta.user_ids.len(),
                meta.item_ids.len()
            ),
        });
    }
    crate::store::atomic::create_dir(dir)?;
    meta.files.clear();
    meta.files
        .push(npy_entry(dir, USERS_FILE, &[nu, d], parts.users)?);
    meta.files
        .push(npy_entry(dir, ITEMS_FILE, &[ni, d], parts.items)?);
    if let Some(b) = parts.user_bias {
        meta.files.push(npy_entry(dir, USER_BIAS_FILE, &[nu], b)?);
    }
    for (names, map, file) in [
        (
            &meta.item_features,
            parts.item_feature_map,
            ITEM_FEATURES_FILE,
        ),
        (
            &meta.user_features,
            parts.user_feature_map,
            USER_FEATURES_FILE,
        ),
    ] {
        match map {
            Some(m) if m.len() == names.len() * d && !names.is_empty() => {
                let e = npy_entry(dir, file, &[names.len(), d], m)?;
                meta.files.push(e);
            }
            None if names.is_empty() => {}
            _ => {
                return Err(Error::Mismatch {
                    what: format!("{file} shape"),
                    expected: format!("{} features × {d}", names.len()),
                    found: format!("{} values", map.map_or(0, |m| m.len())),
                })
            }
        }
    }
    if let Some(m) = parts.first_ratings {
        let rows = crate::train::first_ratings::FirstRatingsMap::rows(ni, meta.user_features.len());
        if m.len() != rows * d {
            return Err(Error::Mismatch {
                what: format!("{FIRST_RATINGS_FILE} shape"),
                expected: format!("{rows} rows × {d}"),
                found: format!("{} values", m.len()),
            });
        }
        let e = npy_entry(dir, FIRST_RATINGS_FILE, &[rows, d], m)?;
        meta.files.push(e);
    }
    if let Some(seen) = parts.seen {
        meta.files
            .push(write_bytes(&dir.join(SEEN_FILE), &seen_bytes(seen))?);
    }
    meta.written_by = format!("lshrec {}", env!("CARGO_PKG_VERSION"));
    let bytes = meta_bytes(&meta)?;
    write_atomic(&dir.join(META_FILE), |w| w.write_all(&bytes))
}
