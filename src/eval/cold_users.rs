//! User cold start: users the model never saw, each revealing a few of their positives.
//!
//! For every held-out user the positives are put in a reveal order once: shuffled (a seeded
//! stream per user), or by time, the user's first ratings first, as a new user would give them
//! (ties in the shuffled order). The reveals are nested: the first three include the first
//! one. With `N` revealed, the user's vector is folded in from those `N` (and their
//! demographic prior, if any) with the item vectors fixed, and the user ranks every item, the
//! revealed excluded, against the rest of their positives. Users with `N` positives or fewer
//! have nothing left to rank for at that `N`, and with nothing revealed a user without a prior
//! has nothing to fold in: both are counted as left out. Beside it, the most popular items (by
//! training positives) are ranked with the same exclusions, the baseline a new user gets
//! without a model.

use serde::Serialize;

use super::{ranking, RankingReport};
use crate::data::Csr;
use crate::error::{Error, Result};
use crate::train::coldstart::FoldInSolver;
use crate::train::first_ratings::FirstRatingsMap;

/// One held-out user: their positives (item rows), when each was given (seconds; empty when
/// the data has no times), their demographic prior, if any, and their user features (rows of
/// the model's user features and weights) for the first-ratings map.
#[derive(Clone, Debug)]
pub struct ColdUser {
    pub positives: Vec<u32>,
    pub times: Vec<i64>,
    pub prior: Option<Vec<f32>>,
    pub features: Vec<(usize, f32)>,
}

/// The order in which a cold user's positives are revealed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum RevealOrder {
    /// A seeded shuffle: any N of the user's positives.
    #[default]
    Random,
    /// By time: the user's first N positives, as a new user would give them (ties shuffled).
    Time,
}

/// `user`'s distinct positives in reveal `order` (the shuffle from `seed` and the user's index
/// `j`; a positive listed twice keeps its earliest time).
fn reveal_order(user: &ColdUser, order: RevealOrder, seed: u64, j: usize) -> Vec<u32> {
    let p: Vec<(u32, i64)> = (user.positives.iter().enumerate())
        .map(|(k, &i)| (i, user.times.get(k).copied().unwrap_or(0)))
        .collect();
    crate::train::first_ratings::given_order(p, order == RevealOrder::Time, seed, j as u64)
}

/// The metrics at one number of revealed positives.
#[derive(Clone, Debug, Serialize)]
pub struct RevealReport {
    /// Positives revealed per user.
    pub revealed: usize,
    /// Users with no more than `revealed` positives, so nothing left to rank for, and at 0
    /// revealed those without a prior, so nothing to fold in.
    pub users_left_out: usize,
    /// The folded-in vectors.
    pub model: RankingReport,
    /// The most popular items, the same exclusions.
    pub most_popular: RankingReport,
    /// The first-ratings map's vectors, the same exclusions, when the model has the map.
    pub first_ratings: Option<RankingReport>,
}

