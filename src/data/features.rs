//! Side features as sparse rows: item genres, release decade and release year, user age bucket,
//! gender and occupation. Each distinct value is one feature with a name (`genre:Comedy`,
//! `decade:1990`, `year:1996`, `age:25-34`, `gender:F`, `occupation:writer`); an entity's row lists its features with
//! weights. Training, the stored cold-start maps and `embed-item` / fold-in all build rows
//! through the functions here, so a feature means the same thing everywhere.
//!
//! Attribute files (`--item-features`, `--user-features`) add one feature per column and value,
//! named `column:value`. A numeric column (`--item-numeric-cols`) has one feature per knot
//! instead, named `column:~knot` ([`Knots`]): a value is split between the two knots around it.
//!
//! Weights: the genres of an item share a unit of weight (each 1/√g for g genres, so the
//! genre part has norm 1 whatever g), the decade weighs 1 and the year [`YEAR_WEIGHT`]; each
//! user feature weighs 1. The values
//! of one attribute column share a unit the same way (1/√n for n values).

use std::collections::{BTreeMap, HashMap};

use super::stats::age_bucket;
use super::{Csr, Dataset};
use crate::error::{Error, Result};

/// Named features and each entity's row.
#[derive(Clone, Debug, PartialEq)]
pub struct Features {
    /// Feature names, in column order.
    pub names: Vec<String>,
    /// entity × feature weights.
    pub rows: Csr,
}

/// The kinds of the built-in feature names (`kind:value`) that MovieLens side files give: an
/// attribute file's column may not take one of these names as a numeric column, whose knots
/// (`year:~1990`) would then sit beside the built-in values (`year:1996`).
pub const BUILT_IN_KINDS: [&str; 6] = ["genre", "decade", "year", "age", "gender", "occupation"];

fn decade(year: u16) -> String {
    format!("decade:{}", year / 10 * 10)
}

/// The decade feature among `names` nearest to `year`'s, when `names` lacks `year`'s own but
/// has some decade (ties go to the later one): a movie from after, or before, every training
/// movie takes the closest decade's vector. `None` when `year`'s decade is known, or none is.
pub fn nearest_decade(names: &[String], year: u16) -> Option<String> {
    let own = decade(year);
    if names.contains(&own) {
        return None;
    }
    let target = i32::from(year / 10 * 10);
    names
        .iter()
        .filter_map(|n| n.strip_prefix("decade:")?.parse::<i32>().ok())
        .min_by_key(|&d| ((d - target).abs(), -d))
        .map(|d| format!("decade:{d}"))
}

/// Weight of the release-year feature beside the decade's 1: the year refines the decade (in
/// MovieLens-100K, collected in 1997–98, a movie's year says much about how many saw it).
/// Chosen on validation cold-item splits carved from ten P3 training parts: mean NDCG@10 .2526
/// without, .2714 / .2852 / .2851 / .2776 / .2718 / .2649 at .03 / .06 / .1 / .2 / .3 / .5;
/// neutral in warm training (LightGCN P2 .3339 against .3340, MF RMSE .90181 against .90183).
pub const YEAR_WEIGHT: f32 = 0.1;

/// The (name, weight) pairs of an item with `genres` and `year`.
pub fn item_pairs(genres: &[&str], year: Option<u16>) -> Vec<(String, f32)> {
    let mut v: Vec<(String, f32)> = Vec::new();
    let w = 1.0 / (genres.len().max(1) as f32).sqrt();
    for g in genres {
        v.push((format!("genre:{g}"), w));
    }
    if let Some(y) = year {
        v.push((decade(y), 1.0));
        v.push((format!("year:{y}"), YEAR_WEIGHT));
    }
    v
}

/// The (name, weight) pairs of a user.
pub fn user_pairs(
    age: Option<u16>,
    gender: Option<&str>,
    occupation: Option<&str>,
) -> Vec<(String, f32)> {
    let mut v = Vec::new();
    if let Some(a) = age {
        v.push((format!("age:{}", age_bucket(a)), 1.0));
    }
    if let Some(g) = gender.filter(|g| !g.is_empty()) {
        v.push((format!("gender:{g}"), 1.0));
    }
    if let Some(o) = occupation.filter(|o| !o.is_empty()) {
        v.push((format!("occupation:{o}"), 1.0));
    }
    v
}

