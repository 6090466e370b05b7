//! The in-memory dataset every reader returns, and the builder readers fill.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::csr::Csr;
use super::ids::IdMap;
use super::Format;

/// One (user, item) interaction with dense ids.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interaction {
    pub user: u32,
    pub item: u32,
    /// The explicit rating, or 1.0 for implicit data.
    pub rating: f32,
    /// Seconds since the epoch, or 0 when the source has none.
    pub timestamp: i64,
}

/// Side information about items (one entry per dense item id).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ItemInfo {
    pub titles: Vec<Option<String>>,
    /// Genre indices into [`Dataset::genre_names`].
    pub genres: Vec<Vec<u16>>,
    pub years: Vec<Option<u16>>,
    /// Categorical attributes from an attribute file (`--item-features`): (column, value)
    /// pairs per item; may be shorter than the catalogue (missing entries have none).
    #[serde(default)]
    pub tags: Vec<Vec<(String, String)>>,
    /// The attribute columns declared numeric (`--item-numeric-cols`), sorted: their values
    /// are numbers, interpolated between quantile knots ([`crate::data::features::Knots`]).
    #[serde(default)]
    pub numeric: Vec<String>,
}

/// Demographics (one entry per dense user id).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UserInfo {
    pub ages: Vec<Option<u16>>,
    pub genders: Vec<Option<String>>,
    pub occupations: Vec<Option<String>>,
    pub zips: Vec<Option<String>>,
    /// Categorical attributes from an attribute file (`--user-features`), as for items.
    #[serde(default)]
    pub tags: Vec<Vec<(String, String)>>,
    /// The attribute columns declared numeric (`--user-numeric-cols`), as for items.
    #[serde(default)]
    pub numeric: Vec<String>,
}

/// A loaded dataset: deduplicated interactions, id maps and whatever side information the
/// format carries.
///
/// **Duplicate rule:** when a (user, item) pair occurs more than once, the row with the latest
/// timestamp wins; among equal timestamps the later line in the file wins. The number of rows
/// dropped this way is [`Dataset::duplicates`], and `data stats` reports it.
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    pub format: Option<Format>,
    pub sources: Vec<PathBuf>,
    pub users: IdMap,
    pub items: IdMap,
    /// Sorted by (user, timestamp, item).
    pub interactions: Vec<Interaction>,
    pub has_ratings: bool,
    pub has_timestamps: bool,
    pub genre_names: Vec<String>,
    pub item_info: Option<ItemInfo>,
    pub user_info: Option<UserInfo>,
    /// Rows dropped by the duplicate rule.
    pub duplicates: usize,
    /// What the readers want the user told about how they read the files (a header column left
    /// unread, say), one line each; the CLI prints them as notes.
    pub notes: Vec<String>,
}

impl Dataset {
    /// Number of users in the id map.
    pub fn n_users(&self) -> usize {
        self.users.len()
    }

    /// Number of items in the id map (rated items plus catalogue-only items).
    pub fn n_items(&self) -> usize {
        self.items.len()
    }

    /// The user × item matrix of ratings (or weights) by user.
    pub fn csr(&self) -> Csr {
        Csr::from_triples(self.n_users(), self.n_items(), &self.triples())
    }

    /// The same matrix by item (CSC of the user × item matrix).
    pub fn csc(&self) -> Csr {
        self.csr().transpose()
    }

    /// (user, item, rating) triples.
    pub fn triples(&self) -> Vec<(u32, u32, f32)> {
        self.interactions
            .iter()
            .map(|x| (x.user, x.item, x.rating))
            .collect()
    }

    /// Whether `x` is a positive at `min_rating`: its rating reaches it, or the source has no
    /// ratings (a list of pairs, such as a split's test file, lists positives).
    fn is_positive(&self, x: &Interaction, min_rating: f32) -> bool {
        !self.has_ratings || x.rating >= min_rating
    }

    /// Keeps the interactions with a rating ≥ `min_rating` as positives of weight 1 (all of
    /// them when the source has no ratings). The id maps and side information are kept whole,
    /// so ids stay comparable with the full dataset.
    pub fn implicit(&self, min_rating: f32) -> Dataset {
        let mut d = self.clone_meta();
        d.interactions = self
            .interactions
            .iter()
            .filter(|x| self.is_positive(x, min_rating))
            .map(|x| Interaction { rating: 1.0, ..*x })
            .collect();
        d.has_ratings = false;
        d
    }

