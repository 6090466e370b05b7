//! `lshrec train`.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use crate::data::{self, split::SplitMethod, Csr, Dataset};
use crate::error::{Error, Result};
use crate::eval::{self, RankingReport};
use crate::progress;
use crate::store::{self, ModelMeta, ModelParts};
use crate::train::{self, coldstart, ModelKind, TrainConfig};

/// `lshrec train`
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  lshrec train --data data/ml-100k --model ials --min-rating 4 --split per-user:0.2 --eval --out model/\n  lshrec train --train data/ml-100k/u1.base --test data/ml-100k/u1.test --model ials --out model/\n  lshrec train --data shop/ratings.csv --item-features shop/items.csv --item-numeric-cols price --model ials --out model/\n\nWithout --split or --test, the model trains on all the data. Ranking models treat ratings ≥ --min-rating as positives (every rating when it is not given)."
)]
pub struct TrainArgs {
    /// Dataset directory or ratings file (format detected).
    #[arg(long, required_unless_present = "train")]
    pub data: Option<PathBuf>,
    /// Explicit training file (with --test).
    #[arg(long, requires = "test", conflicts_with = "data")]
    pub train: Option<PathBuf>,
    /// Explicit test file (with --train).
    #[arg(long, requires = "train")]
    pub test: Option<PathBuf>,
    #[command(flatten)]
    pub read: super::ReadArgs,
    /// The model to train.
    #[arg(long, value_enum, default_value = "ials")]
    pub model: ModelKind,
    /// Output model directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Keep ratings ≥ R as positives.
    #[arg(long, value_name = "R")]
    pub min_rating: Option<f32>,
    /// Split the data and evaluate on the held-out part: random:F, per-user:F[:MIN],
    /// per-user-numpy:F[:MIN] (as NumPy's RandomState draws it: at --seed 42 the split the P2
    /// references were measured on), leave-last:N, kfold:K[:FOLD], cold-items:F.
    #[allow(rustdoc::broken_intra_doc_links)] // the brackets are --help text, not links
    #[arg(long)]
    pub split: Option<String>,
    /// Evaluate after training (splits per-user:0.2 when no split is given).
    #[arg(long)]
    pub eval: bool,
    /// Seed for initialisation, sampling and splits.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Latent factors.
    #[arg(long)]
    pub dim: Option<usize>,
    /// Maximum epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Regularisation.
    #[arg(long)]
    pub reg: Option<f32>,
    /// Learning rate: SGD's (mf, bpr), Adam's (lightgcn).
    #[arg(long)]
    pub lr: Option<f32>,
    /// iALS and LightGCN's pointwise loss: confidence slope (c = 1 + alpha·r).
    #[arg(long)]
    pub alpha: Option<f32>,
    /// iALS and LightGCN's pointwise loss: weight of unobserved pairs.
    #[arg(long)]
    pub unobserved_weight: Option<f32>,
    /// iALS exponent of the frequency-scaled regularisation.
    #[arg(long)]
    pub reg_exponent: Option<f32>,
    /// iALS conjugate-gradient steps per row solve (0: exact Cholesky).
    #[arg(long)]
    pub cg_steps: Option<usize>,
    /// LightGCN propagation layers.
    #[arg(long)]
    pub layers: Option<usize>,
    /// LightGCN triples per Adam step (--loss bpr or margin).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Fraction of training data held out for early stopping (0 disables).
    #[arg(long)]
    pub valid_frac: Option<f64>,
    /// Cut-offs for the evaluation.
    #[arg(long, value_delimiter = ',', default_value = "10,20")]
    pub k: Vec<usize>,
    /// Machine-readable summary on stdout.
    #[arg(long)]
    pub json: bool,
    /// Weights of the positives of ranking models: `binary` (1) or `rating` (rating − min + 1,
    /// with min the --min-rating or the lowest rating; iALS turns it into a higher confidence
    /// for higher ratings, with a default alpha of .35 without --min-rating). Default:
    /// `rating` for iALS when every rating is a positive (no --min-rating) and the data has
    /// ratings (chosen on validation splits: NDCG@10 up by about .007), `binary` otherwise.
    #[arg(long, value_enum)]
    pub weights: Option<Weights>,
    /// Side features trained into bpr, lightgcn and mf (LightFM style: an item's vector is its
    /// id embedding plus its genre and decade embeddings; a user's, plus age bucket, gender and
    /// occupation; plus --item-features / --user-features attributes). Default: each model's
    /// choice on a validation split (mf: items; lightgcn: none, or all with --loss bpr or
    /// margin; bpr and ials: none). Data without side information trains without them, with a
    /// note.
    #[arg(long, value_enum)]
    pub features: Option<FeatureChoice>,
    /// iALS and LightGCN's pointwise loss, with --min-rating: `negative` (the default) makes
    /// ratings below it known negatives (observed, preference 0, confidence
    /// --negative-confidence: the user saw the movie and did not like it), which shape the
    /// user's vector only; `ignore` drops them, as the
    /// reference libraries do. On ML-100K P2 negatives raise NDCG@10 from .3229 to .3391 (the
    /// ranking still excludes only the training positives: a movie the user rated 2 stays a
    /// candidate, and now ranks low). Data without ratings below --min-rating trains as with
    /// `ignore`.
    #[arg(long, value_enum)]
    pub low_ratings: Option<LowRatings>,
    /// iALS and LightGCN's pointwise loss: confidence of a known negative (see
    /// --low-ratings), against 1 + alpha·weight for a positive and --unobserved-weight for an
    /// unobserved pair.
    #[arg(long, value_name = "C")]
    pub negative_confidence: Option<f32>,
    /// lightgcn: the loss. `ials` (the default) is the iALS objective over every user–item
    /// pair, trained through the propagation by full-batch Adam (confidence 1 + alpha for a
    /// positive, --unobserved-weight for every other pair, --negative-confidence for a known
    /// negative: ML-100K P2 NDCG@10 .3475 against .3340 for bpr). `bpr` (ln(1 + e^−x)) and
    /// `margin` (max(0, 1 − x)) train on sampled triples, with their own defaults (lr .0015,
    /// reg 3e-3, rank-aware negatives, side features, early stopping).
    #[arg(long, value_enum)]
    pub loss: Option<train::graph::Loss>,
    /// lightgcn: negatives drawn per sampled positive (--loss bpr or margin).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub neg_per_pos: usize,
    /// bpr, lightgcn: rank-aware negatives. Each negative is the one of N candidates (drawn
    /// as plain negatives are) that the current model scores highest for the user (dynamic
    /// negative sampling), so training keeps meeting the items the model still confuses with
    /// the positives; 1 trains on each drawn negative. Default: the model's (bpr: 4, lightgcn
    /// with --loss bpr or margin: 8, chosen on validation splits of MovieLens-100K: NDCG@10 up
    /// by about 5%).
    #[arg(long, value_name = "N")]
    pub hard_negatives: Option<usize>,
    /// Early stopping: epochs without a better validation score before stopping (default: the
    /// model's).
    #[arg(long)]
    pub patience: Option<usize>,
    /// Ridge strength of the cold-start feature maps (item genres/decade and user demographics
    /// to vectors, stored as item_features.npy / user_features.npy).
    #[arg(long, default_value_t = coldstart::MAP_RIDGE)]
    pub map_ridge: f32,
    /// Weight of the unobserved user–movie pairs in the item cold-start map's loss (default: 0.4
    /// times the model's --unobserved-weight, chosen on cold-item validation splits; the user
    /// map keeps the model's).
    #[arg(long, value_name = "W")]
    pub map_unobserved_weight: Option<f32>,
    /// Skip the first-ratings map (first_ratings.npy: a new user's vector from their first
    /// ratings, for `query --first-ratings`), which is fitted when the training file has
    /// timestamps.
    #[arg(long)]
    pub no_first_ratings: bool,
    /// Where to train: `auto` uses a GPU when one is usable and says so when it falls back.
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: train::backend::BackendChoice,
}