/// Most knots a numeric attribute column gets: with more distinct values than this, the knots
/// are the values at this many evenly spaced quantiles (the smallest and largest included).
pub const NUMERIC_KNOTS: usize = 10;

/// The knots of numeric attribute columns: column → its knot values, ascending and distinct.
///
/// A numeric value x between knots a < b is the feature pair (`column:~a`, (b − x)/(b − a)) and
/// (`column:~b`, (x − a)/(b − a)), the column's unit of weight split between them; below the
/// first knot or above the last it is that knot's alone. The knots travel inside the feature
/// names, so a model recovers them from its stored names ([`Knots::from_names`]) and a new
/// item's or user's value is split on the same knots as in training.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Knots(pub BTreeMap<String, Vec<f64>>);

/// `s` as a finite number, the only values a numeric column holds.
pub fn finite_number(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|x| x.is_finite())
}

/// `col:~knot`, the knot written as plain decimals (`1990`, `0.25`), or in exponent form when
/// those run past [`KNOT_DIGITS`] characters (`1e300` rather than 301 digits). Both forms read
/// back to the same `f64`.
fn knot_name(col: &str, knot: f64) -> String {
    let plain = knot.to_string();
    if plain.len() <= KNOT_DIGITS {
        format!("{col}:~{plain}")
    } else {
        format!("{col}:~{knot:e}")
    }
}

/// The longest knot written as plain decimals in a feature name.
const KNOT_DIGITS: usize = 24;

impl Knots {
    /// Fits the knots of columns `cols` to the values in `tags`: every distinct value when there
    /// are at most [`NUMERIC_KNOTS`], otherwise the values at that many evenly spaced quantiles
    /// (each row's value counting once; equal quantiles merged). Values that are not finite
    /// numbers are ignored (the attribute reader refuses them).
    pub fn fit(tags: &[Vec<(String, String)>], cols: &[String]) -> Knots {
        let mut out = BTreeMap::new();
        for col in cols {
            let mut v: Vec<f64> = (tags.iter().flatten())
                .filter(|(c, _)| c == col)
                .filter_map(|(_, x)| finite_number(x))
                .collect();
            if v.is_empty() {
                continue;
            }
            v.sort_by(f64::total_cmp);
            let distinct = 1 + v.windows(2).filter(|w| w[0] != w[1]).count();
            let knots = if distinct <= NUMERIC_KNOTS {
                v.dedup();
                v
            } else {
                let n = v.len() - 1;
                let last = NUMERIC_KNOTS - 1;
                let mut k: Vec<f64> = (0..NUMERIC_KNOTS)
                    .map(|q| v[(q * n + last / 2) / last])
                    .collect();
                k.dedup();
                k
            };
            out.insert(col.clone(), knots);
        }
        Knots(out)
    }

    /// The knots carried by stored feature names: a column counts as numeric when every one of
    /// its names is `column:~number`.
    pub fn from_names(names: &[String]) -> Knots {
        let mut cols: BTreeMap<&str, Option<Vec<f64>>> = BTreeMap::new();
        for n in names {
            let Some((c, v)) = n.split_once(':') else {
                continue;
            };
            let knot = v.strip_prefix('~').and_then(finite_number);
            let e = cols.entry(c).or_insert(Some(Vec::new()));
            match (e.as_mut(), knot) {
                (Some(ks), Some(k)) => ks.push(k),
                _ => *e = None,
            }
        }
        Knots(
            cols.into_iter()
                .filter_map(|(c, ks)| {
                    let mut ks = ks?;
                    ks.sort_by(f64::total_cmp);
                    ks.dedup();
                    Some((c.to_string(), ks))
                })
                .collect(),
        )
    }

    /// Whether `col` is a numeric column.
    pub fn is_numeric(&self, col: &str) -> bool {
        self.0.contains_key(col)
    }

    /// The (knot, share) pieces of `value` in column `col` (shares summing to 1), or `None`
    /// when `col` is not numeric or `value` is not a finite number.
    pub fn split(&self, col: &str, value: &str) -> Option<Vec<(f64, f32)>> {
        let ks = self.0.get(col).filter(|ks| !ks.is_empty())?;
        let x = finite_number(value)?;
        let hi = ks.partition_point(|&k| k <= x);
        Some(match hi {
            0 => vec![(ks[0], 1.0)],
            h if h == ks.len() => vec![(ks[h - 1], 1.0)],
            h => {
                let (a, b) = (ks[h - 1], ks[h]);
                // In halves, so that knots near ±f64::MAX do not overflow to ∞/∞.
                let t = ((x / 2.0 - a / 2.0) / (b / 2.0 - a / 2.0)) as f32;
                [(a, 1.0 - t), (b, t)]
                    .into_iter()
                    .filter(|p| p.1 > 0.0)
                    .collect()
            }
        })
    }
}

