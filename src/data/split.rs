//! Train/test splits. Every random split takes a seed and is reproducible: per-user splits draw
//! from one random stream per user, so the result does not depend on thread scheduling.

use std::str::FromStr;

use super::dataset::{Dataset, Interaction};
use crate::error::{Error, Result};
use crate::rng::Rng;

/// How to split a dataset.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SplitMethod {
    /// A random `frac` of all rows goes to test (protocol P1: `random:0.2`).
    Random { frac: f64 },
    /// Each user with at least `min` interactions moves `floor(frac·n)` random ones to test; the
    /// others keep everything in train (protocol P2: `per-user:0.2`, `min` defaults to 5).
    PerUser { frac: f64, min: usize },
    /// The same split drawn as NumPy draws it (`per-user-numpy:0.2`), so that it equals a Python
    /// pipeline's bit for bit: one `numpy.random.RandomState(seed)` stream, the users in id order,
    /// each user's interactions in item id order (ids in their natural order: numeric when they
    /// are numbers), and `permutation(n)[:floor(frac·n)]` of them to test; users below `min` draw
    /// nothing. At seed 42 on MovieLens-100K this is the split the P2 references were measured
    /// on (their EASE figures come out exactly).
    PerUserNumpy { frac: f64, min: usize },
    /// Each user with more than `n` interactions moves the `n` latest (by timestamp, then item id)
    /// to test.
    LeaveLast { n: usize },
    /// Fold `fold` of a seeded `k`-way partition of the rows is the test set.
    KFold { k: usize, fold: usize },
    /// Item cold start (protocol P3: `cold-items:0.1`): a seeded `round(frac·n)` of the items
    /// with interactions go to test with every interaction they have; train never sees them.
    ColdItems { frac: f64 },
    /// User cold start (`cold-users:0.1[:MIN]`): a seeded `round(frac·n)` of the `n` users with
    /// at least `min` positives (default 15) go to test with every interaction they have; train
    /// never sees them. `lshrec eval --cold-users` reveals a few of each one's positives and
    /// ranks for the rest.
    ColdUsers { frac: f64, min: usize },
}

/// The default `MIN` of `cold-users:F[:MIN]`: enough positives to reveal ten and keep five to
/// rank for.
pub const COLD_USER_MIN_POSITIVES: usize = 15;

impl SplitMethod {
    /// Refuses a seed the method cannot take: NumPy's `RandomState` (`per-user-numpy`) takes
    /// seeds below 2^32 only, and refuses others as this does.
    pub fn check_seed(self, seed: u64) -> Result<()> {
        match self {
            SplitMethod::PerUserNumpy { .. } if seed > u32::MAX as u64 => Err(Error::invalid(
                "--seed",
                format!("{seed}: per-user-numpy draws as numpy.random.RandomState, which takes seeds from 0 to 2^32 - 1"),
            )),
            _ => Ok(()),
        }
    }
}

impl FromStr for SplitMethod {
    type Err = Error;

    /// Parses `random:0.2`, `per-user:0.2[:MIN]`, `per-user-numpy:0.2[:MIN]`, `leave-last:1`,
    /// `kfold:5[:FOLD]`, `cold-items:0.1` or `cold-users:0.1[:MIN]`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = |reason: &str| {
            Error::invalid(
                "split",
                format!("{s:?}: {reason}; expected random:F, per-user:F[:MIN], per-user-numpy:F[:MIN], leave-last:N, kfold:K[:FOLD], cold-items:F or cold-users:F[:MIN]"),
            )
        };
        let parts: Vec<&str> = s.split(':').collect();
        let frac = |p: Option<&&str>| -> Result<f64> {
            let f: f64 = p
                .ok_or_else(|| bad("missing fraction"))?
                .parse()
                .map_err(|_| bad("the fraction is not a number"))?;
            if !(f > 0.0 && f < 1.0) {
                return Err(bad("the fraction must be strictly between 0 and 1"));
            }
            Ok(f)
        };
        let int = |p: Option<&&str>, what: &str| -> Result<usize> {
            p.ok_or_else(|| bad(&format!("missing {what}")))?
                .parse()
                .map_err(|_| bad(&format!("{what} is not a non-negative integer")))
        };
        let m = match parts[0] {
            "random" => SplitMethod::Random {
                frac: frac(parts.get(1))?,
            },
            name @ ("per-user" | "per-user-numpy") => {
                let frac = frac(parts.get(1))?;
                let min = match parts.get(2) {
                    Some(p) => int(Some(p), "the minimum count")?,
                    None => 5,
                };
                match name {
                    "per-user" => SplitMethod::PerUser { frac, min },
                    _ => SplitMethod::PerUserNumpy { frac, min },
                }
            }
            "leave-last" => {
                let n = int(parts.get(1), "the count")?;
                if n == 0 {
                    return Err(bad("leave-last needs n ≥ 1"));
                }
                SplitMethod::LeaveLast { n }
            }
            "kfold" => {
                let k = int(parts.get(1), "k")?;
                let fold = match parts.get(2) {
                    Some(p) => int(Some(p), "the fold")?,
                    None => 0,
                };
                if k < 2 || fold >= k {
                    return Err(bad("k-fold needs k ≥ 2 and 0 ≤ fold < k"));
                }
                SplitMethod::KFold { k, fold }
            }
            "cold-items" => SplitMethod::ColdItems {
                frac: frac(parts.get(1))?,
            },
            "cold-users" => SplitMethod::ColdUsers {
                frac: frac(parts.get(1))?,
                min: match parts.get(2) {
                    Some(p) => int(Some(p), "the minimum count")?,
                    None => COLD_USER_MIN_POSITIVES,
                },
            },
            _ => return Err(bad("unknown method")),
        };
        Ok(m)
    }
}

