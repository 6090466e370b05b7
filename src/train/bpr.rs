//! BPR-MF (Rendle et al. 2009): maximise ln σ(x_ui − x_uj) over sampled (user, positive,
//! negative) triples, with an item bias folded into the exported vectors
//! (`users[u] = [p_u, 1]`, `items[i] = [q_i, b_i]`).
//!
//! Negatives are drawn uniformly or in proportion to item popularity^0.75 (`--negatives pop`),
//! rejecting the user's own positives. They can also be rank-aware (`--hard-negatives N`,
//! dynamic negative sampling): N candidates are drawn with the triple, and at its step the one
//! the current model scores highest for the user is trained on. SGD runs on one thread in a
//! seeded order, so the model is bit-identical for a seed whatever the thread count.

use super::side::{Side, Sides};
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
    /// Candidates drawn per negative; the step uses the one the model scores highest (1: the
    /// drawn negative itself).
    pub hard_negatives: usize,
    pub init_std: f32,
}

/// The BPR state.
pub struct Bpr {
    pub cfg: BprConfig,
    pub p: Vec<f32>,
    pub q: Vec<f32>,
    pub b: Vec<f32>,
    n_users: usize,
    n_items: usize,
    sampler: Sampler,
    /// Side features (LightFM style): user features of width d, item features of width d + 1
    /// (the last column adds to the item bias).
    pub user_side: Option<Side>,
    pub item_side: Option<Side>,
    scratch: Vec<f32>,
}

/// Draws (user, positive, negative) triples. Kept apart from the parameters so that the next
/// chunk can be drawn while the current one is being stepped through.
#[derive(Default)]
struct Sampler {
    by_user: Csr,
    pairs: Vec<(u32, u32)>,
    neg: Option<AliasTable>,
    rng: Option<Rng>,
    /// Candidates per negative (see [`BprConfig::hard_negatives`]).
    hard: usize,
}

impl Sampler {
    /// Appends the triples of `count` draws to `out` (a draw whose user liked every tried
    /// negative yields none), and with rank-aware negatives each triple's `hard` candidates to
    /// `cands`, the first being the triple's negative.
    fn draw(&mut self, count: usize, out: &mut Vec<(u32, u32, u32)>, cands: &mut Vec<u32>) {
        let n = self.pairs.len();
        let Some(mut rng) = self.rng.take() else {
            return;
        };
        for _ in 0..count {
            let (u, i) = self.pairs[rng.below(n)];
            // A user who liked everything has no negative; skip after a few tries.
            let Some(j) = self.negative(u, &mut rng) else {
                continue;
            };
            out.push((u, i, j));
            super::push_candidates(cands, j, self.hard, || self.negative(u, &mut rng));
        }
        self.rng = Some(rng);
    }

    /// An item `u` has not interacted with, from the negative distribution (none after 32
    /// tries).
    fn negative(&self, u: u32, rng: &mut Rng) -> Option<u32> {
        let n_items = self.by_user.cols;
        super::draw_negative(&self.by_user, u, rng, |r| match &self.neg {
            Some(t) => t.sample(r) as u32,
            None => r.below(n_items) as u32,
        })
    }
}

/// Triples per chunk of an epoch: one chunk is stepped through while the next is drawn.
const CHUNK: usize = 16384;

