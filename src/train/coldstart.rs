//! Cold start: vectors for items and users the model never trained on.
//!
//! - **Feature maps.** After any model is trained, every feature value (a genre, a decade, an age
//!   bucket, …) gets a vector in the serving space (`item_features.npy`, `user_features.npy`):
//!   with the trained user vectors fixed, the map `W` is the one whose item vectors `f_i W` best
//!   explain the training interactions under the iALS loss ([`fit_map_implicit`]), fitted on
//!   the items that had interactions (and symmetrically for users). A new movie known by its
//!   genres and year gets `Σ_f w_f W[f]`, which scores against users like any trained item, so
//!   `index append` can add it.
//! - **Fold-in.** A new user with a handful of liked items gets the vector the iALS user step
//!   would give them, with the item vectors fixed:
//!   `(w0·YᵀY + Σ_{i∈liked} (c − w0) y_i y_iᵀ + λI) x = Σ c·y_i + λ·x0`, where the prior `x0` is
//!   the user's demographic vector (zero without demographics).

use faer::linalg::solvers::Solve;
use faer::{Mat, Side};
use rayon::prelude::*;

use crate::data::Csr;
use crate::error::{Error, Result};

/// Ridge strength of the feature maps (chosen on a cold-item validation split carved from
/// the P3 training data: 1 and 10 tie, 100 and more lose).
pub const MAP_RIDGE: f32 = 10.0;

/// The item map's unobserved weight as a fraction of the model's: a lighter weight on the pairs
/// nobody interacted with lets the map follow the positives (popularity among them) more
/// closely. Chosen on cold-item validation splits carved from the ten P3 training parts (iALS,
/// model weight .7): mean NDCG@10 .2851 at the model's own weight (factor 1), .2878 / .2893 /
/// .2900 / .2905 / .2907 / .2884 at map weights .5 / .35 / .3 / .25 / .2 / .1.
pub const MAP_UNOBSERVED_FACTOR: f32 = 0.4;

/// The feature map fitted to the interactions themselves rather than to the trained vectors:
/// with the other side's vectors `other` (`n_other × d`) fixed, `W` (`features × d`) minimises
/// the iALS loss of the vectors `f_r W`,
///
/// ```text
/// Σ_r [ Σ_{o∈N(r)} c (1 − x_o·Wᵀf_r)² + w0 Σ_{o∉N(r)} (x_o·Wᵀf_r)² ] + λ|W|²
/// ```
///
/// over the rows `r` of `interactions` (rows × n_other) that have any. Popular feature
/// combinations get vectors that score high, as the data says, which a regression onto the
/// trained vectors (whose popularity sits in their norms, averaged away) does not give. The
/// normal equations have `features·d` unknowns: `Σ_r (f_r f_rᵀ) ⊗ A_r` with the row's iALS
/// matrix `A_r = w0·G + Σ_{o∈N(r)} (c − w0) x_o x_oᵀ`.
///
/// Up to [`MAP_DENSE_MAX`] unknowns (ML-100K's genres and decades, its demographics) the system
/// is formed and solved exactly by Cholesky; beyond (attribute files with many values) it is
/// solved by conjugate gradients without forming it ([`fit_map_cg`]).
pub fn fit_map_implicit(
    feats: &Csr,
    interactions: &Csr,
    other: &[f32],
    d: usize,
    c: FoldIn,
    lambda: f32,
) -> Result<Vec<f32>> {
    let f = feats.cols;
    let n = f * d;
    if n > MAP_DENSE_MAX {
        return Ok(fit_map_cg(feats, interactions, other, d, c, lambda));
    }
    let g = super::ials::gram(other, d);
    let w0 = c.unobserved_weight as f64;
    let conf = 1.0 + c.alpha as f64;
    // Rows with the same feature row share their block of the system, so the fitted rows are
    // grouped by feature row (sorted, so the sums run in a fixed order), and each group's
    // Σ x_o x_oᵀ over its interactions is one blocked Gram product (groups in parallel).
    let mut groups: std::collections::BTreeMap<FeatureRow, Vec<usize>> = Default::default();
    for r in 0..feats.rows.min(interactions.rows) {
        let (idx, fw) = (feats.row(r), feats.row_values(r));
        if interactions.row(r).is_empty() || idx.is_empty() {
            continue;
        }
        let key = idx.iter().zip(fw).map(|(&f, w)| (f, w.to_bits())).collect();
        groups.entry(key).or_default().push(r);
    }
    let groups: Vec<(FeatureRow, Vec<usize>)> = groups.into_iter().collect();
    let sums: Vec<(Vec<f64>, Vec<f64>)> = groups
        .par_iter()
        .map(|(_, rs)| {
            let mut s = vec![0f64; d * d];
            let mut b = vec![0f64; d];
            let mut buf: Vec<f32> = Vec::with_capacity(super::ials::GRAM_BLOCK * d);
            let flush = |buf: &mut Vec<f32>, s: &mut Vec<f64>| {
                let gb = super::ials::gram(buf, d);
                for (k, sv) in s.iter_mut().enumerate() {
                    *sv += gb[(k / d, k % d)] as f64;
                }
                buf.clear();
            };
            for &r in rs {
                for &o in interactions.row(r) {
                    let x = &other[o as usize * d..(o as usize + 1) * d];
                    buf.extend_from_slice(x);
                    for (bv, &xv) in b.iter_mut().zip(x) {
                        *bv += conf * xv as f64;
                    }
                    if buf.len() == super::ials::GRAM_BLOCK * d {
                        flush(&mut buf, &mut s);
                    }
                }
            }
            if !buf.is_empty() {
                flush(&mut buf, &mut s);
            }
            (s, b)
        })
        .collect();
    let mut m = Mat::<f64>::zeros(n, n);
    let mut rhs = Mat::<f64>::zeros(n, 1);
    let mut a = vec![0f64; d * d];
    for ((key, rs), (s, b)) in groups.iter().zip(&sums) {
        // The group's Σ_r A_r = |rows|·w0·G + (c − w0)·Σ x xᵀ.
        let nr = rs.len() as f64;
        for (k, av) in a.iter_mut().enumerate() {
            *av = nr * w0 * g[(k / d, k % d)] as f64 + (conf - w0) * s[k];
        }
        for &(fp, wp) in key {
            let (fp, wp) = (fp as usize, f32::from_bits(wp) as f64);
            for p in 0..d {
                rhs[(fp * d + p, 0)] += wp * b[p];
            }
            for &(fq, wq) in key {
                let (fq, sc) = (fq as usize, wp * f32::from_bits(wq) as f64);
                for p in 0..d {
                    for q in 0..d {
                        m[(fp * d + p, fq * d + q)] += sc * a[p * d + q];
                    }
                }
            }
        }
    }
    for k in 0..n {
        m[(k, k)] += lambda as f64;
    }
    let llt = m
        .llt(Side::Lower)
        .map_err(|_| Error::invalid("feature map", "the system is not positive definite"))?;
    let w = llt.solve(rhs);
    Ok((0..n).map(|k| w[(k, 0)] as f32).collect())
}

