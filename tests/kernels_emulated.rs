//! Every CUDA kernel in `kernels/*.cu`, run on the host by the emulation harness
//! (`kernels/emu`: the same source files compiled by the host C++ compiler, real threads per
//! block, a real barrier for `__syncthreads`), at the launch shape the GPU path uses, and
//! compared with its CPU twin in `src/`.

mod common;
use common::{close, normals};

use lshrec::data::Csr;
use lshrec::gpu::shapes::{self, Shape};
use lshrec::rng::Rng;
use lshrec_kernel_emu::{launch, Args};
use proptest::prelude::*;

fn run(name: &str, shape: Shape, args: Args) {
    // SAFETY: every call below passes host buffers sized for the kernel's reads and writes at
    // this shape, in the kernel's parameter order.
    unsafe { launch(name, shape.grid, shape.block, &args) }.unwrap();
}

fn indptr32(m: &Csr) -> Vec<u32> {
    m.indptr.iter().map(|&x| x as u32).collect()
}

/// A batch whose rows never repeat, so Hogwild races cannot occur and the GPU step must equal
/// the sequential CPU steps exactly.
fn disjoint(n: usize, users: usize, items: usize, r: &mut Rng) -> (Vec<u32>, Vec<u32>, Vec<u32>) {
    let mut u: Vec<u32> = (0..users as u32).collect();
    let mut it: Vec<u32> = (0..items as u32).collect();
    r.shuffle(&mut u);
    r.shuffle(&mut it);
    (u[..n].to_vec(), it[..n].to_vec(), it[n..2 * n].to_vec())
}

#[test]
fn mf_sgd_step_matches_cpu_steps() {
    use lshrec::train::mf::{Mf, MfConfig};
    let mut r = Rng::new(1);
    let (nu, ni, n, d) = (300, 400, 150, 20);
    let (us, is, _) = disjoint(n, nu, ni, &mut r);
    let ratings: Vec<f32> = (0..n).map(|_| 1.0 + r.below(5) as f32).collect();
    let triples: Vec<(u32, u32, f32)> = (0..n).map(|t| (us[t], is[t], ratings[t])).collect();
    let cfg = MfConfig {
        factors: d,
        lr: 0.05,
        reg: 0.1,
        reg_bias: 0.02,
        init_std: 0.3,
    };
    let mut cpu = Mf::new(cfg.clone(), &Csr::from_triples(nu, ni, &triples), 5).unwrap();
    cpu.bu = normals(&mut r, nu, 0.1);
    cpu.bi = normals(&mut r, ni, 0.1);
    let (mut p, mut q, mut bu, mut bi) =
        (cpu.p.clone(), cpu.q.clone(), cpu.bu.clone(), cpu.bi.clone());
    let mut sq = 0f32;
    run(
        "mf_sgd_step_f32",
        shapes::elementwise(n),
        Args::new()
            .ptr(us.as_ptr())
            .ptr(is.as_ptr())
            .ptr(ratings.as_ptr())
            .i32(n as i32)
            .i32(d as i32)
            .f32(cfg.lr)
            .f32(cfg.reg)
            .f32(cfg.reg_bias)
            .f32(cpu.mu)
            .ptr(p.as_mut_ptr())
            .ptr(q.as_mut_ptr())
            .ptr(bu.as_mut_ptr())
            .ptr(bi.as_mut_ptr())
            .ptr(&mut sq as *mut f32),
    );
    let mut want = 0f64;
    for &(u, i, rt) in &triples {
        want += cpu.step(u as usize, i as usize, rt);
    }
    close(&p, &cpu.p, 1e-6, "p");
    close(&q, &cpu.q, 1e-6, "q");
    close(&bu, &cpu.bu, 1e-6, "bu");
    close(&bi, &cpu.bi, 1e-6, "bi");
    close(&[sq], &[want as f32], 1e-5, "squared error");
}

