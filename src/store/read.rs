//! Opening a model directory (or embeddings trained elsewhere). Everything is verified before it
//! is trusted: magic, version, lengths, shapes, ids and the checksum of every file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::model::*;
use super::npy::{self, Matrix};
use crate::data::{self, Csr};
use crate::error::{Error, Result};
use crate::train::first_ratings::FirstRatingsMap;

/// An opened, verified model.
#[derive(Debug)]
pub struct Model {
    pub dir: Option<PathBuf>,
    pub meta: ModelMeta,
    pub users: Matrix,
    pub items: Matrix,
    pub user_bias: Option<Matrix>,
    pub seen: Option<Csr>,
    /// Cold-start maps: item and user feature vectors (rows named by `meta.item_features` and
    /// `meta.user_features`).
    pub item_features: Option<Matrix>,
    pub user_features: Option<Matrix>,
    /// The first-ratings map (`crate::train::first_ratings`), when the model has one.
    pub first_ratings: Option<Matrix>,
    user_index: HashMap<String, u32>,
    /// External item id → dense id, built by [`Model::item_index`].
    item_index: std::sync::OnceLock<HashMap<String, u32>>,
    /// The catalogue's content names, years and trained items, built by
    /// [`Model::content_neighbours`].
    content: std::sync::OnceLock<crate::train::coldstart::ContentCatalogue>,
    /// The knots of the numeric item and user attribute columns, parsed once from the feature
    /// names by [`Model::item_knots`] / [`Model::user_knots`].
    knots: [std::sync::OnceLock<crate::data::features::Knots>; 2],
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

/// Decodes and verifies `model.bin` bytes.
pub fn parse_meta(path: &Path, bytes: &[u8]) -> Result<ModelMeta> {
    use super::frame;
    let (version, payload) =
        frame::verify(path, bytes, MODEL_MAGIC, MODEL_VERSIONS_READ, "model.bin")?;
    let meta: ModelMeta = if version == MODEL_VERSION {
        frame::decode_payload(path, payload)?
    } else {
        frame::decode_payload::<ModelMetaOf<CatalogueEntryV2>>(path, payload)?
            .map_catalogue(CatalogueEntry::from)
    };
    if meta.user_ids.len() != meta.n_users || meta.item_ids.len() != meta.n_items {
        return Err(Error::corrupt(
            path,
            "id maps disagree with the recorded counts",
        ));
    }
    if !meta.catalogue.is_empty() && meta.catalogue.len() != meta.n_items {
        return Err(Error::corrupt(
            path,
            "catalogue length disagrees with the item count",
        ));
    }
    Ok(meta)
}

/// Decodes and verifies `seen.bin` bytes.
pub fn parse_seen(path: &Path, b: &[u8]) -> Result<Csr> {
    if b.len() < 40 || &b[..8] != SEEN_MAGIC {
        return Err(Error::corrupt(path, "not an lshrec seen.bin (bad magic)"));
    }
    let version = u32::from_le_bytes(b[8..12].try_into().expect("4 bytes"));
    if version != SEEN_VERSION {
        return Err(Error::corrupt(path, format!("format version {version}")));
    }
    let rd = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"));
    let (rows, cols, nnz) = (rd(16), rd(24), rd(32));
    let need = (rows as u128 + 1) * 8 + nnz as u128 * 8 + 40;
    if need != b.len() as u128 {
        return Err(Error::corrupt(
            path,
            format!(
                "length {} bytes, but {rows} rows and {nnz} entries need {need}",
                b.len()
            ),
        ));
    }
    let (rows, nnz) = (rows as usize, nnz as usize);
    let mut o = 40;
    let take = |o: &mut usize, n: usize| {
        let s = &b[*o..*o + n];
        *o += n;
        s
    };
    let indptr: Vec<u64> = take(&mut o, (rows + 1) * 8)
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8")))
        .collect();
    let indices: Vec<u32> = take(&mut o, nnz * 4)
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().expect("4")))
        .collect();
    let values: Vec<f32> = take(&mut o, nnz * 4)
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("4")))
        .collect();
    let m = Csr {
        rows,
        cols: cols as usize,
        indptr,
        indices,
        values,
    };
    m.validate().map_err(|r| Error::corrupt(path, r))?;
    Ok(m)
}

