//! Weighted implicit ALS (Hu, Koren & Volinsky 2008), with the frequency-scaled regularisation
//! and global unobserved weight of Rendle et al., "Revisiting the Performance of iALS" (2021).
//!
//! For user u with observed items N(u), confidence `c = 1 + alpha·|r|`, preference `p = 1` for a
//! positive weight r and `p = 0` for a known negative (r < 0, a low rating: see
//! `Dataset::signed`), and unobserved weight `w0`:
//!
//! ```text
//! minimise  Σ_{i∈N(u)} c_ui (p_ui − x_u·y_i)² + w0 Σ_{i∉N(u)} (x_u·y_i)² + λ_u |x_u|²
//! solution  (w0·G + Σ_{i∈N(u)} (c_ui − w0) y_i y_iᵀ + λ_u I) x_u = Σ_{i∈N(u)} c_ui p_ui y_i
//! ```
//!
//! with the Gram matrix `G = YᵀY` computed once per half-step (the Gram trick) and
//! `λ_u = λ·(|N(u)| + w0·n_items)^ν`. `w0 = 1, ν = 0` is Hu et al.'s formulation. Each row's
//! system is solved by a faer Cholesky factorisation. Rows are independent, so the result is
//! bit-identical whatever the thread count.

use faer::linalg::solvers::Solve;
use faer::{Accum, Mat, MatRef, Par, Side};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::Csr;
use crate::error::{Error, Result};
use crate::rng::Rng;

/// iALS hyperparameters.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IalsConfig {
    pub factors: usize,
    pub reg: f32,
    /// Confidence slope: c = 1 + alpha·r.
    pub alpha: f32,
    /// Weight of every unobserved pair (w0).
    pub unobserved_weight: f32,
    /// Exponent ν of the frequency-scaled regularisation.
    pub reg_exponent: f32,
    /// Standard deviation of the initial factors (times 1/√factors).
    pub init_std: f32,
    /// Conjugate-gradient steps per row solve, warm-started from the previous solution (as in
    /// Takács et al. 2011); 0 solves exactly by Cholesky.
    pub cg_steps: usize,
    /// Confidence of a known negative (a negative weight: preference 0). Known negatives enter
    /// the user solves only: see [`Ials::new`].
    pub negative_confidence: f32,
}

impl Default for IalsConfig {
    fn default() -> Self {
        IalsConfig {
            factors: 64,
            reg: 0.005,
            alpha: 1.0,
            unobserved_weight: 0.1,
            reg_exponent: 1.0,
            init_std: 0.1,
            cg_steps: 3,
            negative_confidence: NEGATIVE_CONFIDENCE,
        }
    }
}

/// The default confidence of a known negative (`--negative-confidence`): mean NDCG@10 on three
/// validation splits of the P2 training data .2244 at 5, .2234 at 3, .2230 at 2, .2173 at 9.
pub const NEGATIVE_CONFIDENCE: f32 = 5.0;

/// The iALS state: user and item factors.
pub struct Ials {
    pub cfg: IalsConfig,
    pub users: Vec<f32>,
    pub items: Vec<f32>,
    by_user: Csr,
    by_item: Csr,
}

/// Rows per block of [`gram`]: each block's YᵀY is one faer product, summed in block order.
pub const GRAM_BLOCK: usize = 4096;

/// Gram matrix YᵀY of an `n × d` row-major matrix. Computed as a sum of blocked products over
/// row blocks (rayon), summed in a fixed order, so the result does not depend on the thread
/// count; one product over a million rows was ~10× slower in faer than blocks of 4096.
pub fn gram(y: &[f32], d: usize) -> Mat<f32> {
    let n = y.len().checked_div(d).unwrap_or(0);
    let partial = |rows: &[f32]| {
        let ym = MatRef::from_row_major_slice(rows, rows.len() / d, d);
        let mut g = Mat::<f32>::zeros(d, d);
        faer::linalg::matmul::matmul(
            g.as_mut(),
            Accum::Replace,
            ym.transpose(),
            ym,
            1.0f32,
            Par::Seq,
        );
        g
    };
    if n <= GRAM_BLOCK {
        return partial(&y[..n * d]);
    }
    let parts: Vec<Mat<f32>> = y[..n * d].par_chunks(GRAM_BLOCK * d).map(partial).collect();
    let mut g = Mat::<f32>::zeros(d, d);
    for p in &parts {
        g += p;
    }
    g
}

