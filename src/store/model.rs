//! The model directory format, in one place.
//!
//! ```text
//! model/
//!   users.npy      n_users × dim f32 serving vectors (C order, data 64-byte aligned)
//!   items.npy      n_items × dim f32 serving vectors; score(u, i) = users[u] · items[i]
//!   user_bias.npy  n_users f32 (rating models only: r̂ = μ + b_u + users[u]·items[i])
//!   seen.bin       the training interactions (CSR by user, with ratings), excluded at serving
//!   model.bin      header: magic, version, payload length, payload checksum, then the bincode
//!                  ModelMeta (kind, dims, id maps, catalogue, config, seed, metrics and the
//!                  length and xxh3 checksum of every file above)
//! ```
//!
//! Biases are folded: a model with an item bias `b_i` exports `items[i] = [q_i, b_i]` and
//! `users[u] = [p_u, 1]`, so every model is plain maximum-inner-product search for serving.

use serde::{Deserialize, Serialize};

/// First bytes of `model.bin`.
pub const MODEL_MAGIC: &[u8; 8] = b"LSHRECMD";
/// Version of the `model.bin` layout; bumped on any incompatible change.
pub const MODEL_VERSION: u32 = 2;
/// First bytes of `seen.bin`.
pub const SEEN_MAGIC: &[u8; 8] = b"LSHRSEEN";
/// Version of the `seen.bin` layout.
pub const SEEN_VERSION: u32 = 1;

pub const USERS_FILE: &str = "users.npy";
pub const ITEMS_FILE: &str = "items.npy";
pub const USER_BIAS_FILE: &str = "user_bias.npy";
pub const SEEN_FILE: &str = "seen.bin";
pub const META_FILE: &str = "model.bin";
/// Cold-start map from item features to serving vectors (features × dim).
pub const ITEM_FEATURES_FILE: &str = "item_features.npy";
/// Cold-start map from user features to serving vectors (features × dim).
pub const USER_FEATURES_FILE: &str = "user_features.npy";

/// Length and checksum of one file of the model directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub len: u64,
    pub xxh3: u64,
}

/// Display information about one item.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CatalogueEntry {
    pub title: Option<String>,
    pub genres: Vec<String>,
    pub year: Option<u16>,
}

/// Everything `model.bin` records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// `mf`, `bpr`, `ials`, `lightgcn` or `external`.
    pub kind: String,
    /// Width of the serving vectors (latent factors plus folded bias columns).
    pub dim: usize,
    pub n_users: usize,
    pub n_items: usize,
    /// External ids in dense order.
    pub user_ids: Vec<String>,
    pub item_ids: Vec<String>,
    /// Whether the last column of `items.npy` is a folded item bias (and `users.npy` holds 1).
    pub folded_item_bias: bool,
    /// Global mean μ of a rating model.
    pub global_mean: Option<f32>,
    /// The training configuration, as JSON.
    pub config: String,
    pub seed: u64,
    /// Final metrics (name, value).
    pub metrics: Vec<(String, f64)>,
    /// Titles, genres and years, when the dataset had them.
    pub catalogue: Vec<CatalogueEntry>,
    /// Names of the item features (`genre:Comedy`, `decade:1990`, …), the rows of
    /// `item_features.npy`; empty when the data had no item side information.
    pub item_features: Vec<String>,
    /// Names of the user features (`age:25-34`, `gender:F`, `occupation:writer`), the rows of
    /// `user_features.npy`.
    pub user_features: Vec<String>,
    /// Every array file and its checksum.
    pub files: Vec<FileEntry>,
    /// lshrec version that wrote the model.
    pub written_by: String,
}

impl ModelMeta {
    /// The recorded entry for `name`.
    pub fn file(&self, name: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.name == name)
    }

    /// A checksum of the whole model (for indexes to record which model they were built from).
    pub fn fingerprint(&self) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for f in &self.files {
            h.update(f.name.as_bytes());
            h.update(&f.xxh3.to_le_bytes());
        }
        h.digest()
    }
}

/// The dataset's catalogue (titles, genres, years) for display at serving time.
pub fn catalogue(ds: &crate::data::Dataset) -> Vec<CatalogueEntry> {
    match &ds.item_info {
        None => Vec::new(),
        Some(info) => (0..ds.n_items())
            .map(|i| CatalogueEntry {
                title: info.titles[i].clone(),
                genres: ds
                    .genres_of(i as u32)
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                year: info.years[i],
            })
            .collect(),
    }
}
