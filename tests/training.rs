//! Training: models learn planted structure (tests that can fail), and the same seed and thread
//! count give bit-identical models.

mod common;
use common::{ndcg, planted_ratings};

use lshrec::data::{split, synth, Dataset};
use lshrec::eval;
use lshrec::train::{self, graph, ModelKind, TrainConfig};

/// `train::fit` on a pool of `threads` threads.
fn fit_on_threads(cfg: &TrainConfig, tr: &Dataset, threads: usize) -> train::Trained {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| train::fit(cfg, tr, &mut |_, _| {}).unwrap())
}

fn planted() -> (Dataset, Dataset) {
    let ds = planted_ratings().implicit(4.0);
    split::split(&ds, split::SplitMethod::PerUser { frac: 0.2, min: 5 }, 3)
}

/// NDCG@10 of most-popular, as a 1-dimensional model: user vector 1, item vector = its count.
fn popularity_ndcg(tr: &Dataset, te: &Dataset) -> f64 {
    let csr = tr.csr();
    let csc = csr.transpose();
    let items: Vec<f32> = (0..tr.n_items()).map(|i| csc.degree(i) as f32).collect();
    let users = vec![1.0; tr.n_users()];
    eval::ranking(&users, &items, 1, &csr, &te.csr(), &[10])
        .unwrap()
        .at[0]
        .ndcg
}

#[test]
fn ials_beats_popularity_on_planted_data() {
    let (tr, te) = planted();
    let pop = popularity_ndcg(&tr, &te);
    let mut cfg = TrainConfig::defaults(ModelKind::Ials);
    cfg.dim = 16;
    let t = train::fit(&cfg, &tr, &mut |_, _| {}).unwrap();
    let got = ndcg(&t, &tr, &te);
    println!("iALS NDCG@10 {got:.4}, popularity {pop:.4}");
    assert!(got > pop * 1.1, "iALS {got} vs popularity {pop}");
    // All structure, no popularity: iALS must find the groups.
    let (tr, te) = blocks();
    let t = train::fit(&cfg, &tr, &mut |_, _| {}).unwrap();
    let got = ndcg(&t, &tr, &te);
    println!("iALS on planted groups: NDCG@10 {got:.4}");
    assert!(got > 0.1, "iALS on groups {got}");
}

#[test]
fn same_seed_same_model_any_thread_count() {
    let (tr, _) = planted();
    let mut cfg = TrainConfig::defaults(ModelKind::Ials);
    cfg.dim = 8;
    cfg.epochs = 3;
    let run = |threads: usize| fit_on_threads(&cfg, &tr, threads);
    let a = run(2);
    let b = run(2);
    assert_eq!(a.users, b.users);
    assert_eq!(a.items, b.items);
    // iALS solves rows independently: even the thread count does not matter.
    let c = run(1);
    assert_eq!(a.items, c.items);
    cfg.seed += 1;
    let d = train::fit(&cfg, &tr, &mut |_, _| {}).unwrap();
    assert_ne!(a.items, d.items, "another seed, another model");
}

/// Users in 4 taste groups, each liking 20 random items of its group's 50: the signal is all
/// structure and no popularity.
fn blocks() -> (Dataset, Dataset) {
    let mut b = lshrec::data::DatasetBuilder::new(false, false);
    let mut r = lshrec::rng::Rng::new(1);
    for u in 0..200 {
        let g = u % 4;
        let mut items: Vec<usize> = (g * 50..(g + 1) * 50).collect();
        r.shuffle(&mut items);
        for &i in &items[..20] {
            b.push(&u.to_string(), &i.to_string(), 1.0, 0);
        }
    }
    let ds = b.finish(None, true);
    split::split(&ds, split::SplitMethod::PerUser { frac: 0.2, min: 5 }, 3)
}

#[test]
fn bpr_learns_planted_groups_and_is_deterministic() {
    let (tr, te) = blocks();
    let pop = popularity_ndcg(&tr, &te);
    let mut cfg = TrainConfig::defaults(ModelKind::Bpr);
    cfg.dim = 16;
    cfg.epochs = 150;
    cfg.patience = 10;
    let a = train::fit(&cfg, &tr, &mut |_, _| {}).unwrap();
    let got = ndcg(&a, &tr, &te);
    println!("BPR NDCG@10 {got:.4}, popularity {pop:.4}");
    // Knowing the group alone gives about 4/30 hits per slot; popularity knows nothing here.
    assert!(
        got > pop * 2.0 && got > 0.1,
        "BPR {got} vs popularity {pop}"
    );
    let b = train::fit(&cfg, &tr, &mut |_, _| {}).unwrap();
    assert_eq!(a.items, b.items, "same seed, same BPR model");
}