/// The items a `cold-items:frac` split holds out: a seeded `round(frac·n)` of the `n` items
/// with interactions, sorted by dense id.
pub fn cold_items(ds: &Dataset, frac: f64, seed: u64) -> Vec<u32> {
    let mut has = vec![false; ds.n_items()];
    for x in &ds.interactions {
        has[x.item as usize] = true;
    }
    let mut items: Vec<u32> = (0..ds.n_items() as u32)
        .filter(|&i| has[i as usize])
        .collect();
    Rng::new(seed).shuffle(&mut items);
    items.truncate((frac * items.len() as f64).round() as usize);
    items.sort_unstable();
    items
}

/// The users a `cold-users:frac:min` split holds out: a seeded `round(frac·n)` of the `n` users
/// with at least `min` positives (`min` ≥ 1), sorted by dense id.
pub fn cold_users(ds: &Dataset, frac: f64, min: usize, seed: u64) -> Vec<u32> {
    let mut positives = vec![0usize; ds.n_users()];
    for x in ds.interactions.iter().filter(|x| x.rating > 0.0) {
        positives[x.user as usize] += 1;
    }
    let mut users: Vec<u32> = (0..ds.n_users() as u32)
        .filter(|&u| positives[u as usize] >= min.max(1))
        .collect();
    Rng::new(seed).shuffle(&mut users);
    users.truncate((frac * users.len() as f64).round() as usize);
    users.sort_unstable();
    users
}