fn check_entry(meta: &ModelMeta, path: &Path, name: &str, len: u64, sum: u64) -> Result<()> {
    let e = meta
        .file(name)
        .ok_or_else(|| Error::corrupt(path, "file not recorded in model.bin"))?;
    if e.len != len {
        return Err(Error::corrupt(
            path,
            format!("length {len} bytes, model.bin records {}", e.len),
        ));
    }
    if e.xxh3 != sum {
        return Err(Error::corrupt(path, "checksum does not match model.bin"));
    }
    Ok(())
}

fn open_npy(dir: &Path, meta: &ModelMeta, name: &str, rows: usize, cols: usize) -> Result<Matrix> {
    let path = dir.join(name);
    let len = std::fs::metadata(&path)
        .map_err(|e| Error::io(&path, e))?
        .len();
    // Length first (cheap, and before any mapped byte is read), then the checksum.
    if let Some(e) = meta.file(name) {
        if e.len != len {
            return Err(Error::corrupt(
                &path,
                format!("length {len} bytes, model.bin records {}", e.len),
            ));
        }
    }
    let (m, sum) = npy::open(&path)?;
    check_entry(meta, &path, name, len, sum)?;
    if m.rows() != rows || m.cols() != cols {
        return Err(Error::corrupt(
            &path,
            format!(
                "shape {}×{}, model.bin records {rows}×{cols}",
                m.rows(),
                m.cols()
            ),
        ));
    }
    Ok(m)
}

/// `Σ w·map[f]` for named feature pairs against a stored feature map whose rows are `names`;
/// `missing` explains a model without that map.
/// Why a model cannot embed demographics.
const NO_USER_MAP: &str =
    "this model was trained without user side information (no users file or --user-features)";

fn embed_named(
    names: &[String],
    map: Option<&Matrix>,
    pairs: &[(String, f32)],
    what: &str,
    missing: &str,
) -> Result<Vec<f32>> {
    let map = map.ok_or_else(|| Error::invalid(what, missing))?;
    let resolved = crate::data::features::resolve(names, pairs)?;
    Ok(crate::train::coldstart::embed(
        &resolved,
        map.as_slice(),
        map.cols(),
    ))
}

impl Model {
    /// Opens and verifies a model directory.
    pub fn open(dir: &Path) -> Result<Model> {
        let mpath = dir.join(META_FILE);
        if !mpath.is_file() {
            return Err(Error::invalid(
                "model directory",
                format!(
                    "{} has no {META_FILE}; train one with `lshrec train`",
                    dir.display()
                ),
            ));
        }
        let meta = parse_meta(&mpath, &read_file(&mpath)?)?;
        let (nu, ni, d) = (meta.n_users, meta.n_items, meta.dim);
        let users = open_npy(dir, &meta, USERS_FILE, nu, d)?;
        let items = open_npy(dir, &meta, ITEMS_FILE, ni, d)?;
        let user_bias = match meta.file(USER_BIAS_FILE) {
            Some(_) => Some(open_npy(dir, &meta, USER_BIAS_FILE, nu, 1)?),
            None => None,
        };
        let seen = match meta.file(SEEN_FILE) {
            Some(_) => {
                let p = dir.join(SEEN_FILE);
                let bytes = read_file(&p)?;
                check_entry(
                    &meta,
                    &p,
                    SEEN_FILE,
                    bytes.len() as u64,
                    xxhash_rust::xxh3::xxh3_64(&bytes),
                )?;
                let s = parse_seen(&p, &bytes)?;
                if s.rows != nu || s.cols != ni {
                    return Err(Error::corrupt(&p, "shape disagrees with the model"));
                }
                Some(s)
            }
            None => None,
        };
        let feature_map = |names: &Vec<String>, file: &str| -> Result<Option<Matrix>> {
            match (meta.file(file), names.is_empty()) {
                (None, true) => Ok(None),
                (Some(_), false) => Ok(Some(open_npy(dir, &meta, file, names.len(), d)?)),
                _ => Err(Error::corrupt(
                    dir.join(file),
                    "feature names and the feature file disagree",
                )),
            }
        };
        let item_features = feature_map(&meta.item_features, ITEM_FEATURES_FILE)?;
        let user_features = feature_map(&meta.user_features, USER_FEATURES_FILE)?;
        let first_ratings = match meta.file(FIRST_RATINGS_FILE) {
            Some(_) => {
                let rows = FirstRatingsMap::rows(ni, meta.user_features.len());
                Some(open_npy(dir, &meta, FIRST_RATINGS_FILE, rows, d)?)
            }
            None => None,
        };
        let mut m = Model::assemble(Some(dir.to_path_buf()), meta, users, items, user_bias, seen);
        m.item_features = item_features;
        m.user_features = user_features;
        m.first_ratings = first_ratings;
        Ok(m)
    }

