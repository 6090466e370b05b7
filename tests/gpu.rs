//! GPU tests: every kernel through the CUDA launcher against its CPU twin, and full training
//! runs on both backends. They run wherever the `cuda` feature is built and a GPU is usable, and
//! print a visible SKIPPED line everywhere else (CI has no GPU; the kernels' logic is tested
//! there by `tests/kernels_emulated.rs`).

mod common;

#[cfg(not(feature = "cuda"))]
#[test]
fn gpu_tests() {
    eprintln!("SKIPPED: GPU tests: this build has no CUDA backend (run `cargo test --features cuda --test gpu` on a GPU machine)");
}

#[cfg(feature = "cuda")]
mod on_gpu {
    use std::sync::Arc;

    use crate::common::{close, ndcg, normals, planted_ratings};
    use lshrec::data::{split, Csr, Dataset};
    use lshrec::gpu::cuda::Gpu;
    use lshrec::rng::Rng;
    use lshrec::train::{self, Backend, ModelKind, TrainConfig};

    fn gpu(test: &str) -> Option<Arc<Gpu>> {
        match Gpu::open() {
            Ok(g) => {
                eprintln!("{test}: running on {} ({})", g.name(), g.arch());
                Some(g)
            }
            Err(e) => {
                eprintln!("SKIPPED: {test}: no usable GPU: {e}");
                None
            }
        }
    }

    #[test]
    fn kernels_match_cpu_twins() {
        let Some(g) = gpu("kernels_match_cpu_twins") else {
            return;
        };
        let mut r = Rng::new(1);
        // Exact scoring with seen items, integer vectors: exact equality.
        let (nu, ni, d, k) = (300, 5000, 64, 50);
        let users: Vec<f32> = (0..nu * d).map(|_| r.below(5) as f32 - 2.0).collect();
        let items: Vec<f32> = (0..ni * d).map(|_| r.below(5) as f32 - 2.0).collect();
        let triples: Vec<(u32, u32, f32)> = (0..nu * 20)
            .map(|t| ((t / 20) as u32, r.below(ni) as u32, 1.0))
            .collect();
        let seen = Csr::from_triples(nu, ni, &triples);
        let got = g.topk(&users, &items, d, k, Some(&seen)).unwrap();
        let want = lshrec::score::topk_exact(&users, &items, d, k, &|u| seen.row(u)).unwrap();
        assert_eq!(got, want);

        // Hashing and the Hamming scan.
        let (n, d, words) = (2000, 32, 4);
        let x = normals(&mut r, n * d, 1.0);
        let planes = lshrec::index::hash::hyperplanes(64 * words, d + 1, 3, 0);
        let codes = g.hash(&x, d, None, &planes, d + 1, words).unwrap();
        let mut rows = vec![0f32; n * (d + 1)];
        for i in 0..n {
            rows[i * (d + 1)..i * (d + 1) + d].copy_from_slice(&x[i * d..(i + 1) * d]);
        }
        let proj = lshrec::index::hash::project_rows(&rows, d + 1, &planes);
        let mut differ = 0;
        for i in 0..n {
            let mut w = vec![0u64; words];
            lshrec::index::hash::pack(&proj[i * 64 * words..(i + 1) * 64 * words], &mut w);
            differ += w
                .iter()
                .zip(&codes[i * words..(i + 1) * words])
                .map(|(a, b)| (a ^ b).count_ones())
                .sum::<u32>();
        }
        assert!(
            differ <= 5,
            "{differ} sign bits differ (only near-zero projections may)"
        );
        let q = &codes[..words];
        let dist = g.hamming(&codes, words, q).unwrap();
        let mut want = vec![0u32; n];
        lshrec::simd::hamming_scan_scalar(&codes, words, q, &mut want);
        assert_eq!(dist, want);

        // SpMM on LightGCN's adjacency.
        let by_user = Csr::from_triples(nu, ni, &triples);
        let adj = lshrec::train::graph::normalized_adjacency(&by_user);
        let dd = 48;
        let xs = normals(&mut r, adj.rows * dd, 1.0);
        let mut want = vec![0f32; adj.rows * dd];
        lshrec::train::graph::spmm(&adj, &xs, dd, &mut want);
        let a = g.upload_csr(&adj).unwrap();
        let dx = g.upload(&xs).unwrap();
        let mut out = g.zeros::<f32>(adj.rows * dd).unwrap();
        g.spmm(&a, dd, &dx, &mut out).unwrap();
        close(
            &g.download(&out, adj.rows * dd).unwrap(),
            &want,
            1e-5,
            "spmm",
        );

        // The Gram matrix.
        let y = normals(&mut r, 3000 * 40, 1.0);
        let dy = g.upload(&y).unwrap();
        let mut partial = g
            .zeros::<f32>(lshrec::gpu::shapes::gram_splits(3000) * 1600)
            .unwrap();
        let mut out = g.zeros::<f32>(1600).unwrap();
        g.gram(&dy.slice(..), 3000, 40, 1.0, &mut partial, &mut out)
            .unwrap();
        let want = lshrec::train::ials::gram(&y, 40);
        let want: Vec<f32> = (0..1600).map(|k| want[(k / 40, k % 40)]).collect();
        close(&g.download(&out, 1600).unwrap(), &want, 1e-4, "gram");
    }