    /// Like [`Dataset::implicit`], but each positive's weight grows with its rating:
    /// `rating − min_rating + 1` (with `--min-rating 4`: 1 for a 4, 2 for a 5), for models whose
    /// confidence uses the weight (iALS: c = 1 + alpha·w).
    pub fn implicit_weighted(&self, min_rating: f32) -> Dataset {
        let mut d = self.clone_meta();
        d.interactions = self
            .interactions
            .iter()
            .filter(|x| self.is_positive(x, min_rating))
            .map(|x| Interaction {
                rating: if self.has_ratings {
                    x.rating - min_rating + 1.0
                } else {
                    1.0
                },
                ..*x
            })
            .collect();
        d.has_ratings = false;
        d
    }

    /// Positives and known negatives, for iALS: ratings ≥ `min_rating` become positives of
    /// weight 1 (or `rating − min_rating + 1` when `weighted`), lower ratings become known
    /// negatives of weight −1 (the user saw the item and did not like it). Splits move only
    /// positives to test; evaluation excludes only positives from the ranking.
    pub fn signed(&self, min_rating: f32, weighted: bool) -> Dataset {
        let mut d = self.clone_meta();
        d.interactions = self
            .interactions
            .iter()
            .map(|x| {
                let rating = match (
                    self.is_positive(x, min_rating),
                    weighted && self.has_ratings,
                ) {
                    (true, true) => x.rating - min_rating + 1.0,
                    (true, false) => 1.0,
                    (false, _) => -1.0,
                };
                Interaction { rating, ..*x }
            })
            .collect();
        d.has_ratings = false;
        d
    }

    /// The interactions of positive weight (drops the known negatives of [`Dataset::signed`]).
    pub fn positives(&self) -> Dataset {
        self.with_interactions(
            self.interactions
                .iter()
                .filter(|x| x.rating > 0.0)
                .copied()
                .collect(),
        )
    }

    /// Whether any interaction is a known negative (negative weight).
    pub fn has_negatives(&self) -> bool {
        self.interactions.iter().any(|x| x.rating < 0.0)
    }

    /// A copy with the same ids and side information and no interactions.
    pub fn clone_meta(&self) -> Dataset {
        Dataset {
            format: self.format,
            sources: self.sources.clone(),
            users: self.users.clone(),
            items: self.items.clone(),
            interactions: Vec::new(),
            has_ratings: self.has_ratings,
            has_timestamps: self.has_timestamps,
            genre_names: self.genre_names.clone(),
            item_info: self.item_info.clone(),
            user_info: self.user_info.clone(),
            duplicates: 0,
            notes: self.notes.clone(),
        }
    }

    /// A copy with the same ids and side information and the given interactions.
    pub fn with_interactions(&self, interactions: Vec<Interaction>) -> Dataset {
        let mut d = self.clone_meta();
        d.interactions = interactions;
        d
    }

    /// Display title of item `i` (falls back to its external id).
    pub fn title(&self, i: u32) -> String {
        self.item_info
            .as_ref()
            .and_then(|info| info.titles.get(i as usize).cloned().flatten())
            .unwrap_or_else(|| format!("item {}", self.items.ext(i)))
    }

    /// Genre names of item `i`.
    pub fn genres_of(&self, i: u32) -> Vec<&str> {
        match &self.item_info {
            Some(info) => info.genres[i as usize]
                .iter()
                .map(|&g| self.genre_names[g as usize].as_str())
                .collect(),
            None => Vec::new(),
        }
    }
}

/// Raw side information collected by external id before dense ids are final.
#[derive(Default)]
struct RawItem {
    title: Option<String>,
    genres: Vec<u16>,
    year: Option<u16>,
    tags: Vec<(String, String)>,
}

#[derive(Default)]
struct RawUser {
    age: Option<u16>,
    gender: Option<String>,
    occupation: Option<String>,
    zip: Option<String>,
    tags: Vec<(String, String)>,
}

/// Collects interactions and side information while a reader parses, then produces a
/// [`Dataset`] with naturally sorted dense ids and the duplicate rule applied.
#[derive(Default)]
pub struct DatasetBuilder {
    users: IdMap,
    items: IdMap,
    rows: Vec<(Interaction, u64)>,
    has_ratings: bool,
    has_timestamps: bool,
    genre_names: Vec<String>,
    genre_index: HashMap<String, u16>,
    items_raw: HashMap<u32, RawItem>,
    users_raw: HashMap<u32, RawUser>,
    item_numeric: Vec<String>,
    user_numeric: Vec<String>,
    sources: Vec<PathBuf>,
    notes: Vec<String>,
}

impl DatasetBuilder {
    /// A new builder; `has_ratings`/`has_timestamps` say what the source provides.
    pub fn new(has_ratings: bool, has_timestamps: bool) -> Self {
        DatasetBuilder {
            has_ratings,
            has_timestamps,
            ..Default::default()
        }
    }

