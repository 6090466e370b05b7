//! The data layer: format readers and writers, id maps, CSR/CSC storage, splits, statistics and
//! the synthetic generator.

pub mod csr;
pub mod dataset;
pub mod features;
pub mod formats;
pub mod ids;
pub mod split;
pub mod stats;
pub mod synth;
pub mod text;

use std::path::{Path, PathBuf};

pub use csr::Csr;
pub use dataset::{Dataset, DatasetBuilder, Interaction, ItemInfo, UserInfo};
pub use formats::attributes::AttributeFile;
pub use formats::generic::GenericOptions;
pub use ids::IdMap;

use crate::error::{Error, Result};

/// The dataset formats lshrec reads and writes.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// GroupLens ml-100k: u.data, u.item, u.user (and u1.base/u1.test … split files).
    #[value(name = "ml-100k")]
    Ml100k,
    /// GroupLens ml-1m: ratings.dat, movies.dat, users.dat (`::`-separated).
    #[value(name = "ml-1m")]
    Ml1m,
    /// MovieLens CSV (ml-latest-small, 20m, 25m, 32m): ratings.csv, movies.csv.
    #[value(name = "movielens-csv")]
    MovielensCsv,
    /// RecBole atomic files: NAME.inter, NAME.item, NAME.user.
    #[value(name = "atomic")]
    Atomic,
    /// A delimited user,item[,rating[,timestamp]] file with or without a header.
    #[allow(rustdoc::broken_intra_doc_links)] // the brackets are --help text, not links
    #[value(name = "generic")]
    Generic,
}

impl Format {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::Ml100k => "ml-100k",
            Format::Ml1m => "ml-1m",
            Format::MovielensCsv => "movielens-csv",
            Format::Atomic => "atomic",
            Format::Generic => "generic",
        }
    }
}

/// How to read a dataset.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Overrides format detection.
    pub format: Option<Format>,
    /// Column and delimiter overrides for generic files.
    pub generic: GenericOptions,
    /// Item attribute file (`--item-features`).
    pub item_attributes: Option<AttributeFile>,
    /// User attribute file (`--user-features`).
    pub user_attributes: Option<AttributeFile>,
    /// Read the ratings file alone, not the side files (titles, genres, demographics) beside
    /// it: for a file of new ratings (`recommend-all --fold-in`) that merely sits in a dataset
    /// directory.
    pub no_side_files: bool,
}

const LOOKED_FOR: &str =
    "u.data (ml-100k), ratings.dat (ml-1m), ratings.csv (MovieLens CSV), NAME.inter (RecBole), ratings.tsv (generic)";

/// Detects the format of a dataset directory or ratings file.
pub fn detect(path: &Path) -> Result<Format> {
    if path.is_dir() {
        let has = |n: &str| path.join(n).is_file();
        if has("u.data") {
            return Ok(Format::Ml100k);
        }
        if has("ratings.dat") {
            return Ok(Format::Ml1m);
        }
        if has("ratings.csv") {
            return Ok(Format::MovielensCsv);
        }
        if formats::atomic::find_inter(path).is_ok() {
            return Ok(Format::Atomic);
        }
        if has("ratings.tsv") {
            return Ok(Format::Generic);
        }
        return Err(Error::UnknownFormat {
            path: path.to_path_buf(),
            looked_for: LOOKED_FOR.into(),
        });
    }
    if !path.exists() {
        return Err(Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
        ));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let is_udata_split = name == "u.data"
        || (name.len() == 7
            && name.starts_with('u')
            && (name.ends_with(".base") || name.ends_with(".test")));
    Ok(if name.ends_with(".inter") {
        Format::Atomic
    } else if is_udata_split {
        Format::Ml100k
    } else if name == "ratings.dat" {
        Format::Ml1m
    } else if name == "ratings.csv" {
        Format::MovielensCsv
    } else {
        Format::Generic
    })
}

/// The ratings file of a dataset directory in `format`.
fn ratings_file(dir: &Path, format: Format) -> Result<PathBuf> {
    Ok(match format {
        Format::Ml100k => dir.join("u.data"),
        Format::Ml1m => dir.join("ratings.dat"),
        Format::MovielensCsv => dir.join("ratings.csv"),
        Format::Atomic => formats::atomic::find_inter(dir)?,
        Format::Generic => dir.join("ratings.tsv"),
    })
}