    fn assemble(
        dir: Option<PathBuf>,
        meta: ModelMeta,
        users: Matrix,
        items: Matrix,
        user_bias: Option<Matrix>,
        seen: Option<Csr>,
    ) -> Model {
        let user_index = meta
            .user_ids
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i as u32))
            .collect();
        Model {
            dir,
            meta,
            users,
            items,
            user_bias,
            seen,
            item_features: None,
            user_features: None,
            first_ratings: None,
            user_index,
            item_index: Default::default(),
            content: Default::default(),
            knots: Default::default(),
        }
    }

    /// Wraps embeddings trained elsewhere: `users.npy` (n_users × d), `items.npy` (n_items × d),
    /// an optional item bias (n_items, folded as an extra column) and an optional file of
    /// (user row, item row) pairs to exclude. Ids are row numbers.
    pub fn from_npy(
        users: &Path,
        items: &Path,
        item_bias: Option<&Path>,
        seen: Option<&Path>,
    ) -> Result<Model> {
        let (mut u, usum) = npy::open(users)?;
        let (mut it, isum) = npy::open(items)?;
        let entry = |p: &Path, xxh3: u64| FileEntry {
            name: p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            len: std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
            xxh3,
        };
        let mut files = vec![entry(users, usum), entry(items, isum)];
        u.non_empty(users, "user")?;
        it.non_empty(items, "item")?;
        if u.cols() != it.cols() {
            return Err(Error::Mismatch {
                what: format!(
                    "user vectors ({}) and item vectors ({}) must have the same number of columns",
                    users.display(),
                    items.display()
                ),
                expected: match it.cols() {
                    1 => "1 column, as in the items' file (a 1-D array is one column)".into(),
                    n => format!("{n} columns, as in the items' file"),
                },
                found: format!("{} in the users' file", u.cols()),
            });
        }
        let folded = if let Some(bp) = item_bias {
            let (b, bsum) = npy::open(bp)?;
            files.push(entry(bp, bsum));
            if b.rows() != it.rows() || b.cols() != 1 {
                return Err(Error::Mismatch {
                    what: format!("{}: item bias shape", bp.display()),
                    expected: format!("({},)", it.rows()),
                    found: format!("({}, {})", b.rows(), b.cols()),
                });
            }
            let d = it.cols();
            let mut iv = Vec::with_capacity(it.rows() * (d + 1));
            for i in 0..it.rows() {
                iv.extend_from_slice(it.row(i));
                iv.push(b.row(i)[0]);
            }
            let mut uv = Vec::with_capacity(u.rows() * (d + 1));
            for r in 0..u.rows() {
                uv.extend_from_slice(u.row(r));
                uv.push(1.0);
            }
            it = Matrix::from_vec(it.rows(), d + 1, iv);
            u = Matrix::from_vec(u.rows(), d + 1, uv);
            true
        } else {
            false
        };
        let (nu, ni) = (u.rows(), it.rows());
        let seen = match seen {
            None => None,
            Some(p) => Some(read_seen_pairs(p, nu, ni)?),
        };
        let meta = ModelMeta {
            kind: "external".into(),
            dim: u.cols(),
            n_users: nu,
            n_items: ni,
            user_ids: (0..nu).map(|i| i.to_string()).collect(),
            item_ids: (0..ni).map(|i| i.to_string()).collect(),
            folded_item_bias: folded,
            global_mean: None,
            config: String::new(),
            seed: 0,
            metrics: Vec::new(),
            catalogue: Vec::new(),
            item_features: Vec::new(),
            user_features: Vec::new(),
            // The input files' checksums: an index built on these embeddings records them.
            files,
            written_by: String::new(),
        };
        Ok(Model::assemble(None, meta, u, it, None, seen))
    }

    /// The dense id of external user id `id`.
    pub fn user(&self, id: &str) -> Result<u32> {
        self.user_index
            .get(id)
            .copied()
            .ok_or_else(|| Error::UnknownUser {
                id: id.to_string(),
                known: self.meta.n_users,
            })
    }

    /// The dense id of external item id `id`: a scan of the id map (cheaper than building an
    /// index for a few lookups), or the index once [`Model::item_index`] has built it.
    pub fn item(&self, id: &str) -> Result<u32> {
        let found = match self.item_index.get() {
            Some(index) => index.get(id).copied(),
            None => (self.meta.item_ids.iter())
                .position(|x| x == id)
                .map(|i| i as u32),
        };
        found.ok_or_else(|| Error::UnknownItem {
            id: id.to_string(),
            known: self.meta.n_items,
        })
    }

    /// External item id → dense id, for many lookups (built once, on first use).
    pub fn item_index(&self) -> &HashMap<String, u32> {
        self.item_index.get_or_init(|| {
            (self.meta.item_ids.iter().enumerate())
                .map(|(i, x)| (x.clone(), i as u32))
                .collect()
        })
    }

    /// The training configuration recorded in model.bin, when it parses (a model written by
    /// another version may not carry one this version reads).
    pub fn train_config(&self) -> Option<crate::train::TrainConfig> {
        serde_json::from_str(&self.meta.config).ok()
    }

    /// The fold-in constants of this model: its own iALS confidence, unobserved weight and
    /// regularisation when it is an iALS model, iALS's defaults otherwise.
    pub fn fold_in_config(&self) -> crate::train::coldstart::FoldIn {
        match self.train_config() {
            Some(cfg) if self.meta.kind == "ials" => cfg.fold_in(),
            _ => crate::train::coldstart::FoldIn::default(),
        }
    }

    /// The first-ratings map, when the model has one.
    pub fn first_ratings_map(&self) -> Option<FirstRatingsMap<'_>> {
        self.first_ratings.as_ref().map(|m| FirstRatingsMap {
            map: m.as_slice(),
            n_items: self.n_items(),
            n_features: self.meta.user_features.len(),
            d: self.dim(),
        })
    }

    /// The first-ratings map, or the error `--first-ratings` gives for a model without one.
    pub fn require_first_ratings_map(&self) -> Result<FirstRatingsMap<'_>> {
        self.first_ratings_map().ok_or_else(|| {
            Error::invalid(
                "--first-ratings",
                "this model has no first-ratings map: `lshrec train` fits one when the training file has timestamps",
            )
        })
    }

    /// The feature pairs of a user with demographics `age`, `gender`, `occupation` and
    /// attribute values `tags`.
    fn user_feature_pairs(
        &self,
        age: Option<u16>,
        gender: Option<&str>,
        occupation: Option<&str>,
        tags: &[(String, String)],
    ) -> Vec<(String, f32)> {
        let mut pairs = crate::data::features::user_pairs(age, gender, occupation);
        pairs.extend(crate::data::features::tag_pairs(tags, self.user_knots()));
        pairs
    }

    /// The vector of a new user whose first positives are `liked` (item rows), with
    /// demographics `age`, `gender`, `occupation` and attribute values `tags`, from the
    /// first-ratings map; an unknown feature value is refused with the known ones.
    pub fn first_ratings_vector(
        &self,
        liked: &[u32],
        age: Option<u16>,
        gender: Option<&str>,
        occupation: Option<&str>,
        tags: &[(String, String)],
    ) -> Result<Vec<f32>> {
        let pairs = self.user_feature_pairs(age, gender, occupation, tags);
        let map = self.require_first_ratings_map()?;
        let features = match pairs.is_empty() {
            true => Vec::new(),
            false if self.meta.user_features.is_empty() => {
                return Err(Error::invalid("demographics", NO_USER_MAP))
            }
            false => crate::data::features::resolve(&self.meta.user_features, &pairs)?,
        };
        map.vector(liked, &features)
    }

    /// The cold-start vector of a user with demographics `age`, `gender`, `occupation` (the
    /// sum of their feature vectors), or `None` when none is given.
    pub fn demographic_vector(
        &self,
        age: Option<u16>,
        gender: Option<&str>,
        occupation: Option<&str>,
        tags: &[(String, String)],
    ) -> Result<Option<Vec<f32>>> {
        let pairs = self.user_feature_pairs(age, gender, occupation, tags);
        if pairs.is_empty() {
            return Ok(None);
        }
        embed_named(
            &self.meta.user_features,
            self.user_features.as_ref(),
            &pairs,
            "demographics",
            NO_USER_MAP,
        )
        .map(Some)
    }

    /// Feature `pairs` of a user (as [`crate::data::features::user_pairs`] and `tag_pairs`
    /// make them) resolved against the model's user features (rows and weights), the values
    /// it does not know left out, and how many it did not know. For evaluations, where a
    /// held-out user's occupation the training users never had must not stop the run; `query`
    /// refuses unknown values instead.
    pub fn known_user_features(
        &self,
        pairs: &[(String, f32)],
    ) -> Result<(Vec<(usize, f32)>, usize)> {
        let names = &self.meta.user_features;
        let known: Vec<(String, f32)> = (pairs.iter())
            .filter(|(n, _)| names.contains(n))
            .cloned()
            .collect();
        let unknown = pairs.len() - known.len();
        Ok((crate::data::features::resolve(names, &known)?, unknown))
    }

    /// The demographic prior of a user with resolved `features` ([`Model::known_user_features`]):
    /// the sum of their vectors in the user map. `None` when the model has no user map or
    /// there are no features.
    pub fn user_feature_vector(&self, features: &[(usize, f32)]) -> Option<Vec<f32>> {
        match (&self.user_features, features.is_empty()) {
            (Some(m), false) => Some(crate::train::coldstart::embed(
                features,
                m.as_slice(),
                m.cols(),
            )),
            _ => None,
        }
    }

    /// The cold-start vector of a new item with `genres`, `year` and attribute values `tags`,
    /// and the decade feature that stood in for the year's, if one did: a year from a decade the
    /// model never saw takes the nearest decade it did ([`Model::decade_stand_in`]); a year it
    /// never saw is left out.
    pub fn item_vector(
        &self,
        genres: &[&str],
        year: Option<u16>,
        tags: &[(String, String)],
    ) -> Result<(Vec<f32>, Option<String>)> {
        let mut pairs = crate::data::features::item_pairs(genres, year);
        let stand_in = year.and_then(|y| self.decade_stand_in(y));
        if let Some(near) = &stand_in {
            for (name, _) in pairs.iter_mut().filter(|(n, _)| n.starts_with("decade:")) {
                *name = near.clone();
            }
        }
        pairs.extend(crate::data::features::tag_pairs(tags, self.item_knots()));
        if pairs.is_empty() {
            return Err(Error::invalid(
                "embed-item",
                "give --genres, --year and/or --feature COLUMN=VALUE",
            ));
        }
        Ok((self.item_feature_vector(&pairs, "embed-item")?, stand_in))
    }

    /// The mean trained vector of a new item's content neighbours (the catalogue items with
    /// training interactions most like it by content `names` and `year`, as `cfg` says; see
    /// [`crate::data::features::content_names`]), and how many they are; `None` without a
    /// catalogue, without content names or without a similar trained item.
    pub fn content_neighbours(
        &self,
        names: &[String],
        year: Option<u16>,
        cfg: &crate::train::coldstart::ContentNeighbours,
    ) -> Option<(Vec<f32>, usize)> {
        if cfg.k == 0 || names.is_empty() || self.meta.catalogue.len() != self.n_items() {
            return None;
        }
        let cat = self.content.get_or_init(|| {
            let mut trained = vec![false; self.n_items()];
            if let Some(seen) = &self.seen {
                for &i in &seen.indices {
                    if let Some(x) = trained.get_mut(i as usize) {
                        *x = true;
                    }
                }
            }
            let knots = self.item_knots();
            crate::train::coldstart::ContentCatalogue::new(
                (self.meta.catalogue.iter()).map(|c| {
                    (
                        crate::data::features::content_names(&c.genres, &c.tags, knots),
                        c.year,
                    )
                }),
                trained,
            )
        });
        cfg.mean(names, year, cat, self.items.as_slice(), self.dim())
    }

    /// The knots of the numeric item attribute columns the model was trained with (from its
    /// item feature names).
    pub fn item_knots(&self) -> &crate::data::features::Knots {
        self.knots[0]
            .get_or_init(|| crate::data::features::Knots::from_names(&self.meta.item_features))
    }

    /// The knots of the numeric user attribute columns, as [`Model::item_knots`].
    pub fn user_knots(&self) -> &crate::data::features::Knots {
        self.knots[1]
            .get_or_init(|| crate::data::features::Knots::from_names(&self.meta.user_features))
    }

    /// The decade feature that stands in for `year`'s when the model has no movie from that
    /// decade (the nearest it has), or `None`.
    pub fn decade_stand_in(&self, year: u16) -> Option<String> {
        self.item_features.as_ref()?;
        crate::data::features::nearest_decade(&self.meta.item_features, year)
    }

    /// `Σ w·item_features[f]` for named item features (`what` names the request in errors).
    pub fn item_feature_vector(&self, pairs: &[(String, f32)], what: &str) -> Result<Vec<f32>> {
        embed_named(
            &self.meta.item_features,
            self.item_features.as_ref(),
            pairs,
            what,
            "this model was trained without item side information (no genres, years or --item-features)",
        )
    }

    /// Number of users.
    pub fn n_users(&self) -> usize {
        self.meta.n_users
    }

    /// Number of items.
    pub fn n_items(&self) -> usize {
        self.meta.n_items
    }

    /// Serving dimension.
    pub fn dim(&self) -> usize {
        self.meta.dim
    }

    /// Display title of item `i`.
    pub fn title(&self, i: u32) -> String {
        self.meta
            .catalogue
            .get(i as usize)
            .and_then(|c| c.title.clone())
            .unwrap_or_else(|| format!("item {}", self.meta.item_ids[i as usize]))
    }
}

