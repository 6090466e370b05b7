//! BPR-MF (Rendle et al. 2009): maximise ln σ(x_ui − x_uj) over sampled (user, positive,
//! negative) triples, with an item bias folded into the exported vectors
//! (`users[u] = [p_u, 1]`, `items[i] = [q_i, b_i]`).
//!
//! Negatives are drawn uniformly or in proportion to item popularity^0.75 (`--negatives pop`),
//! rejecting the user's own positives. SGD runs on one thread in a seeded order, so the model is
//! bit-identical for a seed whatever the thread count.

use crate::data::Csr;
use crate::error::Result;
use crate::rng::{AliasTable, Rng};

/// How negatives are drawn.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
pub enum Negatives {
    Uniform,
    Pop,
}

/// BPR hyperparameters.
#[derive(Clone, Debug)]
pub struct BprConfig {
    pub factors: usize,
    pub lr: f32,
    pub reg: f32,
    pub negatives: Negatives,
    pub init_std: f32,
}

/// The BPR state.
pub struct Bpr {
    pub cfg: BprConfig,
    pub p: Vec<f32>,
    pub q: Vec<f32>,
    pub b: Vec<f32>,
    by_user: Csr,
    pairs: Vec<(u32, u32)>,
    neg: Option<AliasTable>,
    rng: Rng,
}

