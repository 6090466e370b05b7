//! Offline training. One file per model; each implements [`Trainer`], and [`fit`] drives any of
//! them with early stopping on a validation split carved out of the training data.
//!
//! Every model exports plain vectors with `score(u, i) = users[u] · items[i]`; biases are folded
//! into extra columns so that serving is maximum-inner-product search whatever the model.

pub mod backend;
pub mod bpr;
mod cg;
pub mod coldstart;
pub mod first_ratings;
pub mod graph;
pub mod ials;
pub mod mf;
pub mod side;

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::data::split::{split, SplitMethod};
use crate::data::{Csr, Dataset};
use crate::error::{Error, Result};
use crate::eval;
use crate::rng::Rng;
pub use backend::Backend;

/// The models lshrec trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Weighted implicit ALS (ranking).
    Ials,
    /// BPR matrix factorisation with an item bias (ranking).
    Bpr,
    /// Explicit biased matrix factorisation (rating prediction).
    Mf,
    /// LightGCN graph convolution, trained with the iALS objective or BPR (ranking).
    Lightgcn,
}

impl ModelKind {
    /// The name recorded in model files.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Ials => "ials",
            ModelKind::Bpr => "bpr",
            ModelKind::Mf => "mf",
            ModelKind::Lightgcn => "lightgcn",
        }
    }

    /// True for ranking models, which train on positives and validate with NDCG@10; rating
    /// models validate with RMSE.
    pub fn is_ranking(self) -> bool {
        self != ModelKind::Mf
    }
}

/// Everything a training run needs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainConfig {
    pub kind: ModelKind,
    pub dim: usize,
    /// Maximum epochs (early stopping may use fewer).
    pub epochs: usize,
    pub seed: u64,
    /// Regularisation strength.
    pub reg: f32,
    /// SGD learning rate (mf, bpr).
    pub lr: f32,
    /// mf: regularisation of the biases.
    pub reg_bias: f32,
    /// bpr: negative sampling.
    pub negatives: bpr::Negatives,
    /// lightgcn: propagation layers.
    pub layers: usize,
    /// lightgcn: triples per Adam step.
    pub batch: usize,
    /// iALS: confidence slope.
    pub alpha: f32,
    /// iALS: weight of unobserved pairs.
    pub unobserved_weight: f32,
    /// iALS: exponent of the frequency-scaled regularisation.
    pub reg_exponent: f32,
    /// iALS: conjugate-gradient steps per row (0: exact Cholesky solves).
    pub cg_steps: usize,
    /// Fraction of each user's training interactions held out for early stopping (0 disables).
    pub valid_frac: f64,
    /// Epochs without improvement before stopping.
    pub patience: usize,
    /// lightgcn: the loss (the pointwise iALS objective, BPR or max-margin; files that name
    /// none were trained with BPR).
    #[serde(default)]
    pub loss: graph::Loss,
    /// lightgcn: negatives per sampled positive.
    #[serde(default = "one")]
    pub negatives_per_positive: usize,
    /// bpr, lightgcn: candidates drawn per negative, of which the one the current model scores
    /// highest is trained on (rank-aware, dynamic negative sampling; 1: plain sampling).
    #[serde(default = "one")]
    pub hard_negatives: usize,
    /// bpr, lightgcn, mf: train with item side features (genres, decade), LightFM style.
    #[serde(default)]
    pub item_features: bool,
    /// bpr, lightgcn, mf: train with user side features (age bucket, gender, occupation).
    #[serde(default)]
    pub user_features: bool,
    /// Mean weight of the training positives (1 with binary weights, more with `--weights
    /// rating`): a new user's liked items get this weight in the fold-in, as a typical
    /// positive had in training.
    #[serde(default = "one_f32")]
    pub positive_weight: f32,
    /// iALS: confidence of a known negative (a rating below --min-rating under `--low-ratings
    /// negative`). Files written before it existed used 1 + alpha, 2 at the default alpha.
    #[serde(default = "two_f32")]
    pub negative_confidence: f32,
    /// Ranking models: the `--min-rating` the positives were cut at (none: every rating),
    /// which `lshrec eval` applies when it is not given one.
    #[serde(default)]
    pub min_rating: Option<f32>,
}

