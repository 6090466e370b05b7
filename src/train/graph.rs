//! LightGCN (He et al. 2020) trained with BPR, max-margin or the iALS objective.
//!
//! Users and items are the N = n_users + n_items nodes of the bipartite interaction graph, with
//! the symmetric-normalised adjacency Â = D^-½ A D^-½ built once as CSR. From base embeddings E⁰,
//! K propagation layers give E^k = Â E^(k−1), and the final embedding is their mean
//! E = (E⁰ + … + E^K)/(K+1). The score is `E_u · E_i`, so the exported vectors serve as plain
//! MIPS. The BPR loss on a batch of (u, i, j) triples flows back through the propagation: Â is
//! symmetric, so ∂L/∂E⁰ = (1/(K+1)) Σ_k Â^k ∂L/∂E, computed by the same sparse-dense products.
//! Adam updates E⁰. All buffers are allocated once: a batch allocates nothing.
//!
//! Negatives can be rank-aware (dynamic negative sampling, Zhang et al. 2013): each triple draws
//! `hard_negatives` candidates, and after the batch's forward pass the one the current final
//! embeddings score highest for the user becomes the negative. Uniform negatives are soon
//! ranked far below the positives and stop teaching; the hardest of a few keeps the gradient
//! informative. It costs one dot product per candidate and reuses the forward pass.
//!
//! The pointwise loss ([`Loss::Ials`]) is the iALS objective on the final embeddings: a weighted
//! squared error over every user–item pair, positives towards 1 at confidence 1 + alpha·weight,
//! every other pair towards 0 at the unobserved weight w0, and known negatives (ratings below
//! the threshold, when training has them) towards 0 at their own confidence. Its gradient over
//! all N × M pairs costs O(nnz·d + (N + M)·d²) with the Gram trick, so each epoch is one
//! full-batch Adam step. As in lshrec's iALS, known negatives are one-sided: they enter the
//! users' rows of the gradient, and the items' rows see positives only.
//!
//! Each SpMM row is computed independently (rayon), triples are processed in a seeded order,
//! the Gram matrices are summed over row blocks in a fixed order (`ials::gram`), the pointwise
//! gradient is computed row by row, and
//! Adam is elementwise, so the model is bit-identical for a seed whatever the thread count.

use rayon::prelude::*;

use crate::data::Csr;
use crate::error::Result;
use crate::rng::Rng;

/// LightGCN hyperparameters.
#[derive(Clone, Debug)]
pub struct LightGcnConfig {
    pub factors: usize,
    pub layers: usize,
    /// Adam learning rate.
    pub lr: f32,
    /// L2 on the base embeddings of each batch's users and items (per triple); on every base
    /// row, once per step, for the pointwise loss.
    pub reg: f32,
    pub batch: usize,
    pub init_std: f32,
    /// The loss.
    pub loss: Loss,
    /// The pointwise loss's confidences ([`Loss::Ials`]).
    pub weights: crate::train::ials::Weights,
    /// Negatives drawn per sampled positive (each makes one triple).
    pub negatives: usize,
    /// Candidates drawn for each negative; the one the model currently scores highest for the
    /// user is used (1: uniform negatives).
    pub hard_negatives: usize,
}

/// LightGCN's training loss.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Loss {
    /// BPR on sampled triples: ln(1 + e^−x), x = score(u, i) − score(u, j).
    // The serde default: a model configuration that names no loss was written before the
    // other losses existed, and trained with BPR.
    #[default]
    Bpr,
    /// Max-margin (hinge) on sampled triples: max(0, 1 − x).
    Margin,
    /// The iALS objective over every user–item pair (pointwise, full batch).
    Ials,
}

impl Loss {
    /// The pairwise loss, for the losses trained on sampled triples.
    pub fn pair(self) -> Option<PairLoss> {
        match self {
            Loss::Bpr => Some(PairLoss::Bpr),
            Loss::Margin => Some(PairLoss::Margin),
            Loss::Ials => None,
        }
    }
}

/// The pairwise ranking loss on x = score(u, i) − score(u, j).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PairLoss {
    /// BPR: ln(1 + e^−x).
    Bpr,
    /// Max-margin (hinge): max(0, 1 − x).
    Margin,
}

/// The model state and its preallocated buffers.
pub struct LightGcn {
    pub cfg: LightGcnConfig,
    n_users: usize,
    adj: Csr,
    /// Positives by user.
    by_user: Csr,
    objective: Objective,
    pairs: Vec<(u32, u32)>,
    /// Base embeddings E⁰ (N × d).
    pub e0: Vec<f32>,
    m: Vec<f32>,
    v: Vec<f32>,
    t: i32,
    fin: Vec<f32>,
    cur: Vec<f32>,
    next: Vec<f32>,
    grad: Vec<f32>,
    triples: Vec<(u32, u32, u32)>,
    /// The batch's negative candidates, `hard_negatives` per triple (empty when 1).
    cands: Vec<u32>,
    rng: Rng,
    side: Option<NodeSide>,
}

/// Side features of the graph's nodes (LightFM style): the base embedding of node r is
/// `E⁰_r + Σ_f w_rf z_f`, with user features and item features in one table.
struct NodeSide {
    /// nodes × features.
    feats: Csr,
    /// features × nodes (for the gradient of z).
    feats_t: Csr,
    z: Vec<f32>,
    mz: Vec<f32>,
    vz: Vec<f32>,
    gz: Vec<f32>,
    /// The effective base embeddings.
    eff: Vec<f32>,
}