#[test]
fn bpr_sgd_step_matches_cpu_steps() {
    use lshrec::train::bpr::{Bpr, BprConfig, Negatives};
    let mut r = Rng::new(2);
    let (nu, ni, n, d) = (200, 500, 120, 33);
    let (us, is, js) = disjoint(n, nu, ni, &mut r);
    let pos: Vec<(u32, u32, f32)> = (0..n).map(|t| (us[t], is[t], 1.0)).collect();
    let cfg = BprConfig {
        factors: d,
        lr: 0.05,
        reg: 0.01,
        negatives: Negatives::Uniform,
        hard_negatives: 1,
        init_std: 0.3,
    };
    let mut cpu = Bpr::new(cfg, Csr::from_triples(nu, ni, &pos), 3).unwrap();
    cpu.b = normals(&mut r, ni, 0.2);
    let (mut p, mut q, mut b) = (cpu.p.clone(), cpu.q.clone(), cpu.b.clone());
    let mut loss = 0f32;
    run(
        "bpr_sgd_step_f32",
        shapes::elementwise(n),
        Args::new()
            .ptr(us.as_ptr())
            .ptr(is.as_ptr())
            .ptr(js.as_ptr())
            .i32(n as i32)
            .i32(d as i32)
            .f32(0.05)
            .f32(0.01)
            .ptr(p.as_mut_ptr())
            .ptr(q.as_mut_ptr())
            .ptr(b.as_mut_ptr())
            .ptr(&mut loss as *mut f32),
    );
    let mut want = 0f64;
    for t in 0..n {
        want += cpu.step(us[t] as usize, is[t] as usize, js[t] as usize);
    }
    close(&p, &cpu.p, 1e-5, "p");
    close(&q, &cpu.q, 1e-5, "q");
    close(&b, &cpu.b, 1e-5, "b");
    close(&[loss], &[want as f32], 1e-4, "loss");
}

/// Runs the two Gram kernels as the GPU path does; returns scale·YᵀY (d × d, row-major).
fn gram_kernels(y: &[f32], n: usize, d: usize, scale: f32) -> Vec<f32> {
    let splits = shapes::gram_splits(n);
    let mut partial = vec![f32::NAN; splits * d * d];
    run(
        "gram_partial_f32",
        shapes::gram(d, n),
        Args::new()
            .ptr(y.as_ptr())
            .i32(n as i32)
            .i32(d as i32)
            .ptr(partial.as_mut_ptr()),
    );
    let mut g = vec![0f32; d * d];
    run(
        "gram_reduce_f32",
        shapes::elementwise(d * d),
        Args::new()
            .ptr(partial.as_ptr())
            .i32(splits as i32)
            .i32((d * d) as i32)
            .f32(scale)
            .ptr(g.as_mut_ptr()),
    );
    g
}

#[test]
fn gram_kernels_match_faer() {
    let mut r = Rng::new(3);
    for (n, d) in [(1500, 40), (70, 7), (2100, 64)] {
        let y = normals(&mut r, n * d, 1.0);
        let g = gram_kernels(&y, n, d, 0.5);
        let want = lshrec::train::ials::gram(&y, d);
        let want: Vec<f32> = (0..d * d).map(|k| 0.5 * want[(k / d, k % d)]).collect();
        close(&g, &want, 1e-4, &format!("gram n={n} d={d}"));
    }
}