impl TrainConfig {
    /// The learning rate, for the models trained by gradient steps (not iALS).
    pub fn learning_rate(&self) -> Option<f32> {
        (self.kind != ModelKind::Ials).then_some(self.lr)
    }

    /// The fold-in and cold-start-map constants of a model trained with this configuration: a
    /// positive's confidence as in training (alpha times the mean positive weight), the
    /// unobserved weight and the regularisation.
    pub fn fold_in(&self) -> coldstart::FoldIn {
        coldstart::FoldIn {
            weights: ials::Weights {
                alpha: self.alpha * self.positive_weight,
                unobserved: self.unobserved_weight,
                negative: self.negative_confidence,
            },
            reg: self.reg,
            prior_weight: coldstart::PRIOR_WEIGHT,
        }
    }

    /// Defaults tuned for `kind` on MovieLens-100K (validation split, never the test split).
    pub fn defaults(kind: ModelKind) -> Self {
        let base = TrainConfig {
            kind,
            dim: 64,
            epochs: 15,
            seed: 42,
            reg: 0.05,
            lr: 0.0,
            reg_bias: 0.0,
            negatives: bpr::Negatives::Uniform,
            layers: 3,
            batch: 2048,
            alpha: 1.0,
            unobserved_weight: 0.1,
            reg_exponent: 1.0,
            cg_steps: 3,
            valid_frac: 0.1,
            patience: 3,
            item_features: false,
            user_features: false,
            positive_weight: 1.0,
            loss: graph::Loss::Bpr,
            negatives_per_positive: 1,
            hard_negatives: 1,
            negative_confidence: ials::NEGATIVE_CONFIDENCE,
            min_rating: None,
        };
        match kind {
            // Chosen on three validation splits of the P2 training data (mean NDCG@10 .2195
            // against .2174 for 64 factors, reg .05, w0 .1; grid: 64–256 factors, reg .005–.1,
            // w0 .05–1, alpha 1 and 3).
            ModelKind::Ials => TrainConfig {
                dim: 128,
                epochs: 30,
                reg: 0.02,
                unobserved_weight: 0.7,
                ..base
            },
            // BPR's validation NDCG climbs slowly under SGD noise for hundreds of epochs: a short
            // patience stops it on a dip (patience 10 stopped at epoch 36, NDCG@10 .2661;
            // running on to the best of 400 epochs gives .2954). Rank-aware negatives, the
            // hardest of 4, with a lower rate and more L2: mean NDCG@10 .2131 on three
            // validation splits of the P2 training data, against .2032 for uniform negatives
            // (lr .03, reg .02); with lr .03 they overfit within 30 epochs (.1953).
            ModelKind::Bpr => TrainConfig {
                dim: 64,
                epochs: 400,
                lr: 0.01,
                reg: 0.05,
                patience: 100,
                hard_negatives: 4,
                ..base
            },
            // LightGCN with the pointwise iALS objective (see `graph`): one full-batch Adam step
            // per epoch, no sampling. Mean NDCG@10 .2284 on three validation splits of the P2
            // training data, against .2202 for the pairwise defaults below and .2244 for iALS
            // itself (grid: lr .01, reg 1e-3 to 3e-3 (.1974 to .2154, best 2e-3), w0 .5 to 1.5
            // (best 1), 2 to 4 layers (.2001, .2284, .2089), 128 or 256 dims (.2291), 400 or
            // 600 epochs (.2267), with side features .2271, without known negatives .2214).
            // Early stopping on a held-out tenth stopped too soon (.2237), so it trains a fixed
            // 400 epochs on all of the training data.
            ModelKind::Lightgcn => TrainConfig {
                dim: 128,
                epochs: 400,
                lr: 0.01,
                reg: 2e-3,
                unobserved_weight: 1.0,
                valid_frac: 0.0,
                patience: 60,
                loss: graph::Loss::Ials,
                ..base
            },
            // Validation RMSE plateaus for ~10 epochs before its minimum: patience 4 stopped
            // early (test RMSE .9102), 20 reaches the minimum at epoch 56 (.9082).
            // Item features (genres, decade) lower the validation RMSE from .8935 to .8858.
            ModelKind::Mf => TrainConfig {
                dim: 200,
                epochs: 200,
                lr: 0.01,
                reg: 0.1,
                reg_bias: 0.02,
                patience: 20,
                item_features: true,
                ..base
            },
        }
    }

