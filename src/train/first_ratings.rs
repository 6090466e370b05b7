//! The first-ratings map: a new user's vector from the first movies they rate.
//!
//! A new user's first ratings are not a random sample of their taste: at sign-up they rate the
//! movies they are shown, more popular than their later ones. Folded in as if they were a
//! random sample ([`super::coldstart::fold_in`]), they point away from what the user rates
//! next, below the most popular movies (README, "User cold start"). This map learns instead,
//! from the training users' own histories in time order, what a user's first `N` positives
//! (and demographics) say about the rest:
//!
//! ```text
//! min_B  Σ_(u, N) |y_uN − x_uN B|² + λ|B|²,   B = W Vᵀ (scores in the span of the item vectors V)
//! ```
//!
//! where for each training user `u` and each `N` in [`PREFIXES`] below their number of
//! positives, `x_uN` holds a 1 for each of their first `N` positives, [`DEMOGRAPHIC_WEIGHT`]
//! times their user features, and a constant 1, and `y_uN` a 1 for each later positive. The
//! solution is `W = (XᵀX + λI)⁻¹ XᵀY V (VᵀV + εI)⁻¹`: a new user's vector is `x W`, the sum of the
//! rows of `W` for their first items, their features and the constant, and it scores
//! against the item vectors like a trained user's, so serving (exact or LSH) is unchanged.
//! The constant row carries what every new user shares (the popular movies); the item rows say
//! what each first rating adds.
//!
//! The system has one unknown row per item, feature and the constant; it is solved by
//! Jacobi-preconditioned conjugate gradients without forming `XᵀX`, each product two
//! parallel passes with one writer per output row, so the map does not depend on the thread
//! count.

use faer::linalg::solvers::Solve;
use faer::{Mat, Side};
use rayon::prelude::*;

use crate::data::Csr;
use crate::error::{Error, Result};
use crate::rng::Rng;

/// The prefix lengths each training user contributes (one sample each, when they have more
/// positives than that). Chosen on cold-user validation splits (README, "User cold start"):
/// every `N` from 1 to 10 gave mean NDCG@10 .4330 / .4412 / .4349 / .4050 at N = 1 / 3 / 5 /
/// 10 against .4450 / .4456 / .4467 / .4176 for these five (λ 100, feature weight 1).
pub const PREFIXES: [usize; 5] = [0, 1, 3, 5, 10];

/// Ridge strength λ (validation, mean NDCG@10 over N = 1, 3, 5, 10: .4420 at 200, .4419 at
/// 100, .4385 at 50).
pub const RIDGE: f64 = 200.0;

/// The weight of a user feature against a first rating's 1 (validation: .4420 at .5, .4419 at
/// 1, .4359 at 2).
pub const DEMOGRAPHIC_WEIGHT: f32 = 0.5;

/// The ridge on the item vectors' Gram matrix in `(VᵀV + εI)⁻¹`, as a fraction of its mean
/// eigenvalue (validation: .4413 at 1e-2, .4409 at 1e-4, .4422 at 1e-6; the largest map entry
/// is .1 at 1e-2 and 7.7 at 1e-6).
pub const GRAM_RIDGE: f64 = 1e-2;

/// Samples per block of the products: their intermediates (samples × d, f64) stay at 32 MiB
/// at 128 dimensions.
const SAMPLE_BLOCK: usize = 1 << 15;

const CG_TOL: f64 = 1e-6;
const CG_MAX_ITERS: usize = 500;

/// Distinct items of `(item, time)` pairs in the order they were given: each at its earliest
/// time, ties (and everything, without `by_time`) in a seeded shuffle (`seed`, `stream`). The
/// order of a training user's history here and of a cold user's reveals in
/// `eval --cold-users`.
pub fn given_order(mut given: Vec<(u32, i64)>, by_time: bool, seed: u64, stream: u64) -> Vec<u32> {
    given.sort_unstable();
    given.dedup_by_key(|x| x.0);
    Rng::stream(seed, stream).shuffle(&mut given);
    if by_time {
        given.sort_by_key(|x| x.1);
    }
    given.into_iter().map(|x| x.0).collect()
}

