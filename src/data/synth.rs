//! A deterministic generator of MovieLens-shaped data with planted latent structure.
//!
//! - Genres are random unit directions; an item's taste vector is the mean of its genres'
//!   directions plus noise, and a user's is the mean of one or two favourite genres plus noise.
//! - Item popularity is Zipf-like (weight `rank^-zipf` over a random ranking) and user activity is
//!   log-normal, so a few items and users dominate, as in real logs.
//! - A user's items are drawn from the popularity distribution and the best matches by
//!   `taste·item + quality + Gumbel noise` are kept, so the data carries real signal.
//! - Ratings are `3.6 + 1.3·(taste·item + quality + user bias) + noise`, rounded and clipped to
//!   1..5; timestamps increase within each user.
//! - Demographics and release years are drawn too, so every format's side files are exercised.
//!
//! Each user draws from its own random stream, so the output is identical for a seed whatever
//! the thread count, and generation scales to 10M ratings and 1M+ items.

use rayon::prelude::*;

use super::dataset::{Dataset, Interaction, ItemInfo, UserInfo};
use super::formats::ml100k::GENRES;
use super::ids::IdMap;
use crate::error::{Error, Result};
use crate::rng::{AliasTable, Rng};

/// Occupations drawn for synthetic users (the ml-100k list).
const OCCUPATIONS: [&str; 21] = [
    "administrator",
    "artist",
    "doctor",
    "educator",
    "engineer",
    "entertainment",
    "executive",
    "healthcare",
    "homemaker",
    "lawyer",
    "librarian",
    "marketing",
    "none",
    "other",
    "programmer",
    "retired",
    "salesman",
    "scientist",
    "student",
    "technician",
    "writer",
];

/// Generator settings.
#[derive(Clone, Debug)]
pub struct SynthConfig {
    pub users: usize,
    pub items: usize,
    /// Target number of ratings (the result is within a few percent).
    pub ratings: usize,
    /// Dimension of the planted taste space.
    pub dim: usize,
    /// Zipf exponent of item popularity.
    pub zipf: f64,
    pub seed: u64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            users: 943,
            items: 1682,
            ratings: 100_000,
            dim: 16,
            zipf: 0.9,
            seed: 42,
        }
    }
}

/// The planted structure behind a synthetic dataset (for tests that check a model recovers it).
#[derive(Clone, Debug)]
pub struct Planted {
    pub dim: usize,
    /// users × dim taste vectors.
    pub user_taste: Vec<f32>,
    /// items × dim taste vectors.
    pub item_taste: Vec<f32>,
    pub item_quality: Vec<f32>,
}

fn unit(rng: &mut Rng, d: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..d).map(|_| rng.normal() as f32).collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= n);
    v
}