    /// LightGCN's defaults for a pairwise loss (`--loss bpr` or `margin`). The same selection
    /// for the pairwise losses: patience 10 stopped at epoch 55 (.2719), 60 at 92 (.2856).
    /// Both feature sides: validation NDCG@10 .1610 against .1589 without. Rank-aware
    /// negatives (the hardest of 8) with BPR's loss, 128 dims and lr .0015: mean NDCG@10 .2199
    /// on three validation splits of the P2 training data (two seeds), against .2094 for
    /// uniform negatives with the max-margin loss, 64 dims and lr .005 (at lr .0025: .2161;
    /// hardest of 8 with max-margin: .2176; of 16: .2161; of 32: .1979; without features:
    /// .2130; 256 dims: .2189).
    pub fn lightgcn_pairwise(loss: graph::Loss) -> Self {
        TrainConfig {
            lr: 0.0015,
            reg: 3e-3,
            unobserved_weight: 0.1,
            valid_frac: 0.1,
            item_features: true,
            user_features: true,
            hard_negatives: 8,
            loss,
            ..Self::defaults(ModelKind::Lightgcn)
        }
    }

    /// The defaults for `kind`, with LightGCN's `loss` when one is given.
    pub fn defaults_with_loss(kind: ModelKind, loss: Option<graph::Loss>) -> Self {
        match (kind, loss) {
            (ModelKind::Lightgcn, Some(l)) if l.pair().is_some() => Self::lightgcn_pairwise(l),
            _ => Self::defaults(kind),
        }
    }

    fn validate(&self) -> Result<()> {
        if self.dim == 0 || self.dim > 4096 {
            return Err(Error::invalid("--dim", "must be between 1 and 4096"));
        }
        if self.epochs == 0 {
            return Err(Error::invalid("--epochs", "must be at least 1"));
        }
        if !(0.0..0.9).contains(&self.valid_frac) {
            return Err(Error::invalid("--valid-frac", "must be in [0, 0.9)"));
        }
        for (name, v) in [
            ("--reg", self.reg),
            ("--lr", self.lr),
            ("--alpha", self.alpha),
            ("--unobserved-weight", self.unobserved_weight),
            ("--reg-exponent", self.reg_exponent),
            ("--negative-confidence", self.negative_confidence),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::invalid(name, "must be a non-negative number"));
            }
        }
        Ok(())
    }
}

/// One epoch's log line.
#[derive(Clone, Debug, Serialize)]
pub struct EpochLog {
    pub epoch: usize,
    pub loss: f64,
    /// Validation NDCG@10 (ranking) or RMSE (rating), when validating.
    pub valid: Option<f64>,
    pub seconds: f64,
}

/// A trained model's exported vectors.
#[derive(Clone, Debug)]
pub struct Trained {
    pub kind: ModelKind,
    /// Serving dimension (factors plus folded bias columns).
    pub dim: usize,
    pub users: Vec<f32>,
    pub items: Vec<f32>,
    pub user_bias: Option<Vec<f32>>,
    pub global_mean: Option<f32>,
    pub folded_item_bias: bool,
    /// Epochs of the final fit.
    pub epochs: usize,
    pub history: Vec<EpochLog>,
    /// Seconds per epoch of the final fit.
    pub epoch_seconds: f64,
}

impl Trained {
    /// A ranking model's export: plain vectors, no biases, no history yet.
    pub fn plain(
        kind: ModelKind,
        users: Vec<f32>,
        items: Vec<f32>,
        dim: usize,
        folded_item_bias: bool,
    ) -> Self {
        Trained {
            kind,
            dim,
            users,
            items,
            user_bias: None,
            global_mean: None,
            folded_item_bias,
            epochs: 0,
            history: Vec::new(),
            epoch_seconds: 0.0,
        }
    }