/// `--low-ratings`
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LowRatings {
    Ignore,
    Negative,
}

/// `--features`
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FeatureChoice {
    None,
    Items,
    Users,
    All,
}

/// `--weights`
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Weights {
    Binary,
    Rating,
}

pub(super) fn check_ks(ks: &[usize]) -> Result<()> {
    if ks.is_empty() || ks.contains(&0) {
        return Err(Error::invalid(
            "--k",
            "give one or more cut-offs ≥ 1, e.g. 10,20",
        ));
    }
    Ok(())
}

#[derive(Serialize)]
struct TrainSummary<'a> {
    model: &'a str,
    out: String,
    users: usize,
    items: usize,
    train_interactions: usize,
    test_interactions: usize,
    epochs: usize,
    epoch_seconds: f64,
    fit_seconds: f64,
    ranking: Option<&'a RankingReport>,
    rating: Option<&'a eval::RatingReport>,
    history: &'a [train::EpochLog],
}

/// iALS's confidence slope with rating weights (`c = 1 + alpha·weight`, weights 1 to 5 on
/// MovieLens): chosen on the validation parts of three every-rating P2 splits (mean NDCG@10
/// .1972, against .1965 at .5 and .1954 for binary weights at alpha 1).
pub const RATING_WEIGHT_ALPHA: f32 = 0.35;