/// Each user's distinct positives (the columns of `positives`) in the order they gave them,
/// by `time(user, item)` ([`given_order`], the user's row as the stream).
pub fn histories(
    positives: &Csr,
    time: impl Fn(u32, u32) -> i64 + Sync,
    seed: u64,
) -> Vec<Vec<u32>> {
    (0..positives.rows)
        .into_par_iter()
        .map(|u| {
            let given = (positives.row(u).iter())
                .map(|&i| (i, time(u as u32, i)))
                .collect();
            given_order(given, true, seed, u as u64)
        })
        .collect()
}

/// A fitted map: `(n_items + n_features + 1) × d`, row-major: one row per item, then one per
/// user feature (already times [`DEMOGRAPHIC_WEIGHT`]), then the constant row.
#[derive(Clone, Copy, Debug)]
pub struct FirstRatingsMap<'a> {
    pub map: &'a [f32],
    pub n_items: usize,
    pub n_features: usize,
    pub d: usize,
}

impl FirstRatingsMap<'_> {
    /// The rows the map has for `n_items` items and `n_features` user features.
    pub fn rows(n_items: usize, n_features: usize) -> usize {
        n_items + n_features + 1
    }

    /// The vector of a new user whose first positives are `liked` (item rows) and whose
    /// features are `features` (feature rows and weights).
    pub fn vector(&self, liked: &[u32], features: &[(usize, f32)]) -> Result<Vec<f32>> {
        let d = self.d;
        let need = Self::rows(self.n_items, self.n_features) * d;
        if self.map.len() != need {
            return Err(Error::Mismatch {
                what: "first-ratings map".into(),
                expected: format!("{need} values"),
                found: self.map.len().to_string(),
            });
        }
        let row = |r: usize| &self.map[r * d..(r + 1) * d];
        let mut v = row(self.n_items + self.n_features).to_vec();
        for &i in liked {
            if i as usize >= self.n_items {
                return Err(Error::invalid(
                    "liked items",
                    format!("item row {i}: the model has {} items", self.n_items),
                ));
            }
            crate::simd::axpy(1.0, row(i as usize), &mut v);
        }
        for &(f, w) in features {
            if f >= self.n_features {
                return Err(Error::invalid(
                    "user features",
                    format!("feature row {f}: the model has {}", self.n_features),
                ));
            }
            crate::simd::axpy(w, row(self.n_items + f), &mut v);
        }
        Ok(v)
    }
}

/// Fits the map from the training users' `histories` (item rows in the order given, as
/// [`histories`] makes them), their `features` (users × user features, or none) and the item
/// vectors `items` (`n_items × d`). Returns the map ([`FirstRatingsMap`]'s layout).
pub fn fit(
    histories: &[Vec<u32>],
    features: Option<&Csr>,
    items: &[f32],
    d: usize,
) -> Result<Vec<f32>> {
    fit_in_blocks(histories, features, items, d, SAMPLE_BLOCK)
}