#[inline]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl Bpr {
    /// Initialises from positives by user.
    pub fn new(cfg: BprConfig, by_user: Csr, seed: u64) -> Result<Self> {
        let d = cfg.factors;
        let mut rng = Rng::new(seed);
        let p = (0..by_user.rows * d)
            .map(|_| cfg.init_std * rng.normal() as f32)
            .collect();
        let q = (0..by_user.cols * d)
            .map(|_| cfg.init_std * rng.normal() as f32)
            .collect();
        let mut pairs = Vec::with_capacity(by_user.nnz());
        let mut deg = vec![0f64; by_user.cols];
        for u in 0..by_user.rows {
            for &i in by_user.row(u) {
                pairs.push((u as u32, i));
                deg[i as usize] += 1.0;
            }
        }
        let neg = (cfg.negatives == Negatives::Pop).then(|| {
            AliasTable::new(&deg.iter().map(|x| (x + 1.0).powf(0.75)).collect::<Vec<_>>())
        });
        Ok(Bpr {
            p,
            q,
            b: vec![0.0; by_user.cols],
            by_user,
            pairs,
            neg,
            rng: Rng::stream(seed, 9),
            cfg,
        })
    }

    /// One epoch of |positives| sampled triples; returns the mean BPR loss −ln σ(x_uij).
    pub fn epoch(&mut self) -> f64 {
        let mut triples = Vec::new();
        let n = self.sample_epoch(&mut triples);
        let mut loss = 0f64;
        for &(u, i, j) in &triples {
            loss += self.step(u as usize, i as usize, j as usize);
        }
        loss / n.max(1) as f64
    }

    /// Samples one epoch's triples into `out` and returns the number of draws (a draw whose
    /// user liked every tried negative yields no triple). Sampling never reads the parameters,
    /// so drawing an epoch up front and then stepping equals interleaving the two; the GPU
    /// trainer consumes the same triples.
    pub fn sample_epoch(&mut self, out: &mut Vec<(u32, u32, u32)>) -> usize {
        let n_items = self.by_user.cols;
        let n = self.pairs.len();
        out.clear();
        out.reserve(n);
        for _ in 0..n {
            let (u, i) = self.pairs[self.rng.below(n)];
            // A user who liked everything has no negative; skip after a few tries.
            for _ in 0..32 {
                let c = match &self.neg {
                    Some(t) => t.sample(&mut self.rng),
                    None => self.rng.below(n_items),
                };
                if !self.by_user.contains(u as usize, c as u32) {
                    out.push((u, i, c as u32));
                    break;
                }
            }
        }
        n
    }

    /// One SGD step on the triple (u, i, j); returns its loss before the step.
    pub fn step(&mut self, u: usize, i: usize, j: usize) -> f64 {
        debug_assert_ne!(i, j);
        let d = self.cfg.factors;
        let (lr, reg) = (self.cfg.lr, self.cfg.reg);
        let pu = &mut self.p[u * d..(u + 1) * d];
        // Two distinct item rows, borrowed mutably at once.
        let (qi, qj) = if i < j {
            let (lo, hi) = self.q.split_at_mut(j * d);
            (&mut lo[i * d..(i + 1) * d], &mut hi[..d])
        } else {
            let (lo, hi) = self.q.split_at_mut(i * d);
            (&mut hi[..d], &mut lo[j * d..(j + 1) * d])
        };
        let mut x = self.b[i] - self.b[j];
        for ((a, bi), bj) in pu.iter().zip(qi.iter()).zip(qj.iter()) {
            x += a * (bi - bj);
        }
        // One exponential gives both the loss ln(1 + e^−x) and the gradient weight σ(−x).
        let e = (-x).exp();
        let loss = e.ln_1p() as f64;
        let g = e / (1.0 + e);
        self.b[i] += lr * (g - reg * self.b[i]);
        self.b[j] += lr * (-g - reg * self.b[j]);
        for ((a, bi), bj) in pu.iter_mut().zip(qi.iter_mut()).zip(qj.iter_mut()) {
            let (av, biv, bjv) = (*a, *bi, *bj);
            *a += lr * (g * (biv - bjv) - reg * av);
            *bi += lr * (g * av - reg * biv);
            *bj += lr * (-g * av - reg * bjv);
        }
        loss
    }

    /// Folded serving vectors (users, items, dim).
    pub fn export(&self) -> (Vec<f32>, Vec<f32>, usize) {
        let d = self.cfg.factors;
        let d1 = d + 1;
        let (nu, ni) = (self.by_user.rows, self.by_user.cols);
        let mut users = vec![0f32; nu * d1];
        let mut items = vec![0f32; ni * d1];
        for u in 0..nu {
            users[u * d1..u * d1 + d].copy_from_slice(&self.p[u * d..(u + 1) * d]);
            users[u * d1 + d] = 1.0;
        }
        for i in 0..ni {
            items[i * d1..i * d1 + d].copy_from_slice(&self.q[i * d..(i + 1) * d]);
            items[i * d1 + d] = self.b[i];
        }
        (users, items, d1)
    }

    /// The loss −ln σ(x_uij) of one triple (for finite-difference tests).
    pub fn triple_loss(&self, u: usize, i: usize, j: usize) -> f64 {
        let d = self.cfg.factors;
        let mut x = self.b[i] - self.b[j];
        for f in 0..d {
            x += self.p[u * d + f] * (self.q[i * d + f] - self.q[j * d + f]);
        }
        -(sigmoid(x) as f64).ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(m: &Bpr) -> Bpr {
        Bpr {
            cfg: m.cfg.clone(),
            p: m.p.clone(),
            q: m.q.clone(),
            b: m.b.clone(),
            by_user: m.by_user.clone(),
            pairs: Vec::new(),
            neg: None,
            rng: Rng::new(0),
        }
    }

    /// One SGD step with reg = 0 moves every parameter by −lr × the finite-difference gradient.
    #[test]
    fn step_follows_finite_difference_gradient() {
        let by_user = Csr::from_triples(2, 3, &[(0, 0, 1.0), (1, 2, 1.0)]);
        let cfg = BprConfig {
            factors: 4,
            lr: 1e-3,
            reg: 0.0,
            negatives: Negatives::Uniform,
            init_std: 0.5,
        };
        let m = Bpr::new(cfg, by_user, 3).unwrap();
        let (u, i, j, d, h) = (0, 0, 1, 4, 1e-3f32);
        let mut stepped = copy(&m);
        stepped.step(u, i, j);
        // (parameter vector selector, index)
        let params: Vec<(u8, usize)> = (0..d)
            .flat_map(|f| [(0u8, u * d + f), (1, i * d + f), (1, j * d + f)])
            .chain([(2, i), (2, j)])
            .collect();
        for (which, idx) in params {
            let shifted = |delta: f32| {
                let mut x = copy(&m);
                match which {
                    0 => x.p[idx] += delta,
                    1 => x.q[idx] += delta,
                    _ => x.b[idx] += delta,
                }
                x.triple_loss(u, i, j)
            };
            let grad = (shifted(h) - shifted(-h)) / (2.0 * h as f64);
            let moved = match which {
                0 => stepped.p[idx] - m.p[idx],
                1 => stepped.q[idx] - m.q[idx],
                _ => stepped.b[idx] - m.b[idx],
            } as f64;
            assert!(
                (moved + 1e-3 * grad).abs() < 1e-6,
                "param {which}/{idx}: moved {moved}, expected {}",
                -1e-3 * grad
            );
        }
    }
}