    /// An MF model's export: folded vectors plus the user biases and the global mean.
    pub fn mf(m: &mf::Mf) -> Self {
        let (users, items, dim, bu) = m.export();
        Trained {
            user_bias: Some(bu),
            global_mean: Some(m.mu),
            ..Trained::plain(ModelKind::Mf, users, items, dim, true)
        }
    }

    /// The predicted rating of a rating model (`μ + b_u + users[u]·items[i]`), or the plain score.
    pub fn predict(&self, u: usize, i: usize) -> f32 {
        let d = self.dim;
        let dot = crate::simd::dot(
            &self.users[u * d..(u + 1) * d],
            &self.items[i * d..(i + 1) * d],
        );
        self.global_mean.unwrap_or(0.0) + self.user_bias.as_ref().map(|b| b[u]).unwrap_or(0.0) + dot
    }

    /// RMSE and MAE on `test`, predictions clipped to `[lo, hi]`.
    pub fn rating_metrics(&self, test: &Dataset, lo: f32, hi: f32) -> eval::RatingReport {
        let n_users = self.users.len() / self.dim;
        let n_items = self.items.len() / self.dim;
        let pred: Vec<f32> = test
            .interactions
            .iter()
            .map(|x| {
                // Users or items beyond the model (never in training) fall back to the baseline.
                let (u, i) = (x.user as usize, x.item as usize);
                match (u < n_users, i < n_items) {
                    (true, true) => self.predict(u, i),
                    _ => self.global_mean.unwrap_or(0.0),
                }
            })
            .collect();
        let truth: Vec<f32> = test.interactions.iter().map(|x| x.rating).collect();
        let (rmse, mae) = eval::rmse_mae(&pred, &truth, lo, hi);
        eval::RatingReport {
            rmse,
            mae,
            n: truth.len(),
        }
    }
}

/// What every model implements.
pub trait Trainer {
    /// Runs one epoch and returns the training loss.
    fn epoch(&mut self) -> Result<f64>;
    /// The current model, exported (a GPU trainer copies it back from the device).
    fn export(&self) -> Result<Trained>;
}

/// The side features `cfg` asks for that `train` has.
pub fn sides(cfg: &TrainConfig, train: &Dataset) -> side::Sides {
    side::Sides {
        users: cfg
            .user_features
            .then(|| crate::data::features::users(train).map(|f| f.rows))
            .flatten(),
        items: cfg
            .item_features
            .then(|| crate::data::features::items(train).map(|f| f.rows))
            .flatten(),
    }
}

/// The BPR hyperparameters of a training configuration.
pub fn bpr_config(cfg: &TrainConfig) -> bpr::BprConfig {
    bpr::BprConfig {
        factors: cfg.dim,
        lr: cfg.lr,
        reg: cfg.reg,
        negatives: cfg.negatives,
        hard_negatives: cfg.hard_negatives.max(1),
        init_std: 0.1,
    }
}

/// The LightGCN hyperparameters of a training configuration.
pub fn lightgcn_config(cfg: &TrainConfig) -> graph::LightGcnConfig {
    graph::LightGcnConfig {
        factors: cfg.dim,
        layers: cfg.layers,
        lr: cfg.lr,
        reg: cfg.reg,
        batch: cfg.batch.max(1),
        init_std: 0.1,
        loss: cfg.loss,
        // The pointwise loss is iALS's objective, with iALS's reading of the configuration.
        weights: ials::config(cfg).weights(),
        negatives: cfg.negatives_per_positive.max(1),
        hard_negatives: cfg.hard_negatives.max(1),
    }
}

/// A negative item for user `u` (rows of `by_user`): the first of up to 32 draws of `sample`
/// that `u` has not interacted with (none: a user who liked almost everything). Shared by the
/// BPR and LightGCN samplers.
pub(crate) fn draw_negative(
    by_user: &Csr,
    u: u32,
    rng: &mut Rng,
    mut sample: impl FnMut(&mut Rng) -> u32,
) -> Option<u32> {
    (0..32)
        .map(|_| sample(rng))
        .find(|&j| !by_user.contains(u as usize, j))
}