/// [`fit`] with the products over blocks of `block` samples.
fn fit_in_blocks(
    histories: &[Vec<u32>],
    features: Option<&Csr>,
    items: &[f32],
    d: usize,
    block: usize,
) -> Result<Vec<f32>> {
    let n_items = items.len().checked_div(d).unwrap_or(0);
    let n_features = features.map_or(0, |f| f.cols);
    if let Some(f) = features {
        if f.rows != histories.len() {
            return Err(Error::Mismatch {
                what: "user features of the first-ratings map".into(),
                expected: format!("{} users", histories.len()),
                found: f.rows.to_string(),
            });
        }
    }
    if let Some(&i) = histories.iter().flatten().find(|&&i| i as usize >= n_items) {
        return Err(Error::invalid(
            "first-ratings map",
            format!("item row {i} in a history: the model has {n_items} items"),
        ));
    }
    let k = FirstRatingsMap::rows(n_items, n_features);
    let constant = (k - 1) as u32;
    // The samples: X (samples × k) and, for each, the user and where the later part starts.
    let mut triples = Vec::new();
    let mut samples: Vec<(usize, usize)> = Vec::new();
    for (u, h) in histories.iter().enumerate() {
        for &p in PREFIXES.iter().filter(|&&p| h.len() > p) {
            let r = samples.len() as u32;
            triples.extend(h[..p].iter().map(|&i| (r, i, 1f32)));
            if let Some(f) = features {
                let cols = f.row(u).iter().zip(f.row_values(u));
                triples
                    .extend(cols.map(|(&c, &w)| (r, n_items as u32 + c, DEMOGRAPHIC_WEIGHT * w)));
            }
            triples.push((r, constant, 1.0));
            samples.push((u, p));
        }
    }
    let m = samples.len();
    let mut map = vec![0f32; k * d];
    if m == 0 {
        return Ok(map);
    }
    // The products run over blocks of samples, so that their intermediates (samples × d) stay
    // small; each output row sums its terms in sample order whatever the blocks and threads.
    let mut diag = vec![RIDGE; k];
    for &(_, c, w) in &triples {
        diag[c as usize] += (w as f64) * (w as f64);
    }
    let blocks: Vec<(usize, Csr, Csr)> = (0..m)
        .step_by(block.max(1))
        .map(|s| {
            let e = (s + block.max(1)).min(m);
            let (a, b) = (
                triples.partition_point(|t| (t.0 as usize) < s),
                triples.partition_point(|t| (t.0 as usize) < e),
            );
            let local: Vec<(u32, u32, f32)> = (triples[a..b].iter())
                .map(|&(r, c, w)| (r - s as u32, c, w))
                .collect();
            let x = Csr::from_triples(e - s, k, &local);
            let xt = x.transpose();
            (s, x, xt)
        })
        .collect();
    drop(triples);
    // Xᵀ Y V: each sample's later items' vectors summed, block by block, in one buffer that
    // X P reuses for every block and step below.
    let mut rhs = vec![0f64; k * d];
    let mut xp = vec![0f64; block.max(1).min(m) * d];
    for (s, x, xt) in &blocks {
        let yv = &mut xp[..x.rows * d];
        later_sums(&samples[*s..*s + x.rows], histories, items, d, yv);
        add_xt_times(xt, yv, d, &mut rhs);
    }
    let apply = |p: &[f64], out: &mut [f64]| {
        for (o, &q) in out.iter_mut().zip(p) {
            *o = RIDGE * q;
        }
        for (_, x, xt) in &blocks {
            let xp = &mut xp[..x.rows * d];
            x_times(x, p, d, xp);
            add_xt_times(xt, xp, d, out);
        }
    };
    let z = super::cg::solve_columns(apply, &rhs, &diag, d, CG_TOL, CG_MAX_ITERS);
    // W = Z (VᵀV + εI)⁻¹. Trained item vectors leave directions almost unused (iALS on ML-100K:
    // Gram eigenvalues down to 1e-10 of the largest); ε keeps the user vectors out of them, so
    // that their length and their LSH hash bits come from the directions the items use.
    let mut g = Mat::<f64>::zeros(d, d);
    for v in items.chunks_exact(d) {
        for p in 0..d {
            for q in 0..=p {
                g[(p, q)] += v[p] as f64 * v[q] as f64;
            }
        }
    }
    let trace: f64 = (0..d).map(|p| g[(p, p)]).sum();
    for p in 0..d {
        for q in 0..p {
            g[(q, p)] = g[(p, q)];
        }
        g[(p, p)] += GRAM_RIDGE * trace / d as f64 + 1e-12;
    }
    let llt = g.llt(Side::Lower).map_err(|_| {
        Error::invalid(
            "first-ratings map",
            "the item vectors' Gram matrix is not positive definite",
        )
    })?;
    let zt = Mat::<f64>::from_fn(d, k, |p, c| z[c * d + p]);
    let wt = llt.solve(&zt);
    for c in 0..k {
        let scale = match c >= n_items && c < n_items + n_features {
            true => DEMOGRAPHIC_WEIGHT,
            false => 1.0,
        };
        for p in 0..d {
            map[c * d + p] = (scale as f64 * wt[(p, c)]) as f32;
        }
    }
    Ok(map)
}