/// Reads only the interactions of a ratings file into `b`; returns (has ratings, has timestamps).
fn read_interactions_into(
    file: &Path,
    format: Format,
    opts: &LoadOptions,
    b: &mut DatasetBuilder,
) -> Result<(bool, bool)> {
    use formats::common::read_interactions;
    match format {
        Format::Ml100k => read_interactions(file, &formats::ml100k::ratings_spec(), b)?,
        Format::Ml1m => read_interactions(file, &formats::ml1m::ratings_spec(), b)?,
        Format::MovielensCsv => read_interactions(file, &formats::mlcsv::ratings_spec(), b)?,
        Format::Atomic => formats::atomic::read_inter(file, b)?,
        Format::Generic => return formats::generic::read_ratings(file, &opts.generic, b),
    }
    Ok((true, true))
}

/// Reads the side files (items, users) that accompany `file` in `format`.
fn read_side_into(file: &Path, format: Format, b: &mut DatasetBuilder) -> Result<()> {
    let dir = file.parent().unwrap_or(Path::new("."));
    match format {
        Format::Ml100k => formats::ml100k::read_side(dir, b),
        Format::Ml1m => formats::ml1m::read_side(dir, b),
        Format::MovielensCsv => formats::mlcsv::read_side(dir, b),
        Format::Atomic => formats::atomic::read_side(file, b),
        Format::Generic => formats::generic::read_side(dir, b),
    }
}

/// Loads a dataset from a directory or a ratings file, detecting its format unless given.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Dataset> {
    let format = match opts.format {
        Some(f) => f,
        None => detect(path)?,
    };
    let file = if path.is_dir() {
        ratings_file(path, format)?
    } else {
        path.to_path_buf()
    };
    let mut b = DatasetBuilder::new(true, true);
    if !opts.no_side_files {
        read_side_into(&file, format, &mut b)?;
    }
    use formats::attributes::{read as read_attributes, Entity};
    if let Some(f) = &opts.item_attributes {
        read_attributes(f, Entity::Item, &mut b)?;
    }
    if let Some(f) = &opts.user_attributes {
        read_attributes(f, Entity::User, &mut b)?;
    }
    let (has_r, has_t) = read_interactions_into(&file, format, opts, &mut b)?;
    let mut d = b.finish(Some(format), true);
    d.has_ratings = has_r;
    d.has_timestamps = has_t;
    Ok(d)
}

/// Loads an explicit train/test pair. Both share one set of dense ids: the train file's ids
/// come first, and users or items that appear only in the test file are appended after them, so
/// that the metrics can treat them as their protocol defines (never dropped silently).
pub fn load_pair(train: &Path, test: &Path, opts: &LoadOptions) -> Result<(Dataset, Dataset)> {
    let mut tr = load(train, opts)?;
    let format = match opts.format {
        Some(f) => f,
        None => detect(test)?,
    };
    let file = if test.is_dir() {
        ratings_file(test, format)?
    } else {
        test.to_path_buf()
    };
    let mut b = DatasetBuilder::new(true, true).with_ids(&tr.users, &tr.items);
    let (has_r, has_t) = read_interactions_into(&file, format, opts, &mut b)?;
    let te_raw = b.finish(Some(format), false);
    tr.extend_ids(&te_raw.users, &te_raw.items);
    let mut te = tr.with_interactions(te_raw.interactions);
    te.duplicates = te_raw.duplicates;
    te.sources = te_raw.sources;
    te.has_ratings = has_r;
    te.has_timestamps = has_t;
    Ok((tr, te))
}

impl Dataset {
    /// Replaces the id maps by supersets (new ids appended) and pads the side information.
    pub fn extend_ids(&mut self, users: &IdMap, items: &IdMap) {
        debug_assert!(users.len() >= self.users.len() && items.len() >= self.items.len());
        self.users = users.clone();
        self.items = items.clone();
        if let Some(info) = &mut self.item_info {
            let n = items.len();
            info.titles.resize(n, None);
            info.genres.resize(n, Vec::new());
            info.years.resize(n, None);
            info.tags.resize(n, Vec::new());
        }
        if let Some(info) = &mut self.user_info {
            let n = users.len();
            info.ages.resize(n, None);
            info.genders.resize(n, None);
            info.occupations.resize(n, None);
            info.zips.resize(n, None);
            info.tags.resize(n, Vec::new());
        }
    }
}

/// Writes `ds` into `dir` in `format` (every write is atomic).
pub fn write(ds: &Dataset, dir: &Path, format: Format) -> Result<()> {
    match format {
        Format::Ml100k => formats::ml100k::write_dir(ds, dir),
        Format::Ml1m => formats::ml1m::write_dir(ds, dir),
        Format::MovielensCsv => formats::mlcsv::write_dir(ds, dir),
        Format::Atomic => {
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "data".into());
            formats::atomic::write_dir(ds, dir, &name)
        }
        Format::Generic => formats::generic::write_dir(ds, dir),
    }
}