/// The symmetric-normalised adjacency of the user–item graph (users first, then items).
pub fn normalized_adjacency(by_user: &Csr) -> Csr {
    let (nu, ni) = (by_user.rows, by_user.cols);
    let n = nu + ni;
    let mut deg = vec![0f32; n];
    let mut triples = Vec::with_capacity(2 * by_user.nnz());
    for u in 0..nu {
        for &i in by_user.row(u) {
            triples.push((u as u32, (nu + i as usize) as u32, 1.0));
            triples.push(((nu + i as usize) as u32, u as u32, 1.0));
            deg[u] += 1.0;
            deg[nu + i as usize] += 1.0;
        }
    }
    for t in triples.iter_mut() {
        t.2 = 1.0 / (deg[t.0 as usize] * deg[t.1 as usize]).sqrt();
    }
    Csr::from_triples(n, n, &triples)
}

/// `out = Â x` for row-major `x` (N × d), rows in parallel.
pub fn spmm(adj: &Csr, x: &[f32], d: usize, out: &mut [f32]) {
    spmm_tiled(adj, x, d, out, SPMM_TILE_BYTES / (4 * d.max(1)));
}

/// [`spmm`] sweeping `x` in tiles of `tile` rows (one sweep when `x` has at most two tiles).
fn spmm_tiled(adj: &Csr, x: &[f32], d: usize, out: &mut [f32], tile: usize) {
    let tile = tile.max(1);
    if adj.cols <= tile.saturating_mul(2) {
        out.par_chunks_mut(d).enumerate().for_each(|(r, o)| {
            o.fill(0.0);
            gather(adj.row(r), adj.row_values(r), x, d, o);
        });
        return;
    }
    // A large `x` does not stay in cache while the rows gather from all over it, so each task
    // (a range of output rows) sweeps `x` in tiles of `tile` rows and gathers, row by row, the
    // neighbours inside the current tile. Columns are sorted within a row and the tiles are
    // visited in order, so every row still sums its neighbours in column order: the result is
    // bit-identical to the untiled product, whatever the tiling and the thread count.
    let rows_per_task = adj.rows.div_ceil(8 * rayon::current_num_threads()).max(64);
    out.par_chunks_mut(rows_per_task * d)
        .enumerate()
        .for_each(|(t, block)| {
            block.fill(0.0);
            for lo in (0..adj.cols).step_by(tile) {
                let hi = (lo + tile).min(adj.cols);
                for (k, o) in block.chunks_mut(d).enumerate() {
                    gather_rows(adj, t * rows_per_task + k, lo, hi, x, d, o);
                }
            }
        });
}

/// The width of [`spmm`]'s tiles of `x`, in bytes: a few of them, and the output rows being
/// summed, stay in a shared L3 cache together.
const SPMM_TILE_BYTES: usize = 4 << 20;

/// Adds `Σ w·x_c` over row `r`'s neighbours `c` in `lo..hi` (in column order) to `o`.
#[inline]
fn gather_rows(adj: &Csr, r: usize, lo: usize, hi: usize, x: &[f32], d: usize, o: &mut [f32]) {
    let (cols, vals) = (adj.row(r), adj.row_values(r));
    let a = cols.partition_point(|&c| (c as usize) < lo);
    let b = a + cols[a..].partition_point(|&c| (c as usize) < hi);
    gather(&cols[a..b], &vals[a..b], x, d, o);
}

/// Adds `Σ w·x_c` over the neighbours `cols` (weights `vals`, in order) to `o`.
#[inline]
fn gather(cols: &[u32], vals: &[f32], x: &[f32], d: usize, o: &mut [f32]) {
    for (k, (&c, &w)) in cols.iter().zip(vals).enumerate() {
        crate::simd::prefetch_gather(cols, k, x, d);
        crate::simd::axpy(w, &x[c as usize * d..][..d], o);
    }
}

/// `out = (x + Âx + … + Â^K x)/(K+1)`, using `cur` and `next` as scratch.
pub fn propagate(
    adj: &Csr,
    x: &[f32],
    d: usize,
    layers: usize,
    out: &mut [f32],
    cur: &mut Vec<f32>,
    next: &mut Vec<f32>,
) {
    out.copy_from_slice(x);
    cur.copy_from_slice(x);
    for _ in 0..layers {
        spmm(adj, cur, d, next);
        for (o, v) in out.iter_mut().zip(next.iter()) {
            *o += v;
        }
        std::mem::swap(cur, next);
    }
    let s = 1.0 / (layers + 1) as f32;
    out.iter_mut().for_each(|v| *v *= s);
}

/// Rank-aware negatives: sets each triple's negative to the one of its `m` candidates
/// (`cands[t·m..(t+1)·m]`, item ids) whose final embedding `f` (N × d, users first) has the
/// largest inner product with the triple's user's, the first on ties (NaN scores never win).
/// Triples are independent, so the result does not depend on the thread count. The CPU twin of
/// the `lightgcn_pick_negatives_u32` kernel.
pub fn pick_negatives(
    f: &[f32],
    d: usize,
    n_users: usize,
    triples: &mut [(u32, u32, u32)],
    cands: &[u32],
    m: usize,
) {
    if m < 2 {
        return;
    }
    triples
        .par_iter_mut()
        .zip(cands.par_chunks(m))
        .for_each(|(t, c)| {
            let fu = &f[t.0 as usize * d..][..d];
            let (mut best, mut top) = (c[0], f32::NEG_INFINITY);
            for &j in c {
                let fj = &f[(n_users + j as usize) * d..][..d];
                let mut s = 0f32;
                for k in 0..d {
                    s += fu[k] * fj[k];
                }
                if s > top {
                    (best, top) = (j, s);
                }
            }
            t.2 = best;
        });
}

/// BPR on the final embeddings `f` (N × d, users first): for each triple, with
/// x = f_u·(f_i − f_j) and g = σ(−x)·scale, subtracts g(f_i − f_j) from `grad[u]`, g·f_u from
/// `grad[i]` and adds g·f_u to `grad[j]`. Returns Σ ln(1 + e^−x). The CPU twin of the
/// `lightgcn_bpr_grad_f32` kernel.
pub fn bpr_grad(
    f: &[f32],
    d: usize,
    n_users: usize,
    triples: &[(u32, u32, u32)],
    scale: f32,
    grad: &mut [f32],
) -> f64 {
    pair_grad(f, d, n_users, triples, scale, PairLoss::Bpr, grad)
}