/// Into `out` (`samples.len() × d`), each sample's sum of the vectors of the items after its
/// prefix in its user's history. A user's samples are consecutive, prefixes ascending, so one
/// backward pass over the history gives all of them; each sum runs from the history's end.
fn later_sums(
    samples: &[(usize, usize)],
    histories: &[Vec<u32>],
    items: &[f32],
    d: usize,
    out: &mut [f64],
) {
    // Each user's run of samples, and its rows of `out`.
    let (mut runs, mut outs) = (Vec::new(), Vec::new());
    let mut rest = out;
    let mut at = 0;
    while at < samples.len() {
        let u = samples[at].0;
        let n = samples[at..].iter().take_while(|x| x.0 == u).count();
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(n * d);
        runs.push(&samples[at..at + n]);
        outs.push(head);
        rest = tail;
        at += n;
    }
    runs.into_par_iter().zip(outs).for_each(|(run, out)| {
        let h = &histories[run[0].0];
        let mut sum = vec![0f64; d];
        let mut end = h.len();
        for (&(_, p), o) in run.iter().zip(out.chunks_exact_mut(d)).rev() {
            for &i in h[p..end].iter().rev() {
                let v = &items[i as usize * d..(i as usize + 1) * d];
                for (a, &b) in sum.iter_mut().zip(v) {
                    *a += b as f64;
                }
            }
            end = p;
            o.copy_from_slice(&sum);
        }
    });
}

/// `out = X P` for `P` (`x.cols × d`; `out`: `x.rows × d`), one writer per row.
fn x_times(x: &Csr, p: &[f64], d: usize, out: &mut [f64]) {
    out.par_chunks_mut(d).enumerate().for_each(|(r, s)| {
        s.fill(0.0);
        for (&c, &w) in x.row(r).iter().zip(x.row_values(r)) {
            for (a, &b) in s.iter_mut().zip(&p[c as usize * d..(c as usize + 1) * d]) {
                *a += w as f64 * b;
            }
        }
    });
}