impl Ials {
    /// Initialises factors for the interactions `by_user` (values are ratings or weights; a
    /// negative value is a known negative).
    ///
    /// Known negatives are one-sided: they enter each user's solve (the user saw the movie and
    /// did not like it, so the user's vector should score it low) but not the item solves,
    /// which see positives only. An item fitted to every low rating would drift toward zero for
    /// all who watched it, popular and divisive movies most; on three validation splits of
    /// the P2 training data the one-sided negatives scored NDCG@10 .2244 against .2220 for
    /// two-sided ones and .2186 without (confidence 5).
    pub fn new(cfg: IalsConfig, by_user: Csr, seed: u64) -> Result<Self> {
        if cfg.factors == 0 {
            return Err(Error::invalid("--dim", "must be at least 1"));
        }
        let d = cfg.factors;
        let by_item = by_user.transpose_where(|v| v > 0.0);
        let std = cfg.init_std / (d as f32).sqrt();
        let init = |n: usize, stream: u64| -> Vec<f32> {
            let mut r = Rng::stream(seed, stream);
            (0..n * d).map(|_| std * r.normal() as f32).collect()
        };
        Ok(Ials {
            users: init(by_user.rows, 1),
            items: init(by_user.cols, 2),
            cfg,
            by_user,
            by_item,
        })
    }

    /// One epoch: solve all users, then all items.
    pub fn epoch(&mut self) {
        let n_items = self.by_user.cols;
        let n_users = self.by_user.rows;
        solve_side(
            &self.cfg,
            &self.items,
            &self.by_user,
            n_items,
            &mut self.users,
        );
        solve_side(
            &self.cfg,
            &self.users,
            &self.by_item,
            n_users,
            &mut self.items,
        );
    }

    /// The training loss (weighted squared error plus regularisation), via the Gram trick.
    pub fn loss(&self) -> f64 {
        loss(&self.cfg, &self.users, &self.items, &self.by_user)
    }

    /// The interactions by user.
    pub fn by_user(&self) -> &Csr {
        &self.by_user
    }

    /// The positives by item (the item solves' data).
    pub fn by_item(&self) -> &Csr {
        &self.by_item
    }
}

/// The iALS training loss of `users` and `items` on `by_user` (also used by the GPU trainer).
/// With known negatives it is the user step's objective (the item step leaves them out), so
/// the alternation need not lower it every epoch; it serves the divergence check and the bar.
pub fn loss(cfg: &IalsConfig, users: &[f32], items: &[f32], by_user: &Csr) -> f64 {
    let d = cfg.factors;
    let w0 = cfg.unobserved_weight as f64;
    let g = gram(items, d);
    let gr: Vec<f32> = (0..d * d).map(|k| g[(k / d, k % d)]).collect();
    let n_items = by_user.cols;
    (0..by_user.rows)
        .into_par_iter()
        .map(|u| {
            let x = &users[u * d..(u + 1) * d];
            // xᵀ G x, with G row-major.
            let all: f64 = (0..d)
                .map(|a| x[a] as f64 * crate::simd::dot(&gr[a * d..(a + 1) * d], x) as f64)
                .sum();
            let mut l = w0 * all;
            for (&i, &r) in by_user.row(u).iter().zip(by_user.row_values(u)) {
                let y = &items[i as usize * d..(i as usize + 1) * d];
                let s: f64 = x.iter().zip(y).map(|(a, b)| (a * b) as f64).sum();
                let c = confidence(cfg, r) as f64;
                let p = preference(r) as f64;
                l += c * (p - s) * (p - s) - w0 * s * s;
            }
            let lam = reg_for(cfg, by_user.degree(u), n_items) as f64;
            l + lam * x.iter().map(|v| (v * v) as f64).sum::<f64>()
        })
        .sum()
}

/// The confidences of the iALS objective, shared with LightGCN's pointwise loss.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Weights {
    /// Confidence slope: c = 1 + alpha·v for a positive of weight v.
    pub alpha: f32,
    /// Weight of every unobserved pair (w0).
    pub unobserved: f32,
    /// Confidence of a known negative.
    pub negative: f32,
}

