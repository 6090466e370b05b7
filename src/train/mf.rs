//! Explicit biased matrix factorisation, r̂ = μ + b_u + b_i + p_u·q_i, trained by SGD on squared
//! error with L2 (Funk / Koren style).
//!
//! Exported with the biases folded: `users[u] = [p_u, 1]`, `items[i] = [q_i, b_i]`, so that
//! `users[u]·items[i] = r̂ − μ − b_u` (the user terms do not change a user's ranking) and
//! `user_bias.npy` plus μ in `model.bin` give r̂ back for evaluation.
//!
//! SGD visits the ratings in a seeded random order on one thread, so the model is bit-identical
//! for a seed whatever the thread count (parallel Hogwild SGD would not be).

use super::side::{Side, Sides};
use crate::data::Csr;
use crate::error::Result;
use crate::rng::Rng;

/// MF hyperparameters.
#[derive(Clone, Debug)]
pub struct MfConfig {
    pub factors: usize,
    pub lr: f32,
    pub reg: f32,
    /// Regularisation of the biases.
    pub reg_bias: f32,
    pub init_std: f32,
}

/// The MF state.
pub struct Mf {
    pub cfg: MfConfig,
    pub mu: f32,
    pub bu: Vec<f32>,
    pub bi: Vec<f32>,
    pub p: Vec<f32>,
    pub q: Vec<f32>,
    triples: Vec<(u32, u32, f32)>,
    rng: Rng,
    n_users: usize,
    n_items: usize,
    user_seen: Vec<bool>,
    item_seen: Vec<bool>,
    /// Side features (LightFM style): user features of width d, item features of width d + 1
    /// (the last column adds to the item bias).
    pub user_side: Option<Side>,
    pub item_side: Option<Side>,
    scratch: Vec<f32>,
}

impl Mf {
    /// Initialises from ratings by user.
    pub fn new(cfg: MfConfig, by_user: &Csr, seed: u64) -> Result<Self> {
        let d = cfg.factors;
        let mut triples = Vec::with_capacity(by_user.nnz());
        let mut user_seen = vec![false; by_user.rows];
        let mut item_seen = vec![false; by_user.cols];
        for (u, seen) in user_seen.iter_mut().enumerate() {
            for (&i, &r) in by_user.row(u).iter().zip(by_user.row_values(u)) {
                triples.push((u as u32, i, r));
                *seen = true;
                item_seen[i as usize] = true;
            }
        }
        let mu = triples.iter().map(|t| t.2 as f64).sum::<f64>() / triples.len().max(1) as f64;
        let mut rng = Rng::new(seed);
        let mut init = |n: usize| -> Vec<f32> {
            (0..n * d)
                .map(|_| cfg.init_std * rng.normal() as f32)
                .collect()
        };
        let p = init(by_user.rows);
        let q = init(by_user.cols);
        Ok(Mf {
            mu: mu as f32,
            bu: vec![0.0; by_user.rows],
            bi: vec![0.0; by_user.cols],
            p,
            q,
            triples,
            rng: Rng::stream(seed, 7),
            n_users: by_user.rows,
            n_items: by_user.cols,
            user_seen,
            item_seen,
            user_side: None,
            item_side: None,
            scratch: Vec::new(),
            cfg,
        })
    }

    /// Adds side features (their embeddings drawn from their own seeded stream).
    pub fn with_sides(mut self, sides: Sides, seed: u64) -> Self {
        (self.user_side, self.item_side) =
            sides.embeddings(self.cfg.factors, self.cfg.init_std, seed);
        self
    }

    /// The effective user vector (d) and item vector `[q + Σ z, b_i + Σ c]` (d + 1) into `out`.
    fn effective(&self, u: usize, i: usize, out: &mut [f32]) {
        let d = self.cfg.factors;
        let (pu, qi) = out.split_at_mut(d);
        pu.copy_from_slice(&self.p[u * d..(u + 1) * d]);
        qi[..d].copy_from_slice(&self.q[i * d..(i + 1) * d]);
        qi[d] = self.bi[i];
        if let Some(s) = &self.user_side {
            s.add(u, pu);
        }
        if let Some(s) = &self.item_side {
            s.add(i, qi);
        }
    }

    /// One SGD step with side features; returns the squared error before the step.
    fn step_sides(&mut self, u: usize, i: usize, r: f32) -> f64 {
        let d = self.cfg.factors;
        let (lr, reg, rb) = (self.cfg.lr, self.cfg.reg, self.cfg.reg_bias);
        let mut buf = std::mem::take(&mut self.scratch);
        buf.resize(4 * d + 2, 0.0);
        let (eff, grads) = buf.split_at_mut(2 * d + 1);
        self.effective(u, i, eff);
        let (pu, qi) = eff.split_at(d);
        let dot: f32 = pu.iter().zip(&qi[..d]).map(|(a, b)| a * b).sum();
        let e = r - (self.mu + self.bu[u] + qi[d] + dot);
        let (gu, gi) = grads.split_at_mut(d);
        for f in 0..d {
            gu[f] = e * qi[f];
            gi[f] = e * pu[f];
        }
        gi[d] = e;
        self.bu[u] += lr * (e - rb * self.bu[u]);
        self.bi[i] += lr * (e - rb * self.bi[i]);
        for f in 0..d {
            let (a, b) = (self.p[u * d + f], self.q[i * d + f]);
            self.p[u * d + f] += lr * (gu[f] - reg * a);
            self.q[i * d + f] += lr * (gi[f] - reg * b);
        }
        if let Some(s) = &mut self.user_side {
            s.sgd(u, gu, lr, reg);
        }
        if let Some(s) = &mut self.item_side {
            s.sgd(i, gi, lr, reg);
        }
        self.scratch = buf;
        (e * e) as f64
    }