/// [`bpr_grad`] for either pairwise loss: the hinge max(0, 1 − x) has g = scale where x < 1
/// and 0 elsewhere.
pub fn pair_grad(
    f: &[f32],
    d: usize,
    n_users: usize,
    triples: &[(u32, u32, u32)],
    scale: f32,
    kind: PairLoss,
    grad: &mut [f32],
) -> f64 {
    let mut loss = 0f64;
    for &(u, i, j) in triples {
        let (u, i, j) = (u as usize, n_users + i as usize, n_users + j as usize);
        let x: f32 = (0..d)
            .map(|k| f[u * d + k] * (f[i * d + k] - f[j * d + k]))
            .sum();
        let g = match kind {
            PairLoss::Bpr => {
                let e = (-x).exp();
                loss += e.ln_1p() as f64;
                e / (1.0 + e) * scale
            }
            PairLoss::Margin if x < 1.0 => {
                loss += (1.0 - x) as f64;
                scale
            }
            PairLoss::Margin => 0.0,
        };
        if g == 0.0 {
            continue;
        }
        for k in 0..d {
            let (fu, fi, fj) = (f[u * d + k], f[i * d + k], f[j * d + k]);
            grad[u * d + k] -= g * (fi - fj);
            grad[i * d + k] -= g * fu;
            grad[j * d + k] += g * fu;
        }
    }
    loss
}

/// Adds `coef·e0[r]` to `grad[r]` for the user row and both item rows of every triple, and
/// returns the penalty `½·coef·Σ|e0[r]|²`. The CPU twin of the `lightgcn_l2_f32` kernel.
pub fn l2_rows(
    e0: &[f32],
    d: usize,
    n_users: usize,
    triples: &[(u32, u32, u32)],
    coef: f32,
    grad: &mut [f32],
) -> f64 {
    let mut l2 = 0f64;
    for &(u, i, j) in triples {
        for r in [u as usize, n_users + i as usize, n_users + j as usize] {
            for k in 0..d {
                let w = e0[r * d + k];
                grad[r * d + k] += coef * w;
                l2 += 0.5 * (coef * w * w) as f64;
            }
        }
    }
    l2
}

/// Adds `coef·e0` to `grad` over every row and returns the penalty ½·coef·Σ|e0|² (the full
/// batch's L2).
pub fn l2_all(e0: &[f32], coef: f32, grad: &mut [f32]) -> f64 {
    let mut l2 = 0f64;
    for (g, &w) in grad.iter_mut().zip(e0) {
        *g += coef * w;
        l2 += 0.5 * (coef * w * w) as f64;
    }
    l2
}

/// Adam's first and second moment decays.
pub const ADAM_BETAS: (f32, f32) = (0.9, 0.999);