impl Weights {
    /// The confidence of an observed entry of weight `v`: `1 + alpha·v` for a positive, the
    /// negative confidence for a known negative (v ≤ 0).
    #[inline]
    pub fn confidence(&self, v: f32) -> f32 {
        if v > 0.0 {
            1.0 + self.alpha * v
        } else {
            self.negative
        }
    }
}

impl IalsConfig {
    /// The objective's confidences.
    pub fn weights(&self) -> Weights {
        Weights {
            alpha: self.alpha,
            unobserved: self.unobserved_weight,
            negative: self.negative_confidence,
        }
    }
}

/// The confidence of an observed entry of weight `v` ([`Weights::confidence`]).
#[inline]
pub fn confidence(cfg: &IalsConfig, v: f32) -> f32 {
    cfg.weights().confidence(v)
}

/// The preference of an observed entry: 1 for a positive weight, 0 for a known negative.
#[inline]
pub fn preference(v: f32) -> f32 {
    if v > 0.0 {
        1.0
    } else {
        0.0
    }
}

/// λ_r = reg·(|N(r)| + w0·n_other)^ν.
pub fn reg_for(cfg: &IalsConfig, degree: usize, n_other: usize) -> f32 {
    let base = degree as f32 + cfg.unobserved_weight * n_other as f32;
    cfg.reg * base.powf(cfg.reg_exponent)
}

/// Solves every row of `rows` against the fixed factors `fixed`, writing into `out`.
fn solve_side(cfg: &IalsConfig, fixed: &[f32], rows: &Csr, n_other: usize, out: &mut [f32]) {
    let d = cfg.factors;
    let w0 = cfg.unobserved_weight;
    let g = gram(fixed, d);
    // w0·G, row-major, the starting point of every row's system.
    let base: Vec<f32> = (0..d * d).map(|k| w0 * g[(k / d, k % d)]).collect();
    if cfg.cg_steps > 0 {
        return solve_side_cg(cfg, &base, fixed, rows, n_other, out);
    }
    out.par_chunks_mut(d).enumerate().for_each_init(
        || (vec![0f32; d * d], vec![0f32; d]),
        |(a, b), (r, x)| {
            let idx = rows.row(r);
            let vals = rows.row_values(r);
            a.copy_from_slice(&base);
            b.fill(0.0);
            // Lower triangle of Σ (c − w0) y yᵀ, a row prefix at a time.
            for (&i, &v) in idx.iter().zip(vals) {
                let y = &fixed[i as usize * d..(i as usize + 1) * d];
                let c = confidence(cfg, v);
                for p in 0..d {
                    crate::simd::axpy((c - w0) * y[p], &y[..=p], &mut a[p * d..=p * d + p]);
                }
                crate::simd::axpy(c * preference(v), y, b);
            }
            let lam = reg_for(cfg, idx.len(), n_other);
            for p in 0..d {
                a[p * d + p] += lam;
            }
            // faer reads the lower triangle only.
            let am = MatRef::from_row_major_slice(a, d, d);
            // Factorisation fails only with reg = 0 and a rank-deficient system: keep the
            // old row.
            if let Ok(llt) = am.llt(Side::Lower) {
                let mut rhs = Mat::<f32>::from_fn(d, 1, |p, _| b[p]);
                llt.solve_in_place(rhs.as_mut());
                for (p, xv) in x.iter_mut().enumerate() {
                    *xv = rhs[(p, 0)];
                }
            }
        },
    );
}