#[test]
fn ials_cg_matches_the_cpu_solver() {
    use lshrec::train::ials::{gram, solve_side_cg, IalsConfig};
    let mut r = Rng::new(4);
    let (rows, n_other, d) = (40, 60, 24);
    let mut triples = Vec::new();
    for u in 0..rows as u32 {
        // Degrees 0 (no interactions) up to 40, above the block size (32), to cover chunking;
        // one entry in four a known negative (negative weight).
        for _ in 0..(u as usize % 41) {
            let w = 1.0 + r.below(5) as f32;
            triples.push((
                u,
                r.below(n_other) as u32,
                if r.below(4) == 0 { -w } else { w },
            ));
        }
    }
    let m = Csr::from_triples(rows, n_other, &triples);
    let fixed = normals(&mut r, n_other * d, 0.3);
    let cfg = IalsConfig {
        factors: d,
        reg: 0.01,
        alpha: 0.7,
        unobserved_weight: 0.2,
        reg_exponent: 1.0,
        init_std: 0.1,
        cg_steps: 3,
        negative_confidence: 4.0,
    };
    let g = gram(&fixed, d);
    let w0g: Vec<f32> = (0..d * d)
        .map(|k| cfg.unobserved_weight * g[(k / d, k % d)])
        .collect();
    let x0 = normals(&mut r, rows * d, 0.1);
    let mut want = x0.clone();
    solve_side_cg(&cfg, &w0g, &fixed, &m, n_other, &mut want);
    let mut got = x0.clone();
    let ip = indptr32(&m);
    run(
        "ials_cg_f32",
        shapes::ials_rows(rows, d),
        Args::new()
            .ptr(w0g.as_ptr())
            .ptr(fixed.as_ptr())
            .ptr(ip.as_ptr())
            .ptr(m.indices.as_ptr())
            .ptr(m.values.as_ptr())
            .i32(rows as i32)
            .i32(d as i32)
            .i32(n_other as i32)
            .f32(cfg.alpha)
            .f32(cfg.negative_confidence)
            .f32(cfg.unobserved_weight)
            .f32(cfg.reg)
            .f32(cfg.reg_exponent)
            .i32(cfg.cg_steps as i32)
            .ptr(got.as_mut_ptr()),
    );
    close(&got, &want, 2e-3, "x");
    assert_ne!(got, x0, "the solve moved the rows");
}

/// LightGCN's pointwise loss on the device: the Gram kernels, then `ials_loss_grad_f32` over the
/// user rows (positives and known negatives) and the item rows (positives only), against
/// `Pointwise::loss_and_grad`; and the full batch's L2 against `l2_all`.
#[test]
fn pointwise_loss_kernels_match_cpu() {
    use lshrec::train::graph::{l2_all, Pointwise};
    use lshrec::train::ials::Weights;
    let mut r = Rng::new(12);
    let w = Weights {
        alpha: 0.7,
        unobserved: 0.4,
        negative: 3.0,
    };
    for (nu, ni, d) in [(40, 60, 24), (30, 50, 40)] {
        // Degrees 0 up to 40, beyond a 32-thread block; one entry in four a known negative.
        let m = signed_interactions(&mut r, nu, ni, |u| u % 41, 3, 4);
        let f = normals(&mut r, (nu + ni) * d, 0.3);
        let mut p = Pointwise::new(m.clone(), d);
        let mut want = vec![0f32; (nu + ni) * d];
        let want_loss = p.loss_and_grad(&f, d, &w, &mut want);
        let (fu, fi) = f.split_at(nu * d);
        let (w0gu, w0gi) = (
            gram_kernels(fu, nu, d, w.unobserved),
            gram_kernels(fi, ni, d, w.unobserved),
        );
        let scale = 2.0 / nu as f32;
        let mut got = vec![0f32; (nu + ni) * d];
        let (gu, gi) = got.split_at_mut(nu * d);
        let mut loss_u = vec![f32::NAN; nu];
        let mut loss_i = vec![f32::NAN; ni];
        loss_grad_kernel(&w0gi, fi, &m, fu, d, &w, scale, gu, &mut loss_u);
        loss_grad_kernel(&w0gu, fu, &p.by_item, fi, d, &w, scale, gi, &mut loss_i);
        close(&got, &want, 1e-4, &format!("pointwise gradient d={d}"));
        let total: f64 = loss_u.iter().map(|&v| v as f64).sum::<f64>() / nu as f64;
        close(&[total as f32], &[want_loss as f32], 1e-3, "pointwise loss");
        assert!(loss_i.iter().all(|v| v.is_finite()));

        let mut want_g = want.clone();
        let want_penalty = l2_all(&f, 0.02, &mut want_g);
        let penalty = l2_all_kernel(&f, 0.02, &mut got);
        close(&got, &want_g, 1e-4, "l2 gradient");
        close(&[penalty], &[want_penalty as f32], 1e-4, "l2 penalty");
    }
}