/// The (name, weight) pairs of attribute values (column, value): `column:value`, the values of
/// one column sharing a unit of weight; a numeric column's value (per `knots`) is split between
/// its two knots, `column:~knot`. Repeated pairs count once.
pub fn tag_pairs(tags: &[(String, String)], knots: &Knots) -> Vec<(String, f32)> {
    let mut values: Vec<(&str, &str)> = (tags.iter())
        .map(|(c, v)| (c.as_str(), v.as_str()))
        .collect();
    values.sort_unstable();
    values.dedup();
    let mut per_col: HashMap<&str, usize> = HashMap::new();
    for (c, _) in &values {
        *per_col.entry(c).or_default() += 1;
    }
    let mut names: Vec<(&str, String, f32)> = Vec::with_capacity(values.len());
    for &(c, v) in &values {
        let w = 1.0 / (per_col[c] as f32).sqrt();
        match knots.split(c, v) {
            Some(pieces) => {
                names.extend(pieces.into_iter().map(|(k, s)| (c, knot_name(c, k), w * s)))
            }
            None => names.push((c, format!("{c}:{v}"), w)),
        }
    }
    names.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    // Two values of one numeric column may share a knot: one feature, weights summed.
    let mut out: Vec<(String, f32)> = Vec::with_capacity(names.len());
    for (_, n, w) in names {
        match out.last_mut() {
            Some(last) if last.0 == n => last.1 += w,
            _ => out.push((n, w)),
        }
    }
    out
}

/// What content neighbours compare items by: the genres (`genre:Comedy`) and the categorical
/// attribute values (`column:value`), named as the features are, sorted, each once. Numeric
/// columns (those with `knots`) are left out: on the cold-item validation splits of the
/// generic ML-100K, its release year as a numeric column in the Jaccard index by its nearest
/// knot scored mean NDCG@10 .3150, by a year-like distance factor .3246, left out .3274 (the
/// map alone .3175); the map already places the value between its knots.
pub fn content_names<S: AsRef<str>>(
    genres: &[S],
    tags: &[(String, String)],
    knots: &Knots,
) -> Vec<String> {
    let mut v: Vec<String> = (genres.iter())
        .map(|g| format!("genre:{}", g.as_ref()))
        .chain(
            (tags.iter())
                .filter(|(c, _)| !knots.is_numeric(c))
                .map(|(c, x)| format!("{c}:{x}")),
        )
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// What content neighbours compare item `i` of `ds` by: its content names
/// ([`content_names`], without the numeric columns of `knots`) and its year.
pub fn item_content(ds: &Dataset, i: u32, knots: &Knots) -> (Vec<String>, Option<u16>) {
    let Some(info) = ds.item_info.as_ref() else {
        return (Vec::new(), None);
    };
    let tags = info.tags.get(i as usize).map_or(&[][..], Vec::as_slice);
    let year = info.years.get(i as usize).copied().flatten();
    (content_names(&ds.genres_of(i), tags, knots), year)
}

/// The knots of `ds`'s numeric item attribute columns, fitted to its items' values.
pub fn item_knots(ds: &Dataset) -> Knots {
    (ds.item_info.as_ref()).map_or_else(Knots::default, |i| Knots::fit(&i.tags, &i.numeric))
}

/// The knots of `ds`'s numeric user attribute columns, fitted to its users' values.
pub fn user_knots(ds: &Dataset) -> Knots {
    (ds.user_info.as_ref()).map_or_else(Knots::default, |i| Knots::fit(&i.tags, &i.numeric))
}

/// Parses `column=value` (or `column:value`) arguments into attribute pairs.
pub fn parse_tags(args: &[String], what: &str) -> Result<Vec<(String, String)>> {
    args.iter()
        .map(|a| {
            a.split_once('=')
                .or_else(|| a.split_once(':'))
                .map(|(c, v)| (c.trim().to_string(), v.trim().to_string()))
                .filter(|(c, v)| !c.is_empty() && !v.is_empty())
                .ok_or_else(|| {
                    Error::invalid(
                        what.to_string(),
                        format!("{a:?}: expected COLUMN=VALUE, as in the attribute file"),
                    )
                })
        })
        .collect()
}

/// Every feature pair of item `i` of `ds`: genres, decade and attributes (numeric columns on
/// `knots`).
pub fn item_row(ds: &Dataset, i: u32, knots: &Knots) -> Vec<(String, f32)> {
    let Some(info) = ds.item_info.as_ref() else {
        return Vec::new();
    };
    let year = info.years.get(i as usize).copied().flatten();
    let mut v = item_pairs(&ds.genres_of(i), year);
    if let Some(t) = info.tags.get(i as usize) {
        v.extend(tag_pairs(t, knots));
    }
    v
}

/// Every feature pair of user `u` of `ds`: demographics and attributes (numeric columns on
/// `knots`).
pub fn user_row(ds: &Dataset, u: u32, knots: &Knots) -> Vec<(String, f32)> {
    let Some(info) = ds.user_info.as_ref() else {
        return Vec::new();
    };
    let u = u as usize;
    let mut v = user_pairs(
        info.ages.get(u).copied().flatten(),
        info.genders.get(u).and_then(|g| g.as_deref()),
        info.occupations.get(u).and_then(|o| o.as_deref()),
    );
    if let Some(t) = info.tags.get(u) {
        v.extend(tag_pairs(t, knots));
    }
    v
}

/// Each attribute column of `tags`, by name: (column, distinct values, entities having it).
pub fn attribute_columns(tags: &[Vec<(String, String)>]) -> Vec<(String, usize, usize)> {
    let mut cols: std::collections::BTreeMap<&str, (std::collections::HashSet<&str>, usize)> =
        Default::default();
    for t in tags {
        let mut seen: Vec<&str> = t.iter().map(|(c, _)| c.as_str()).collect();
        seen.sort_unstable();
        seen.dedup();
        for c in seen {
            cols.entry(c).or_default().1 += 1;
        }
        for (c, v) in t {
            cols.entry(c).or_default().0.insert(v);
        }
    }
    cols.into_iter()
        .map(|(c, (vs, rows))| (c.to_string(), vs.len(), rows))
        .collect()
}

/// What `train` says about a categorical attribute column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnSummary {
    pub name: String,
    /// Distinct values.
    pub distinct: usize,
    /// Entities that have the column.
    pub rows: usize,
    /// Whether every value is a finite number.
    pub numbers: bool,
}