/// Splits `ds` into (train, test), which share its ids and side information. Known negatives
/// (negative weights, see `Dataset::signed`) never go to test: the positives are split and the
/// negatives all stay in train.
pub fn split(ds: &Dataset, method: SplitMethod, seed: u64) -> (Dataset, Dataset) {
    if let SplitMethod::ColdItems { frac } = method {
        // The cold movies leave with all their interactions, known negatives included; test
        // keeps the positives.
        let (tr, te) = split_items(ds, &cold_items(ds, frac, seed));
        return (tr, te.positives());
    }
    if let SplitMethod::ColdUsers { frac, min } = method {
        let (tr, te) = split_users(ds, &cold_users(ds, frac, min, seed));
        return (tr, te.positives());
    }
    if ds.has_negatives() {
        let (tr, te) = split(&ds.positives(), method, seed);
        let mut all = tr.interactions;
        all.extend(ds.interactions.iter().filter(|x| x.rating < 0.0).copied());
        all.sort_by_key(|x| (x.user, x.timestamp, x.item));
        return (ds.with_interactions(all), te);
    }
    let xs = &ds.interactions;
    let mut is_test = vec![false; xs.len()];
    match method {
        SplitMethod::Random { frac } => {
            let mut idx: Vec<usize> = (0..xs.len()).collect();
            Rng::new(seed).shuffle(&mut idx);
            let n_test = (frac * xs.len() as f64).round() as usize;
            for &i in &idx[..n_test] {
                is_test[i] = true;
            }
        }
        SplitMethod::KFold { k, fold } => {
            let mut idx: Vec<usize> = (0..xs.len()).collect();
            Rng::new(seed).shuffle(&mut idx);
            for (pos, &i) in idx.iter().enumerate() {
                is_test[i] = pos % k == fold;
            }
        }
        SplitMethod::PerUser { frac, min } => {
            for_each_user(xs, |u, lo, hi| {
                let n = hi - lo;
                if n < min.max(1) {
                    return;
                }
                let n_test = (frac * n as f64).floor() as usize;
                let mut idx: Vec<usize> = (lo..hi).collect();
                Rng::stream(seed, u as u64).shuffle(&mut idx);
                for &i in &idx[..n_test] {
                    is_test[i] = true;
                }
            });
        }
        SplitMethod::PerUserNumpy { frac, min } => {
            // The seed's low 32 bits: the CLI refuses larger seeds first (`check_seed`).
            let mut rng = crate::rng::NumpyRandomState::new(seed as u32);
            for_each_user(xs, |_, lo, hi| {
                let n = hi - lo;
                if n < min.max(1) {
                    return;
                }
                let n_test = (frac * n as f64).floor() as usize;
                // The user's rows in item order, as a Python pipeline holds them (a CSR row).
                let mut rows: Vec<usize> = (lo..hi).collect();
                rows.sort_by_key(|&i| xs[i].item);
                for &p in &rng.permutation(n)[..n_test] {
                    is_test[rows[p]] = true;
                }
            });
        }
        SplitMethod::ColdItems { .. } | SplitMethod::ColdUsers { .. } => {
            unreachable!("handled above")
        }
        SplitMethod::LeaveLast { n } => {
            // Interactions are sorted by (user, timestamp, item): the last n rows of a user are
            // the latest.
            for_each_user(xs, |_, lo, hi| {
                if hi - lo > n {
                    for t in &mut is_test[hi - n..hi] {
                        *t = true;
                    }
                }
            });
        }
    }
    let (mut tr, mut te): (Vec<Interaction>, Vec<Interaction>) = (Vec::new(), Vec::new());
    for (x, t) in xs.iter().zip(&is_test) {
        if *t {
            te.push(*x);
        } else {
            tr.push(*x);
        }
    }
    (ds.with_interactions(tr), ds.with_interactions(te))
}

/// Moves every interaction with an item of `cold` to test (protocol P3). `cold` may come from
/// another view of the same dataset (the raw ratings, before `--min-rating` filtered them), as
/// long as the dense ids are shared; ids beyond the dataset are ignored.
pub fn split_items(ds: &Dataset, cold: &[u32]) -> (Dataset, Dataset) {
    split_by(ds, ds.n_items(), cold, |x| x.item)
}

/// Moves every interaction of a user of `cold` to test (user cold start), as [`split_items`]
/// does for items.
pub fn split_users(ds: &Dataset, cold: &[u32]) -> (Dataset, Dataset) {
    split_by(ds, ds.n_users(), cold, |x| x.user)
}

/// Moves every interaction whose `key` is in `cold` (ids below `n`; others ignored) to test.
fn split_by(
    ds: &Dataset,
    n: usize,
    cold: &[u32],
    key: impl Fn(&Interaction) -> u32,
) -> (Dataset, Dataset) {
    let mut is_cold = vec![false; n];
    for &i in cold {
        if let Some(c) = is_cold.get_mut(i as usize) {
            *c = true;
        }
    }
    let (te, tr): (Vec<Interaction>, Vec<Interaction>) = ds
        .interactions
        .iter()
        .partition(|x| is_cold[key(x) as usize]);
    (ds.with_interactions(tr), ds.with_interactions(te))
}

/// All `k` folds of a k-fold cross-validation.
pub fn kfold(ds: &Dataset, k: usize, seed: u64) -> Vec<(Dataset, Dataset)> {
    (0..k)
        .map(|fold| split(ds, SplitMethod::KFold { k, fold }, seed))
        .collect()
}

