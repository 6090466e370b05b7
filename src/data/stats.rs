//! `lshrec data stats`: the exploration the original projects did by hand.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::dataset::Dataset;

/// Min / median / max / mean of a degree distribution.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Degree {
    pub min: usize,
    pub median: f64,
    pub max: usize,
    pub mean: f64,
}

impl Degree {
    fn of(mut v: Vec<usize>) -> Degree {
        if v.is_empty() {
            return Degree::default();
        }
        v.sort_unstable();
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2] as f64
        } else {
            (v[n / 2 - 1] + v[n / 2]) as f64 / 2.0
        };
        Degree {
            min: v[0],
            median,
            max: v[n - 1],
            mean: v.iter().sum::<usize>() as f64 / n as f64,
        }
    }
}

/// Summary statistics of a dataset.
#[derive(Clone, Debug, Serialize)]
pub struct DataStats {
    pub format: Option<String>,
    pub interactions: usize,
    pub users: usize,
    pub items: usize,
    pub users_with_interactions: usize,
    pub items_with_interactions: usize,
    /// Fraction of the user × item matrix that is empty.
    pub sparsity: f64,
    pub duplicates_dropped: usize,
    pub has_ratings: bool,
    pub mean_rating: Option<f64>,
    /// (rating value, count), ascending.
    pub rating_histogram: Vec<(f32, usize)>,
    pub user_degree: Degree,
    pub item_degree: Degree,
    pub timestamp_range: Option<(i64, i64)>,
    /// (genre, number of items), in the dataset's genre order.
    pub genres: Vec<(String, usize)>,
    pub genders: Vec<(String, usize)>,
    /// (age bucket, users).
    pub ages: Vec<(String, usize)>,
    /// (occupation, users), most common first.
    pub occupations: Vec<(String, usize)>,
    /// Attribute-file columns of items: (column, distinct values), by column name.
    pub item_attributes: Vec<(String, usize)>,
    /// Attribute-file columns of users: (column, distinct values), by column name.
    pub user_attributes: Vec<(String, usize)>,
    /// Numeric item attribute columns (`--item-numeric-cols`): (column, smallest, largest).
    pub item_numeric: Vec<(String, f64, f64)>,
    /// Numeric user attribute columns: (column, smallest, largest).
    pub user_numeric: Vec<(String, f64, f64)>,
}

/// (column, smallest, largest) of each numeric column, from its knots (which include both).
fn numeric_ranges(knots: &super::features::Knots) -> Vec<(String, f64, f64)> {
    (knots.0.iter())
        .filter_map(|(c, ks)| Some((c.clone(), *ks.first()?, *ks.last()?)))
        .collect()
}

/// (column, distinct values) over attribute pairs.
fn attribute_columns(tags: &[Vec<(String, String)>]) -> Vec<(String, usize)> {
    super::features::attribute_columns(tags)
        .into_iter()
        .map(|(c, v, _)| (c, v))
        .collect()
}