/// A user × item matrix with `degree(u)` distinct items per user: ratings 1 up to `levels`, one
/// entry in `negative_every` stored negated (a known negative).
fn signed_interactions(
    r: &mut Rng,
    nu: usize,
    ni: usize,
    degree: impl Fn(usize) -> usize,
    levels: usize,
    negative_every: usize,
) -> Csr {
    let mut triples = Vec::new();
    for u in 0..nu {
        let mut items: Vec<u32> = (0..ni as u32).collect();
        r.shuffle(&mut items);
        for &i in &items[..degree(u)] {
            let v = 1.0 + r.below(levels) as f32;
            let v = if r.below(negative_every) == 0 { -v } else { v };
            triples.push((u as u32, i, v));
        }
    }
    Csr::from_triples(nu, ni, &triples)
}

/// `ials_loss_grad_f32` over the rows of `rows` at the GPU path's launch shape.
#[allow(clippy::too_many_arguments)]
fn loss_grad_kernel(
    w0g: &[f32],
    other: &[f32],
    rows: &Csr,
    x: &[f32],
    d: usize,
    w: &lshrec::train::ials::Weights,
    scale: f32,
    grad: &mut [f32],
    loss: &mut [f32],
) {
    let ip = indptr32(rows);
    run(
        "ials_loss_grad_f32",
        shapes::ials_rows(rows.rows, d),
        Args::new()
            .ptr(w0g.as_ptr())
            .ptr(other.as_ptr())
            .ptr(ip.as_ptr())
            .ptr(rows.indices.as_ptr())
            .ptr(rows.values.as_ptr())
            .i32(rows.rows as i32)
            .i32(d as i32)
            .f32(w.alpha)
            .f32(w.negative)
            .f32(w.unobserved)
            .f32(scale)
            .ptr(x.as_ptr())
            .ptr(grad.as_mut_ptr())
            .ptr(loss.as_mut_ptr()),
    );
}

/// `lightgcn_l2_all_f32`: adds coef·e0 to `grad`, returns the penalty.
fn l2_all_kernel(e0: &[f32], coef: f32, grad: &mut [f32]) -> f32 {
    let mut penalty = 0f32;
    run(
        "lightgcn_l2_all_f32",
        shapes::elementwise(e0.len()),
        Args::new()
            .i32(e0.len() as i32)
            .f32(coef)
            .ptr(e0.as_ptr())
            .ptr(grad.as_mut_ptr())
            .ptr(&mut penalty as *mut f32),
    );
    penalty
}

/// `axpby_f32`: y = a·x + b·y.
fn axpby_kernel(a: f32, x: &[f32], b: f32, y: &mut [f32]) {
    run(
        "axpby_f32",
        shapes::elementwise(y.len()),
        Args::new()
            .i32(y.len() as i32)
            .f32(a)
            .ptr(x.as_ptr())
            .f32(b)
            .ptr(y.as_mut_ptr()),
    );
}

/// `adam_f32`: Adam step number `t` (from 1) with gradient `g`.
fn adam_kernel(t: i32, lr: f32, g: &[f32], m: &mut [f32], v: &mut [f32], w: &mut [f32]) {
    let (b1, b2) = lshrec::train::graph::ADAM_BETAS;
    run(
        "adam_f32",
        shapes::elementwise(w.len()),
        Args::new()
            .i32(w.len() as i32)
            .f32(lr)
            .f32(b1)
            .f32(b2)
            .f32(1.0 - b1.powi(t))
            .f32(1.0 - b2.powi(t))
            .ptr(g.as_ptr())
            .ptr(m.as_mut_ptr())
            .ptr(v.as_mut_ptr())
            .ptr(w.as_mut_ptr()),
    );
}

/// The GPU path's propagation: (x + Âx + … + Â^K x)/(K+1) by SpMM and axpby launches.
fn propagate_kernels(adj: &Csr, x: &[f32], d: usize, layers: usize) -> Vec<f32> {
    let mut out = x.to_vec();
    let mut cur = x.to_vec();
    for _ in 0..layers {
        cur = spmm_kernel(adj, &cur, d);
        axpby_kernel(1.0, &cur, 1.0, &mut out);
    }
    axpby_kernel(0.0, &cur, 1.0 / (layers + 1) as f32, &mut out);
    out
}