/// One Adam step number `t` (from 1) over `w` with gradient `g`. The CPU twin of the `adam_f32`
/// kernel.
pub fn adam_step(t: i32, lr: f32, g: &[f32], m: &mut [f32], v: &mut [f32], w: &mut [f32]) {
    let (b1, b2) = ADAM_BETAS;
    let (c1, c2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
    for ((w, g), (m, v)) in w.iter_mut().zip(g).zip(m.iter_mut().zip(v.iter_mut())) {
        *m = b1 * *m + (1.0 - b1) * g;
        *v = b2 * *v + (1.0 - b2) * g * g;
        *w -= lr * (*m / c1) / ((*v / c2).sqrt() + 1e-8);
    }
}

/// What an epoch minimises.
enum Objective {
    /// A pairwise loss on sampled triples (mini-batches).
    Pairs(PairLoss),
    /// The pointwise loss over every pair (one full-batch step per epoch).
    Pointwise(Box<Pointwise>),
}

/// The entries of the pointwise loss and its preallocated scratch.
pub struct Pointwise {
    /// Positives (weight > 0) and known negatives (weight ≤ 0) by user.
    pub by_user: Csr,
    /// Positives by item.
    pub by_item: Csr,
    /// Gram matrices of the users' and the items' final embeddings (d × d, row-major).
    gram_u: Vec<f32>,
    gram_i: Vec<f32>,
    /// Each user's observed-entry loss.
    row_loss: Vec<f64>,
}

impl Pointwise {
    /// The entries of `observed` (users × items: positives and known negatives) for `d`
    /// factors.
    pub fn new(observed: Csr, d: usize) -> Self {
        let by_item = observed.transpose_where(|v| v > 0.0);
        Self::with_positives(observed, by_item, d)
    }

    /// [`Pointwise::new`] for a caller that already holds the positives by item
    /// (`observed.transpose_where(|v| v > 0.0)`).
    fn with_positives(observed: Csr, by_item: Csr, d: usize) -> Self {
        let nu = observed.rows;
        Pointwise {
            by_item,
            by_user: observed,
            gram_u: vec![0.0; d * d],
            gram_i: vec![0.0; d * d],
            row_loss: vec![0.0; nu],
        }
    }

    /// The iALS objective of the final embeddings `f` (users then items, d each), divided by
    /// the number of users, and its gradient with respect to `f`, added into `grad`:
    ///
    /// ```text
    /// L = (1/n_u)·[ w0·Σ_{u,i} s_ui²
    ///             + Σ_{(u,i) observed} ((c_ui − w0)·s_ui² − 2c_ui·p_ui·s_ui + c_ui·p_ui²) ]
    /// ```
    ///
    /// with p = 1 for a positive, 0 for a known negative, c their confidence. The Gram trick
    /// gives Σ s² = tr(G_U G_I) and a user's row of the gradient
    /// (2/n_u)·[w0·G_I f_u + Σ_{i observed} ((c − w0)·s − c·p)·f_i]; an item's row is the
    /// same over its positives only (known negatives are one-sided). The Gram matrices sum row
    /// blocks in a fixed order and every row is computed on its own, so the result does not
    /// depend on the thread count. The
    /// CPU twin of the `ials_loss_grad_f32` kernel (which sums the Gram term row by row).
    pub fn loss_and_grad(
        &mut self,
        f: &[f32],
        d: usize,
        w: &crate::train::ials::Weights,
        grad: &mut [f32],
    ) -> f64 {
        let nu = self.by_user.rows;
        let (fu, fi) = f.split_at(nu * d);
        for (x, out) in [(fu, &mut self.gram_u), (fi, &mut self.gram_i)] {
            let g = crate::train::ials::gram(x, d);
            for (k, v) in out.iter_mut().enumerate() {
                *v = g[(k / d, k % d)];
            }
        }
        let (gu, gi) = grad.split_at_mut(nu * d);
        let scale = 2.0 / nu.max(1) as f32;
        let w0 = w.unobserved;
        let (gram_u, gram_i) = (&self.gram_u, &self.gram_i);
        let by_user = &self.by_user;
        gu.par_chunks_mut(d)
            .zip(self.row_loss.par_iter_mut())
            .enumerate()
            .for_each(|(u, (g, loss))| {
                *loss = pointwise_row(
                    &fu[u * d..][..d],
                    fi,
                    by_user.row(u),
                    by_user.row_values(u),
                    gram_i,
                    w,
                    scale,
                    g,
                );
            });
        let by_item = &self.by_item;
        gi.par_chunks_mut(d).enumerate().for_each(|(i, g)| {
            pointwise_row(
                &fi[i * d..][..d],
                fu,
                by_item.row(i),
                by_item.row_values(i),
                gram_u,
                w,
                scale,
                g,
            );
        });
        let all: f64 = (gram_u.iter().zip(gram_i))
            .map(|(a, b)| (a * b) as f64)
            .sum();
        (w0 as f64 * all + self.row_loss.iter().sum::<f64>()) / nu.max(1) as f64
    }
}

/// One row of [`Pointwise::loss_and_grad`]: adds scale·[w0·G x + Σ_j ((c_j − w0)·s_j −
/// c_j·p_j)·y_j] to `g`, for the row's vector `x` and its observed columns `cols` (vectors in
/// `other`, d each) of weights `vals`; returns the row's observed-entry loss
/// Σ_j (c_j − w0)·s_j² − 2c_j·p_j·s_j + c_j·p_j².
#[allow(clippy::too_many_arguments)]
fn pointwise_row(
    x: &[f32],
    other: &[f32],
    cols: &[u32],
    vals: &[f32],
    gram: &[f32],
    w: &crate::train::ials::Weights,
    scale: f32,
    g: &mut [f32],
) -> f64 {
    let d = x.len();
    let w0 = w.unobserved;
    for (a, ga) in g.iter_mut().enumerate() {
        *ga += scale * w0 * crate::simd::dot(&gram[a * d..][..d], x);
    }
    let mut loss = 0f64;
    for (k, (&j, &v)) in cols.iter().zip(vals).enumerate() {
        crate::simd::prefetch_gather(cols, k, other, d);
        let y = &other[j as usize * d..][..d];
        let s = crate::simd::dot(x, y);
        let (c, p) = (w.confidence(v), crate::train::ials::preference(v));
        let coef = scale * ((c - w0) * s - c * p);
        crate::simd::axpy(coef, y, g);
        loss += ((c - w0) * s * s - 2.0 * c * p * s + c * p * p) as f64;
    }
    loss
}

impl LightGcn {
    /// Initialises for the interactions `observed` (users × items): positives of weight > 0,
    /// and known negatives of weight ≤ 0, which only the pointwise loss reads (the graph and
    /// the sampled triples use the positives).
    pub fn new(cfg: LightGcnConfig, observed: Csr, seed: u64) -> Result<Self> {
        let negatives = observed.values.iter().any(|&v| v <= 0.0);
        let (by_user, objective) = match cfg.loss.pair() {
            Some(kind) if negatives => (
                observed.transpose_where(|v| v > 0.0).transpose(),
                Objective::Pairs(kind),
            ),
            Some(kind) => (observed, Objective::Pairs(kind)),
            None => {
                let by_item = observed.transpose_where(|v| v > 0.0);
                let by_user = match negatives {
                    true => by_item.transpose(),
                    false => observed.clone(),
                };
                let pointwise = Pointwise::with_positives(observed, by_item, cfg.factors);
                (by_user, Objective::Pointwise(Box::new(pointwise)))
            }
        };
        let (nu, ni) = (by_user.rows, by_user.cols);
        let n = nu + ni;
        let d = cfg.factors;
        let mut r = Rng::new(seed);
        let e0: Vec<f32> = (0..n * d)
            .map(|_| cfg.init_std * r.normal() as f32)
            .collect();
        let mut pairs = Vec::with_capacity(by_user.nnz());
        for u in 0..nu {
            for &i in by_user.row(u) {
                pairs.push((u as u32, i));
            }
        }
        Ok(LightGcn {
            adj: normalized_adjacency(&by_user),
            n_users: nu,
            by_user,
            objective,
            pairs,
            m: vec![0.0; n * d],
            v: vec![0.0; n * d],
            t: 0,
            fin: vec![0.0; n * d],
            cur: vec![0.0; n * d],
            next: vec![0.0; n * d],
            grad: vec![0.0; n * d],
            triples: Vec::with_capacity(cfg.batch * cfg.negatives.max(1)),
            cands: Vec::with_capacity(match cfg.hard_negatives {
                0 | 1 => 0,
                m => cfg.batch * cfg.negatives.max(1) * m,
            }),
            rng: Rng::stream(seed, 11),
            side: None,
            e0,
            cfg,
        })
    }

    /// Adds side features: user feature rows for the user nodes and item feature rows for the
    /// item nodes (their embeddings drawn from their own seeded stream).
    pub fn with_sides(mut self, sides: crate::train::side::Sides, seed: u64) -> Self {
        let (nu, ni) = (self.by_user.rows, self.by_user.cols);
        let fu = sides.users.as_ref().map_or(0, |f| f.cols);
        let fi = sides.items.as_ref().map_or(0, |f| f.cols);
        if fu + fi == 0 {
            return self;
        }
        let mut t = Vec::new();
        if let Some(f) = &sides.users {
            for r in 0..nu.min(f.rows) {
                for (&c, &w) in f.row(r).iter().zip(f.row_values(r)) {
                    t.push((r as u32, c, w));
                }
            }
        }
        if let Some(f) = &sides.items {
            for r in 0..ni.min(f.rows) {
                for (&c, &w) in f.row(r).iter().zip(f.row_values(r)) {
                    t.push(((nu + r) as u32, fu as u32 + c, w));
                }
            }
        }
        let feats = Csr::from_triples(nu + ni, fu + fi, &t);
        let d = self.cfg.factors;
        let mut r = Rng::stream(seed, 21);
        let z = (0..(fu + fi) * d)
            .map(|_| self.cfg.init_std * r.normal() as f32)
            .collect();
        self.side = Some(NodeSide {
            feats_t: feats.transpose(),
            feats,
            z,
            mz: vec![0.0; (fu + fi) * d],
            vz: vec![0.0; (fu + fi) * d],
            gz: vec![0.0; (fu + fi) * d],
            eff: vec![0.0; (nu + ni) * d],
        });
        self
    }

    /// The base embeddings in use: E⁰, plus the feature sums with side features.
    fn refresh_base(&mut self) {
        if let Some(s) = &mut self.side {
            let d = self.cfg.factors;
            spmm(&s.feats, &s.z, d, &mut s.eff);
            for (e, b) in s.eff.iter_mut().zip(&self.e0) {
                *e += b;
            }
        }
    }

    /// Final embeddings E (N × d) of the current E⁰.
    pub fn final_embeddings(&mut self) -> &[f32] {
        let d = self.cfg.factors;
        self.refresh_base();
        let base = match &self.side {
            Some(s) => &s.eff,
            None => &self.e0,
        };
        propagate(
            &self.adj,
            base,
            d,
            self.cfg.layers,
            &mut self.fin,
            &mut self.cur,
            &mut self.next,
        );
        &self.fin
    }

    /// Mean BPR loss (plus L2 on the base rows) of `triples` at the current E⁰, and its gradient
    /// with respect to E⁰ in `self.grad`.
    pub fn loss_and_grad(&mut self, triples: &[(u32, u32, u32)]) -> f64 {
        self.final_embeddings();
        self.grad_at_forward(triples)
    }

    /// [`LightGcn::loss_and_grad`] with the forward pass of the current E⁰ already in `fin`.
    fn grad_at_forward(&mut self, triples: &[(u32, u32, u32)]) -> f64 {
        let d = self.cfg.factors;
        let nu = self.n_users;
        let reg = self.cfg.reg;
        self.grad.fill(0.0);
        let scale = 1.0 / triples.len().max(1) as f32;
        let loss = match &mut self.objective {
            Objective::Pairs(kind) => {
                let l = pair_grad(&self.fin, d, nu, triples, scale, *kind, &mut self.grad);
                l * scale as f64
            }
            Objective::Pointwise(p) => {
                p.loss_and_grad(&self.fin, d, &self.cfg.weights, &mut self.grad)
            }
        };
        // Back through the propagation: Â is symmetric, so the same mean of powers applies.
        let (mut cur, mut next) = (
            std::mem::take(&mut self.cur),
            std::mem::take(&mut self.next),
        );
        let g_fin = std::mem::take(&mut self.grad);
        let mut g0 = std::mem::take(&mut self.fin);
        propagate(
            &self.adj,
            &g_fin,
            d,
            self.cfg.layers,
            &mut g0,
            &mut cur,
            &mut next,
        );
        // L2 on the base embeddings of the rows in the batch (of every row in a full batch).
        let base = match &self.side {
            Some(s) => &s.eff,
            None => &self.e0,
        };
        let l2 = match self.objective {
            Objective::Pairs(_) => l2_rows(base, d, nu, triples, reg * scale, &mut g0),
            Objective::Pointwise(_) => l2_all(base, 2.0 * reg, &mut g0),
        };
        // The feature embeddings' gradient: Fᵀ ∂L/∂(base).
        if let Some(s) = &mut self.side {
            spmm(&s.feats_t, &g0, d, &mut s.gz);
        }
        self.grad = g0;
        self.fin = g_fin;
        self.cur = cur;
        self.next = next;
        loss + l2
    }

    /// One epoch: mini-batch Adam over all positives for a pairwise loss (returns the mean
    /// batch loss), one full-batch Adam step for the pointwise loss (returns its loss).
    pub fn epoch(&mut self) -> f64 {
        if let Objective::Pointwise(_) = self.objective {
            self.final_embeddings();
            let loss = self.grad_at_forward(&[]);
            self.adam();
            return loss;
        }
        let batches = self.batches_per_epoch();
        let mut total = 0f64;
        for _ in 0..batches {
            let mut triples = std::mem::take(&mut self.triples);
            self.sample_batch(&mut triples);
            self.final_embeddings();
            self.pick_negatives(&mut triples);
            total += self.grad_at_forward(&triples);
            self.triples = triples;
            self.adam();
        }
        total / batches.max(1) as f64
    }

    /// Mini-batches per epoch (1: the pointwise loss's full batch).
    pub fn batches_per_epoch(&self) -> usize {
        match self.objective {
            Objective::Pairs(_) => self.pairs.len().div_ceil(self.cfg.batch.max(1)),
            Objective::Pointwise(_) => 1,
        }
    }

    /// Samples the next batch of (user, positive, negative) triples into `out`: `batch`
    /// positives, each with `negatives` negatives (the GPU trainer consumes the same batches).
    /// With rank-aware negatives, each triple's candidates go to [`LightGcn::candidates`], the
    /// first of them in the triple.
    pub fn sample_batch(&mut self, out: &mut Vec<(u32, u32, u32)>) {
        let n = self.pairs.len();
        let m = self.cfg.hard_negatives.max(1);
        out.clear();
        self.cands.clear();
        for _ in 0..self.cfg.batch.min(n) {
            let (u, i) = self.pairs[self.rng.below(n)];
            for _ in 0..self.cfg.negatives.max(1) {
                let (by_user, rng) = (&self.by_user, &mut self.rng);
                let n_items = by_user.cols;
                let mut draw =
                    || super::draw_negative(by_user, u, rng, |r| r.below(n_items) as u32);
                let Some(j) = draw() else {
                    continue;
                };
                out.push((u, i, j));
                super::push_candidates(&mut self.cands, j, m, draw);
            }
        }
    }

    /// The negative candidates of the last sampled batch, `hard_negatives` per triple (empty
    /// when negatives are uniform).
    pub fn candidates(&self) -> &[u32] {
        &self.cands
    }

    /// Replaces each negative of `triples` (the last sampled batch) by its hardest candidate
    /// under the final embeddings in `fin`.
    fn pick_negatives(&self, triples: &mut [(u32, u32, u32)]) {
        let m = self.cfg.hard_negatives.max(1);
        pick_negatives(
            &self.fin,
            self.cfg.factors,
            self.n_users,
            triples,
            &self.cands,
            m,
        );
    }

    /// The pointwise loss's entries (`Loss::Ials`), for the GPU trainer.
    pub fn pointwise(&self) -> Option<&Pointwise> {
        match &self.objective {
            Objective::Pointwise(p) => Some(p),
            Objective::Pairs(_) => None,
        }
    }

    /// The normalised adjacency.
    pub fn adjacency(&self) -> &Csr {
        &self.adj
    }

    /// Users in the node table (items follow).
    pub fn n_users(&self) -> usize {
        self.n_users
    }

    fn adam(&mut self) {
        self.t += 1;
        adam_step(
            self.t,
            self.cfg.lr,
            &self.grad,
            &mut self.m,
            &mut self.v,
            &mut self.e0,
        );
        if let Some(s) = &mut self.side {
            adam_step(self.t, self.cfg.lr, &s.gz, &mut s.mz, &mut s.vz, &mut s.z);
        }
    }

    /// Serving vectors (users, items, dim): the final embeddings.
    pub fn export(&mut self) -> (Vec<f32>, Vec<f32>, usize) {
        let d = self.cfg.factors;
        let nu = self.n_users;
        let f = self.final_embeddings().to_vec();
        (f[..nu * d].to_vec(), f[nu * d..].to_vec(), d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> Csr {
        Csr::from_triples(
            3,
            4,
            &[
                (0, 0, 1.0),
                (0, 1, 1.0),
                (1, 1, 1.0),
                (1, 2, 1.0),
                (2, 3, 1.0),
                (2, 0, 1.0),
            ],
        )
    }

    #[test]
    fn propagation_matches_dense_reference() {
        let by_user = toy();
        let adj = normalized_adjacency(&by_user);
        let n = 7;
        // Dense Â.
        let mut a = vec![0f32; n * n];
        let deg_u = [2.0f32, 2.0, 2.0];
        let deg_i = [2.0f32, 2.0, 1.0, 1.0];
        for u in 0..3 {
            for &i in by_user.row(u) {
                let w = 1.0 / (deg_u[u] * deg_i[i as usize]).sqrt();
                a[u * n + 3 + i as usize] = w;
                a[(3 + i as usize) * n + u] = w;
            }
        }
        let d = 2;
        let mut r = Rng::new(1);
        let x: Vec<f32> = (0..n * d).map(|_| r.normal() as f32).collect();
        let mut want = x.clone();
        let mut cur = x.clone();
        for _ in 0..2 {
            let mut nx = vec![0f32; n * d];
            for p in 0..n {
                for q in 0..n {
                    for k in 0..d {
                        nx[p * d + k] += a[p * n + q] * cur[q * d + k];
                    }
                }
            }
            for (w, v) in want.iter_mut().zip(&nx) {
                *w += v;
            }
            cur = nx;
        }
        want.iter_mut().for_each(|v| *v /= 3.0);
        let (mut out, mut c, mut nb) = (vec![0f32; n * d], vec![0f32; n * d], vec![0f32; n * d]);
        propagate(&adj, &x, d, 2, &mut out, &mut c, &mut nb);
        for (g, w) in out.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5, "{g} vs {w}");
        }
    }

    #[test]
    fn tiled_spmm_is_bit_identical_to_the_untiled_one_at_any_thread_count() {
        let seed = 7;
        println!("seed {seed}");
        let mut r = Rng::new(seed);
        let (rows, cols, d) = (90, 300, 13);
        let mut t = Vec::new();
        for row in 0..rows {
            for _ in 0..r.below(40) {
                t.push((row as u32, r.below(cols) as u32, r.normal() as f32));
            }
        }
        let adj = Csr::from_triples(rows, cols, &t);
        let x: Vec<f32> = (0..cols * d).map(|_| r.normal() as f32).collect();
        let mut want = vec![0f32; rows * d];
        spmm_tiled(&adj, &x, d, &mut want, usize::MAX);
        for row in 0..rows {
            for k in 0..d {
                let dense: f64 = (adj.row(row).iter().zip(adj.row_values(row)))
                    .map(|(&c, &w)| w as f64 * x[c as usize * d + k] as f64)
                    .sum();
                let got = want[row * d + k] as f64;
                assert!(
                    (got - dense).abs() < 1e-4 * (1.0 + dense.abs()),
                    "{got} vs {dense}"
                );
            }
        }
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            for tile in [1, 7, 64, 149] {
                let mut got = vec![f32::NAN; rows * d];
                pool.install(|| spmm_tiled(&adj, &x, d, &mut got, tile));
                let same = got
                    .iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "tile {tile}, {threads} threads");
            }
        }
    }

    /// Side features of the toy graph: two user features, one item feature.
    fn toy_sides() -> crate::train::side::Sides {
        crate::train::side::Sides {
            users: Some(Csr::from_triples(
                3,
                2,
                &[(0, 0, 1.0), (1, 1, 1.0), (2, 0, 1.0)],
            )),
            items: Some(Csr::from_triples(4, 1, &[(0, 0, 1.0), (2, 0, 0.5)])),
        }
    }

    /// A 3-factor, 2-layer configuration for the gradient checks.
    fn tiny_cfg(loss: Loss, negatives: usize) -> LightGcnConfig {
        LightGcnConfig {
            factors: 3,
            layers: 2,
            lr: 0.01,
            reg: 0.1,
            batch: 4,
            init_std: 0.5,
            loss,
            weights: crate::train::ials::Weights {
                alpha: 1.0,
                unobserved: 0.5,
                negative: 3.0,
            },
            negatives,
            hard_negatives: 1,
        }
    }

    /// Checks `analytic` against central finite differences of the batch loss in the
    /// parameters `param(m)` (step h).
    fn check_fd(
        m: &mut LightGcn,
        triples: &[(u32, u32, u32)],
        analytic: &[f32],
        h: f32,
        param: fn(&mut LightGcn) -> &mut Vec<f32>,
    ) {
        for (p, &gp) in analytic.iter().enumerate() {
            let w = param(m)[p];
            param(m)[p] = w + h;
            let lp = m.loss_and_grad(triples);
            param(m)[p] = w - h;
            let lm = m.loss_and_grad(triples);
            param(m)[p] = w;
            let fd = (lp - lm) / (2.0 * h as f64);
            assert!(
                (fd - gp as f64).abs() < 2e-3,
                "param {p}: analytic {gp} vs numeric {fd}"
            );
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let cfg = tiny_cfg(Loss::Bpr, 1);
        let mut m = LightGcn::new(cfg, toy(), 5).unwrap();
        let triples = [(0u32, 0u32, 2u32), (1, 2, 3), (2, 3, 1)];
        m.loss_and_grad(&triples);
        let grad = m.grad.clone();
        check_fd(&mut m, &triples, &grad, 1e-2, |m| &mut m.e0);
    }

    /// With side features, the feature embeddings' gradient matches finite differences too.
    #[test]
    fn feature_gradient_matches_finite_differences() {
        let cfg = tiny_cfg(Loss::Bpr, 1);
        let sides = toy_sides();
        let mut m = LightGcn::new(cfg, toy(), 5).unwrap().with_sides(sides, 5);
        let triples = [(0u32, 0u32, 2u32), (1, 2, 3), (2, 3, 1)];
        m.loss_and_grad(&triples);
        let gz = m.side.as_ref().unwrap().gz.clone();
        assert!(gz.iter().any(|g| g.abs() > 1e-4));
        check_fd(&mut m, &triples, &gz, 1e-2, |m| {
            &mut m.side.as_mut().expect("sides were added").z
        });
    }

    /// Rank-aware sampling: every triple carries `m` candidates, none a positive of its user,
    /// the first being the triple's own negative; picking replaces it by the candidate with
    /// the highest final score, and the batch's positives are untouched.
    #[test]
    fn hard_negatives_pick_the_highest_scoring_candidate() {
        let mut cfg = tiny_cfg(Loss::Bpr, 2);
        cfg.hard_negatives = 3;
        let mut m = LightGcn::new(cfg, toy(), 9).unwrap();
        let mut batch = Vec::new();
        m.sample_batch(&mut batch);
        assert_eq!(batch.len(), 8);
        let cands = m.candidates().to_vec();
        assert_eq!(cands.len(), 8 * 3);
        for (t, &(u, i, j)) in batch.iter().enumerate() {
            assert!(m.by_user.contains(u as usize, i));
            assert_eq!(cands[t * 3], j);
            for &c in &cands[t * 3..t * 3 + 3] {
                assert!(
                    !m.by_user.contains(u as usize, c),
                    "candidate {c} is a positive of {u}"
                );
            }
        }
        let f = m.final_embeddings().to_vec();
        let before = batch.clone();
        m.pick_negatives(&mut batch);
        let score = |u: u32, j: u32| -> f32 {
            (0..3)
                .map(|k| f[u as usize * 3 + k] * f[(3 + j as usize) * 3 + k])
                .sum()
        };
        let mut changed = 0;
        for (t, (&(u, i, j), b)) in batch.iter().zip(&before).enumerate() {
            assert_eq!((u, i), (b.0, b.1));
            let c = &cands[t * 3..t * 3 + 3];
            assert!(c.contains(&j));
            assert!(c.iter().all(|&x| score(u, x) <= score(u, j)));
            changed += usize::from(j != b.2);
        }
        // Over 8 triples with 3 random candidates each, some first draw is not the hardest.
        assert!(changed > 0, "picking changed no negative");
    }

    /// The max-margin loss's gradient matches finite differences (away from the hinge).
    #[test]
    fn margin_gradient_matches_finite_differences() {
        let cfg = tiny_cfg(Loss::Margin, 2);
        let mut m = LightGcn::new(cfg, toy(), 5).unwrap();
        let triples = [(0u32, 0u32, 2u32), (1, 2, 3), (2, 3, 1)];
        m.loss_and_grad(&triples);
        let grad = m.grad.clone();
        check_fd(&mut m, &triples, &grad, 1e-3, |m| &mut m.e0);
        // Two negatives per positive: twice the triples.
        let mut batch = Vec::new();
        m.sample_batch(&mut batch);
        assert_eq!(batch.len(), 8);
    }

    /// The pointwise objective summed entry by entry over every (user, item) pair, for the
    /// final embeddings `f` (3 users then 4 items, `d` each).
    fn dense_pointwise(
        observed: &Csr,
        f: &[f32],
        d: usize,
        w: &crate::train::ials::Weights,
    ) -> f64 {
        let (nu, ni) = (observed.rows, observed.cols);
        let mut total = 0f64;
        for u in 0..nu {
            for i in 0..ni {
                let s: f32 = (0..d).map(|k| f[u * d + k] * f[(nu + i) * d + k]).sum();
                let (c, p) = match observed.row(u).iter().position(|&j| j == i as u32) {
                    Some(at) => {
                        let v = observed.row_values(u)[at];
                        (w.confidence(v), crate::train::ials::preference(v))
                    }
                    None => (w.unobserved, 0.0),
                };
                total += (c * (p - s) * (p - s)) as f64;
            }
        }
        total / nu as f64
    }

    /// The toy graph's positives with weights, plus two known negatives (weight ≤ 0).
    fn toy_signed() -> Csr {
        Csr::from_triples(
            3,
            4,
            &[
                (0, 0, 1.0),
                (0, 1, 2.0),
                (0, 3, -1.0),
                (1, 1, 1.0),
                (1, 2, 1.5),
                (2, 3, 1.0),
                (2, 0, 1.0),
                (2, 2, 0.0),
            ],
        )
    }

    /// The Gram trick's loss equals the entry-by-entry sum over all 12 pairs; the user rows of
    /// its gradient match finite differences of that sum, and the item rows those of the sum
    /// without the known negatives (which are one-sided: they shape the users only).
    #[test]
    fn pointwise_loss_and_one_sided_gradient_match_the_dense_sum() {
        let (d, nu) = (3, 3);
        let w = tiny_cfg(Loss::Ials, 1).weights;
        let observed = toy_signed();
        let positives = observed.transpose_where(|v| v > 0.0).transpose();
        let mut r = Rng::new(3);
        let mut f: Vec<f32> = (0..7 * d).map(|_| 0.7 * r.normal() as f32).collect();
        let mut p = Pointwise::new(observed.clone(), d);
        let mut grad = vec![0f32; 7 * d];
        let loss = p.loss_and_grad(&f, d, &w, &mut grad);
        let want = dense_pointwise(&observed, &f, d, &w);
        assert!(
            (loss - want).abs() < 1e-4 * want.abs().max(1.0),
            "{loss} vs {want}"
        );
        let h = 1e-2f32;
        for (q, &g) in grad.iter().enumerate() {
            let reference = if q < nu * d { &observed } else { &positives };
            let x = f[q];
            f[q] = x + h;
            let lp = dense_pointwise(reference, &f, d, &w);
            f[q] = x - h;
            let lm = dense_pointwise(reference, &f, d, &w);
            f[q] = x;
            let fd = (lp - lm) / (2.0 * h as f64);
            assert!(
                (fd - g as f64).abs() < 2e-3,
                "entry {q}: analytic {g} vs numeric {fd}"
            );
        }
        // The negatives matter to the users: without them the user rows differ.
        let mut g2 = vec![0f32; 7 * d];
        Pointwise::new(positives, d).loss_and_grad(&f, d, &w, &mut g2);
        assert!(grad[..nu * d]
            .iter()
            .zip(&g2)
            .any(|(a, b)| (a - b).abs() > 1e-3));
        assert_eq!(&grad[nu * d..], &g2[nu * d..]);
    }

    /// Without known negatives the pointwise gradient is the exact gradient through the
    /// propagation, for the base embeddings and the side-feature embeddings alike.
    #[test]
    fn pointwise_gradient_matches_finite_differences_through_the_graph() {
        let cfg = tiny_cfg(Loss::Ials, 1);
        let sides = toy_sides();
        let weighted = Csr::from_triples(
            3,
            4,
            &[
                (0, 0, 1.0),
                (0, 1, 2.0),
                (1, 1, 1.0),
                (1, 2, 1.0),
                (2, 3, 3.0),
                (2, 0, 1.0),
            ],
        );
        let mut m = LightGcn::new(cfg, weighted, 5)
            .unwrap()
            .with_sides(sides, 5);
        assert_eq!(m.batches_per_epoch(), 1);
        m.loss_and_grad(&[]);
        let (g, gz) = (m.grad.clone(), m.side.as_ref().unwrap().gz.clone());
        assert!(gz.iter().any(|g| g.abs() > 1e-4));
        check_fd(&mut m, &[], &g, 1e-2, |m| &mut m.e0);
        check_fd(&mut m, &[], &gz, 1e-2, |m| {
            &mut m.side.as_mut().expect("sides were added").z
        });
    }

    /// Pointwise training with known negatives lowers its loss and gives the same model on
    /// one thread and on three.
    #[test]
    fn pointwise_training_descends_and_is_thread_count_independent() {
        let train = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut m = LightGcn::new(tiny_cfg(Loss::Ials, 1), toy_signed(), 7).unwrap();
                let losses: Vec<f64> = (0..60).map(|_| m.epoch()).collect();
                (losses, m.e0.clone())
            })
        };
        let (losses, e0) = train(1);
        assert!(
            losses[59] < 0.5 * losses[0],
            "loss {} -> {}",
            losses[0],
            losses[59]
        );
        assert_eq!(e0, train(3).1);
    }
}