fn counts<'a>(it: impl Iterator<Item = &'a str>) -> Vec<(String, usize)> {
    let mut m: BTreeMap<&str, usize> = BTreeMap::new();
    for s in it {
        *m.entry(s).or_default() += 1;
    }
    let mut v: Vec<(String, usize)> = m.into_iter().map(|(k, c)| (k.to_string(), c)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

/// The MovieLens age bucket of an age in years.
pub fn age_bucket(a: u16) -> &'static str {
    match a {
        0..=17 => "<18",
        18..=24 => "18-24",
        25..=34 => "25-34",
        35..=44 => "35-44",
        45..=49 => "45-49",
        50..=55 => "50-55",
        _ => "56+",
    }
}

/// Computes the statistics of `ds`.
pub fn compute(ds: &Dataset) -> DataStats {
    let (nu, ni) = (ds.n_users(), ds.n_items());
    let mut udeg = vec![0usize; nu];
    let mut ideg = vec![0usize; ni];
    let mut hist: BTreeMap<i64, usize> = BTreeMap::new();
    let mut sum = 0f64;
    let mut ts: Option<(i64, i64)> = None;
    for x in &ds.interactions {
        udeg[x.user as usize] += 1;
        ideg[x.item as usize] += 1;
        sum += x.rating as f64;
        *hist
            .entry((x.rating as f64 * 1000.0).round() as i64)
            .or_default() += 1;
        if ds.has_timestamps {
            ts = Some(match ts {
                None => (x.timestamp, x.timestamp),
                Some((a, b)) => (a.min(x.timestamp), b.max(x.timestamp)),
            });
        }
    }
    let n = ds.interactions.len();
    let cells = nu as f64 * ni as f64;
    let genres = match &ds.item_info {
        Some(info) => {
            let mut c = vec![0usize; ds.genre_names.len()];
            for gs in &info.genres {
                for &g in gs {
                    c[g as usize] += 1;
                }
            }
            ds.genre_names.iter().cloned().zip(c).collect()
        }
        None => Vec::new(),
    };
    let (genders, ages, occupations) = match &ds.user_info {
        Some(info) => {
            let mut ages: Vec<(String, usize)> =
                counts(info.ages.iter().flatten().map(|&a| age_bucket(a)));
            ages.sort();
            (
                counts(info.genders.iter().flatten().map(|s| s.as_str())),
                ages,
                counts(info.occupations.iter().flatten().map(|s| s.as_str())),
            )
        }
        None => Default::default(),
    };
    DataStats {
        format: ds.format.map(|f| f.name().to_string()),
        interactions: n,
        users: nu,
        items: ni,
        users_with_interactions: udeg.iter().filter(|&&d| d > 0).count(),
        items_with_interactions: ideg.iter().filter(|&&d| d > 0).count(),
        sparsity: if cells > 0.0 {
            1.0 - n as f64 / cells
        } else {
            1.0
        },
        duplicates_dropped: ds.duplicates,
        has_ratings: ds.has_ratings,
        mean_rating: (ds.has_ratings && n > 0).then(|| sum / n as f64),
        rating_histogram: if ds.has_ratings {
            hist.into_iter()
                .map(|(k, c)| ((k as f64 / 1000.0) as f32, c))
                .collect()
        } else {
            Vec::new()
        },
        user_degree: Degree::of(udeg),
        item_degree: Degree::of(ideg),
        timestamp_range: ts,
        genres,
        genders,
        ages,
        occupations,
        item_attributes: ds
            .item_info
            .as_ref()
            .map_or_else(Vec::new, |i| attribute_columns(&i.tags)),
        user_attributes: ds
            .user_info
            .as_ref()
            .map_or_else(Vec::new, |i| attribute_columns(&i.tags)),
        item_numeric: numeric_ranges(&super::features::item_knots(ds)),
        user_numeric: numeric_ranges(&super::features::user_knots(ds)),
    }
}

impl fmt::Display for DataStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(fm) = &self.format {
            writeln!(f, "format          {fm}")?;
        }
        writeln!(f, "interactions    {}", self.interactions)?;
        writeln!(
            f,
            "users           {} ({} with interactions)",
            self.users, self.users_with_interactions
        )?;
        writeln!(
            f,
            "items           {} ({} with interactions)",
            self.items, self.items_with_interactions
        )?;
        writeln!(f, "sparsity        {:.5}", self.sparsity)?;
        writeln!(
            f,
            "duplicates      {} dropped (latest timestamp wins)",
            self.duplicates_dropped
        )?;
        if let Some(m) = self.mean_rating {
            writeln!(f, "mean rating     {m:.5}")?;
            let hist: Vec<String> = self
                .rating_histogram
                .iter()
                .map(|(r, c)| format!("{r}: {c}"))
                .collect();
            writeln!(f, "histogram       {}", hist.join(", "))?;
        } else {
            writeln!(f, "ratings         none (implicit feedback, weight 1)")?;
        }
        let d = |x: &Degree| {
            format!(
                "min {}, median {}, max {}, mean {:.1}",
                x.min, x.median, x.max, x.mean
            )
        };
        writeln!(f, "per-user degree {}", d(&self.user_degree))?;
        writeln!(f, "per-item degree {}", d(&self.item_degree))?;
        if let Some((a, b)) = self.timestamp_range {
            writeln!(f, "timestamps      {a} .. {b}")?;
        }
        let list = |v: &[(String, usize)], max: usize| {
            v.iter()
                .take(max)
                .map(|(k, c)| format!("{k} {c}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !self.genres.is_empty() {
            writeln!(f, "genres (items)  {}", list(&self.genres, 64))?;
        }
        if !self.genders.is_empty() {
            writeln!(f, "gender          {}", list(&self.genders, 8))?;
            writeln!(f, "age             {}", list(&self.ages, 16))?;
            writeln!(f, "occupation      {}", list(&self.occupations, 8))?;
        }
        let attrs = |v: &[(String, usize)], numeric: &[(String, f64, f64)]| {
            v.iter()
                .map(|(k, c)| match numeric.iter().find(|n| &n.0 == k) {
                    Some((_, lo, hi)) => format!("{k} ({c} values, numeric {lo} to {hi})"),
                    None => format!("{k} ({c} values)"),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !self.item_attributes.is_empty() {
            let a = attrs(&self.item_attributes, &self.item_numeric);
            writeln!(f, "item attributes {a}")?;
        }
        if !self.user_attributes.is_empty() {
            let a = attrs(&self.user_attributes, &self.user_numeric);
            writeln!(f, "user attributes {a}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::dataset::DatasetBuilder;

    #[test]
    fn hand_computed_stats() {
        let mut b = DatasetBuilder::new(true, true);
        b.push("1", "a", 5.0, 10);
        b.push("1", "b", 3.0, 20);
        b.push("2", "a", 4.0, 5);
        b.push("2", "a", 1.0, 1); // older duplicate, dropped
        b.item("c", Some("C".into()), &["Drama"], Some(1990));
        let s = compute(&b.finish(None, true));
        assert_eq!((s.interactions, s.users, s.items), (3, 2, 3));
        assert_eq!(s.items_with_interactions, 2);
        assert_eq!(s.duplicates_dropped, 1);
        assert!((s.mean_rating.unwrap() - 4.0).abs() < 1e-12);
        assert_eq!(s.rating_histogram, vec![(3.0, 1), (4.0, 1), (5.0, 1)]);
        assert_eq!(
            s.user_degree,
            Degree {
                min: 1,
                median: 1.5,
                max: 2,
                mean: 1.5
            }
        );
        assert_eq!(s.item_degree.median, 1.0);
        assert!((s.sparsity - 0.5).abs() < 1e-12);
        assert_eq!(s.timestamp_range, Some((5, 20)));
        assert_eq!(s.genres, vec![("Drama".to_string(), 1)]);
    }
}
