//! CPU vs GPU, side by side: `cpu_*` and `cuda_*` for exact top-K scoring, LSH hashing and a
//! training epoch of every model. The GPU clock stops only after a device synchronisation (the
//! GPU calls return host results, and training epochs read their loss back). Without the `cuda`
//! feature or a GPU, only the CPU half runs and a SKIPPED line says so:
//! `cargo bench --features cuda --bench gpu`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lshrec::data::synth;
use lshrec::rng::Rng;
use lshrec::train::{self, Backend, ModelKind, TrainConfig};

fn backends() -> Vec<(&'static str, Backend)> {
    let cpu = ("cpu", Backend::Cpu);
    #[cfg(feature = "cuda")]
    match lshrec::gpu::cuda::Gpu::open() {
        Ok(g) => vec![cpu, ("cuda", Backend::Cuda(g))],
        Err(e) => {
            eprintln!("SKIPPED: cuda_* benches: {e}");
            vec![cpu]
        }
    }
    #[cfg(not(feature = "cuda"))]
    {
        eprintln!("SKIPPED: cuda_* benches: built without the cuda feature");
        vec![cpu]
    }
}

fn bench_scoring(c: &mut Criterion) {
    let (nu, ni, d, k) = (2048, 100_000, 64, 10);
    let mut r = Rng::new(1);
    let users: Vec<f32> = (0..nu * d).map(|_| r.normal() as f32).collect();
    let items: Vec<f32> = (0..ni * d).map(|_| r.normal() as f32).collect();
    let planes = lshrec::index::hash::hyperplanes(256, d + 1, 2, 0);
    let mut g = c.benchmark_group("gpu_vs_cpu");
    g.sample_size(10);
    for (name, b) in backends() {
        g.throughput(Throughput::Elements((nu * ni) as u64));
        g.bench_function(format!("{name}_topk_2048x100k_d64"), |bch| match &b {
            Backend::Cpu => {
                bch.iter(|| lshrec::score::topk_exact(&users, &items, d, k, &|_| &[]).unwrap())
            }
            #[cfg(feature = "cuda")]
            Backend::Cuda(gpu) => bch.iter(|| gpu.topk(&users, &items, d, k, None).unwrap()),
        });
        g.throughput(Throughput::Elements(ni as u64));
        g.bench_function(format!("{name}_hash_100k_256bits"), |bch| match &b {
            Backend::Cpu => bch.iter(|| {
                let mut rows = vec![0f32; ni * (d + 1)];
                for i in 0..ni {
                    rows[i * (d + 1)..i * (d + 1) + d].copy_from_slice(&items[i * d..(i + 1) * d]);
                }
                let p = lshrec::index::hash::project_rows(&rows, d + 1, &planes);
                let mut codes = vec![0u64; ni * 4];
                for i in 0..ni {
                    lshrec::index::hash::pack(
                        &p[i * 256..(i + 1) * 256],
                        &mut codes[i * 4..(i + 1) * 4],
                    );
                }
                codes
            }),
            #[cfg(feature = "cuda")]
            Backend::Cuda(gpu) => {
                bch.iter(|| gpu.hash(&items, d, None, &planes, d + 1, 4).unwrap())
            }
        });
    }
    g.finish();
}

fn bench_train(c: &mut Criterion) {
    let (ds, _) = synth::generate(&synth::SynthConfig::default()).unwrap();
    let pos = ds.implicit(4.0);
    let mut g = c.benchmark_group("gpu_vs_cpu_train_epoch_ml100k_shape");
    g.sample_size(10);
    for (name, b) in backends() {
        for kind in [
            ModelKind::Ials,
            ModelKind::Bpr,
            ModelKind::Mf,
            ModelKind::Lightgcn,
        ] {
            let data = if kind == ModelKind::Mf { &ds } else { &pos };
            g.throughput(Throughput::Elements(data.interactions.len() as u64));
            // LightGCN: its default pointwise loss, one full-batch step.
            let mut cfg = TrainConfig::defaults(kind);
            cfg.epochs = 1;
            cfg.valid_frac = 0.0;
            // Side features train on the CPU only: compare like with like.
            cfg.item_features = false;
            cfg.user_features = false;
            // BPR's rank-aware negatives train on the CPU only (LightGCN's run on both).
            if kind == ModelKind::Bpr {
                cfg.hard_negatives = 1;
            }
            g.bench_function(format!("{name}_{}", kind.name()), |bch| {
                bch.iter(|| train::fit_on(&b, &cfg, data, &mut |_, _| {}).unwrap())
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench_scoring, bench_train);
criterion_main!(benches);