/// Generates a dataset and its planted structure.
pub fn generate(cfg: &SynthConfig) -> Result<(Dataset, Planted)> {
    if cfg.users == 0 || cfg.items < 2 || cfg.dim == 0 {
        return Err(Error::invalid(
            "synthetic size",
            "need at least 1 user, 2 items and dim ≥ 1",
        ));
    }
    if cfg.ratings < cfg.users || cfg.ratings > cfg.users.saturating_mul(cfg.items) / 2 {
        return Err(Error::invalid(
            "synthetic size",
            format!(
                "ratings must be between users ({}) and half of users × items ({})",
                cfg.users,
                cfg.users.saturating_mul(cfg.items) / 2
            ),
        ));
    }
    let d = cfg.dim;
    let n_genres = GENRES.len() - 1; // "unknown" is not drawn
    let mut rng = Rng::new(cfg.seed);
    let centroids: Vec<Vec<f32>> = (0..n_genres).map(|_| unit(&mut rng, d)).collect();
    let genre_weights: Vec<f64> = (0..n_genres)
        .map(|g| 1.0 / (1.0 + g as f64 * 0.3))
        .collect();
    let genre_table = AliasTable::new(&genre_weights);

    // Items.
    let items: Vec<(Vec<u16>, Vec<f32>, f32, u16)> = (0..cfg.items)
        .into_par_iter()
        .map(|i| {
            let mut r = Rng::stream(cfg.seed ^ 0x17E5, i as u64);
            let k = 1 + (r.f64() * r.f64() * 3.0) as usize;
            let mut gs: Vec<u16> = (0..k).map(|_| genre_table.sample(&mut r) as u16).collect();
            gs.sort_unstable();
            gs.dedup();
            let mut v = vec![0f32; d];
            for &g in &gs {
                for (a, c) in v.iter_mut().zip(&centroids[g as usize]) {
                    *a += c / gs.len() as f32;
                }
            }
            for a in v.iter_mut() {
                *a += 0.2 * r.normal() as f32;
            }
            let quality = 0.4 * r.normal() as f32;
            let year = (1998.0 - (r.normal().abs() * 14.0)).clamp(1920.0, 1998.0) as u16;
            // genre ids are shifted by one: index 0 is "unknown"
            (gs.iter().map(|g| g + 1).collect(), v, quality, year)
        })
        .collect();
    let mut rank: Vec<usize> = (0..cfg.items).collect();
    rng.shuffle(&mut rank);
    let pop: Vec<f64> = rank
        .iter()
        .map(|&r| (r as f64 + 1.0).powf(-cfg.zipf))
        .collect();
    let pop_table = AliasTable::new(&pop);

    // Users: taste, bias, activity, demographics.
    let activity: Vec<f64> = (0..cfg.users)
        .map(|u| {
            let mut r = Rng::stream(cfg.seed ^ 0xAC71, u as u64);
            (0.9 * r.normal()).exp()
        })
        .collect();
    let total: f64 = activity.iter().sum();
    let min_per_user = (cfg.ratings / cfg.users).clamp(1, 20);
    let cap = (cfg.items / 2).max(1);
    let spare = cfg.ratings.saturating_sub(min_per_user * cfg.users) as f64;
    let per_user: Vec<usize> = activity
        .iter()
        .map(|a| (min_per_user + (spare * a / total).round() as usize).min(cap))
        .collect();

    type UserRows = (
        Vec<f32>,
        Vec<Interaction>,
        (u16, &'static str, &'static str, String),
    );
    let users: Vec<UserRows> = (0..cfg.users)
        .into_par_iter()
        .map(|u| {
            let mut r = Rng::stream(cfg.seed ^ 0x05E2, u as u64);
            let g1 = genre_table.sample(&mut r);
            let g2 = genre_table.sample(&mut r);
            let w2 = if r.f64() < 0.5 { 0.5 } else { 0.0 };
            let taste: Vec<f32> = (0..d)
                .map(|k| centroids[g1][k] + w2 * centroids[g2][k] + 0.2 * r.normal() as f32)
                .collect();
            let ubias = 0.3 * r.normal() as f32;
            let n = per_user[u];
            let m = (8 * n).min(cfg.items.max(n));
            let mut cand: Vec<u32> = (0..m).map(|_| pop_table.sample(&mut r) as u32).collect();
            cand.sort_unstable();
            cand.dedup();
            let mut scored: Vec<(f32, u32)> = cand
                .iter()
                .map(|&i| {
                    let (_, v, q, _) = &items[i as usize];
                    let s: f32 = taste.iter().zip(v).map(|(a, b)| a * b).sum::<f32>() + q;
                    let gumbel = -(-(1.0 - r.f64()).ln()).ln() as f32;
                    (s + 0.3 * gumbel, i)
                })
                .collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            scored.truncate(n);
            // Top up from uniform draws when popularity sampling found too few distinct items.
            let mut have: std::collections::HashSet<u32> = scored.iter().map(|x| x.1).collect();
            while scored.len() < n {
                let i = r.below(cfg.items) as u32;
                if have.insert(i) {
                    scored.push((0.0, i));
                }
            }
            let mut t = 874_724_710 + (r.f64() * 2.0e7) as i64;
            let mut rows: Vec<Interaction> = scored
                .iter()
                .map(|&(_, i)| {
                    let (_, v, q, _) = &items[i as usize];
                    let s: f32 = taste.iter().zip(v).map(|(a, b)| a * b).sum::<f32>() + q + ubias;
                    let rating = (3.6 + 1.3 * s + 0.6 * r.normal() as f32)
                        .round()
                        .clamp(1.0, 5.0);
                    Interaction {
                        user: u as u32,
                        item: i,
                        rating,
                        timestamp: 0,
                    }
                })
                .collect();
            r.shuffle(&mut rows);
            for x in rows.iter_mut() {
                t += 1 + (-(1.0 - r.f64()).ln() * 3600.0) as i64;
                x.timestamp = t;
            }
            let age = (16.0 + (r.normal().abs() * 14.0)).min(73.0) as u16;
            let gender = if r.f64() < 0.71 { "M" } else { "F" };
            let occ = OCCUPATIONS[r.below(OCCUPATIONS.len())];
            let zip = format!("{:05}", r.below(100_000));
            (taste, rows, (age, gender, occ, zip))
        })
        .collect();

    let mut interactions = Vec::with_capacity(cfg.ratings + cfg.users);
    let mut info = UserInfo::default();
    let mut user_taste = Vec::with_capacity(cfg.users * d);
    for (taste, rows, (age, gender, occ, zip)) in users {
        user_taste.extend_from_slice(&taste);
        interactions.extend(rows);
        info.ages.push(Some(age));
        info.genders.push(Some(gender.to_string()));
        info.occupations.push(Some(occ.to_string()));
        info.zips.push(Some(zip));
    }
    interactions.sort_unstable_by_key(|x| (x.user, x.timestamp, x.item));
    let mut item_info = ItemInfo::default();
    let mut item_taste = Vec::with_capacity(cfg.items * d);
    let mut item_quality = Vec::with_capacity(cfg.items);
    for (i, (gs, v, q, year)) in items.into_iter().enumerate() {
        item_info
            .titles
            .push(Some(format!("Synthetic Movie {} ({year})", i + 1)));
        item_info.genres.push(gs);
        item_info.years.push(Some(year));
        item_taste.extend_from_slice(&v);
        item_quality.push(q);
    }
    let ids =
        |n: usize| IdMap::from_ids((1..=n).map(|i| i.to_string()).collect()).expect("distinct");
    let ds = Dataset {
        format: None,
        sources: Vec::new(),
        users: ids(cfg.users),
        items: ids(cfg.items),
        interactions,
        has_ratings: true,
        has_timestamps: true,
        genre_names: GENRES.iter().map(|s| s.to_string()).collect(),
        item_info: Some(item_info),
        user_info: Some(info),
        duplicates: 0,
        notes: Vec::new(),
    };
    Ok((
        ds,
        Planted {
            dim: d,
            user_taste,
            item_taste,
            item_quality,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_shaped() {
        let cfg = SynthConfig {
            users: 300,
            items: 500,
            ratings: 15_000,
            ..Default::default()
        };
        let (a, _) = generate(&cfg).unwrap();
        let (b, _) = generate(&cfg).unwrap();
        assert_eq!(a.interactions, b.interactions);
        let n = a.interactions.len() as f64;
        assert!((n - 15_000.0).abs() / 15_000.0 < 0.05, "{n} ratings");
        // Popularity skew: the top 10% of items hold well over 10% of the ratings.
        let mut deg = vec![0usize; 500];
        for x in &a.interactions {
            deg[x.item as usize] += 1;
        }
        deg.sort_unstable_by(|a, b| b.cmp(a));
        let top: usize = deg[..50].iter().sum();
        assert!(top as f64 / n > 0.25, "top-10% share {}", top as f64 / n);
        // No duplicate pairs.
        let mut pairs: Vec<(u32, u32)> = a.interactions.iter().map(|x| (x.user, x.item)).collect();
        pairs.sort_unstable();
        pairs.dedup();
        assert_eq!(pairs.len(), a.interactions.len());
        assert!(generate(&SynthConfig { ratings: 10, ..cfg }).is_err());
    }
}

/// A synthetic maximum-inner-product set shaped like trained MF embeddings: item and user
/// directions drawn around `clusters` random centres, item norms log-normal (`norm_sigma`), so a
/// few large-norm items dominate the top-K as they do in real models.
#[derive(Clone, Debug)]
pub struct MipsConfig {
    pub items: usize,
    pub users: usize,
    pub dim: usize,
    pub clusters: usize,
    /// Standard deviation of log item norms.
    pub norm_sigma: f64,
    /// Spread of directions around their centre (relative to the centre's unit length).
    pub spread: f64,
    pub seed: u64,
}

/// The most floats (items and users together) a synthetic MIPS set may hold: 8 GiB.
pub const MAX_MIPS_FLOATS: usize = 1 << 31;

impl MipsConfig {
    /// Refuses a set that is degenerate (no items, users, dimensions or clusters; a negative
    /// or non-finite sigma or spread) or too large to generate in memory.
    pub fn check(&self) -> Result<()> {
        let bad = |reason: String| Err(Error::invalid("synthetic MIPS set", reason));
        if self.items == 0 || self.users == 0 || self.dim == 0 || self.clusters == 0 {
            return bad("items, users, dim and clusters must be positive".into());
        }
        let floats = self
            .items
            .saturating_add(self.users)
            .saturating_mul(self.dim);
        if floats > MAX_MIPS_FLOATS {
            return bad(format!(
                "items={}, users={}, dim={}: (items + users) × dim is {floats} floats, at most {MAX_MIPS_FLOATS} (8 GiB); bench a model of that size from .npy files instead",
                self.items, self.users, self.dim
            ));
        }
        let non_negative = |x: f64| x.is_finite() && x >= 0.0;
        if !non_negative(self.norm_sigma) || !non_negative(self.spread) {
            return bad("sigma and spread must be finite and ≥ 0".into());
        }
        Ok(())
    }
}

impl Default for MipsConfig {
    fn default() -> Self {
        MipsConfig {
            items: 100_000,
            users: 10_000,
            dim: 64,
            clusters: 256,
            norm_sigma: 0.5,
            spread: 0.7,
            seed: 42,
        }
    }
}

/// Generates (users n_u × dim, items n_i × dim), row-major.
pub fn mips(cfg: &MipsConfig) -> (Vec<f32>, Vec<f32>) {
    let d = cfg.dim;
    let mut rng = Rng::new(cfg.seed);
    let centres: Vec<Vec<f32>> = (0..cfg.clusters.max(1))
        .map(|_| unit(&mut rng, d))
        .collect();
    let draw = |n: usize, stream: u64, norms: bool| -> Vec<f32> {
        let mut out = vec![0f32; n * d];
        out.par_chunks_mut(d).enumerate().for_each(|(i, row)| {
            let mut r = Rng::stream(cfg.seed ^ stream, i as u64);
            let c = &centres[r.below(centres.len())];
            let s = cfg.spread as f32 / (d as f32).sqrt();
            for (x, cv) in row.iter_mut().zip(c) {
                *x = cv + s * r.normal() as f32;
            }
            let len = row.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            let scale = if norms {
                (cfg.norm_sigma * r.normal()).exp() as f32 / len
            } else {
                1.0 / len
            };
            row.iter_mut().for_each(|x| *x *= scale);
        });
        out
    };
    (
        draw(cfg.users, 0x05E5, false),
        draw(cfg.items, 0x17E5, true),
    )
}