/// `out += Xᵀ Q` for `Q` (`x.rows × d`) through the transpose `xt`, one writer per row of
/// `out`, each summing in `Q`'s row order.
fn add_xt_times(xt: &Csr, q: &[f64], d: usize, out: &mut [f64]) {
    out.par_chunks_mut(d).enumerate().for_each(|(c, o)| {
        for (&r, &w) in xt.row(c).iter().zip(xt.row_values(c)) {
            for (a, &b) in o.iter_mut().zip(&q[r as usize * d..(r as usize + 1) * d]) {
                *a += w as f64 * b;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random histories over `n` items with random user features.
    fn problem(
        seed: u64,
        n_users: usize,
        n: usize,
        nf: usize,
        d: usize,
    ) -> (Vec<Vec<u32>>, Csr, Vec<f32>) {
        let mut r = Rng::new(seed);
        let hist: Vec<Vec<u32>> = (0..n_users)
            .map(|_| {
                let mut all: Vec<u32> = (0..n as u32).collect();
                r.shuffle(&mut all);
                let len = r.below(n - 1) + 1;
                all.truncate(len);
                all
            })
            .collect();
        let triples: Vec<(u32, u32, f32)> = (0..n_users as u32)
            .flat_map(|u| [(u, u % 2, 1.0), (u, 2 + (u / 2) % (nf as u32 - 2), 0.5)])
            .collect();
        let feats = Csr::from_triples(n_users, nf, &triples);
        let items: Vec<f32> = (0..n * d).map(|_| r.normal() as f32).collect();
        (hist, feats, items)
    }

    /// The conjugate-gradient solve against the normal equations formed and solved densely.
    #[test]
    fn cg_matches_the_dense_solve() {
        let (n_users, n, nf, d) = (60, 25, 4, 6);
        let (hist, feats, items) = problem(3, n_users, n, nf, d);
        let map = fit(&hist, Some(&feats), &items, d).unwrap();
        let k = n + nf + 1;
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for (u, h) in hist.iter().enumerate() {
            for &p in PREFIXES.iter().filter(|&&p| h.len() > p) {
                let mut x = vec![0f64; k];
                let mut y = vec![0f64; n];
                h[..p].iter().for_each(|&i| x[i as usize] = 1.0);
                for (&c, &w) in feats.row(u).iter().zip(feats.row_values(u)) {
                    x[n + c as usize] = (DEMOGRAPHIC_WEIGHT * w) as f64;
                }
                x[k - 1] = 1.0;
                h[p..].iter().for_each(|&i| y[i as usize] = 1.0);
                xs.push(x);
                ys.push(y);
            }
        }
        let xm = Mat::<f64>::from_fn(xs.len(), k, |r, c| xs[r][c]);
        let ym = Mat::<f64>::from_fn(ys.len(), n, |r, c| ys[r][c]);
        let v = Mat::<f64>::from_fn(n, d, |i, p| items[i * d + p] as f64);
        let g = xm.transpose() * &xm + Mat::<f64>::identity(k, k) * faer::Scale(RIDGE);
        let rhs = xm.transpose() * &ym * &v;
        let z = g.llt(Side::Lower).unwrap().solve(&rhs);
        let mut vtv = v.transpose() * &v;
        let eps = (0..d).map(|p| vtv[(p, p)]).sum::<f64>() / d as f64 * GRAM_RIDGE + 1e-12;
        for p in 0..d {
            vtv[(p, p)] += eps;
        }
        let w = vtv.llt(Side::Lower).unwrap().solve(z.transpose());
        for c in 0..k {
            let scale = if (n..n + nf).contains(&c) {
                DEMOGRAPHIC_WEIGHT as f64
            } else {
                1.0
            };
            for p in 0..d {
                let want = scale * w[(p, c)];
                let got = map[c * d + p] as f64;
                assert!(
                    (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                    "row {c} col {p}: {got} against {want}"
                );
            }
        }
        // The same inputs give the same map, bit for bit, whatever the blocks of samples.
        assert_eq!(map, fit(&hist, Some(&feats), &items, d).unwrap());
        for block in [1, 7, 64] {
            let blocked = fit_in_blocks(&hist, Some(&feats), &items, d, block).unwrap();
            assert_eq!(map, blocked, "blocks of {block}");
        }
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let again = pool.install(|| fit(&hist, Some(&feats), &items, d).unwrap());
            assert_eq!(map, again, "{threads} threads");
        }
    }

    /// Two kinds of users sign up by rating the same popular item 0 and then one of two
    /// "signal" items (1 or 2); what they rate later depends on the signal item. The map,
    /// given a first rating of 1 or of 2, ranks that kind's later items first, and given item 0
    /// alone ranks the later items of both kinds above the unrelated ones.
    #[test]
    fn learns_what_the_first_ratings_say_about_the_later_ones() {
        let n = 30;
        let d = n; // identity item vectors: the projection keeps every score
        let items: Vec<f32> = (0..n * n).map(|k| (k / n == k % n) as u8 as f32).collect();
        let mut r = Rng::new(11);
        println!("seed 11");
        let hist: Vec<Vec<u32>> = (0..200)
            .map(|u| {
                let kind = (u % 2) as u32;
                let mut later: Vec<u32> = (0..8).map(|j| 3 + kind * 8 + j).collect();
                r.shuffle(&mut later);
                later.truncate(6);
                [vec![0, 1 + kind], later].concat()
            })
            .collect();
        let map = fit(&hist, None, &items, d).unwrap();
        let m = FirstRatingsMap {
            map: &map,
            n_items: n,
            n_features: 0,
            d,
        };
        let top = |liked: &[u32]| {
            let v = m.vector(liked, &[]).unwrap();
            let mut order: Vec<u32> = (0..n as u32).filter(|i| !liked.contains(i)).collect();
            order.sort_by(|&a, &b| v[b as usize].total_cmp(&v[a as usize]));
            order
        };
        for kind in 0..2u32 {
            let want: Vec<u32> = (0..8).map(|j| 3 + kind * 8 + j).collect();
            let mut got = top(&[0, 1 + kind])[..8].to_vec();
            got.sort_unstable();
            assert_eq!(got, want, "kind {kind}");
        }
        let mut both = top(&[0])[..18].to_vec();
        both.sort_unstable();
        // The 16 later items and the two signal items, none of the 11 unrelated ones.
        assert!(both.iter().all(|&i| (1..19).contains(&i)), "{both:?}");
        // Bad rows are refused, not indexed past the end.
        assert!(m.vector(&[n as u32], &[]).is_err());
        assert!(m.vector(&[0], &[(0, 1.0)]).is_err());
    }
}