/// A feature row as a sortable key: (feature, weight bits) pairs.
type FeatureRow = Vec<(u32, u32)>;

/// Unknowns (features × dim) up to which [`fit_map_implicit`] forms its normal equations
/// (a dense matrix of 8·n² bytes: 128 MiB at 4096).
pub const MAP_DENSE_MAX: usize = 4096;

/// Relative residual at which [`fit_map_cg`] stops, and its iteration cap.
const MAP_CG_TOL: f64 = 1e-6;
const MAP_CG_MAX_ITERS: usize = 500;

/// [`fit_map_implicit`]'s system solved by Jacobi-preconditioned conjugate gradients, applying
/// `M v = Σ_r f_r ⊗ A_r (vᵀ f_r) + λ v` row by row (O(nnz·d + rows·d²) per step, memory
/// O((features + rows)·d)), so that attribute files with thousands of values fit. Each product
/// is two parallel passes with one writer per output row: the result does not depend on the
/// thread count.
pub fn fit_map_cg(
    feats: &Csr,
    interactions: &Csr,
    other: &[f32],
    d: usize,
    c: FoldIn,
    lambda: f32,
) -> Vec<f32> {
    let n = feats.cols * d;
    let g = super::ials::gram(other, d);
    let w0 = c.unobserved_weight as f64;
    let conf = 1.0 + c.alpha as f64;
    let w0g: Vec<f64> = (0..d * d).map(|k| w0 * g[(k / d, k % d)] as f64).collect();
    let rows: Vec<usize> = (0..feats.rows.min(interactions.rows))
        .filter(|&r| !interactions.row(r).is_empty() && !feats.row(r).is_empty())
        .collect();
    let x_of = |o: u32| &other[o as usize * d..(o as usize + 1) * d];
    // Right-hand side Σ_r f_r ⊗ conf·Σ_o x_o, and the Jacobi diagonal.
    let mut rhs = vec![0f64; n];
    let mut diag = vec![lambda as f64; n];
    let mut b = vec![0f64; d];
    let mut a_diag = vec![0f64; d];
    for &r in &rows {
        b.fill(0.0);
        for p in 0..d {
            a_diag[p] = w0g[p * d + p];
        }
        for &o in interactions.row(r) {
            for (p, &xp) in x_of(o).iter().enumerate() {
                b[p] += conf * xp as f64;
                a_diag[p] += (conf - w0) * (xp as f64) * (xp as f64);
            }
        }
        for (&f, &w) in feats.row(r).iter().zip(feats.row_values(r)) {
            let (f, w) = (f as usize, w as f64);
            for p in 0..d {
                rhs[f * d + p] += w * b[p];
                diag[f * d + p] += w * w * a_diag[p];
            }
        }
    }
    // Two passes per product, each output row written by one task in a fixed order (so the
    // result does not depend on the thread count): u_r = A_r (Wᵀ f_r) for the fitted rows in
    // parallel, then out_f = λ v_f + Σ_r w_rf u_r for the features in parallel.
    let mut is_fit = vec![false; feats.rows];
    for &r in &rows {
        is_fit[r] = true;
    }
    let feats_t = feats.transpose();
    let mut u_rows = vec![0f64; feats.rows * d];
    let mut apply = |v: &[f64], out: &mut [f64]| {
        u_rows
            .par_chunks_mut(d)
            .enumerate()
            .filter(|(r, _)| is_fit[*r])
            .for_each_init(
                || vec![0f64; d],
                |t, (r, u)| {
                    t.fill(0.0);
                    for (&f, &w) in feats.row(r).iter().zip(feats.row_values(r)) {
                        for (tp, vp) in t.iter_mut().zip(&v[f as usize * d..(f as usize + 1) * d]) {
                            *tp += w as f64 * vp;
                        }
                    }
                    for (p, up) in u.iter_mut().enumerate() {
                        *up = (0..d).map(|q| w0g[p * d + q] * t[q]).sum();
                    }
                    for &o in interactions.row(r) {
                        let x = x_of(o);
                        let s = (conf - w0)
                            * x.iter()
                                .zip(t.iter())
                                .map(|(a, b)| *a as f64 * b)
                                .sum::<f64>();
                        for (up, xp) in u.iter_mut().zip(x) {
                            *up += s * *xp as f64;
                        }
                    }
                },
            );
        out.par_chunks_mut(d).enumerate().for_each(|(f, o)| {
            for (ov, vv) in o.iter_mut().zip(&v[f * d..(f + 1) * d]) {
                *ov = lambda as f64 * vv;
            }
            for (&r, &w) in feats_t.row(f).iter().zip(feats_t.row_values(f)) {
                if is_fit[r as usize] {
                    let u = &u_rows[r as usize * d..(r as usize + 1) * d];
                    for (ov, uv) in o.iter_mut().zip(u) {
                        *ov += w as f64 * uv;
                    }
                }
            }
        });
    };
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut x = vec![0f64; n];
    let mut res = rhs.clone();
    let mut z: Vec<f64> = res.iter().zip(&diag).map(|(r, m)| r / m).collect();
    let mut p = z.clone();
    let mut ap = vec![0f64; n];
    let mut rz = dot(&res, &z);
    let stop = MAP_CG_TOL * dot(&rhs, &rhs).sqrt();
    for _ in 0..MAP_CG_MAX_ITERS {
        if dot(&res, &res).sqrt() <= stop {
            break;
        }
        apply(&p, &mut ap);
        let alpha = rz / dot(&p, &ap);
        for k in 0..n {
            x[k] += alpha * p[k];
            res[k] -= alpha * ap[k];
        }
        for k in 0..n {
            z[k] = res[k] / diag[k];
        }
        let rz_new = dot(&res, &z);
        let beta = rz_new / rz;
        for k in 0..n {
            p[k] = z[k] + beta * p[k];
        }
        rz = rz_new;
    }
    x.iter().map(|&v| v as f32).collect()
}

