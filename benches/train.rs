//! Training epochs on a MovieLens-100K-shaped set (943 users, 1682 items, ~55k positives):
//! elements = interactions, so the report reads as interactions per second.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lshrec::data::synth;
use lshrec::train::{self, graph, ModelKind, TrainConfig};

fn bench_train(c: &mut Criterion) {
    let (ds, _) = synth::generate(&synth::SynthConfig::default()).unwrap();
    let pos = ds.implicit(4.0);
    let mut g = c.benchmark_group("train_epoch_ml100k_shape");
    g.sample_size(10);
    // BPR twice: with uniform negatives (what implicit's BPR does, for the per-epoch comparison
    // in the README) and with its default rank-aware negatives (the hardest of 4 candidates).
    for (name, kind, hard) in [
        ("ials", ModelKind::Ials, None),
        ("bpr_uniform", ModelKind::Bpr, Some(1)),
        ("bpr_default", ModelKind::Bpr, None),
        ("mf", ModelKind::Mf, None),
        // One full-batch step of the pointwise loss through three layers.
        ("lightgcn", ModelKind::Lightgcn, None),
    ] {
        let data = if kind == ModelKind::Mf { &ds } else { &pos };
        g.throughput(Throughput::Elements(data.interactions.len() as u64));
        let mut cfg = TrainConfig::defaults(kind);
        cfg.epochs = 1;
        cfg.valid_frac = 0.0;
        if kind != ModelKind::Mf {
            cfg.dim = 64;
        }
        if let Some(h) = hard {
            cfg.hard_negatives = h;
        }
        g.bench_function(name, |b| {
            b.iter(|| train::fit(&cfg, data, &mut |_, _| {}).unwrap())
        });
    }
    g.finish();
}

/// One propagation layer (`Â·X`, 128 dims) of a graph too large for the cache: 100k users,
/// 20k items, 2M edges drawn at random. Elements = edges in both directions, so the report reads
/// as gathered rows per second.
fn bench_spmm(c: &mut Criterion) {
    let (nu, ni, edges, d) = (100_000, 20_000, 2_000_000, 128);
    let mut r = lshrec::rng::Rng::new(42);
    let t: Vec<(u32, u32, f32)> = (0..edges)
        .map(|_| (r.below(nu) as u32, r.below(ni) as u32, 1.0))
        .collect();
    let by_user = lshrec::data::Csr::from_triples(nu, ni, &t);
    let adj = graph::normalized_adjacency(&by_user);
    let x: Vec<f32> = (0..adj.rows * d).map(|_| r.normal() as f32).collect();
    let mut out = vec![0f32; adj.rows * d];
    let mut g = c.benchmark_group("propagation");
    g.sample_size(10);
    g.throughput(Throughput::Elements(adj.nnz() as u64));
    g.bench_function("spmm_120k_nodes_128d", |b| {
        b.iter(|| graph::spmm(&adj, &x, d, &mut out))
    });
    g.finish();
}

criterion_group!(benches, bench_train, bench_spmm);
criterion_main!(benches);