impl ColumnSummary {
    /// More than half as many distinct values as the entities that have the column (and over
    /// 50): such a column teaches the cold-start map little and makes it large.
    pub fn id_like(&self) -> bool {
        self.distinct > 50 && 2 * self.distinct > self.rows
    }

    /// Numbers with more distinct values than a numeric column's knots: likely meant as
    /// `--item-numeric-cols`.
    pub fn looks_numeric(&self) -> bool {
        self.numbers && self.distinct > NUMERIC_KNOTS
    }
}

/// The attribute columns of `tags` not declared in `numeric`, by name.
pub fn categorical_columns(
    tags: &[Vec<(String, String)>],
    numeric: &[String],
) -> Vec<ColumnSummary> {
    attribute_columns(tags)
        .into_iter()
        .filter(|(c, _, _)| !numeric.contains(c))
        .map(|(name, distinct, rows)| {
            let numbers = (tags.iter().flatten())
                .filter(|(x, _)| *x == name)
                .all(|(_, x)| finite_number(x).is_some());
            ColumnSummary {
                name,
                distinct,
                rows,
                numbers,
            }
        })
        .collect()
}

fn assemble(per_row: Vec<Vec<(String, f32)>>) -> Option<Features> {
    let mut index: HashMap<String, u32> = HashMap::new();
    let mut names: Vec<String> = per_row.iter().flatten().map(|(n, _)| n.clone()).collect();
    names.sort();
    names.dedup();
    if names.is_empty() {
        return None;
    }
    for (k, n) in names.iter().enumerate() {
        index.insert(n.clone(), k as u32);
    }
    let triples: Vec<(u32, u32, f32)> = per_row
        .iter()
        .enumerate()
        .flat_map(|(r, pairs)| {
            let index = &index;
            pairs.iter().map(move |(n, w)| (r as u32, index[n], *w))
        })
        .collect();
    Some(Features {
        rows: Csr::from_triples(per_row.len(), names.len(), &triples),
        names,
    })
}