/// Conjugate-gradient row solves: `A x = b` with `A = w0·G + Σ (c − w0) y yᵀ + λI` applied as
/// `A p = w0·G p + Σ (c − w0) y (y·p) + λ p`, never formed, so a step costs O(d² + |N|·d)
/// instead of the O(|N|·d² + d³) of forming and factorising A. Warm-started from the row's
/// previous value; rows are independent, so the result does not depend on the thread count.
/// `w0g` is `w0·G`, row-major. The CPU twin of the `ials_cg_f32` kernel.
pub fn solve_side_cg(
    cfg: &IalsConfig,
    w0g: &[f32],
    fixed: &[f32],
    rows: &Csr,
    n_other: usize,
    out: &mut [f32],
) {
    let d = cfg.factors;
    let w0 = cfg.unobserved_weight;
    out.par_chunks_mut(d).enumerate().for_each_init(
        || (vec![0f32; d], vec![0f32; d], vec![0f32; d]),
        |(res, p, ap), (r, x)| {
            let idx = rows.row(r);
            let vals = rows.row_values(r);
            let lam = reg_for(cfg, idx.len(), n_other);
            let apply = |v: &[f32], outv: &mut [f32]| {
                for (k, o) in outv.iter_mut().enumerate() {
                    *o = crate::simd::dot(&w0g[k * d..(k + 1) * d], v) + lam * v[k];
                }
                for (k, (&i, &c0)) in idx.iter().zip(vals).enumerate() {
                    crate::simd::prefetch_gather(idx, k, fixed, d);
                    let y = &fixed[i as usize * d..(i as usize + 1) * d];
                    let c = confidence(cfg, c0);
                    let s = (c - w0) * crate::simd::dot(y, v);
                    crate::simd::axpy(s, y, outv);
                }
            };
            // res = b − A x
            apply(x, ap);
            res.fill(0.0);
            for (&i, &c0) in idx.iter().zip(vals) {
                if c0 <= 0.0 {
                    continue; // a known negative: preference 0, nothing on the right-hand side
                }
                let y = &fixed[i as usize * d..(i as usize + 1) * d];
                crate::simd::axpy(confidence(cfg, c0), y, res);
            }
            for (rv, a) in res.iter_mut().zip(ap.iter()) {
                *rv -= a;
            }
            p.copy_from_slice(res);
            let mut rs = crate::simd::dot(res, res);
            for _ in 0..cfg.cg_steps {
                if rs <= 1e-20 {
                    break;
                }
                apply(p, ap);
                let alpha = rs / crate::simd::dot(p, ap);
                for k in 0..d {
                    x[k] += alpha * p[k];
                    res[k] -= alpha * ap[k];
                }
                let rs_new = crate::simd::dot(res, res);
                let beta = rs_new / rs;
                for k in 0..d {
                    p[k] = res[k] + beta * p[k];
                }
                rs = rs_new;
            }
        },
    );
}

/// [`super::Trainer`] adapter.
pub struct IalsTrainer(Ials);

/// The iALS hyperparameters of a training configuration.
pub fn config(cfg: &super::TrainConfig) -> IalsConfig {
    IalsConfig {
        factors: cfg.dim,
        reg: cfg.reg,
        alpha: cfg.alpha,
        unobserved_weight: cfg.unobserved_weight,
        reg_exponent: cfg.reg_exponent,
        init_std: 0.1,
        cg_steps: cfg.cg_steps,
        negative_confidence: cfg.negative_confidence,
    }
}

impl IalsTrainer {
    /// A trainer for `cfg` on `by_user`.
    pub fn new(cfg: &super::TrainConfig, by_user: Csr) -> Result<Self> {
        Ok(IalsTrainer(Ials::new(config(cfg), by_user, cfg.seed)?))
    }
}

impl super::Trainer for IalsTrainer {
    fn epoch(&mut self) -> Result<f64> {
        self.0.epoch();
        Ok(self.0.loss())
    }