/// Whether ranking positives carry their rating as weight: `--weights`, or by default for iALS
/// when every rating is a positive.
fn rating_weights(
    a: &TrainArgs,
    min_rating: Option<f32>,
    negatives: bool,
    has_ratings: bool,
) -> Result<bool> {
    match a.weights {
        Some(Weights::Rating) if !has_ratings => Err(Error::invalid(
            "--weights rating",
            "the data has no rating column to weigh positives by",
        )),
        Some(w) => Ok(w == Weights::Rating),
        None => Ok(a.model == ModelKind::Ials && min_rating.is_none() && has_ratings && !negatives),
    }
}

/// A ranking model's training view of `d`: ratings ≥ `min` (every rating without it) as
/// positives of weight 1, or of weight rating − min + 1 (min: the lowest rating when not given)
/// when `weighted`; lower ratings as known negatives when `negatives`.
fn positives(d: Dataset, min: Option<f32>, weighted: bool, negatives: bool) -> Dataset {
    match (min, weighted) {
        (Some(r), _) if negatives => d.signed(r, weighted),
        (Some(r), true) => d.implicit_weighted(r),
        (Some(r), false) => d.implicit(r),
        (None, true) => {
            let lowest = d
                .interactions
                .iter()
                .map(|x| x.rating)
                .fold(f32::INFINITY, f32::min);
            d.implicit_weighted(if lowest.is_finite() { lowest } else { 1.0 })
        }
        (None, false) => d.implicit(f32::NEG_INFINITY),
    }
}

/// Runs `lshrec train`.
pub fn run_train(a: TrainArgs) -> Result<()> {
    check_ks(&a.k)?;
    crate::store::atomic::dir_target(&a.out)?;
    let (backend, note) = train::backend::select(a.backend)?;
    if let Some(n) = note {
        if !progress::is_quiet() {
            eprintln!("{n}");
        }
    }
    let min_rating = super::check_min_rating(a.min_rating)?;
    if min_rating.is_some() && !a.model.is_ranking() {
        return Err(Error::invalid(
            "--min-rating",
            "mf predicts every rating; --min-rating makes positives for the ranking models (ials, bpr, lightgcn)",
        ));
    }
    let mut cfg = train_config(&a, min_rating)?;
    #[cfg(feature = "cuda")]
    if !backend.is_cpu() && a.model == ModelKind::Bpr && a.hard_negatives.is_none() {
        cfg.hard_negatives = 1;
        if !progress::is_quiet() {
            eprintln!("note: rank-aware negatives for bpr train on the CPU only; training on the GPU with uniform negatives (--backend cpu keeps them)");
        }
    }
    #[cfg(feature = "cuda")]
    if !backend.is_cpu() && (cfg.item_features || cfg.user_features) {
        if a.features.is_some() {
            return Err(Error::invalid(
                "--features",
                "side features train on the CPU only; add --backend cpu",
            ));
        }
        cfg.item_features = false;
        cfg.user_features = false;
        if !progress::is_quiet() {
            eprintln!("note: side features train on the CPU only; training on the GPU without them (--backend cpu keeps them)");
        }
    }
    let split_method = split_method(&a)?;
    let negatives = known_negatives(&a, &mut cfg, min_rating)?;
    let Loaded {
        train: train_ds,
        test: test_ds,
        raw,
    } = load_data(&a, &mut cfg, min_rating, negatives, split_method)?;
    note_side_data(&cfg, &train_ds);
    let bar = progress::count_bar(cfg.epochs as u64, &format!("{} epochs", a.model.name()));
    let start = std::time::Instant::now();
    let trained = train::fit_on(&backend, &cfg, &train_ds, &mut |phase, log| {
        bar.set_message(format!(
            "{} {phase}: epoch {} loss {:.4}{}",
            a.model.name(),
            log.epoch,
            log.loss,
            log.valid
                .map(|v| format!(" valid NDCG@10 {v:.4}"))
                .unwrap_or_default()
        ));
        bar.set_position(log.epoch as u64);
    })?;
    bar.finish_and_clear();
    let fit_seconds = start.elapsed().as_secs_f64();

    // Everything the user interacted with (excluded at serving time), and the positives alone
    // (excluded from the evaluation ranking, as the protocol says, and the feature maps' data).
    let train_csr = train_ds.csr();
    let pos_csr = if train_ds.has_negatives() {
        train_ds.positives().csr()
    } else {
        train_csr.clone()
    };
    let rating = match (&test_ds, a.model.is_ranking()) {
        (Some(te), false) => {
            let (lo, hi) = train::rating_range(&train_ds);
            Some(trained.rating_metrics(te, lo, hi))
        }
        _ => None,
    };
    let report = match &test_ds {
        Some(te) if a.model.is_ranking() => {
            let test_csr = te.csr();
            let cold_items = matches!(split_method, Some(SplitMethod::ColdItems { .. }));
            check_test_against_train(&pos_csr, &test_csr, !cold_items)?;
            Some(eval::ranking(
                &trained.users,
                &trained.items,
                trained.dim,
                &pos_csr,
                &test_csr,
                &a.k,
            )?)
        }
        _ => None,
    };
    let metrics = metric_list(rating.as_ref(), report.as_ref());
    let maps = cold_start_maps(&a, &cfg, &train_ds, &pos_csr, &trained)?;
    let meta = ModelMeta {
        item_features: maps.item_features,
        user_features: maps.user_features,
        kind: a.model.name().to_string(),
        dim: trained.dim,
        n_users: train_ds.n_users(),
        n_items: train_ds.n_items(),
        user_ids: train_ds.users.ext_ids().to_vec(),
        item_ids: train_ds.items.ext_ids().to_vec(),
        folded_item_bias: trained.folded_item_bias,
        global_mean: trained.global_mean,
        config: serde_json::to_string(&cfg).expect("config serialises"),
        seed: cfg.seed,
        metrics,
        catalogue: store::model::catalogue(&train_ds),
        files: Vec::new(),
        written_by: String::new(),
    };
    store::save(
        &a.out,
        ModelParts {
            meta,
            users: &trained.users,
            items: &trained.items,
            user_bias: trained.user_bias.as_deref(),
            seen: Some(&seen_with_ratings(&train_csr, &raw)),
            item_feature_map: maps.item.as_deref(),
            user_feature_map: maps.user.as_deref(),
            first_ratings: maps.first_ratings.as_deref(),
        },
    )?;
    let summary = TrainSummary {
        model: a.model.name(),
        out: a.out.display().to_string(),
        users: train_ds.n_users(),
        items: train_ds.n_items(),
        train_interactions: train_ds.interactions.len(),
        test_interactions: test_ds.as_ref().map(|t| t.interactions.len()).unwrap_or(0),
        epochs: trained.epochs,
        epoch_seconds: trained.epoch_seconds,
        fit_seconds,
        ranking: report.as_ref(),
        rating: rating.as_ref(),
        history: &trained.history,
    };
    super::report(a.json, &summary, || {
        let mut s = format!(
            "trained {} ({} factors) on {} interactions of {} users × {} items: {} epochs, {:.3} s/epoch, {:.2} s in all (validation included)\nsaved to {}\n",
            summary.model,
            cfg.dim,
            summary.train_interactions,
            summary.users,
            summary.items,
            summary.epochs,
            summary.epoch_seconds,
            fit_seconds,
            summary.out
        );
        if let Some(r) = &report {
            s.push_str(&r.table());
        }
        if let Some(r) = &rating {
            s.push_str(&format!("rating prediction on {} test ratings (clipped to the training range): RMSE {:.4}, MAE {:.4}\n", r.n, r.rmse, r.mae));
        }
        s
    })
}