    /// Starts from existing id maps, so that a second file (a test split) shares dense ids with
    /// the first. New ids are appended after the known ones.
    pub fn with_ids(mut self, users: &IdMap, items: &IdMap) -> Self {
        self.users = users.clone();
        self.items = items.clone();
        self
    }

    /// Records that `path` was read.
    pub fn source(&mut self, path: PathBuf) {
        self.sources.push(path);
    }

    /// Records a note for the user about how a file was read ([`Dataset::notes`]).
    pub fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    /// Adds one interaction by external ids.
    pub fn push(&mut self, user: &str, item: &str, rating: f32, timestamp: i64) {
        let u = self.users.intern(user);
        let i = self.items.intern(item);
        let seq = self.rows.len() as u64;
        self.rows.push((
            Interaction {
                user: u,
                item: i,
                rating,
                timestamp,
            },
            seq,
        ));
    }

    /// Number of interaction rows pushed so far.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when no interaction was pushed.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Declares a genre name (so that a format's canonical genre order is kept).
    pub fn genre(&mut self, name: &str) -> u16 {
        if let Some(&g) = self.genre_index.get(name) {
            return g;
        }
        let g = self.genre_names.len() as u16;
        self.genre_names.push(name.to_string());
        self.genre_index.insert(name.to_string(), g);
        g
    }

    /// Adds an item of the catalogue with its side information.
    pub fn item(&mut self, id: &str, title: Option<String>, genres: &[&str], year: Option<u16>) {
        let i = self.items.intern(id);
        let genres = genres.iter().map(|g| self.genre(g)).collect();
        let raw = self.items_raw.entry(i).or_default();
        raw.title = title;
        raw.genres = genres;
        raw.year = year;
    }

    /// Adds attribute values (column, value) to an item, creating it if needed.
    pub fn item_tags(&mut self, id: &str, tags: Vec<(String, String)>) {
        let i = self.items.intern(id);
        self.items_raw.entry(i).or_default().tags.extend(tags);
    }

    /// Adds attribute values (column, value) to a user, creating it if needed.
    pub fn user_tags(&mut self, id: &str, tags: Vec<(String, String)>) {
        let u = self.users.intern(id);
        self.users_raw.entry(u).or_default().tags.extend(tags);
    }

    /// Declares attribute columns of the items numeric (their values already checked to be
    /// numbers).
    pub fn item_numeric(&mut self, cols: &[String]) {
        self.item_numeric.extend(cols.iter().cloned());
        self.item_numeric.sort();
        self.item_numeric.dedup();
    }

    /// Declares attribute columns of the users numeric, as [`Self::item_numeric`].
    pub fn user_numeric(&mut self, cols: &[String]) {
        self.user_numeric.extend(cols.iter().cloned());
        self.user_numeric.sort();
        self.user_numeric.dedup();
    }

    /// Adds a user with demographics.
    pub fn user(
        &mut self,
        id: &str,
        age: Option<u16>,
        gender: Option<String>,
        occupation: Option<String>,
        zip: Option<String>,
    ) {
        let u = self.users.intern(id);
        let raw = self.users_raw.entry(u).or_default();
        raw.age = age;
        raw.gender = gender;
        raw.occupation = occupation;
        raw.zip = zip;
    }