/// Calls `f(user, lo, hi)` for each user's contiguous run of rows.
fn for_each_user(xs: &[Interaction], mut f: impl FnMut(u32, usize, usize)) {
    let mut lo = 0;
    while lo < xs.len() {
        let u = xs[lo].user;
        let mut hi = lo;
        while hi < xs.len() && xs[hi].user == u {
            hi += 1;
        }
        f(u, lo, hi);
        lo = hi;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::dataset::DatasetBuilder;

    fn toy() -> Dataset {
        let mut b = DatasetBuilder::new(true, true);
        for u in 0..20 {
            for i in 0..(u % 10 + 1) {
                b.push(
                    &u.to_string(),
                    &i.to_string(),
                    1.0 + (i % 5) as f32,
                    (100 - i) as i64,
                );
            }
        }
        b.finish(None, true)
    }

    /// The draws of NumPy's `RandomState(42)`: `permutation(10)` is [8 1 5 0 7 2 9 4 3 6], the
    /// next `permutation(5)` [1 0 3 4 2]. Rows are given newest first, so that time order (the
    /// dataset's) is not item order (the split's).
    #[test]
    fn per_user_numpy_draws_as_numpy_over_item_order() {
        let mut b = DatasetBuilder::new(true, true);
        let users: [(&str, std::ops::Range<u32>); 3] =
            [("1", 10..20), ("2", 20..23), ("3", 30..35)];
        for (u, items) in users {
            for i in items {
                b.push(u, &i.to_string(), 4.0, 1000 - i as i64);
            }
        }
        let d = b.finish(None, true);
        let method: SplitMethod = "per-user-numpy:0.2".parse().unwrap();
        assert_eq!(method, SplitMethod::PerUserNumpy { frac: 0.2, min: 5 });
        let (tr, te) = split(&d, method, 42);
        let ext = |ds: &Dataset| -> Vec<(String, String)> {
            let mut v: Vec<(String, String)> = (ds.interactions.iter())
                .map(|x| {
                    let u = &ds.users.ext_ids()[x.user as usize];
                    (u.clone(), ds.items.ext_ids()[x.item as usize].clone())
                })
                .collect();
            v.sort();
            v
        };
        let pair = |u: &str, i: &str| (u.to_string(), i.to_string());
        // User 1: positions 8 and 1 of items 10..19; user 2 (3 rows) draws nothing; user 3:
        // position 1 of 30..34.
        assert_eq!(
            ext(&te),
            [pair("1", "11"), pair("1", "18"), pair("3", "31")]
        );
        assert_eq!(tr.interactions.len(), 18 - 3);
        assert!(method.check_seed(u32::MAX as u64).is_ok());
        assert!(method.check_seed(1 << 32).is_err());
        assert!(SplitMethod::PerUser { frac: 0.2, min: 5 }
            .check_seed(1 << 32)
            .is_ok());
    }

    #[test]
    fn parse_methods() {
        assert_eq!(
            "per-user:0.2".parse::<SplitMethod>().unwrap(),
            SplitMethod::PerUser { frac: 0.2, min: 5 }
        );
        assert_eq!(
            "kfold:5:4".parse::<SplitMethod>().unwrap(),
            SplitMethod::KFold { k: 5, fold: 4 }
        );
        for bad in [
            "random",
            "random:1.5",
            "kfold:5:5",
            "leave-last:0",
            "x:1",
            "per-user:a",
        ] {
            assert!(bad.parse::<SplitMethod>().is_err(), "{bad}");
        }
    }

    #[test]
    fn per_user_protocol_counts() {
        let d = toy();
        let (tr, te) = split(&d, SplitMethod::PerUser { frac: 0.2, min: 5 }, 1);
        assert_eq!(
            tr.interactions.len() + te.interactions.len(),
            d.interactions.len()
        );
        for u in 0..d.n_users() as u32 {
            let n = d.interactions.iter().filter(|x| x.user == u).count();
            let t = te.interactions.iter().filter(|x| x.user == u).count();
            let want = if n >= 5 { n / 5 } else { 0 };
            assert_eq!(t, want, "user {u} with {n}");
        }
        let (_, te2) = split(&d, SplitMethod::PerUser { frac: 0.2, min: 5 }, 1);
        assert_eq!(te.interactions, te2.interactions, "same seed, same split");
        let (_, te3) = split(&d, SplitMethod::PerUser { frac: 0.2, min: 5 }, 2);
        assert_ne!(
            te.interactions, te3.interactions,
            "another seed, another split"
        );
    }

    #[test]
    fn leave_last_takes_latest_and_kfold_partitions() {
        let d = toy();
        let (_, te) = split(&d, SplitMethod::LeaveLast { n: 1 }, 0);
        // timestamps are 100 - i, so the latest row of each user is item 0
        assert!(te.interactions.iter().all(|x| d.items.ext(x.item) == "0"));
        assert_eq!(te.interactions.len(), 18); // users with ≥ 2 rows
        let folds = kfold(&d, 5, 3);
        let total: usize = folds.iter().map(|(_, t)| t.interactions.len()).sum();
        assert_eq!(total, d.interactions.len());
        let (_, te) = split(&d, SplitMethod::Random { frac: 0.2 }, 9);
        assert_eq!(
            te.interactions.len(),
            (0.2 * d.interactions.len() as f64).round() as usize
        );
    }
}