    fn export(&self) -> Result<super::Trained> {
        Ok(super::Trained::plain(
            super::ModelKind::Ials,
            self.0.users.clone(),
            self.0.items.clone(),
            self.0.cfg.factors,
            false,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The blocked Gram matrix (several blocks and a partial last one) matches a plain f64 sum.
    #[test]
    fn blocked_gram_matches_the_plain_sum() {
        let (n, d) = (2 * GRAM_BLOCK + 123, 5);
        let mut r = Rng::new(9);
        let y: Vec<f32> = (0..n * d).map(|_| r.normal() as f32).collect();
        let g = gram(&y, d);
        for p in 0..d {
            for q in 0..d {
                let want: f64 = (0..n)
                    .map(|k| y[k * d + p] as f64 * y[k * d + q] as f64)
                    .sum();
                let got = g[(p, q)] as f64;
                assert!(
                    (got - want).abs() <= 1e-4 * want.abs().max(n as f64),
                    "{p},{q}: {got} vs {want}"
                );
            }
        }
    }

    /// The closed-form row solve minimises the row's loss: perturbing it never helps.
    #[test]
    fn row_solution_is_a_minimum() {
        let cfg = IalsConfig {
            factors: 4,
            reg: 0.1,
            alpha: 2.0,
            unobserved_weight: 0.5,
            reg_exponent: 0.0,
            init_std: 1.0,
            cg_steps: 0,
            negative_confidence: 3.0,
        };
        let triples = [
            (0, 1, 1.0),
            (0, 3, 2.0),
            (1, 0, 1.0),
            (1, 2, 1.0),
            (2, 4, 1.0),
        ];
        let m = Csr::from_triples(3, 5, &triples);
        let mut model = Ials::new(cfg, m, 3).unwrap();
        let before = model.loss();
        model.epoch();
        let after = model.loss();
        assert!(after < before, "{after} < {before}");
        // Solve users only; then any perturbation of a user row raises the loss.
        let n_items = model.by_user.cols;
        let items = model.items.clone();
        let by_user = model.by_user.clone();
        solve_side(&model.cfg, &items, &by_user, n_items, &mut model.users);
        let base = model.loss();
        for k in 0..model.users.len() {
            for eps in [1e-2f32, -1e-2] {
                model.users[k] += eps;
                assert!(model.loss() >= base - 1e-9, "coordinate {k}");
                model.users[k] -= eps;
            }
        }
    }

    /// Known negatives are one-sided: the item solves never see them, and a user's known
    /// negative falls from that user's top among the unrated items of the user's taste group.
    #[test]
    fn known_negatives_lower_the_item_for_its_user_only() {
        // Two taste groups of 12 users and 12 items; each user likes 8 of the group's items.
        let mut r = Rng::new(11);
        let mut triples = Vec::new();
        for u in 0..24u32 {
            let g = u / 12;
            let mut own: Vec<u32> = (0..12).map(|k| g * 12 + k).collect();
            r.shuffle(&mut own);
            for &i in &own[..8] {
                triples.push((u, i, 1.0));
            }
        }
        let cfg = IalsConfig {
            factors: 6,
            reg: 0.01,
            negative_confidence: 5.0,
            ..IalsConfig::default()
        };
        let fit = |t: &[(u32, u32, f32)]| {
            let mut m = Ials::new(cfg.clone(), Csr::from_triples(24, 24, t), 5).unwrap();
            for _ in 0..10 {
                m.epoch();
            }
            m
        };
        let plain = fit(&triples);
        let score = |m: &Ials, u: usize, i: usize| -> f32 {
            let d = m.cfg.factors;
            (0..d)
                .map(|k| m.users[u * d + k] * m.items[i * d + k])
                .sum()
        };
        // User 0's best unrated in-group item becomes a known negative.
        let liked = plain.by_user.row(0).to_vec();
        let target = (0..12u32)
            .filter(|i| !liked.contains(i))
            .max_by(|&a, &b| score(&plain, 0, a as usize).total_cmp(&score(&plain, 0, b as usize)))
            .unwrap();
        let mut with_neg = triples.clone();
        with_neg.push((0, target, -1.0));
        let neg = fit(&with_neg);
        assert!(
            neg.by_item.values.iter().all(|&v| v > 0.0),
            "the item solves see positives only"
        );
        assert_eq!(neg.by_user.nnz(), plain.by_user.nnz() + 1);
        let others: Vec<u32> = (0..12u32)
            .filter(|&i| i != target && !liked.contains(&i))
            .collect();
        let (s_plain, s_neg) = (
            score(&plain, 0, target as usize),
            score(&neg, 0, target as usize),
        );
        let others: Vec<f32> = others.iter().map(|&i| score(&neg, 0, i as usize)).collect();
        assert!(
            others.iter().any(|&o| o > s_neg) && s_neg < 0.5 * s_plain,
            "the known negative was user 0's best unrated in-group item ({s_plain}); now {s_neg}, others {others:?}"
        );
        // Its other group members still score it as before (mean over users 1..12).
        let mean = |m: &Ials| (1..12).map(|u| score(m, u, target as usize)).sum::<f32>() / 11.0;
        let (before, after) = (mean(&plain), mean(&neg));
        assert!(
            (after - before).abs() < 0.1 * before.abs(),
            "{after} vs {before}"
        );
    }
}