/// Reads (user row, item row) pairs to exclude for external embeddings.
fn read_seen_pairs(path: &Path, nu: usize, ni: usize) -> Result<Csr> {
    let opts = data::LoadOptions {
        format: Some(data::Format::Generic),
        ..Default::default()
    };
    let ds = data::load(path, &opts)?;
    let parse = |s: &str, n: usize, column: usize| -> Result<u32> {
        match s.parse::<usize>() {
            Ok(v) if v < n => Ok(v as u32),
            _ => Err(Error::Parse {
                path: path.to_path_buf(),
                line: first_line_with(path, column, s)?,
                field: ["user", "item"][column].into(),
                expected: format!("a row number below {n}"),
                found: s.to_string(),
            }),
        }
    };
    let mut triples = Vec::with_capacity(ds.interactions.len());
    for x in &ds.interactions {
        let u = parse(ds.users.ext(x.user), nu, 0)?;
        let i = parse(ds.items.ext(x.item), ni, 1)?;
        triples.push((u, i, x.rating));
    }
    Ok(Csr::from_triples(nu, ni, &triples))
}

/// The number of the first data line of `path` whose user field (`role` 0) or item field
/// (`role` 1) is `value` (the loader sorts rows, so an error found after loading looks its line
/// up again); 0 if none is. The columns are resolved as the generic loader resolves them.
pub(crate) fn first_line_with(path: &Path, role: usize, value: &str) -> Result<usize> {
    let layout = data::formats::generic::layout(path, &Default::default())?;
    let column = [layout.columns.user, layout.columns.item][role];
    line_with(path, layout.delim, layout.has_header, column, value)
}

/// The number of the first row of attribute file `path` (a header row, then the id in the
/// first column) about `id`; 0 if none is.
pub(crate) fn attribute_line_with(path: &Path, id: &str) -> Result<usize> {
    let mut rdr = data::text::LineReader::open(path)?;
    match rdr
        .next_content_line(true)?
        .and_then(|(_, h)| data::text::Delimiter::sniff(h))
    {
        Some(delim) => line_with(path, delim, true, 0, id),
        None => Ok(0),
    }
}

/// The number of the first data line of `path` whose `column` is `value`; 0 if none is.
fn line_with(
    path: &Path,
    delim: data::text::Delimiter,
    has_header: bool,
    column: usize,
    value: &str,
) -> Result<usize> {
    let mut rdr = data::text::LineReader::open(path)?;
    if has_header {
        rdr.next_content_line(true)?;
    }
    // Lines as the loader reads them: blank and `#` comment lines are not rows.
    while let Some((no, line)) = rdr.next_content_line(true)? {
        let mut fields = Vec::new();
        let found = delim.split(line, &mut fields).is_ok()
            && fields.get(column).is_some_and(|f| f.trim() == value);
        if found {
            return Ok(no);
        }
    }
    Ok(0)
}