/// Rank-aware negatives: appends the drawn negative `first` and `m − 1` further draws of
/// `draw` to `cands` (a draw that finds none repeats `first`); nothing when `m` is 1.
pub(crate) fn push_candidates(
    cands: &mut Vec<u32>,
    first: u32,
    m: usize,
    mut draw: impl FnMut() -> Option<u32>,
) {
    if m > 1 {
        cands.push(first);
        for _ in 1..m {
            cands.push(draw().unwrap_or(first));
        }
    }
}

fn one() -> usize {
    1
}

fn one_f32() -> f32 {
    1.0
}

fn two_f32() -> f32 {
    2.0
}

/// The MF hyperparameters of a training configuration.
pub fn mf_config(cfg: &TrainConfig) -> mf::MfConfig {
    mf::MfConfig {
        factors: cfg.dim,
        lr: cfg.lr,
        reg: cfg.reg,
        reg_bias: cfg.reg_bias,
        init_std: 0.1,
    }
}

fn make(cfg: &TrainConfig, train: &Dataset, backend: &Backend) -> Result<Box<dyn Trainer>> {
    let m = train.csr();
    #[cfg(feature = "cuda")]
    if let Backend::Cuda(gpu) = backend {
        return crate::gpu::cuda::trainer(gpu, cfg, m);
    }
    let _ = backend;
    Ok(match cfg.kind {
        ModelKind::Ials => Box::new(ials::IalsTrainer::new(cfg, m)?),
        ModelKind::Bpr => Box::new(BprTrainer(
            bpr::Bpr::new(bpr_config(cfg), m, cfg.seed)?.with_sides(sides(cfg, train), cfg.seed),
        )),
        ModelKind::Lightgcn => Box::new(GraphTrainer::new_boxed(
            graph::LightGcn::new(lightgcn_config(cfg), m, cfg.seed)?
                .with_sides(sides(cfg, train), cfg.seed),
        )),
        ModelKind::Mf => Box::new(MfTrainer(
            mf::Mf::new(mf_config(cfg), &m, cfg.seed)?.with_sides(sides(cfg, train), cfg.seed),
        )),
    })
}

struct BprTrainer(bpr::Bpr);

impl Trainer for BprTrainer {
    fn epoch(&mut self) -> Result<f64> {
        Ok(self.0.epoch())
    }

    fn export(&self) -> Result<Trained> {
        let (users, items, dim) = self.0.export();
        Ok(Trained::plain(ModelKind::Bpr, users, items, dim, true))
    }
}

struct GraphTrainer(std::cell::RefCell<graph::LightGcn>);

impl GraphTrainer {
    fn new_boxed(g: graph::LightGcn) -> Self {
        GraphTrainer(std::cell::RefCell::new(g))
    }
}

impl Trainer for GraphTrainer {
    fn epoch(&mut self) -> Result<f64> {
        Ok(self.0.get_mut().epoch())
    }

    fn export(&self) -> Result<Trained> {
        let (users, items, dim) = self.0.borrow_mut().export();
        Ok(Trained::plain(
            ModelKind::Lightgcn,
            users,
            items,
            dim,
            false,
        ))
    }
}

struct MfTrainer(mf::Mf);

impl Trainer for MfTrainer {
    fn epoch(&mut self) -> Result<f64> {
        Ok(self.0.epoch())
    }

    fn export(&self) -> Result<Trained> {
        Ok(Trained::mf(&self.0))
    }
}

/// The rating range of `ds` (for clipping predictions).
pub fn rating_range(ds: &Dataset) -> (f32, f32) {
    let lo = ds
        .interactions
        .iter()
        .map(|x| x.rating)
        .fold(f32::INFINITY, f32::min);
    let hi = ds
        .interactions
        .iter()
        .map(|x| x.rating)
        .fold(f32::NEG_INFINITY, f32::max);
    if lo.is_finite() && hi.is_finite() {
        (lo, hi)
    } else {
        (f32::NEG_INFINITY, f32::INFINITY)
    }
}

/// Fits `cfg.kind` on `train`. With `valid_frac > 0`, a per-user validation split of the
/// training data picks the number of epochs (early stopping with `patience`), and the model is
/// then refit on all of `train` for that many epochs, so no test data is ever looked at.
/// `on_epoch` receives each epoch's log (for progress bars).
pub fn fit(
    cfg: &TrainConfig,
    train: &Dataset,
    on_epoch: &mut dyn FnMut(&str, &EpochLog),
) -> Result<Trained> {
    fit_on(&Backend::Cpu, cfg, train, on_epoch)
}