/// Item features (genres, decade, attributes) of every item, or `None` when the dataset has
/// none.
pub fn items(ds: &Dataset) -> Option<Features> {
    ds.item_info.as_ref()?;
    let knots = item_knots(ds);
    assemble(
        (0..ds.n_items() as u32)
            .map(|i| item_row(ds, i, &knots))
            .collect(),
    )
}

/// User features (age bucket, gender, occupation, attributes) of every user, or `None` without
/// any.
pub fn users(ds: &Dataset) -> Option<Features> {
    ds.user_info.as_ref()?;
    let knots = user_knots(ds);
    assemble(
        (0..ds.n_users() as u32)
            .map(|u| user_row(ds, u, &knots))
            .collect(),
    )
}

/// Resolves named pairs against a stored feature list, refusing unknown values with the list of
/// known ones for that kind (`genre`, `decade`, …). A release year the model never saw is left
/// out (its decade still counts): a new movie may come from a year no training movie has.
pub fn resolve(names: &[String], pairs: &[(String, f32)]) -> Result<Vec<(usize, f32)>> {
    pairs
        .iter()
        .filter(|(n, _)| !n.starts_with("year:") || names.contains(n))
        .map(|(n, w)| match names.iter().position(|x| x == n) {
            Some(k) => Ok((k, *w)),
            None => {
                let kind = n.split(':').next().unwrap_or("");
                let known: Vec<&str> = names
                    .iter()
                    .filter_map(|x| x.strip_prefix(&format!("{kind}:")))
                    .collect();
                if known.is_empty() {
                    // Not an unknown value: a kind of feature the model never had.
                    let mut kinds: Vec<&str> =
                        names.iter().filter_map(|x| x.split(':').next()).collect();
                    kinds.sort_unstable();
                    kinds.dedup();
                    return Err(Error::invalid(
                        kind.to_string(),
                        format!(
                            "the model has no {kind:?} feature (trained without one); its features: {}",
                            if kinds.is_empty() { "none".to_string() } else { kinds.join(", ") }
                        ),
                    ));
                }
                if known.iter().all(|k| k.starts_with('~')) {
                    return Err(Error::invalid(
                        kind.to_string(),
                        format!(
                            "{:?}: expected a number ({kind} is a numeric column, its knots {})",
                            n.split_once(':').map(|x| x.1).unwrap_or(n),
                            Knots::from_names(names).0.get(kind).map_or_else(String::new, |ks| {
                                ks.iter().map(f64::to_string).collect::<Vec<_>>().join(", ")
                            })
                        ),
                    ));
                }
                Err(Error::invalid(
                    kind.to_string(),
                    format!(
                        "{:?} is not {} {kind} the model knows; known: {}",
                        n.split_once(':').map(|x| x.1).unwrap_or(n),
                        if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
                            "an"
                        } else {
                            "a"
                        },
                        known.join(", ")
                    ),
                ))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_decade_falls_back_to_the_nearest() {
        let names: Vec<String> = ["genre:Comedy", "decade:1930", "decade:1950", "decade:1990"]
            .map(String::from)
            .to_vec();
        assert_eq!(nearest_decade(&names, 1995), None);
        assert_eq!(nearest_decade(&names, 2050).as_deref(), Some("decade:1990"));
        assert_eq!(nearest_decade(&names, 1905).as_deref(), Some("decade:1930"));
        assert_eq!(nearest_decade(&names, 1962).as_deref(), Some("decade:1950"));
        // 1940 is as near 1930 as 1950: the later wins.
        assert_eq!(nearest_decade(&names, 1944).as_deref(), Some("decade:1950"));
        assert_eq!(nearest_decade(&names[..1], 1995), None);
    }

    #[test]
    fn rows_names_and_weights() {
        let p = item_pairs(&["Comedy", "Romance"], Some(1996));
        assert_eq!(p[0].0, "genre:Comedy");
        assert!((p[0].1 - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert_eq!(p[2], ("decade:1990".to_string(), 1.0));
        assert_eq!(p[3], ("year:1996".to_string(), YEAR_WEIGHT));
        // Content names: genres and attribute values as features name them, sorted, each once
        // (an attribute column called `genre` means the same as a genre).
        let t = |c: &str, v: &str| (c.to_string(), v.to_string());
        let tags = [t("style", "noir"), t("genre", "Drama"), t("style", "noir")];
        assert_eq!(
            content_names(&["Drama", "Comedy"], &tags, &Knots::default()),
            ["genre:Comedy", "genre:Drama", "style:noir"]
        );
        let u = user_pairs(Some(23), Some("F"), Some("writer"));
        assert_eq!(
            u.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(),
            ["age:18-24", "gender:F", "occupation:writer"]
        );
        // Every built-in name's kind is listed, so an attribute file cannot shadow it.
        let kinds: std::collections::BTreeSet<_> = (p.iter().chain(&u))
            .map(|(n, _)| n.split(':').next().unwrap())
            .collect();
        assert_eq!(kinds, BUILT_IN_KINDS.into_iter().collect());
        let f = assemble(vec![p.clone(), vec![], item_pairs(&["Drama"], None)]).unwrap();
        assert_eq!(
            f.names,
            [
                "decade:1990",
                "genre:Comedy",
                "genre:Drama",
                "genre:Romance",
                "year:1996"
            ]
        );
        assert_eq!(f.rows.row(1), &[] as &[u32]);
        assert_eq!(f.rows.row_values(2), &[1.0]);
        assert_eq!(f.rows.row(0), &[0, 1, 3, 4]);
        // A year the model never saw falls back to its decade; a known one adds its feature.
        let r = resolve(&f.names, &item_pairs(&["Drama"], Some(1999))).unwrap();
        assert_eq!(r, vec![(2, 1.0), (0, 1.0)]);
        let r = resolve(&f.names, &item_pairs(&["Drama"], Some(1996))).unwrap();
        assert_eq!(r, vec![(2, 1.0), (0, 1.0), (4, YEAR_WEIGHT)]);
        // 60 rows: `sku` differs on every row (id-like), `colour` has 2 values.
        let tags: Vec<Vec<(String, String)>> = (0..60)
            .map(|k| {
                vec![
                    ("sku".to_string(), format!("s{k}")),
                    ("colour".to_string(), format!("c{}", k % 2)),
                ]
            })
            .collect();
        let cols = categorical_columns(&tags, &[]);
        let summary = |name: &str, distinct, numbers| ColumnSummary {
            name: name.to_string(),
            distinct,
            rows: 60,
            numbers,
        };
        assert_eq!(
            cols,
            [summary("colour", 2, false), summary("sku", 60, false)]
        );
        assert_eq!((cols[0].id_like(), cols[1].id_like()), (false, true));
        assert!(!cols[1].looks_numeric());
        // Declared numeric, a column is not categorical; all numbers, it looks numeric.
        assert_eq!(categorical_columns(&tags, &["sku".to_string()]).len(), 1);
        let years: Vec<Vec<(String, String)>> = (0..60)
            .map(|k| vec![("era".to_string(), (1950 + k % 20).to_string())])
            .collect();
        let era = &categorical_columns(&years, &[])[0];
        assert!(
            era.numbers && era.looks_numeric() && !era.id_like(),
            "{era:?}"
        );
        let e = resolve(&f.names, &item_pairs(&["Western"], None)).unwrap_err();
        assert!(e.to_string().contains("Comedy, Drama, Romance"), "{e}");
    }

    fn t(c: &str, v: &str) -> (String, String) {
        (c.to_string(), v.to_string())
    }

    #[test]
    fn numeric_columns_split_between_knots() {
        // Few distinct values: each is a knot.
        let rows = |vals: &[&str]| -> Vec<Vec<(String, String)>> {
            vals.iter()
                .map(|v| vec![t("price", v), t("brand", "a")])
                .collect()
        };
        let k = Knots::fit(&rows(&["3", "1", "2", "3"]), &["price".to_string()]);
        assert_eq!(k.0.len(), 1, "only declared columns get knots");
        assert_eq!(k.0["price"], [1.0, 2.0, 3.0]);
        // 21 values 0, 5, …, 100: ten quantiles at ranks round(q·20/9).
        let v: Vec<String> = (0..21).map(|i| (5 * i).to_string()).collect();
        let v: Vec<&str> = v.iter().map(String::as_str).collect();
        let k = Knots::fit(&rows(&v), &["price".to_string()]);
        assert_eq!(
            k.0["price"],
            [0.0, 10.0, 20.0, 35.0, 45.0, 55.0, 65.0, 80.0, 90.0, 100.0]
        );
        // Repeated quantiles merge.
        let mut skew = vec!["7"; 30];
        skew.extend(["1", "2", "3", "4", "5", "6", "8", "9", "10", "11", "12"]);
        let ks = &Knots::fit(&rows(&skew), &["price".to_string()]).0["price"];
        assert!(ks.windows(2).all(|w| w[0] < w[1]), "{ks:?}");
        assert!(ks.len() < NUMERIC_KNOTS && ks[0] == 1.0 && ks[ks.len() - 1] == 12.0);

        // Between two knots by distance, at the ends the end knot's alone.
        let k = Knots::fit(&rows(&["10", "20", "40"]), &["price".to_string()]);
        assert_eq!(
            k.split("price", "25"),
            Some(vec![(20.0, 0.75), (40.0, 0.25)])
        );
        assert_eq!(k.split("price", "20"), Some(vec![(20.0, 1.0)]));
        assert_eq!(k.split("price", "-3.5"), Some(vec![(10.0, 1.0)]));
        assert_eq!(k.split("price", "1e9"), Some(vec![(40.0, 1.0)]));
        assert_eq!(k.split("price", "cheap"), None);
        assert_eq!(k.split("price", "NaN"), None);
        assert_eq!(k.split("brand", "25"), None);
        let wide = Knots(BTreeMap::from([("w".to_string(), vec![-1e308, 1e308])]));
        assert_eq!(
            wide.split("w", "0"),
            Some(vec![(-1e308, 0.5), (1e308, 0.5)])
        );

        // The pairs: the column's unit split between knots; two values of one column share
        // the unit (1/√2 each) and a knot they both touch sums its pieces.
        let p = tag_pairs(&[t("price", "25"), t("brand", "a")], &k);
        assert_eq!(
            p,
            [
                ("brand:a".to_string(), 1.0),
                ("price:~20".to_string(), 0.75),
                ("price:~40".to_string(), 0.25)
            ]
        );
        let p = tag_pairs(&[t("price", "15"), t("price", "30")], &k);
        let h = std::f32::consts::FRAC_1_SQRT_2;
        let want = [(10.0, 0.5 * h), (20.0, 0.5 * h + 0.5 * h), (40.0, 0.5 * h)];
        assert_eq!(p.len(), 3);
        for ((n, w), (kn, kw)) in p.iter().zip(want) {
            assert_eq!(n, &knot_name("price", kn));
            assert!((w - kw).abs() < 1e-6, "{n}: {w} against {kw}");
        }
        // A value that is not a number stays a category (which `resolve` then refuses).
        assert_eq!(
            tag_pairs(&[t("price", "cheap")], &k),
            [("price:cheap".to_string(), 1.0)]
        );

        // The names carry the knots back, exactly (shortest round-trip formatting).
        let odd = Knots(BTreeMap::from([(
            "price".to_string(),
            vec![
                0.1 + 0.2,
                1.0 / 3.0,
                1e-7,
                12345678.9,
                1e300,
                -2.5e-300,
                f64::MAX,
            ],
        )]));
        // Extreme knots take the exponent form, not hundreds of digits; plain ones stay plain.
        assert_eq!(knot_name("p", 1e300), "p:~1e300");
        assert_eq!(knot_name("p", -2.5e-300), "p:~-2.5e-300");
        assert_eq!(knot_name("p", 1990.0), "p:~1990");
        assert_eq!(knot_name("p", 1e-7), "p:~0.0000001");
        let mut names: Vec<String> = ["genre:Drama", "brand:~x", "brand:a"]
            .map(String::from)
            .to_vec();
        names.extend(odd.0["price"].iter().map(|&x| knot_name("price", x)));
        let back = Knots::from_names(&names);
        let mut want = odd.0["price"].clone();
        want.sort_by(f64::total_cmp);
        assert_eq!(
            back.0.keys().collect::<Vec<_>>(),
            ["price"],
            "brand mixes in a category"
        );
        assert_eq!(back.0["price"], want);

        // Content neighbours leave numeric columns out.
        assert_eq!(
            content_names::<&str>(&["Drama"], &[t("price", "33"), t("brand", "a")], &k),
            ["brand:a", "genre:Drama"]
        );

        // Resolving: a known numeric column refuses a value that is not a number, by name.
        let names: Vec<String> = tag_pairs(&[t("price", "25")], &k)
            .into_iter()
            .map(|p| p.0)
            .chain(["price:~10".to_string()])
            .collect();
        let e = resolve(&names, &tag_pairs(&[t("price", "cheap")], &k)).unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains("expected a number") && e.contains("10, 20, 40"),
            "{e}"
        );
    }
}