/// ln(1 + e) for e ≥ 0, to about 1e-6 relative error, several times faster than `ln_1p`
/// (which was a fifth of a BPR step): only the reported training loss uses it. Infinity and NaN
/// pass through, so divergence is still caught.
#[inline]
pub fn fast_ln1p(e: f32) -> f32 {
    let y = 1.0 + e;
    if !y.is_finite() {
        return y;
    }
    // ln m = 2·atanh(t) with t = (m − 1)/(m + 1), summed to t⁹ (|t| ≤ 0.172).
    let atanh2 = |t: f32| {
        let t2 = t * t;
        t * (2.0 + t2 * (2.0 / 3.0 + t2 * (0.4 + t2 * (2.0 / 7.0 + t2 * (2.0 / 9.0)))))
    };
    if e < std::f32::consts::SQRT_2 - 1.0 {
        // 1 + e in [1, √2): t = e/(2 + e) directly, without rounding 1 + e.
        return atanh2(e / (2.0 + e));
    }
    // y = 2^k · m with m in [√½, √2): ln y = k·ln 2 + ln m.
    let bits = y.to_bits();
    let mut k = ((bits >> 23) & 0xff) as i32 - 127;
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    if m > std::f32::consts::SQRT_2 {
        m *= 0.5;
        k += 1;
    }
    k as f32 * std::f32::consts::LN_2 + atanh2((m - 1.0) / (m + 1.0))
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
            n_users: by_user.rows,
            n_items: by_user.cols,
            sampler: Sampler {
                by_user,
                pairs,
                neg,
                rng: Some(Rng::stream(seed, 9)),
                hard: cfg.hard_negatives.max(1),
            },
            user_side: None,
            item_side: None,
            scratch: Vec::new(),
            cfg,
        })
    }

    /// Adds side features (drawn from their own seeded stream, so the id embeddings and the
    /// samples stay those of the plain model).
    pub fn with_sides(mut self, sides: Sides, seed: u64) -> Self {
        (self.user_side, self.item_side) =
            sides.embeddings(self.cfg.factors, self.cfg.init_std, seed);
        self
    }

    fn has_sides(&self) -> bool {
        self.user_side.is_some() || self.item_side.is_some()
    }

    /// Row `u`'s effective user vector (width d) and rows `i`'s effective item vectors
    /// `[q_i + Σ z, b_i + Σ c]` (width d + 1), into `out` (3d + 2 values: u, i, j).
    fn effective(&self, u: usize, i: usize, j: usize, out: &mut [f32]) {
        let d = self.cfg.factors;
        let (pu, rest) = out.split_at_mut(d);
        let (vi, vj) = rest.split_at_mut(d + 1);
        self.user_vector(u, pu);
        self.item_vector(i, vi);
        self.item_vector(j, vj);
    }

    /// Row `u`'s effective user vector `p_u + Σ z` into `out` (width d).
    fn user_vector(&self, u: usize, out: &mut [f32]) {
        let d = self.cfg.factors;
        out.copy_from_slice(&self.p[u * d..(u + 1) * d]);
        if let Some(s) = &self.user_side {
            s.add(u, out);
        }
    }

    /// Item `i`'s effective vector `[q_i + Σ z, b_i + Σ c]` into `out` (width d + 1).
    fn item_vector(&self, i: usize, out: &mut [f32]) {
        let d = self.cfg.factors;
        out[..d].copy_from_slice(&self.q[i * d..(i + 1) * d]);
        out[d] = self.b[i];
        if let Some(s) = &self.item_side {
            s.add(i, out);
        }
    }

    /// One SGD step on (u, i, j) with side features: the gradient of the effective vectors
    /// reaches the id embeddings and every feature embedding of the three rows.
    fn step_sides(&mut self, u: usize, i: usize, j: usize) -> f64 {
        let d = self.cfg.factors;
        let (lr, reg) = (self.cfg.lr, self.cfg.reg);
        let mut buf = std::mem::take(&mut self.scratch);
        buf.resize(6 * d + 4, 0.0);
        let (eff, grads) = buf.split_at_mut(3 * d + 2);
        self.effective(u, i, j, eff);
        let (pu, rest) = eff.split_at(d);
        let (vi, vj) = rest.split_at(d + 1);
        let mut x = vi[d] - vj[d];
        for f in 0..d {
            x += pu[f] * (vi[f] - vj[f]);
        }
        let e = (-x).exp();
        let loss = e.ln_1p() as f64;
        let g = e / (1.0 + e);
        // Ascent directions of the effective vectors.
        let (gu, rest) = grads.split_at_mut(d);
        let (gi, gj) = rest.split_at_mut(d + 1);
        for f in 0..d {
            gu[f] = g * (vi[f] - vj[f]);
            gi[f] = g * pu[f];
            gj[f] = -g * pu[f];
        }
        gi[d] = g;
        gj[d] = -g;
        for (a, g) in self.p[u * d..(u + 1) * d].iter_mut().zip(gu.iter()) {
            *a += lr * (g - reg * *a);
        }
        for (r, gr) in [(i, &*gi), (j, &*gj)] {
            for (v, g) in self.q[r * d..(r + 1) * d].iter_mut().zip(gr.iter()) {
                *v += lr * (g - reg * *v);
            }
            self.b[r] += lr * (gr[d] - reg * self.b[r]);
        }
        if let Some(s) = &mut self.user_side {
            s.sgd(u, gu, lr, reg);
        }
        if let Some(s) = &mut self.item_side {
            s.sgd(i, gi, lr, reg);
            s.sgd(j, gj, lr, reg);
        }
        self.scratch = buf;
        loss
    }

    /// One epoch of |positives| sampled triples; returns the mean BPR loss −ln σ(x_uij).
    ///
    /// The draws are made in chunks, and chunk k + 1 is drawn (on another thread when rayon has
    /// one) while chunk k is stepped through. Sampling never reads the parameters, so the
    /// triples and the order of the steps, and hence the model, are exactly those of drawing
    /// and stepping one at a time, whatever the thread count.
    pub fn epoch(&mut self) -> f64 {
        let mut sampler = std::mem::take(&mut self.sampler);
        let n = sampler.pairs.len();
        let m = sampler.hard;
        let (mut cur, mut next) = (Vec::with_capacity(CHUNK), Vec::with_capacity(CHUNK));
        let (mut cur_c, mut next_c) = (Vec::new(), Vec::new());
        // On one thread, drawing everything first keeps the two working sets apart in cache.
        let chunk = if rayon::current_num_threads() > 1 {
            CHUNK
        } else {
            n.max(1)
        };
        let mut drawn = chunk.min(n);
        sampler.draw(drawn, &mut cur, &mut cur_c);
        let mut loss = 0f64;
        loop {
            let todo = chunk.min(n - drawn);
            next.clear();
            next_c.clear();
            let (l, ()) = rayon::join(
                || {
                    let mut l = 0f64;
                    for (t, &(u, i, j)) in cur.iter().enumerate() {
                        let j = match m > 1 {
                            true => self.hardest(u as usize, &cur_c[t * m..(t + 1) * m]),
                            false => j as usize,
                        };
                        l += self.step(u as usize, i as usize, j);
                    }
                    l
                },
                || sampler.draw(todo, &mut next, &mut next_c),
            );
            loss += l;
            if todo == 0 {
                break;
            }
            drawn += todo;
            std::mem::swap(&mut cur, &mut next);
            std::mem::swap(&mut cur_c, &mut next_c);
        }
        self.sampler = sampler;
        loss / n.max(1) as f64
    }

    /// Samples one epoch's triples into `out` and returns the number of draws (a draw whose
    /// user liked every tried negative yields no triple): the triples [`Bpr::epoch`] steps
    /// through, for the GPU trainer.
    pub fn sample_epoch(&mut self, out: &mut Vec<(u32, u32, u32)>) -> usize {
        let n = self.sampler.pairs.len();
        out.clear();
        out.reserve(n);
        self.sampler.draw(n, out, &mut Vec::new());
        n
    }

    /// Rank-aware negatives: the candidate (item id) the current model scores highest for
    /// user `u`, the first on ties.
    pub fn hardest(&mut self, u: usize, cands: &[u32]) -> usize {
        let d = self.cfg.factors;
        let mut best = (cands[0] as usize, f32::NEG_INFINITY);
        if self.has_sides() {
            let mut buf = std::mem::take(&mut self.scratch);
            buf.resize(2 * d + 1, 0.0);
            let (pu, vc) = buf.split_at_mut(d);
            self.user_vector(u, pu);
            for &c in cands {
                let c = c as usize;
                self.item_vector(c, vc);
                let s = crate::simd::dot(pu, &vc[..d]) + vc[d];
                if s > best.1 {
                    best = (c, s);
                }
            }
            self.scratch = buf;
            return best.0;
        }
        let pu = &self.p[u * d..(u + 1) * d];
        for &c in cands {
            let c = c as usize;
            let s = crate::simd::dot(pu, &self.q[c * d..(c + 1) * d]) + self.b[c];
            if s > best.1 {
                best = (c, s);
            }
        }
        best.0
    }

    /// One SGD step on the triple (u, i, j); returns its loss before the step.
    pub fn step(&mut self, u: usize, i: usize, j: usize) -> f64 {
        debug_assert_ne!(i, j);
        if self.has_sides() {
            return self.step_sides(u, i, j);
        }
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
        // Two SIMD dot products: a sequential sum over the factors is a chain of dependent adds
        // (the compiler may not reorder float additions) and was 60% of the step's time.
        let x = self.b[i] - self.b[j] + (crate::simd::dot(pu, qi) - crate::simd::dot(pu, qj));
        // One exponential gives both the loss ln(1 + e^−x) and the gradient weight σ(−x).
        let e = (-x).exp();
        let loss = fast_ln1p(e) as f64;
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
        let (nu, ni) = (self.n_users, self.n_items);
        let mut users = vec![0f32; nu * d1];
        let mut items = vec![0f32; ni * d1];
        for u in 0..nu {
            let row = &mut users[u * d1..(u + 1) * d1];
            row[..d].copy_from_slice(&self.p[u * d..(u + 1) * d]);
            if let Some(s) = &self.user_side {
                s.add(u, &mut row[..d]);
            }
            row[d] = 1.0;
        }
        for i in 0..ni {
            let row = &mut items[i * d1..(i + 1) * d1];
            row[..d].copy_from_slice(&self.q[i * d..(i + 1) * d]);
            row[d] = self.b[i];
            if let Some(s) = &self.item_side {
                s.add(i, row);
            }
        }
        (users, items, d1)
    }

    /// The loss −ln σ(x_uij) of one triple (for finite-difference tests).
    pub fn triple_loss(&self, u: usize, i: usize, j: usize) -> f64 {
        let d = self.cfg.factors;
        let mut eff = vec![0f32; 3 * d + 2];
        self.effective(u, i, j, &mut eff);
        let (pu, rest) = eff.split_at(d);
        let (vi, vj) = rest.split_at(d + 1);
        let mut x = vi[d] - vj[d];
        for f in 0..d {
            x += pu[f] * (vi[f] - vj[f]);
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
            n_users: m.n_users,
            n_items: m.n_items,
            sampler: Sampler::default(),
            user_side: m.user_side.clone(),
            item_side: m.item_side.clone(),
            scratch: Vec::new(),
        }
    }

    /// With side features, a step (reg = 0) moves each feature embedding by −lr × its
    /// finite-difference gradient too.
    #[test]
    fn step_with_sides_follows_finite_difference_gradient() {
        let by_user = Csr::from_triples(2, 3, &[(0, 0, 1.0), (1, 2, 1.0)]);
        let cfg = BprConfig {
            factors: 3,
            lr: 1e-3,
            reg: 0.0,
            negatives: Negatives::Uniform,
            hard_negatives: 1,
            init_std: 0.5,
        };
        // Items 0 and 1 share feature 0; item 1 also has feature 1 (weight 0.5); user 0 has
        // feature 0.
        let sides = Sides {
            users: Some(Csr::from_triples(2, 1, &[(0, 0, 1.0)])),
            items: Some(Csr::from_triples(
                3,
                2,
                &[(0, 0, 1.0), (1, 0, 1.0), (1, 1, 0.5)],
            )),
        };
        let m = Bpr::new(cfg, by_user, 3).unwrap().with_sides(sides, 3);
        let (u, i, j, h) = (0, 0, 1, 1e-3f32);
        let mut stepped = copy(&m);
        stepped.step(u, i, j);
        for side in 0..2 {
            let len = if side == 0 {
                m.user_side.as_ref().unwrap().z.len()
            } else {
                m.item_side.as_ref().unwrap().z.len()
            };
            for k in 0..len {
                let shifted = |delta: f32| {
                    let mut x = copy(&m);
                    let s = if side == 0 {
                        x.user_side.as_mut()
                    } else {
                        x.item_side.as_mut()
                    };
                    s.unwrap().z[k] += delta;
                    x.triple_loss(u, i, j)
                };
                let grad = (shifted(h) - shifted(-h)) / (2.0 * h as f64);
                let (a, b) = if side == 0 {
                    (
                        stepped.user_side.as_ref().unwrap().z[k],
                        m.user_side.as_ref().unwrap().z[k],
                    )
                } else {
                    (
                        stepped.item_side.as_ref().unwrap().z[k],
                        m.item_side.as_ref().unwrap().z[k],
                    )
                };
                let moved = (a - b) as f64;
                assert!(
                    (moved + 1e-3 * grad).abs() < 1e-6,
                    "side {side} z[{k}]: moved {moved}, expected {}",
                    -1e-3 * grad
                );
            }
        }
        // The exported vectors carry the features: score = effective dot product.
        let (us, its, d1) = m.export();
        let s: f32 = (0..d1)
            .map(|f| us[u * d1 + f] * (its[i * d1 + f] - its[j * d1 + f]))
            .sum();
        assert!(((-(1.0 / (1.0 + (-s).exp())).ln()) as f64 - m.triple_loss(u, i, j)).abs() < 1e-5);
    }

    #[test]
    fn fast_ln1p_matches_ln_1p() {
        let mut e = 1e-9f32;
        while e < 1e30 {
            let (a, b) = (fast_ln1p(e), e.ln_1p());
            assert!(
                (a - b).abs() <= 2e-6 * b.abs().max(1e-30),
                "{e}: {a} vs {b}"
            );
            e *= 1.37;
        }
        assert_eq!(fast_ln1p(0.0), 0.0);
        assert!(fast_ln1p(f32::INFINITY).is_infinite());
        assert!(fast_ln1p(f32::NAN).is_nan());
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
            hard_negatives: 1,
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