/// The training configuration from the flags, each checked against the model it applies to.
fn train_config(a: &TrainArgs, min_rating: Option<f32>) -> Result<TrainConfig> {
    let mut cfg = TrainConfig::defaults_with_loss(a.model, a.loss);
    cfg.seed = a.seed;
    cfg.min_rating = min_rating;
    if let Some(v) = a.dim {
        cfg.dim = v;
    }
    if let Some(v) = a.epochs {
        cfg.epochs = v;
    }
    if let Some(v) = a.reg {
        cfg.reg = v;
    }
    if let Some(v) = a.lr {
        cfg.lr = v;
    }
    if let Some(v) = a.alpha {
        cfg.alpha = v;
    }
    if let Some(v) = a.unobserved_weight {
        cfg.unobserved_weight = v;
    }
    if let Some(v) = a.reg_exponent {
        cfg.reg_exponent = v;
    }
    if let Some(v) = a.cg_steps {
        cfg.cg_steps = v;
    }
    if let Some(v) = a.layers {
        cfg.layers = v;
    }
    if let Some(v) = a.batch {
        if v == 0 {
            return Err(Error::invalid("--batch", "must be at least 1"));
        }
        cfg.batch = v;
    }
    if let Some(v) = a.valid_frac {
        cfg.valid_frac = v;
    }
    if let Some(v) = a.patience {
        cfg.patience = v.max(1);
    }
    // A knob the chosen model never reads is refused rather than ignored.
    let only = |given: bool, flag: &str, models: &[ModelKind], names: &str| -> Result<()> {
        if given && !models.contains(&a.model) {
            return Err(Error::invalid(flag, format!("applies to {names}")));
        }
        Ok(())
    };
    use ModelKind::{Bpr, Ials, Lightgcn, Mf};
    only(
        a.lr.is_some(),
        "--lr",
        &[Bpr, Lightgcn, Mf],
        "--model bpr, lightgcn and mf only (iALS solves in closed form)",
    )?;
    only(
        a.layers.is_some(),
        "--layers",
        &[Lightgcn],
        "--model lightgcn only",
    )?;
    only(
        a.batch.is_some(),
        "--batch",
        &[Lightgcn],
        "--model lightgcn only",
    )?;
    only(
        a.reg_exponent.is_some(),
        "--reg-exponent",
        &[Ials],
        "--model ials only",
    )?;
    only(
        a.cg_steps.is_some(),
        "--cg-steps",
        &[Ials],
        "--model ials only",
    )?;
    if (a.loss.is_some() || a.neg_per_pos != 1) && a.model != ModelKind::Lightgcn {
        return Err(Error::invalid(
            "--loss / --neg-per-pos",
            "apply to --model lightgcn only",
        ));
    }
    if a.neg_per_pos == 0 {
        return Err(Error::invalid("--neg-per-pos", "must be at least 1"));
    }
    if !(a.map_ridge.is_finite() && a.map_ridge > 0.0) {
        return Err(Error::invalid("--map-ridge", "must be a positive number"));
    }
    if let Some(w) = a.map_unobserved_weight {
        if !(w.is_finite() && w >= 0.0) {
            return Err(Error::invalid(
                "--map-unobserved-weight",
                "must be a number ≥ 0",
            ));
        }
    }
    only(
        a.hard_negatives.is_some(),
        "--hard-negatives",
        &[Bpr, Lightgcn],
        "--model bpr and --model lightgcn only",
    )?;
    if let Some(h) = a.hard_negatives {
        if h == 0 || h > 1024 {
            return Err(Error::invalid(
                "--hard-negatives",
                "must be between 1 and 1024",
            ));
        }
        cfg.hard_negatives = h;
    }
    if a.model == ModelKind::Lightgcn
        && cfg.loss.pair().is_none()
        && (a.hard_negatives.is_some() || a.neg_per_pos != 1 || a.batch.is_some())
    {
        return Err(Error::invalid(
            "--hard-negatives / --neg-per-pos / --batch",
            "apply to LightGCN's sampled pairwise losses (--loss bpr or margin); the default pointwise loss trains on every pair at once",
        ));
    }
    cfg.negatives_per_positive = a.neg_per_pos;
    if let Some(f) = a.features {
        if f != FeatureChoice::None && a.model == ModelKind::Ials {
            return Err(Error::invalid(
                "--features",
                "iALS trains without side features (bpr, lightgcn and mf take them); its cold-start maps use them anyway",
            ));
        }
        cfg.item_features = matches!(f, FeatureChoice::Items | FeatureChoice::All);
        cfg.user_features = matches!(f, FeatureChoice::Users | FeatureChoice::All);
    }
    Ok(cfg)
}