/// Rank-aware negatives (the hardest of several candidates under the current model) still
/// learn the planted groups, and stay bit-identical for a seed at any thread count: candidates
/// are drawn from the seeded stream in order and picked at the step that uses them.
#[test]
fn hard_negatives_learn_planted_groups_at_any_thread_count() {
    let (tr, te) = blocks();
    let pop = popularity_ndcg(&tr, &te);
    for kind in [ModelKind::Bpr, ModelKind::Lightgcn] {
        let mut cfg = TrainConfig::defaults_with_loss(kind, Some(graph::Loss::Bpr));
        cfg.dim = 16;
        cfg.epochs = if kind == ModelKind::Bpr { 150 } else { 30 };
        cfg.batch = 512;
        cfg.valid_frac = 0.0;
        cfg.hard_negatives = 6;
        let run = |threads: usize| fit_on_threads(&cfg, &tr, threads);
        let a = run(2);
        let got = ndcg(&a, &tr, &te);
        println!("{kind:?} with 6 candidates per negative: NDCG@10 {got:.4}, popularity {pop:.4}");
        assert!(
            got > pop * 2.0 && got > 0.1,
            "{kind:?} {got} vs popularity {pop}"
        );
        assert_eq!(
            run(1).items,
            a.items,
            "{kind:?}: same seed, any thread count"
        );
        cfg.hard_negatives = 1;
        let plain = train::fit(&cfg, &tr, &mut |_, _| {}).unwrap();
        assert_ne!(
            plain.items, a.items,
            "{kind:?}: the candidates changed nothing"
        );
    }
}

#[test]
fn mf_beats_the_global_mean_and_is_deterministic() {
    let cfg = synth::SynthConfig {
        users: 400,
        items: 300,
        ratings: 16_000,
        seed: 4,
        ..Default::default()
    };
    println!("synthetic seed {}", cfg.seed);
    let ds = synth::generate(&cfg).unwrap().0;
    let (tr, te) = split::split(&ds, split::SplitMethod::Random { frac: 0.2 }, 1);
    let mut c = TrainConfig::defaults(ModelKind::Mf);
    c.dim = 16;
    let a = train::fit(&c, &tr, &mut |_, _| {}).unwrap();
    let r = a.rating_metrics(&te, 1.0, 5.0);
    let mu =
        tr.interactions.iter().map(|x| x.rating as f64).sum::<f64>() / tr.interactions.len() as f64;
    let base = (te
        .interactions
        .iter()
        .map(|x| (x.rating as f64 - mu).powi(2))
        .sum::<f64>()
        / te.interactions.len() as f64)
        .sqrt();
    println!("MF RMSE {:.4}, global mean {base:.4}", r.rmse);
    assert!(r.rmse < base * 0.9, "MF {} vs global mean {base}", r.rmse);
    let b = train::fit(&c, &tr, &mut |_, _| {}).unwrap();
    assert_eq!(a.users, b.users, "same seed, same MF model");
    // Folding: users·items = r̂ − μ − b_u.
    let (u, i) = (3usize, 7usize);
    let d = a.dim;
    let dot: f32 = (0..d)
        .map(|k| a.users[u * d + k] * a.items[i * d + k])
        .sum();
    let folded = a.predict(u, i) - a.global_mean.unwrap() - a.user_bias.as_ref().unwrap()[u];
    assert!((dot - folded).abs() < 1e-4);
}

/// A learning rate far too high is a divergence error: MF's loss overflows; LightGCN's
/// pointwise loss stays finite (Adam's steps are bounded by the rate) but explodes.
#[test]
fn diverging_training_is_a_clear_error() {
    let (tr, _) = planted();
    for kind in [ModelKind::Mf, ModelKind::Lightgcn] {
        let mut cfg = TrainConfig::defaults(kind);
        cfg.lr = 1e6;
        cfg.dim = 16;
        cfg.valid_frac = 0.0;
        cfg.epochs = 5;
        let data = match kind {
            ModelKind::Mf => tr.clone(),
            _ => tr.implicit(4.0),
        };
        match train::fit(&cfg, &data, &mut |_, _| {}) {
            Err(e @ lshrec::Error::Diverged { epoch, lr, .. }) => {
                assert!(epoch >= 1 && lr == Some(1e6), "{kind:?}: {e}");
            }
            other => panic!(
                "{kind:?}: expected a divergence error, got {:?}",
                other.map(|_| ())
            ),
        }
    }
}

/// LightGCN, with its default pointwise loss and with BPR: both beat popularity twice over on
/// planted groups, and the same seed gives the same model on one thread.
#[test]
fn lightgcn_learns_planted_groups_and_is_deterministic() {
    let (tr, te) = blocks();
    let pop = popularity_ndcg(&tr, &te);
    for loss in [graph::Loss::Ials, graph::Loss::Bpr] {
        let mut cfg = TrainConfig::defaults_with_loss(ModelKind::Lightgcn, Some(loss));
        assert_eq!(cfg.loss, loss);
        cfg.dim = 16;
        cfg.epochs = 30;
        cfg.batch = 512;
        cfg.valid_frac = 0.0;
        let a = train::fit(&cfg, &tr, &mut |_, _| {}).unwrap();
        let got = ndcg(&a, &tr, &te);
        println!("LightGCN ({loss:?}) NDCG@10 {got:.4}, popularity {pop:.4}");
        assert!(
            got > pop * 2.0 && got > 0.1,
            "LightGCN ({loss:?}) {got} vs popularity {pop}"
        );
        let run = |threads: usize| fit_on_threads(&cfg, &tr, threads);
        assert_eq!(
            run(1).items,
            a.items,
            "{loss:?}: same seed, same model, any thread count"
        );
    }
}