    fn planted() -> (Dataset, Dataset) {
        split::split(
            &planted_ratings(),
            split::SplitMethod::PerUser { frac: 0.2, min: 5 },
            3,
        )
    }

    /// Every model trains on both backends from the same start and the same samples; the GPU
    /// model matches the CPU one (iALS to rounding; the Hogwild and atomic models in quality).
    #[test]
    fn training_matches_the_cpu_backend() {
        let Some(g) = gpu("training_matches_the_cpu_backend") else {
            return;
        };
        let (tr, te) = planted();
        let (tri, tei) = (tr.implicit(4.0), te.implicit(4.0));
        use lshrec::train::graph::Loss;
        for (kind, loss) in [
            (ModelKind::Ials, None),
            (ModelKind::Bpr, None),
            (ModelKind::Lightgcn, Some(Loss::Bpr)),
            (ModelKind::Lightgcn, Some(Loss::Ials)),
            (ModelKind::Mf, None),
        ] {
            let mut cfg = TrainConfig::defaults_with_loss(kind, loss);
            cfg.dim = 16;
            cfg.epochs = if kind == ModelKind::Ials { 8 } else { 30 };
            cfg.valid_frac = 0.0;
            // Side features train on the CPU only.
            cfg.item_features = false;
            cfg.user_features = false;
            // BPR's rank-aware negatives train on the CPU only (LightGCN's run on both).
            if kind == ModelKind::Bpr {
                cfg.hard_negatives = 1;
            }
            let (a, b) = if kind == ModelKind::Mf {
                (&tr, &te)
            } else {
                (&tri, &tei)
            };
            let cpu = train::fit_on(&Backend::Cpu, &cfg, a, &mut |_, _| {}).unwrap();
            let gpu = train::fit_on(&Backend::Cuda(g.clone()), &cfg, a, &mut |_, _| {}).unwrap();
            assert_eq!(
                (cpu.dim, cpu.users.len(), cpu.items.len()),
                (gpu.dim, gpu.users.len(), gpu.items.len())
            );
            if kind == ModelKind::Mf {
                let (lo, hi) = train::rating_range(a);
                let (c, gg) = (
                    cpu.rating_metrics(b, lo, hi).rmse,
                    gpu.rating_metrics(b, lo, hi).rmse,
                );
                eprintln!("{kind:?}: RMSE cpu {c:.4} gpu {gg:.4}");
                assert!((c - gg).abs() < 0.02, "{kind:?}");
            } else {
                let (c, gg) = (ndcg(&cpu, a, b), ndcg(&gpu, a, b));
                eprintln!("{kind:?} {loss:?}: NDCG@10 cpu {c:.4} gpu {gg:.4}");
                assert!((c - gg).abs() < 0.02, "{kind:?}: cpu {c} gpu {gg}");
            }
            // No atomics in these gradients: the same model to rounding.
            if kind == ModelKind::Ials || loss == Some(Loss::Ials) {
                close(
                    &gpu.users,
                    &cpu.users,
                    2e-2,
                    &format!("{kind:?} {loss:?} users"),
                );
                close(
                    &gpu.items,
                    &cpu.items,
                    2e-2,
                    &format!("{kind:?} {loss:?} items"),
                );
            }
        }
    }
}