/// Evaluates fold-in by `solver` (over the `n` items) for `users` at each count in `reveal`,
/// and the first-ratings map `map` when given. `popularity` holds one score per item
/// (training positives). The reveals follow `order`, shuffled (or ties shuffled) from `seed`.
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    solver: &FoldInSolver<'_>,
    map: Option<FirstRatingsMap<'_>>,
    popularity: &[f32],
    users: &[ColdUser],
    reveal: &[usize],
    ks: &[usize],
    order: RevealOrder,
    seed: u64,
) -> Result<Vec<RevealReport>> {
    let (items, d) = (solver.items(), solver.dim());
    let n = items.len() / d.max(1);
    if popularity.len() != n {
        return Err(Error::Mismatch {
            what: "item popularity of the cold-user evaluation".into(),
            expected: format!("{n} items"),
            found: popularity.len().to_string(),
        });
    }
    let orders: Vec<Vec<u32>> = (users.iter().enumerate())
        .map(|(j, u)| reveal_order(u, order, seed, j))
        .collect();
    let mut out = Vec::with_capacity(reveal.len());
    for &r in reveal {
        let (mut vectors, mut mapped) = (Vec::new(), Vec::new());
        let (mut shown, mut rest) = (Vec::new(), Vec::new());
        let mut left_out = 0;
        for (u, order) in users.iter().zip(&orders) {
            // Nothing left to rank for, or (N = 0 without a prior) nothing to fold in.
            if order.len() <= r || (r == 0 && u.prior.is_none()) {
                left_out += 1;
                continue;
            }
            let liked = &order[..r];
            vectors.extend(solver.solve(liked, &[], u.prior.as_deref())?);
            if let Some(m) = &map {
                mapped.extend(m.vector(liked, &u.features)?);
            }
            let k = vectors.len() / d - 1;
            shown.extend(liked.iter().map(|&i| (k as u32, i, 1.0)));
            rest.extend(order[r..].iter().map(|&i| (k as u32, i, 1.0)));
        }
        let rows = vectors.len() / d.max(1);
        let train = Csr::from_triples(rows, n, &shown);
        let test = Csr::from_triples(rows, n, &rest);
        let model = ranking(&vectors, items, d, &train, &test, ks)?;
        let ones = vec![1f32; rows];
        let most_popular = ranking(&ones, popularity, 1, &train, &test, ks)?;
        let first_ratings = match map {
            Some(_) => Some(ranking(&mapped, items, d, &train, &test, ks)?),
            None => None,
        };
        out.push(RevealReport {
            revealed: r,
            users_left_out: left_out,
            model,
            most_popular,
            first_ratings,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use crate::train::coldstart::FoldIn;

    /// Users planted in a random item space: their positives are their planted top items. One
    /// revealed positive beats popularity (which knows nothing of them), more reveal more, and
    /// the reveals are nested and seeded.
    #[test]
    fn folded_in_users_beat_popularity_and_improve_with_reveals() {
        let (n, d, n_users) = (400, 8, 40);
        let seed = 5;
        println!("seed {seed}");
        let mut r = Rng::new(seed);
        let items: Vec<f32> = (0..n * d).map(|_| r.normal() as f32).collect();
        let users: Vec<ColdUser> = (0..n_users)
            .map(|_| {
                let u: Vec<f32> = (0..d).map(|_| r.normal() as f32).collect();
                let mut order: Vec<u32> = (0..n as u32).collect();
                let s = |i: u32| crate::simd::dot(&u, &items[i as usize * d..][..d]);
                order.sort_by(|&a, &b| s(b).total_cmp(&s(a)));
                ColdUser {
                    positives: order[..30].to_vec(),
                    times: Vec::new(),
                    prior: None,
                    features: Vec::new(),
                }
            })
            .collect();
        // Popularity favours items nobody here likes in particular: item id order.
        let pop: Vec<f32> = (0..n).map(|i| (n - i) as f32).collect();
        let solver = FoldInSolver::new(&items, d, FoldIn::default());
        let rep = evaluate(
            &solver,
            None,
            &pop,
            &users,
            &[1, 5, 20],
            &[10],
            RevealOrder::Random,
            seed,
        )
        .unwrap();
        let ndcg = |x: &RankingReport| x.get(10).unwrap().ndcg;
        for x in &rep {
            println!(
                "revealed {}: fold-in {:.4}, popular {:.4}",
                x.revealed,
                ndcg(&x.model),
                ndcg(&x.most_popular)
            );
            assert_eq!((x.users_left_out, x.model.users), (0, n_users));
            assert!(ndcg(&x.model) > ndcg(&x.most_popular) + 0.1);
        }
        assert!(ndcg(&rep[2].model) > ndcg(&rep[0].model));
        // Same seed, same report; 30 positives with 30 revealed leave everyone out.
        let again = evaluate(
            &solver,
            None,
            &pop,
            &users,
            &[5],
            &[10],
            RevealOrder::Random,
            seed,
        )
        .unwrap();
        assert_eq!(ndcg(&again[0].model), ndcg(&rep[1].model));
        let all = evaluate(
            &solver,
            None,
            &pop,
            &users,
            &[30],
            &[10],
            RevealOrder::Random,
            seed,
        )
        .unwrap();
        assert_eq!((all[0].users_left_out, all[0].model.users), (n_users, 0));
    }

    /// By time the first positives given are revealed first, ties in the seeded shuffle's
    /// order; at random the order is the shuffle's, whatever the times; a repeated positive
    /// counts once, at its earliest time.
    #[test]
    fn reveal_orders() {
        let u = ColdUser {
            positives: vec![10, 11, 12, 13, 14, 11],
            times: vec![50, 40, 30, 30, 10, 5],
            prior: None,
            features: Vec::new(),
        };
        let by_time = reveal_order(&u, RevealOrder::Time, 3, 0);
        assert_eq!(by_time[0], 11, "{by_time:?}");
        assert_eq!(by_time[1], 14, "{by_time:?}");
        assert_eq!(by_time[4], 10, "{by_time:?}");
        let tied: Vec<u32> = by_time[2..4].to_vec();
        assert!(tied == [12, 13] || tied == [13, 12], "{by_time:?}");
        let random = reveal_order(&u, RevealOrder::Random, 3, 0);
        let mut shuffled = vec![10u32, 11, 12, 13, 14];
        Rng::stream(3, 0).shuffle(&mut shuffled);
        assert_eq!(random, shuffled);
        // The tie follows the shuffle: 12 before 13 exactly when the shuffle has it so.
        let first = |v: &[u32]| v.iter().position(|&i| i == 12) < v.iter().position(|&i| i == 13);
        assert_eq!(first(&by_time), first(&shuffled));
        // Without times, time order is the shuffle.
        let untimed = ColdUser {
            times: Vec::new(),
            ..u.clone()
        };
        assert_eq!(reveal_order(&untimed, RevealOrder::Time, 3, 0), shuffled);
    }

    /// With nothing revealed the prior alone decides; a user without one is left out.
    #[test]
    fn zero_reveals_need_a_prior() {
        let (n, d) = (50, 4);
        let mut r = Rng::new(9);
        let items: Vec<f32> = (0..n * d).map(|_| r.normal() as f32).collect();
        let pop = vec![0f32; n];
        let mut u = ColdUser {
            positives: vec![1, 2, 3],
            times: Vec::new(),
            prior: None,
            features: Vec::new(),
        };
        let solver = FoldInSolver::new(&items, d, FoldIn::default());
        let rep = evaluate(
            &solver,
            None,
            &pop,
            &[u.clone()],
            &[0, 1],
            &[5],
            RevealOrder::Random,
            1,
        );
        let rep = rep.unwrap();
        assert_eq!((rep[0].users_left_out, rep[0].model.users), (1, 0));
        assert_eq!((rep[1].users_left_out, rep[1].model.users), (0, 1));
        // The prior alone: the report's top-1 hit is that of the prior's own fold-in.
        u.prior = Some(items[7 * d..8 * d].to_vec());
        u.positives = vec![7, 8];
        let q = crate::train::coldstart::fold_in(
            &items,
            d,
            &[],
            &[],
            u.prior.as_deref(),
            FoldIn::default(),
        )
        .unwrap();
        // Nothing revealed: the vector is the ridge centre, the prior at its weight (the solve
        // would shrink it along the popular directions).
        let w = FoldIn::default().prior_weight;
        let centre: Vec<f32> = items[7 * d..8 * d].iter().map(|&v| w * v).collect();
        assert_eq!(q, centre);
        let top = (0..n)
            .max_by(|&a, &b| {
                let s = |i: usize| crate::simd::dot(&q, &items[i * d..(i + 1) * d]);
                s(a).total_cmp(&s(b)).then(b.cmp(&a))
            })
            .unwrap();
        let rep = evaluate(
            &solver,
            None,
            &pop,
            &[u],
            &[0],
            &[1],
            RevealOrder::Random,
            1,
        )
        .unwrap();
        let want = if top == 7 || top == 8 { 1.0 } else { 0.0 };
        assert_eq!(rep[0].model.get(1).unwrap().hit_rate, want);
    }
}