/// `Σ w·map[f]` for resolved (feature, weight) pairs.
pub fn embed(pairs: &[(usize, f32)], map: &[f32], d: usize) -> Vec<f32> {
    let mut v = vec![0f32; d];
    for &(f, w) in pairs {
        for (o, x) in v.iter_mut().zip(&map[f * d..(f + 1) * d]) {
            *o += w * x;
        }
    }
    v
}

/// The fold-in objective's constants.
#[derive(Clone, Copy, Debug)]
pub struct FoldIn {
    /// Confidence of a liked item: c = 1 + alpha.
    pub alpha: f32,
    /// Weight of every other item.
    pub unobserved_weight: f32,
    /// Ridge strength toward the prior.
    pub reg: f32,
    /// Confidence of a disliked item (a known negative: preference 0), as iALS trains them.
    pub negative_confidence: f32,
}

impl Default for FoldIn {
    /// iALS's defaults (see `TrainConfig::defaults`).
    fn default() -> Self {
        FoldIn {
            alpha: 1.0,
            unobserved_weight: 0.7,
            reg: 0.02,
            negative_confidence: super::ials::NEGATIVE_CONFIDENCE,
        }
    }
}

/// The vector of a user who liked `liked` and disliked `disliked` (item rows of `items`,
/// `n × d`; the dislikes are known negatives, as iALS trains them), pulled toward `prior` (or
/// zero). Duplicate (also across both lists) or out-of-range items are refused.
pub fn fold_in(
    items: &[f32],
    d: usize,
    liked: &[u32],
    disliked: &[u32],
    prior: Option<&[f32]>,
    c: FoldIn,
) -> Result<Vec<f32>> {
    let n = items.len() / d.max(1);
    if liked.is_empty() && prior.is_none() {
        return Err(Error::invalid(
            "--liked",
            "name at least one liked item, or demographics (--age, --gender, --occupation)",
        ));
    }
    let mut sorted = [liked, disliked].concat();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::invalid(
            "--liked / --disliked",
            format!("item row {} is listed twice", w[0]),
        ));
    }
    if let Some(&i) = sorted.iter().find(|&&i| i as usize >= n) {
        return Err(Error::invalid(
            "--liked / --disliked",
            format!("item row {i} is beyond the {n} items"),
        ));
    }
    let g = super::ials::gram(items, d);
    let conf = 1.0 + c.alpha;
    // A regulariser that scales with the evidence, as iALS's frequency-scaled one (ν = 1).
    let lam = c.reg * (sorted.len() as f32 + c.unobserved_weight * n as f32);
    let mut a = Mat::<f64>::from_fn(d, d, |p, q| (c.unobserved_weight * g[(p, q)]) as f64);
    let mut b = Mat::<f64>::zeros(d, 1);
    let rows = (liked.iter().map(|&i| (i, conf, 1.0)))
        .chain(disliked.iter().map(|&i| (i, c.negative_confidence, 0.0)));
    for (i, ci, pref) in rows {
        let y = &items[i as usize * d..(i as usize + 1) * d];
        for p in 0..d {
            for q in 0..d {
                a[(p, q)] += ((ci - c.unobserved_weight) * y[p] * y[q]) as f64;
            }
            b[(p, 0)] += (ci * pref * y[p]) as f64;
        }
    }
    for p in 0..d {
        a[(p, p)] += lam as f64;
        if let Some(x0) = prior {
            b[(p, 0)] += (lam * x0[p]) as f64;
        }
    }
    let llt = a
        .llt(Side::Lower)
        .map_err(|_| Error::invalid("fold-in", "the system is not positive definite"))?;
    let x = llt.solve(b);
    Ok((0..d).map(|p| x[(p, 0)] as f32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// A user planted in a random item space is recovered from their top items alone: the
    /// folded-in vector points the planted way and ranks the planted top items first.
    #[test]
    fn fold_in_recovers_a_planted_user() {
        let (n, d) = (600, 8);
        let mut r = Rng::new(21);
        println!("seed 21");
        let items: Vec<f32> = (0..n * d).map(|_| r.normal() as f32).collect();
        let planted: Vec<f32> = (0..d).map(|_| r.normal() as f32).collect();
        let score = |x: &[f32], i: usize| -> f32 { (0..d).map(|c| x[c] * items[i * d + c]).sum() };
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| score(&planted, b).total_cmp(&score(&planted, a)));
        let liked: Vec<u32> = order[..30].iter().map(|&i| i as u32).collect();
        let x = fold_in(&items, d, &liked, &[], None, FoldIn::default()).unwrap();
        let cos = crate::simd::dot(&x, &planted)
            / (crate::simd::dot(&x, &x).sqrt() * crate::simd::dot(&planted, &planted).sqrt());
        assert!(cos > 0.9, "cosine {cos}");
        // Its own top 50 holds most of the planted top 50.
        let mut mine: Vec<usize> = (0..n).collect();
        mine.sort_by(|&a, &b| score(&x, b).total_cmp(&score(&x, a)));
        let hits = mine[..50]
            .iter()
            .filter(|i| order[..50].contains(i))
            .count();
        assert!(hits >= 35, "{hits}/50");
        // A prior alone gives the prior's direction back; bad lists are refused.
        let p = fold_in(&items, d, &[], &[], Some(&planted), FoldIn::default()).unwrap();
        assert!(crate::simd::dot(&p, &planted) > 0.0);
        assert!(fold_in(&items, d, &[], &[], None, FoldIn::default()).is_err());
        assert!(fold_in(&items, d, &[3, 3], &[], None, FoldIn::default()).is_err());
        assert!(fold_in(&items, d, &[n as u32], &[], None, FoldIn::default()).is_err());
        assert!(fold_in(&items, d, &[3], &[3], None, FoldIn::default()).is_err());
        // A dislike (known negative) of the best item not liked drops it far down the ranking
        // and leaves the direction of the rest.
        let best = *mine
            .iter()
            .find(|&&i| !liked.contains(&(i as u32)))
            .unwrap();
        let y = fold_in(&items, d, &liked, &[best as u32], None, FoldIn::default()).unwrap();
        let rank = |v: &[f32], i: usize| (0..n).filter(|&k| score(v, k) > score(v, i)).count();
        assert!(
            rank(&x, best) < 35 && rank(&y, best) > rank(&x, best) + 10,
            "rank {} before, {} after",
            rank(&x, best),
            rank(&y, best)
        );
        let cos = crate::simd::dot(&x, &y)
            / (crate::simd::dot(&x, &x).sqrt() * crate::simd::dot(&y, &y).sqrt());
        assert!(cos > 0.8, "cosine {cos}");
    }

    /// The matrix-free conjugate-gradient map solves the same system as the dense Cholesky one.
    #[test]
    fn cg_map_matches_the_dense_solve() {
        let mut r = Rng::new(12);
        let (rows, n_other, nf, d) = (120, 40, 9, 4);
        let other: Vec<f32> = (0..n_other * d).map(|_| r.normal() as f32 * 0.5).collect();
        let mut ft = Vec::new();
        let mut it = Vec::new();
        for row in 0..rows as u32 {
            for f in 0..nf as u32 {
                if r.below(3) == 0 {
                    ft.push((row, f, 0.5 + r.below(2) as f32));
                }
            }
            for o in 0..n_other as u32 {
                if r.below(6) == 0 {
                    it.push((row, o, 1.0));
                }
            }
        }
        let feats = Csr::from_triples(rows, nf, &ft);
        let inter = Csr::from_triples(rows, n_other, &it);
        let c = FoldIn::default();
        let dense = fit_map_implicit(&feats, &inter, &other, d, c, 1.0).unwrap();
        let cg = fit_map_cg(&feats, &inter, &other, d, c, 1.0);
        let scale = dense.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (k, (a, b)) in dense.iter().zip(&cg).enumerate() {
            assert!((a - b).abs() <= 1e-4 * scale, "{k}: {a} vs {b}");
        }
        // Both bit-identical whatever the thread count.
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let again = pool.install(|| fit_map_cg(&feats, &inter, &other, d, c, 1.0));
            assert_eq!(again, cg, "{threads} threads");
            let again = pool.install(|| fit_map_implicit(&feats, &inter, &other, d, c, 1.0));
            assert_eq!(again.unwrap(), dense, "{threads} threads");
        }
    }

    /// With a single feature shared by every row, the map is that row-independent vector
    /// which best explains the interactions: it must score the popular item side higher.
    #[test]
    fn feature_map_learns_what_the_interactions_say() {
        // Two "other" vectors: o0 along e0, o1 along e1. Rows (items) with the feature are liked
        // by o0 only, so the fitted vector must score o0 above o1.
        let other = vec![1.0, 0.0, 0.0, 1.0];
        let feats = Csr::from_triples(3, 1, &[(0, 0, 1.0), (1, 0, 1.0), (2, 0, 1.0)]);
        let inter = Csr::from_triples(3, 2, &[(0, 0, 1.0), (1, 0, 1.0), (2, 0, 1.0)]);
        let w = fit_map_implicit(&feats, &inter, &other, 2, FoldIn::default(), 0.1).unwrap();
        assert!(w[0] > 0.5 && w[1].abs() < 0.1, "{w:?}");
        // A row without interactions is not fitted on (cold rows must not teach the map).
        let inter = Csr::from_triples(3, 2, &[(0, 0, 1.0)]);
        let w1 = fit_map_implicit(&feats, &inter, &other, 2, FoldIn::default(), 0.1).unwrap();
        let single = Csr::from_triples(1, 1, &[(0, 0, 1.0)]);
        let inter1 = Csr::from_triples(1, 2, &[(0, 0, 1.0)]);
        let w2 = fit_map_implicit(&single, &inter1, &other, 2, FoldIn::default(), 0.1).unwrap();
        assert_eq!(w1, w2);
    }
}