/// Three epochs of LightGCN's pointwise loss as the GPU trainer sequences its launches
/// (propagate, the Gram kernels, the gradient rows of both sides, propagate back, L2, Adam),
/// against the CPU trainer's epochs from the same start: the same base embeddings each epoch.
#[test]
fn pointwise_epochs_on_kernels_match_the_cpu_trainer() {
    use lshrec::train::graph::{LightGcn, LightGcnConfig, Loss};
    use lshrec::train::ials::Weights;
    let mut r = Rng::new(13);
    let (nu, ni, d, layers) = (25, 35, 8, 3);
    let interactions = signed_interactions(&mut r, nu, ni, |u| 2 + u % 9, 1, 5);
    let w = Weights {
        alpha: 1.0,
        unobserved: 1.0,
        negative: 5.0,
    };
    let cfg = LightGcnConfig {
        factors: d,
        layers,
        lr: 0.01,
        reg: 2e-3,
        batch: 1,
        init_std: 0.3,
        loss: Loss::Ials,
        weights: w,
        negatives: 1,
        hard_negatives: 1,
    };
    let mut cpu = LightGcn::new(cfg.clone(), interactions, 3).unwrap();
    let adj = cpu.adjacency().clone();
    let p = cpu.pointwise().expect("the pointwise loss");
    let (by_user, by_item) = (p.by_user.clone(), p.by_item.clone());
    let n = (nu + ni) * d;
    let (mut e0, mut m, mut v) = (cpu.e0.clone(), vec![0f32; n], vec![0f32; n]);
    for t in 1..=3 {
        cpu.epoch();
        let fin = propagate_kernels(&adj, &e0, d, layers);
        let (fu, fi) = fin.split_at(nu * d);
        let w0gu = gram_kernels(fu, nu, d, w.unobserved);
        let w0gi = gram_kernels(fi, ni, d, w.unobserved);
        let mut grad = vec![0f32; n];
        let (gu, gi) = grad.split_at_mut(nu * d);
        let scale = 2.0 / nu as f32;
        let (mut lu, mut li) = (vec![0f32; nu], vec![0f32; ni]);
        loss_grad_kernel(&w0gi, fi, &by_user, fu, d, &w, scale, gu, &mut lu);
        loss_grad_kernel(&w0gu, fu, &by_item, fi, d, &w, scale, gi, &mut li);
        let mut g0 = propagate_kernels(&adj, &grad, d, layers);
        l2_all_kernel(&e0, 2.0 * cfg.reg, &mut g0);
        adam_kernel(t, cfg.lr, &g0, &mut m, &mut v, &mut e0);
        close(
            &e0,
            &cpu.e0,
            1e-4,
            &format!("base embeddings after epoch {t}"),
        );
    }
}

fn random_graph(r: &mut Rng, nu: usize, ni: usize, per_user: usize) -> Csr {
    let mut t = Vec::new();
    for u in 0..nu as u32 {
        for _ in 0..per_user {
            t.push((u, r.below(ni) as u32, 1.0));
        }
    }
    lshrec::train::graph::normalized_adjacency(&Csr::from_triples(nu, ni, &t))
}

