//! The model directory format, in one place.
//!
//! ```text
//! model/
//!   users.npy      n_users × dim f32 serving vectors (C order, data 64-byte aligned)
//!   items.npy      n_items × dim f32 serving vectors; score(u, i) = users[u] · items[i]
//!   user_bias.npy  n_users f32 (rating models only: r̂ = μ + b_u + users[u]·items[i])
//!   seen.bin       the training interactions (CSR by user, with ratings), excluded at serving
//!   item_features.npy, user_features.npy
//!                  cold-start maps: one vector per item / user feature (rows named in model.bin)
//!   first_ratings.npy
//!                  (n_items + n_user_features + 1) × dim: a new user's vector from their first
//!                  ratings (`train::first_ratings`), when the training data had times
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
/// Version of the `model.bin` layout; bumped on any incompatible change. Version 3 added each
/// catalogue entry's attribute tags; version 2 models are still read (with no tags).
pub const MODEL_VERSION: u32 = 3;
/// Older `model.bin` versions still read.
pub const MODEL_VERSIONS_READ: &[u32] = &[2, 3];
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
/// The first-ratings map (`train::first_ratings`): one row per item, per user feature, and a
/// constant row. Optional: older models and training data without times have none.
pub const FIRST_RATINGS_FILE: &str = "first_ratings.npy";

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
    /// Attribute values from `--item-features` files, as (column, value) pairs: with the genres
    /// and year, what content neighbours compare a cold item by.
    pub tags: Vec<(String, String)>,
}

/// A catalogue entry as `model.bin` version 2 stored it (no tags).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CatalogueEntryV2 {
    pub title: Option<String>,
    pub genres: Vec<String>,
    pub year: Option<u16>,
}

impl From<CatalogueEntryV2> for CatalogueEntry {
    fn from(c: CatalogueEntryV2) -> Self {
        CatalogueEntry {
            title: c.title,
            genres: c.genres,
            year: c.year,
            tags: Vec::new(),
        }
    }
}

/// Everything `model.bin` records.
pub type ModelMeta = ModelMetaOf<CatalogueEntry>;

/// [`ModelMeta`] with catalogue entries of type `C` (the layouts differ only there across
/// versions: [`CatalogueEntryV2`] in version 2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelMetaOf<C> {
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
    /// Titles, genres, years and attribute values, when the dataset had them.
    pub catalogue: Vec<C>,
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

impl<C> ModelMetaOf<C> {
    /// The same record with each catalogue entry converted (reading an older version).
    pub fn map_catalogue<D>(self, f: impl FnMut(C) -> D) -> ModelMetaOf<D> {
        ModelMetaOf {
            kind: self.kind,
            dim: self.dim,
            n_users: self.n_users,
            n_items: self.n_items,
            user_ids: self.user_ids,
            item_ids: self.item_ids,
            folded_item_bias: self.folded_item_bias,
            global_mean: self.global_mean,
            config: self.config,
            seed: self.seed,
            metrics: self.metrics,
            catalogue: self.catalogue.into_iter().map(f).collect(),
            item_features: self.item_features,
            user_features: self.user_features,
            files: self.files,
            written_by: self.written_by,
        }
    }

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

/// The dataset's catalogue (titles, genres, years, attribute tags) for display and for cold
/// items' content neighbours at serving time.
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
                tags: info.tags.get(i).cloned().unwrap_or_default(),
            })
            .collect(),
    }
}
