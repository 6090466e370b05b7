//! Training: models learn planted structure (tests that can fail), and the same seed and thread
//! count give bit-identical models.

use lshrec::data::{split, synth, Dataset};
use lshrec::eval;
use lshrec::train::{self, ModelKind, TrainConfig, Trained};

fn planted() -> (Dataset, Dataset) {
    let cfg = synth::SynthConfig {
        users: 400,
        items: 300,
        ratings: 16_000,
        seed: 9,
        // Flatter popularity than MovieLens, so that taste, not popularity, carries the signal.
        zipf: 0.5,
        ..Default::default()
    };
    println!("synthetic seed {}", cfg.seed);
    let ds = synth::generate(&cfg).unwrap().0.implicit(4.0);
    split::split(&ds, split::SplitMethod::PerUser { frac: 0.2, min: 5 }, 3)
}

fn ndcg(t: &Trained, tr: &Dataset, te: &Dataset) -> f64 {
    eval::ranking(&t.users, &t.items, t.dim, &tr.csr(), &te.csr(), &[10])
        .unwrap()
        .at[0]
        .ndcg
}

#[test]
fn ials_beats_popularity_on_planted_data() {
    let (tr, te) = planted();
    let csr = tr.csr();
    let csc = csr.transpose();
    let items: Vec<f32> = (0..tr.n_items()).map(|i| csc.degree(i) as f32).collect();
    let users = vec![1.0; tr.n_users()];
    let pop = eval::ranking(&users, &items, 1, &csr, &te.csr(), &[10])
        .unwrap()
        .at[0]
        .ndcg;
    let mut cfg = TrainConfig::defaults(ModelKind::Ials);
    cfg.dim = 16;
    let t = train::fit(&cfg, &tr, &mut |_, _| {}).unwrap();
    let got = ndcg(&t, &tr, &te);
    println!("iALS NDCG@10 {got:.4}, popularity {pop:.4}");
    assert!(got > pop * 1.1, "iALS {got} vs popularity {pop}");
}

#[test]
fn same_seed_same_model_any_thread_count() {
    let (tr, _) = planted();
    let mut cfg = TrainConfig::defaults(ModelKind::Ials);
    cfg.dim = 8;
    cfg.epochs = 3;
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| train::fit(&cfg, &tr, &mut |_, _| {}).unwrap())
    };
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