fn spmm_kernel(adj: &Csr, x: &[f32], d: usize) -> Vec<f32> {
    let ip = indptr32(adj);
    let mut out = vec![f32::NAN; adj.rows * d];
    run(
        "spmm_csr_f32",
        shapes::spmm(adj.rows),
        Args::new()
            .ptr(ip.as_ptr())
            .ptr(adj.indices.as_ptr())
            .ptr(adj.values.as_ptr())
            .i32(adj.rows as i32)
            .i32(d as i32)
            .ptr(x.as_ptr())
            .ptr(out.as_mut_ptr()),
    );
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Forward (Â·x) and backward (Âᵀ·g, the same kernel on the transpose's CSR) against the
    /// CPU SpMM.
    #[test]
    fn spmm_matches_cpu(seed in 0u64..1000, nu in 1usize..40, ni in 1usize..50, d in 1usize..70) {
        let mut r = Rng::new(seed);
        let adj = random_graph(&mut r, nu, ni, 3);
        let x = normals(&mut r, adj.rows * d, 1.0);
        let mut want = vec![0f32; adj.rows * d];
        lshrec::train::graph::spmm(&adj, &x, d, &mut want);
        close(&spmm_kernel(&adj, &x, d), &want, 1e-5, "forward");
        let t = adj.transpose();
        lshrec::train::graph::spmm(&t, &x, d, &mut want);
        close(&spmm_kernel(&t, &x, d), &want, 1e-5, "backward");
    }

    /// Rank-aware negatives: the kernel picks the same candidate as the CPU twin (the same
    /// summation order), candidates repeating within and across triples, and ties included
    /// (integer-valued embeddings make equal scores common).
    #[test]
    fn pick_negatives_matches_cpu(seed in 0u64..1000, nu in 1usize..30, ni in 2usize..40, d in 1usize..40, n in 1usize..80, m in 2usize..9, ints in any::<bool>()) {
        let mut r = Rng::new(seed);
        let nodes = nu + ni;
        let f: Vec<f32> = match ints {
            true => (0..nodes * d).map(|_| r.below(3) as f32 - 1.0).collect(),
            false => normals(&mut r, nodes * d, 1.0),
        };
        let us: Vec<u32> = (0..n).map(|_| r.below(nu) as u32).collect();
        let cands: Vec<u32> = (0..n * m).map(|_| r.below(ni) as u32).collect();
        let mut triples: Vec<(u32, u32, u32)> = (0..n).map(|t| (us[t], 0, cands[t * m])).collect();
        lshrec::train::graph::pick_negatives(&f, d, nu, &mut triples, &cands, m);
        let mut js = vec![u32::MAX; n];
        run(
            "lightgcn_pick_negatives_u32",
            shapes::elementwise(n),
            Args::new()
                .ptr(us.as_ptr())
                .ptr(cands.as_ptr())
                .i32(n as i32)
                .i32(m as i32)
                .i32(d as i32)
                .i32(nu as i32)
                .ptr(f.as_ptr())
                .ptr(js.as_mut_ptr()),
        );
        let want: Vec<u32> = triples.iter().map(|t| t.2).collect();
        prop_assert_eq!(&js, &want, "seed {}", seed);
        // The pick is the arg-max: no candidate of a triple scores above the chosen one.
        for (t, &(u, _, j)) in triples.iter().enumerate() {
            let dot = |c: u32| -> f32 {
                (0..d).map(|k| f[u as usize * d + k] * f[(nu + c as usize) * d + k]).sum()
            };
            for &c in &cands[t * m..(t + 1) * m] {
                prop_assert!(dot(c) <= dot(j));
            }
        }
    }

    #[test]
    fn hamming_scan_matches_scalar(seed in 0u64..1000, n in 1usize..300, words in 1usize..6, nq in 1usize..4) {
        let mut r = Rng::new(seed);
        let codes: Vec<u64> = (0..n * words).map(|_| r.next_u64()).collect();
        let queries: Vec<u64> = (0..nq * words).map(|_| r.next_u64()).collect();
        let mut got = vec![u32::MAX; nq * n];
        run(
            "hamming_scan_u64",
            shapes::elementwise(nq * n),
            Args::new()
                .ptr(codes.as_ptr())
                .i32(n as i32)
                .i32(words as i32)
                .ptr(queries.as_ptr())
                .i32(nq as i32)
                .ptr(got.as_mut_ptr()),
        );
        for q in 0..nq {
            let mut want = vec![0u32; n];
            lshrec::simd::hamming_scan_scalar(&codes, words, &queries[q * words..(q + 1) * words], &mut want);
            prop_assert_eq!(&got[q * n..(q + 1) * n], &want[..]);
        }
    }

    /// Integer-valued vectors make every score exact, so ids (ties by lower id), scores, seen
    /// masking and short lists must equal the CPU scorer's exactly.
    #[test]
    fn score_topk_matches_exact_scorer(seed in 0u64..1000, nu in 1usize..20, ni in 1usize..400,
                                       d in 1usize..70, k_frac in 0.0f64..1.0, seen_every in 1usize..9) {
        let mut r = Rng::new(seed);
        let k = 1 + ((ni.min(shapes::TOPK_MAX) - 1) as f64 * k_frac) as usize;
        let users: Vec<f32> = (0..nu * d).map(|_| r.below(5) as f32 - 2.0).collect();
        let items: Vec<f32> = (0..ni * d).map(|_| r.below(5) as f32 - 2.0).collect();
        let seen: Vec<Vec<u32>> = (0..nu)
            .map(|u| (0..ni as u32).filter(|i| seen_every > 1 && (*i as usize + u).is_multiple_of(seen_every)).collect())
            .collect();
        let mut ip = vec![0u32];
        let mut idx = Vec::new();
        for s in &seen {
            idx.extend_from_slice(s);
            ip.push(idx.len() as u32);
        }
        idx.push(0); // never an empty buffer
        let mut ids = vec![0u32; nu * k];
        let mut scores = vec![0f32; nu * k];
        run(
            "score_topk_f32",
            shapes::score(nu),
            Args::new()
                .ptr(users.as_ptr())
                .i32(nu as i32)
                .ptr(items.as_ptr())
                .i32(ni as i32)
                .i32(d as i32)
                .ptr(ip.as_ptr())
                .ptr(idx.as_ptr())
                .i32(k as i32)
                .ptr(ids.as_mut_ptr())
                .ptr(scores.as_mut_ptr()),
        );
        let want = lshrec::score::topk_exact(&users, &items, d, k, &|u| seen[u].as_slice()).unwrap();
        for u in 0..nu {
            let got: Vec<(u32, f32)> = (0..k)
                .map(|s| (ids[u * k + s], scores[u * k + s]))
                .filter(|x| x.0 != u32::MAX)
                .collect();
            let exp: Vec<(u32, f32)> = want[u].iter().map(|s| (s.item, s.score)).collect();
            prop_assert_eq!(got, exp, "user {} k {}", u, k);
            for s in want[u].len()..k {
                prop_assert_eq!(scores[u * k + s], f32::NEG_INFINITY);
            }
        }
    }
}

#[test]
fn lightgcn_step_kernels_match_cpu() {
    use lshrec::train::graph::{adam_step, bpr_grad, l2_rows};
    let mut r = Rng::new(6);
    let (nu, ni, d, n) = (30, 40, 36, 200);
    let nodes = nu + ni;
    let f = normals(&mut r, nodes * d, 0.5);
    // Rows repeat across triples: the kernels' atomics must not lose updates.
    let us: Vec<u32> = (0..n).map(|_| r.below(nu) as u32).collect();
    let is: Vec<u32> = (0..n).map(|_| r.below(ni) as u32).collect();
    let js: Vec<u32> = (0..n).map(|_| r.below(ni) as u32).collect();
    let triples: Vec<(u32, u32, u32)> = (0..n).map(|t| (us[t], is[t], js[t])).collect();
    let scale = 1.0 / n as f32;
    let mut want = vec![0f32; nodes * d];
    let want_loss = bpr_grad(&f, d, nu, &triples, scale, &mut want);
    // Both kernels take the triples' columns, a coefficient and the embeddings, add to the
    // gradient and return a sum (the loss or the penalty).
    let triple_kernel = |name: &str, coef: f32, grad: &mut [f32]| -> f32 {
        let mut sum = 0f32;
        run(
            name,
            shapes::elementwise(n),
            Args::new()
                .ptr(us.as_ptr())
                .ptr(is.as_ptr())
                .ptr(js.as_ptr())
                .i32(n as i32)
                .i32(d as i32)
                .i32(nu as i32)
                .f32(coef)
                .ptr(f.as_ptr())
                .ptr(grad.as_mut_ptr())
                .ptr(&mut sum as *mut f32),
        );
        sum
    };
    let mut got = vec![0f32; nodes * d];
    let loss = triple_kernel("lightgcn_bpr_grad_f32", scale, &mut got);
    close(&got, &want, 1e-5, "bpr gradient");
    close(&[loss], &[want_loss as f32], 1e-4, "bpr loss");

    let coef = 0.01 * scale;
    let want_penalty = l2_rows(&f, d, nu, &triples, coef, &mut want);
    let penalty = triple_kernel("lightgcn_l2_f32", coef, &mut got);
    close(&got, &want, 1e-5, "l2 gradient");
    close(&[penalty], &[want_penalty as f32], 1e-4, "l2 penalty");

    // Three Adam steps from the same state.
    let (mut m1, mut v1, mut w1) = (vec![0f32; nodes * d], vec![0f32; nodes * d], f.clone());
    let (mut m2, mut v2, mut w2) = (m1.clone(), v1.clone(), w1.clone());
    for t in 1..=3 {
        adam_step(t, 0.01, &want, &mut m1, &mut v1, &mut w1);
        adam_kernel(t, 0.01, &want, &mut m2, &mut v2, &mut w2);
    }
    close(&w2, &w1, 1e-6, "adam weights");
    close(&m2, &m1, 1e-6, "adam m");

    // The layer sum and mean of the propagation.
    let x = normals(&mut r, 50, 1.0);
    let mut y = normals(&mut r, 50, 1.0);
    let want_y: Vec<f32> = x.iter().zip(&y).map(|(a, b)| 0.25 * a + 0.5 * b).collect();
    axpby_kernel(0.25, &x, 0.5, &mut y);
    close(&y, &want_y, 0.0, "axpby");
}

#[test]
fn lsh_hash_matches_the_index_builder() {
    use lshrec::index::build::transform_item;
    use lshrec::index::hash::{hyperplanes, pack, project_rows};
    let mut r = Rng::new(7);
    let (n, d, words) = (90, 13, 2);
    let d1 = d + 1;
    let x = normals(&mut r, n * d, 1.0);
    let norms: Vec<f32> = x
        .chunks(d)
        .map(|v| v.iter().map(|a| a * a).sum::<f32>().sqrt())
        .collect();
    // Per-row range maxima at or above the row's norm, as the index's norm ranges give.
    let range_max: Vec<f32> = norms.iter().map(|v| v * (1.0 + r.f32())).collect();
    let planes = hyperplanes(64 * words, d1, 9, 0);
    for transformed in [true, false] {
        let mut rows = vec![0f32; n * d1];
        for i in 0..n {
            if transformed {
                transform_item(
                    &x[i * d..(i + 1) * d],
                    range_max[i],
                    &mut rows[i * d1..(i + 1) * d1],
                );
            } else {
                rows[i * d1..i * d1 + d].copy_from_slice(&x[i * d..(i + 1) * d]);
            }
        }
        let proj = project_rows(&rows, d1, &planes);
        let mut want = vec![0u64; n * words];
        for i in 0..n {
            pack(
                &proj[i * 64 * words..(i + 1) * 64 * words],
                &mut want[i * words..(i + 1) * words],
            );
        }
        let mut got = vec![0u64; n * words];
        let args = Args::new().ptr(x.as_ptr());
        let args = if transformed {
            args.ptr(range_max.as_ptr())
        } else {
            args.null()
        };
        run(
            "lsh_hash_f32",
            shapes::elementwise(n * words),
            args.i32(n as i32)
                .i32(d as i32)
                .i32(d1 as i32)
                .ptr(planes.as_ptr())
                .i32(words as i32)
                .ptr(got.as_mut_ptr()),
        );
        // Bits may differ only where the projection is within rounding of zero.
        for i in 0..n {
            for b in 0..64 * words {
                let (g, w) = (
                    got[i * words + b / 64] >> (b % 64) & 1,
                    want[i * words + b / 64] >> (b % 64) & 1,
                );
                let p = proj[i * 64 * words + b];
                assert!(
                    g == w || p.abs() < 1e-4,
                    "row {i} bit {b}: {g} vs {w} (projection {p})"
                );
            }
        }
    }
}

#[test]
fn unknown_kernels_and_bad_shapes_are_refused() {
    // SAFETY: both calls are refused before any kernel runs.
    let e = unsafe { launch("no_such_kernel", (1, 1, 1), (32, 1, 1), &Args::new()) };
    assert!(e.unwrap_err().contains("no kernel"));
    let e = unsafe { launch("axpby_f32", (1, 1, 1), (2048, 1, 1), &Args::new()) };
    assert!(e.unwrap_err().contains("shape"));
}