/// `--split` (or `--eval`'s default split), if any.
fn split_method(a: &TrainArgs) -> Result<Option<SplitMethod>> {
    let split_method: Option<SplitMethod> = match (&a.split, a.eval) {
        (Some(s), _) => Some(s.parse()?),
        (None, true) if a.model.is_ranking() => Some(SplitMethod::PerUser { frac: 0.2, min: 5 }),
        (None, true) => Some(SplitMethod::Random { frac: 0.2 }),
        (None, false) => None,
    };
    if let Some(m) = split_method {
        m.check_seed(a.seed)?;
    }
    if let Some(SplitMethod::ColdUsers { .. }) = split_method {
        return Err(Error::invalid(
            "--split",
            "a cold-users split is measured by folding the held-out users in: `lshrec data split DATA --method cold-users:0.1 --out DIR`, train on DIR/train.tsv, then `lshrec eval --cold-users DIR/cold_users.txt`",
        ));
    }
    Ok(split_method)
}

/// Whether the ratings below `--min-rating` train as known negatives (and `--negative-confidence`).
fn known_negatives(a: &TrainArgs, cfg: &mut TrainConfig, min_rating: Option<f32>) -> Result<bool> {
    // Known negatives: ratings below --min-rating, by default for the models whose
    // objective reads them (iALS, and LightGCN's pointwise loss).
    let pointwise = a.model == ModelKind::Ials
        || (a.model == ModelKind::Lightgcn && cfg.loss == train::graph::Loss::Ials);
    let negatives = match a.low_ratings {
        Some(LowRatings::Negative) if pointwise && min_rating.is_some() => true,
        Some(LowRatings::Negative) => {
            return Err(Error::invalid(
                "--low-ratings negative",
                "needs --min-rating (ratings below it become known negatives) and --model ials or --model lightgcn --loss ials",
            ))
        }
        Some(LowRatings::Ignore) => false,
        None => pointwise && min_rating.is_some(),
    };
    if let Some(c) = a.negative_confidence {
        if !negatives {
            return Err(Error::invalid(
                "--negative-confidence",
                "applies to known negatives: --min-rating with --model ials or --model lightgcn --loss ials (and --low-ratings negative)",
            ));
        }
        cfg.negative_confidence = c;
    }
    Ok(negatives)
}