/// [`fit`] on a chosen backend. Both backends start from the same initial vectors and draw the
/// same samples, and write the same model files.
pub fn fit_on(
    backend: &Backend,
    cfg: &TrainConfig,
    train: &Dataset,
    on_epoch: &mut dyn FnMut(&str, &EpochLog),
) -> Result<Trained> {
    cfg.validate()?;
    if train.interactions.is_empty() {
        return Err(Error::invalid(
            "training data",
            "no interactions to train on",
        ));
    }
    let mut history = Vec::new();
    let mut epochs = cfg.epochs;
    if cfg.valid_frac > 0.0 {
        let method = if cfg.kind.is_ranking() {
            SplitMethod::PerUser {
                frac: cfg.valid_frac,
                min: 5,
            }
        } else {
            SplitMethod::Random {
                frac: cfg.valid_frac,
            }
        };
        let (sub, valid) = split(train, method, cfg.seed ^ 0x5EED);
        if !valid.interactions.is_empty() {
            // Validation ranks everything but the sub-training positives (known negatives stay
            // candidates, as in the evaluation protocol).
            let sub_csr = sub.positives().csr();
            let valid_csr = valid.csr();
            let mut t = make(cfg, &sub, backend)?;
            let (mut best, mut best_epoch, mut since) = (f64::NEG_INFINITY, 0, 0);
            let mut first = None;
            for e in 1..=cfg.epochs {
                let start = Instant::now();
                let loss = check_loss(t.epoch()?, &mut first, e, cfg.learning_rate())?;
                let score = if cfg.kind.is_ranking() {
                    let m = t.export()?;
                    validate(&m.users, &m.items, m.dim, &sub_csr, &valid_csr)?
                } else {
                    let (lo, hi) = rating_range(&sub);
                    -t.export()?.rating_metrics(&valid, lo, hi).rmse
                };
                let log = EpochLog {
                    epoch: e,
                    loss,
                    valid: Some(score),
                    seconds: start.elapsed().as_secs_f64(),
                };
                on_epoch("validating", &log);
                history.push(log);
                if score > best {
                    best = score;
                    best_epoch = e;
                    since = 0;
                } else {
                    since += 1;
                    if since >= cfg.patience {
                        break;
                    }
                }
            }
            epochs = best_epoch.max(1);
        }
    }
    let mut t = make(cfg, train, backend)?;
    let start = Instant::now();
    let mut first = None;
    for e in 1..=epochs {
        let s = Instant::now();
        let loss = check_loss(t.epoch()?, &mut first, e, cfg.learning_rate())?;
        on_epoch(
            "final fit",
            &EpochLog {
                epoch: e,
                loss,
                valid: None,
                seconds: s.elapsed().as_secs_f64(),
            },
        );
    }
    let mut out = t.export()?;
    out.epochs = epochs;
    out.epoch_seconds = start.elapsed().as_secs_f64() / epochs as f64;
    out.history = history;
    Ok(out)
}

/// How many times the first epoch's loss a later epoch's may reach before training counts as
/// diverged (a too-high learning rate can leave every value finite while the loss explodes).
const DIVERGENCE_FACTOR: f64 = 1e4;

/// Fails on a non-finite loss, or on one [`DIVERGENCE_FACTOR`] times the first epoch's.
fn check_loss(loss: f64, first: &mut Option<f64>, epoch: usize, lr: Option<f32>) -> Result<f64> {
    let start = *first.get_or_insert(loss);
    let what = if !loss.is_finite() {
        "the training loss is not finite"
    } else if start > 0.0 && loss > DIVERGENCE_FACTOR * start {
        "the training loss grew to over 10⁴ times the first epoch's"
    } else {
        return Ok(loss);
    };
    Err(Error::Diverged {
        epoch,
        what: what.into(),
        lr,
    })
}

fn validate(users: &[f32], items: &[f32], d: usize, train: &Csr, valid: &Csr) -> Result<f64> {
    let r = eval::ranking(users, items, d, train, valid, &[10])?;
    Ok(r.at[0].ndcg)
}