    /// Finishes the dataset. `sort_ids` reorders dense ids naturally (off when extending the id
    /// maps of another dataset, whose ids must stay put).
    pub fn finish(mut self, format: Option<Format>, sort_ids: bool) -> Dataset {
        if sort_ids {
            let up = self.users.sort_natural();
            let ip = self.items.sort_natural();
            for (x, _) in &mut self.rows {
                x.user = up[x.user as usize];
                x.item = ip[x.item as usize];
            }
            self.items_raw = std::mem::take(&mut self.items_raw)
                .into_iter()
                .map(|(k, v)| (ip[k as usize], v))
                .collect();
            self.users_raw = std::mem::take(&mut self.users_raw)
                .into_iter()
                .map(|(k, v)| (up[k as usize], v))
                .collect();
        }
        // Duplicate rule: latest timestamp wins, then the later line.
        self.rows
            .sort_unstable_by_key(|(x, seq)| (x.user, x.item, x.timestamp, *seq));
        let before = self.rows.len();
        let mut kept: Vec<Interaction> = Vec::with_capacity(before);
        for (x, _) in self.rows.drain(..) {
            match kept.last_mut() {
                Some(last) if last.user == x.user && last.item == x.item => *last = x,
                _ => kept.push(x),
            }
        }
        let duplicates = before - kept.len();
        kept.sort_unstable_by_key(|x| (x.user, x.timestamp, x.item));

        let item_info = (!self.items_raw.is_empty()).then(|| {
            let n = self.items.len();
            let mut info = ItemInfo {
                titles: vec![None; n],
                genres: vec![Vec::new(); n],
                years: vec![None; n],
                tags: vec![Vec::new(); n],
                numeric: std::mem::take(&mut self.item_numeric),
            };
            for (i, raw) in self.items_raw.drain() {
                info.titles[i as usize] = raw.title;
                info.genres[i as usize] = raw.genres;
                info.years[i as usize] = raw.year;
                info.tags[i as usize] = raw.tags;
            }
            info
        });
        let user_info = (!self.users_raw.is_empty()).then(|| {
            let n = self.users.len();
            let mut info = UserInfo {
                ages: vec![None; n],
                genders: vec![None; n],
                occupations: vec![None; n],
                zips: vec![None; n],
                tags: vec![Vec::new(); n],
                numeric: std::mem::take(&mut self.user_numeric),
            };
            for (u, raw) in self.users_raw.drain() {
                info.tags[u as usize] = raw.tags;
                info.ages[u as usize] = raw.age;
                info.genders[u as usize] = raw.gender;
                info.occupations[u as usize] = raw.occupation;
                info.zips[u as usize] = raw.zip;
            }
            info
        });
        Dataset {
            format,
            sources: self.sources,
            users: self.users,
            items: self.items,
            interactions: kept,
            has_ratings: self.has_ratings,
            has_timestamps: self.has_timestamps,
            genre_names: self.genre_names,
            item_info,
            user_info,
            duplicates,
            notes: self.notes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_keep_latest_then_last_line() {
        let mut b = DatasetBuilder::new(true, true);
        b.push("u2", "a", 1.0, 10);
        b.push("u1", "a", 2.0, 50);
        b.push("u1", "a", 3.0, 40); // older: loses
        b.push("u2", "a", 4.0, 10); // same time, later line: wins
        b.push("u1", "b", 5.0, 1);
        let d = b.finish(None, true);
        assert_eq!(d.duplicates, 2);
        assert_eq!(d.interactions.len(), 3);
        let u1 = d.users.get("u1").unwrap();
        let a = d.items.get("a").unwrap();
        let r = |u, i| {
            d.interactions
                .iter()
                .find(|x| x.user == u && x.item == i)
                .unwrap()
                .rating
        };
        assert_eq!(r(u1, a), 2.0);
        assert_eq!(r(d.users.get("u2").unwrap(), a), 4.0);
        // sorted by (user, timestamp, item)
        assert_eq!(d.interactions[0].item, d.items.get("b").unwrap());
    }

    /// A source without ratings lists positives: --min-rating keeps all of it (it used to drop
    /// every pair of a rating-less test file, evaluating no user), while rated sources are cut.
    #[test]
    fn min_rating_keeps_every_pair_of_an_unrated_source() {
        for has_ratings in [false, true] {
            let mut b = DatasetBuilder::new(has_ratings, false);
            b.push("u", "a", if has_ratings { 5.0 } else { 1.0 }, 0);
            b.push("u", "b", if has_ratings { 2.0 } else { 1.0 }, 0);
            let d = b.finish(None, true);
            let kept = if has_ratings { 1 } else { 2 };
            assert_eq!(d.implicit(4.0).interactions.len(), kept, "{has_ratings}");
            assert_eq!(d.implicit_weighted(4.0).interactions.len(), kept);
            let signed = d.signed(4.0, true);
            let pos: Vec<f32> = signed.interactions.iter().map(|x| x.rating).collect();
            assert_eq!(
                pos,
                if has_ratings {
                    vec![2.0, -1.0]
                } else {
                    vec![1.0, 1.0]
                },
                "{has_ratings}"
            );
        }
    }

    #[test]
    fn implicit_keeps_ids() {
        let mut b = DatasetBuilder::new(true, false);
        b.push("1", "1", 5.0, 0);
        b.push("1", "2", 2.0, 0);
        let full = b.finish(None, true);
        let d = full.implicit(4.0);
        assert_eq!(d.n_items(), 2);
        assert_eq!(d.interactions.len(), 1);
        assert_eq!(d.interactions[0].rating, 1.0);
        let w = full.implicit_weighted(4.0);
        assert_eq!(w.interactions.len(), 1);
        assert_eq!(
            w.interactions[0].rating, 2.0,
            "a 5 at --min-rating 4 weighs 2"
        );
    }
}