/// The training and test data as the model trains on them.
struct Loaded {
    train: Dataset,
    test: Option<Dataset>,
    /// The training part's original ratings, for the model's seen file.
    raw: Csr,
}

/// Loads `--data` (split as asked) or `--train`/`--test`, checks them against the model and the
/// cut-offs, and reduces them to what the model trains on; sets the weights `cfg` takes from them.
fn load_data(
    a: &TrainArgs,
    cfg: &mut TrainConfig,
    min_rating: Option<f32>,
    negatives: bool,
    split_method: Option<SplitMethod>,
) -> Result<Loaded> {
    let opts = a.read.load_options()?;
    // Load, then reduce to positives for ranking models.
    // `raw` keeps the original ratings, so that the model's seen file can show a user's
    // top-rated items even when a ranking model trains on positives of weight 1.
    let weighted: bool;
    let (train_ds, test_ds, raw) = match (&a.data, &a.train, &a.test) {
        (_, Some(train_path), Some(te)) => {
            let (tr, te) = data::load_pair(train_path, te, &opts)?;
            super::note_dataset(&tr);
            super::note_dataset(&te);
            super::check_min_rating_reached(&tr, min_rating, train_path)?;
            weighted = rating_weights(a, min_rating, negatives, tr.has_ratings)?;
            let raw = tr.csr();
            (tr, Some(te), raw)
        }
        (Some(d), _, _) => {
            let ds = data::load(d, &opts)?;
            super::note_dataset(&ds);
            super::check_min_rating_reached(&ds, min_rating, d)?;
            let raw = ds.csr();
            // P3's cold movies are drawn among all rated ones, before --min-rating.
            let cold = match split_method {
                Some(SplitMethod::ColdItems { frac }) => {
                    Some(data::split::cold_items(&ds, frac, a.seed))
                }
                _ => None,
            };
            weighted = rating_weights(a, min_rating, negatives, ds.has_ratings)?;
            let ds = match a.model.is_ranking() {
                true => positives(ds, min_rating, weighted, negatives),
                false => ds,
            };
            match (split_method, cold) {
                (_, Some(cold)) => {
                    let (tr, te) = data::split::split_items(&ds, &cold);
                    (tr, Some(te.positives()), raw)
                }
                (Some(m), None) => {
                    let (tr, te) = data::split::split(&ds, m, a.seed);
                    let spec = a.split.as_deref().unwrap_or("the default split");
                    super::check_holds_out(&te, "--split", spec)?;
                    (tr, Some(te), raw)
                }
                (None, None) => (ds, None, raw),
            }
        }
        _ => {
            return Err(Error::invalid(
                "input",
                "give --data DIR, or --train FILE --test FILE",
            ))
        }
    };
    let reduce = |d: Dataset, train: bool| match a.model.is_ranking() && a.data.is_none() {
        true => positives(d, min_rating, weighted, negatives && train),
        false => d,
    };
    // Validated for every rating a positive (weights 1 to 5); with --min-rating 4 the weights
    // are 1 or 2 and alpha 1 did better (validation NDCG@10 .2262 against .2132 at .35).
    if weighted && a.alpha.is_none() && a.model == ModelKind::Ials && min_rating.is_none() {
        cfg.alpha = RATING_WEIGHT_ALPHA;
    }
    // The cut-offs must fit the catalogue: refused now, not after training.
    if let (Some(_), true) = (&test_ds, a.model.is_ranking()) {
        let kmax = a.k.iter().copied().max().unwrap_or(10);
        if kmax > train_ds.n_items() {
            return Err(Error::invalid(
                "--k",
                format!(
                    "the evaluation's cut-off {kmax} is above the {} items of the catalogue; give smaller ones, e.g. --k {}",
                    train_ds.n_items(),
                    train_ds.n_items().clamp(1, 10)
                ),
            ));
        }
    }
    if !a.model.is_ranking() && !train_ds.has_ratings {
        return Err(Error::invalid(
            "--model",
            "mf predicts ratings, and the training data has no rating column (implicit feedback): train ials, bpr or lightgcn on it",
        ));
    }
    if let (Some(te), false) = (&test_ds, a.model.is_ranking()) {
        if !te.has_ratings {
            return Err(Error::invalid(
                "--test",
                "the test file has no rating column, and mf (rating prediction) is scored by RMSE against test ratings",
            ));
        }
    }
    let train_ds = reduce(train_ds, true);
    if weighted {
        let pos: Vec<f32> = (train_ds.interactions.iter())
            .map(|x| x.rating)
            .filter(|&r| r > 0.0)
            .collect();
        if !pos.is_empty() {
            cfg.positive_weight = pos.iter().sum::<f32>() / pos.len() as f32;
        }
    }
    let test_ds = test_ds.map(|d| reduce(d, false));
    if a.low_ratings.is_some() && negatives && !train_ds.has_negatives() && !progress::is_quiet() {
        eprintln!(
            "note: --low-ratings negative: the training data has no rating below --min-rating"
        );
    }

    Ok(Loaded {
        train: train_ds,
        test: test_ds,
        raw,
    })
}