    /// Predicted rating (unclipped).
    pub fn predict(&self, u: usize, i: usize) -> f32 {
        let d = self.cfg.factors;
        if self.user_side.is_some() || self.item_side.is_some() {
            let mut eff = vec![0f32; 2 * d + 1];
            self.effective(u, i, &mut eff);
            let dot: f32 = eff[..d]
                .iter()
                .zip(&eff[d..2 * d])
                .map(|(a, b)| a * b)
                .sum();
            return self.mu + self.bu[u] + eff[2 * d] + dot;
        }
        let dot: f32 = self.p[u * d..(u + 1) * d]
            .iter()
            .zip(&self.q[i * d..(i + 1) * d])
            .map(|(a, b)| a * b)
            .sum();
        self.mu + self.bu[u] + self.bi[i] + dot
    }

    /// One SGD epoch; returns the mean squared error seen during the epoch.
    pub fn epoch(&mut self) -> f64 {
        self.shuffle_epoch();
        let mut se = 0f64;
        for k in 0..self.triples.len() {
            let (u, i, r) = self.triples[k];
            se += self.step(u as usize, i as usize, r);
        }
        se / self.triples.len().max(1) as f64
    }

    /// Draws the next epoch's visiting order and returns it (the GPU trainer consumes the same
    /// order as the CPU one).
    pub fn shuffle_epoch(&mut self) -> &[(u32, u32, f32)] {
        self.rng.shuffle(&mut self.triples);
        &self.triples
    }

    /// One SGD step on ½(r − r̂)² + L2; returns the squared error before the step.
    pub fn step(&mut self, u: usize, i: usize, r: f32) -> f64 {
        if self.user_side.is_some() || self.item_side.is_some() {
            return self.step_sides(u, i, r);
        }
        let d = self.cfg.factors;
        let (lr, reg, rb) = (self.cfg.lr, self.cfg.reg, self.cfg.reg_bias);
        let e = r - self.predict(u, i);
        self.bu[u] += lr * (e - rb * self.bu[u]);
        self.bi[i] += lr * (e - rb * self.bi[i]);
        let (pu, qi) = (
            &mut self.p[u * d..(u + 1) * d],
            &mut self.q[i * d..(i + 1) * d],
        );
        for f in 0..d {
            let (a, b) = (pu[f], qi[f]);
            pu[f] += lr * (e * b - reg * a);
            qi[f] += lr * (e * a - reg * b);
        }
        (e * e) as f64
    }

    /// Folded serving vectors (users, items, dim) and user biases. Users or items without
    /// training ratings get zero factors and bias, so their prediction falls back to the
    /// baseline (μ + b_i for a new user, μ + b_u for a new item).
    pub fn export(&self) -> (Vec<f32>, Vec<f32>, usize, Vec<f32>) {
        let d = self.cfg.factors;
        let d1 = d + 1;
        let mut users = vec![0f32; self.n_users * d1];
        let mut items = vec![0f32; self.n_items * d1];
        let mut bu = vec![0f32; self.n_users];
        // Rows without training ratings keep only what their side features give (zero without
        // them): their id embeddings never trained.
        for u in 0..self.n_users {
            let row = &mut users[u * d1..(u + 1) * d1];
            row[d] = 1.0;
            if self.user_seen[u] {
                row[..d].copy_from_slice(&self.p[u * d..(u + 1) * d]);
                bu[u] = self.bu[u];
            }
            if let Some(s) = &self.user_side {
                s.add(u, &mut row[..d]);
            }
        }
        for i in 0..self.n_items {
            let row = &mut items[i * d1..(i + 1) * d1];
            if self.item_seen[i] {
                row[..d].copy_from_slice(&self.q[i * d..(i + 1) * d]);
                row[d] = self.bi[i];
            }
            if let Some(s) = &self.item_side {
                s.add(i, row);
            }
        }
        (users, items, d1, bu)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With reg = 0, one step moves each parameter by −lr × the finite-difference gradient of
    /// ½(r − r̂)².
    #[test]
    fn step_follows_finite_difference_gradient() {
        let by_user = Csr::from_triples(2, 2, &[(0, 0, 4.0), (1, 1, 2.0)]);
        let cfg = MfConfig {
            factors: 3,
            lr: 1e-3,
            reg: 0.0,
            reg_bias: 0.0,
            init_std: 0.5,
        };
        let m = Mf::new(cfg.clone(), &by_user, 1).unwrap();
        let loss = |x: &Mf| 0.5 * (4.0 - x.predict(0, 1) as f64).powi(2);
        let copy = || Mf::new(cfg.clone(), &by_user, 1).unwrap();
        let mut stepped = copy();
        stepped.step(0, 1, 4.0);
        let h = 1e-2f32;
        for k in 0..3 {
            for which in 0..2 {
                let (mut a, mut b) = (copy(), copy());
                if which == 0 {
                    a.p[k] += h;
                    b.p[k] -= h;
                } else {
                    a.q[3 + k] += h;
                    b.q[3 + k] -= h;
                }
                let grad = (loss(&a) - loss(&b)) / (2.0 * h as f64);
                let moved = if which == 0 {
                    stepped.p[k] - m.p[k]
                } else {
                    stepped.q[3 + k] - m.q[3 + k]
                } as f64;
                assert!(
                    (moved + 1e-3 * grad).abs() < 1e-6,
                    "param {which}/{k}: moved {moved}, grad {grad}"
                );
            }
        }
        let grad_bu = -(4.0 - m.predict(0, 1) as f64);
        assert!(((stepped.bu[0] - m.bu[0]) as f64 + 1e-3 * grad_bu).abs() < 1e-6);
    }
}