/// Notes on the side data: features asked for that the data lacks, and attribute columns the
/// cold-start maps would learn little from (id-like, or numbers taken as categories).
fn note_side_data(cfg: &TrainConfig, train_ds: &Dataset) {
    for (want, has, what) in [
        (
            cfg.item_features,
            train_ds.item_info.is_some(),
            "item features (no genres or years in the data)",
        ),
        (
            cfg.user_features,
            train_ds.user_info.is_some(),
            "user features (no demographics in the data)",
        ),
    ] {
        if want && !has && !progress::is_quiet() {
            eprintln!("note: training without {what}");
        }
    }
    if !progress::is_quiet() {
        let sides = [
            (
                "item",
                train_ds.item_info.as_ref().map(|i| (&i.tags, &i.numeric)),
                data::features::item_knots(train_ds),
            ),
            (
                "user",
                train_ds.user_info.as_ref().map(|i| (&i.tags, &i.numeric)),
                data::features::user_knots(train_ds),
            ),
        ];
        for (what, info, knots) in sides {
            let Some((tags, numeric)) = info else {
                continue;
            };
            for c in data::features::categorical_columns(tags, numeric) {
                let (col, v, r) = (&c.name, c.distinct, c.rows);
                let numeric_hint =
                    format!("--{what}-numeric-cols {col} interpolates them between quantile knots");
                if c.id_like() {
                    let hint = match c.numbers {
                        true => format!("; its values are numbers: {numeric_hint}"),
                        false => format!("; choose columns with --{what}-feature-cols"),
                    };
                    eprintln!("note: {what} attribute column {col:?} has {v} distinct values over {r} {what}s: an id-like column teaches the cold-start map little and makes it large{hint}");
                } else if c.looks_numeric() {
                    eprintln!("note: {what} attribute column {col:?} holds {v} distinct numbers, each a category of its own: {numeric_hint}");
                }
            }
            for (col, ks) in &knots.0 {
                let shown: Vec<String> = ks.iter().map(f64::to_string).collect();
                eprintln!(
                    "note: numeric {what} attribute {col:?}: {} knot{} ({}); each value is split between the two nearest",
                    ks.len(),
                    if ks.len() == 1 { "" } else { "s" },
                    shown.join(", ")
                );
            }
        }
    }
}

/// The metrics a model records in its metadata (`model.bin`), in the order they are shown.
fn metric_list(
    rating: Option<&eval::RatingReport>,
    report: Option<&RankingReport>,
) -> Vec<(String, f64)> {
    let mut metrics = Vec::new();
    if let Some(r) = rating {
        metrics.push(("rmse".to_string(), r.rmse));
        metrics.push(("mae".to_string(), r.mae));
    }
    if let Some(r) = report {
        for m in &r.at {
            metrics.push((format!("ndcg@{}", m.k), m.ndcg));
            metrics.push((format!("precision@{}", m.k), m.precision));
            metrics.push((format!("recall@{}", m.k), m.recall));
            metrics.push((format!("mrr@{}", m.k), m.mrr));
            metrics.push((format!("hr@{}", m.k), m.hit_rate));
        }
    }
    metrics
}

/// The cold-start maps a model carries, and the names of the features they read.
struct ColdStartMaps {
    item_features: Vec<String>,
    user_features: Vec<String>,
    /// Item features → item vector (`embed-item`, `eval --cold-items`).
    item: Option<Vec<f32>>,
    /// Demographics → user vector (`query --age …`, the fold-in's prior).
    user: Option<Vec<f32>>,
    /// First ratings → user vector (`query --first-ratings`).
    first_ratings: Option<Vec<f32>>,
}

/// Fits the cold-start maps: ridge from side features to the trained vectors, fitted on the
/// rows that had training interactions, and the first-ratings map.
fn cold_start_maps(
    a: &TrainArgs,
    cfg: &TrainConfig,
    train_ds: &Dataset,
    pos_csr: &Csr,
    trained: &train::Trained,
) -> Result<ColdStartMaps> {
    let item_feats = data::features::items(train_ds);
    let user_feats = data::features::users(train_ds);
    let by_item = pos_csr.transpose();
    let fold = cfg.fold_in();
    let ridge = a.map_ridge;
    let item_fold = coldstart::FoldIn {
        weights: train::ials::Weights {
            unobserved: a
                .map_unobserved_weight
                .unwrap_or(coldstart::MAP_UNOBSERVED_FACTOR * fold.weights.unobserved),
            ..fold.weights
        },
        ..fold
    };
    let item_map = match &item_feats {
        Some(f) => Some(coldstart::fit_map_implicit(
            &f.rows,
            &by_item,
            &trained.users,
            trained.dim,
            item_fold,
            coldstart::MapReg::ridge(ridge),
        )?),
        None => None,
    };
    let user_map = match &user_feats {
        Some(f) => Some(coldstart::fit_map_implicit(
            &f.rows,
            pos_csr,
            &trained.items,
            trained.dim,
            fold,
            // A demographic vector is a new user's vector and the prior `query` folds liked
            // items in toward: shrunk as a trained user's is (see `coldstart::group_reg`).
            coldstart::MapReg {
                ridge,
                rows: Some(fold.reg),
            },
        )?),
        None => None,
    };
    // The first-ratings map, from the training users' positives in the order they gave them.
    let timed = train_ds.interactions.iter().any(|x| x.timestamp != 0);
    let first_ratings = match (timed, a.no_first_ratings) {
        (true, false) => {
            let mut given: Vec<(u32, u32, i64)> = (train_ds.interactions.iter())
                .map(|x| (x.user, x.item, x.timestamp))
                .collect();
            given.sort_unstable();
            let time = |u: u32, i: u32| {
                let k = given.partition_point(|x| (x.0, x.1) < (u, i));
                given
                    .get(k)
                    .filter(|x| (x.0, x.1) == (u, i))
                    .map_or(0, |x| x.2)
            };
            let histories = train::first_ratings::histories(pos_csr, time, cfg.seed);
            Some(train::first_ratings::fit(
                &histories,
                user_feats.as_ref().map(|f| &f.rows),
                &trained.items,
                trained.dim,
            )?)
        }
        (false, false) if !progress::is_quiet() => {
            eprintln!("note: no first-ratings map (query --first-ratings): the training file has no timestamps");
            None
        }
        _ => None,
    };
    Ok(ColdStartMaps {
        item_features: item_feats.map(|f| f.names).unwrap_or_default(),
        user_features: user_feats.map(|f| f.names).unwrap_or_default(),
        item: item_map,
        user: user_map,
        first_ratings,
    })
}

/// The training interactions with their original ratings as values (for display).
fn seen_with_ratings(train: &Csr, raw: &Csr) -> Csr {
    let mut seen = train.clone();
    for u in 0..seen.rows.min(raw.rows) {
        let (a, b) = (seen.indptr[u] as usize, seen.indptr[u + 1] as usize);
        for k in a..b {
            let i = seen.indices[k];
            if let Ok(p) = raw.row(u).binary_search(&i) {
                seen.values[k] = raw.row_values(u)[p];
            }
        }
    }
    seen
}

/// How many of `test`'s (row, column) pairs are also in `train` (rows beyond either are empty).
pub(super) fn overlap(train: &Csr, test: &Csr) -> usize {
    (0..test.rows.min(train.rows))
        .map(|u| {
            let seen = train.row(u);
            // Rows are sorted by column.
            (test.row(u).iter())
                .filter(|i| seen.binary_search(i).is_ok())
                .count()
        })
        .sum()
}

/// Checks a test set against the training positives before ranking. Test pairs that are also
/// training positives of the same user are excluded from the ranking and can never be hit: all
/// of them overlapping (the test file is part of the training file) is refused, some is said on
/// stderr with the count. Also says how many evaluated users have no training positives
/// (held-out users of a cold-users split, say; `untrained_note`): their vectors are zero or
/// untrained, so their lists mean little.
pub(super) fn check_test_against_train(
    train: &Csr,
    test: &Csr,
    untrained_note: bool,
) -> Result<()> {
    let overlap = overlap(train, test);
    let untrained = (0..test.rows)
        .filter(|&u| test.degree(u) > 0 && (u >= train.rows || train.degree(u) == 0))
        .count();
    let n = test.nnz();
    if n > 0 && overlap == n {
        return Err(Error::InvalidArgument {
            what: "--test".into(),
            reason: format!("every one of its {n} test interactions is also a training positive of the same user; the ranking excludes training positives, so none could be hit (is the test file part of the training file? split with `lshrec data split`)"),
        });
    }
    if progress::is_quiet() {
        return Ok(());
    }
    if overlap > 0 {
        eprintln!("note: {overlap} of the {n} test interactions are also training positives of the same user; the ranking excludes them, so they count as misses");
    }
    if untrained_note && untrained > 0 {
        eprintln!("note: {untrained} test users have no training positives, so the model has no taste vector for them (zero or untrained) and ranks for them as for anyone without history; for the held-out users of a cold-users split, `lshrec eval --cold-users FILE` folds them in from a few of their positives");
    }
    Ok(())
}
