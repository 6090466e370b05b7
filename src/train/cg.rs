//! Jacobi-preconditioned conjugate gradients, shared by the solves that never form their
//! matrix (the cold-start feature maps, the first-ratings map).

/// Solves `A Z = B` column by column (`B`: `k × d`, row-major; `A` symmetric positive definite,
/// `k × k`, given by `apply(P, out)`: `out = A P`) by conjugate gradients preconditioned by
/// `A`'s diagonal `diag`. Each column stops at a relative residual of `tol`, all within
/// `max_iters` steps; the dot products run in row order, so the result does not depend on the
/// thread count. With `d = 1` it is plain preconditioned CG on one vector.
pub(crate) fn solve_columns(
    mut apply: impl FnMut(&[f64], &mut [f64]),
    b: &[f64],
    diag: &[f64],
    d: usize,
    tol: f64,
    max_iters: usize,
) -> Vec<f64> {
    let k = diag.len();
    let col_dot = |a: &[f64], b: &[f64]| {
        let mut s = vec![0f64; d];
        for (ra, rb) in a.chunks_exact(d).zip(b.chunks_exact(d)) {
            for j in 0..d {
                s[j] += ra[j] * rb[j];
            }
        }
        s
    };
    let mut z = vec![0f64; k * d];
    let mut r = b.to_vec();
    let precond = |r: &[f64]| -> Vec<f64> {
        r.chunks_exact(d)
            .zip(diag)
            .flat_map(|(row, &g)| row.iter().map(move |&v| v / g))
            .collect()
    };
    let mut s = precond(&r);
    let mut p = s.clone();
    let mut rs = col_dot(&r, &s);
    let b_norm: Vec<f64> = col_dot(b, b).into_iter().map(f64::sqrt).collect();
    let mut done: Vec<bool> = b_norm.iter().map(|&n| n == 0.0).collect();
    let mut ap = vec![0f64; k * d];
    for _ in 0..max_iters {
        if done.iter().all(|&x| x) {
            break;
        }
        apply(&p, &mut ap);
        let pap = col_dot(&p, &ap);
        let alpha: Vec<f64> = (0..d)
            .map(|j| match done[j] || pap[j] <= 0.0 {
                true => 0.0,
                false => rs[j] / pap[j],
            })
            .collect();
        for ((zr, rr), (pr, apr)) in (z.chunks_exact_mut(d).zip(r.chunks_exact_mut(d)))
            .zip(p.chunks_exact(d).zip(ap.chunks_exact(d)))
        {
            for j in 0..d {
                zr[j] += alpha[j] * pr[j];
                rr[j] -= alpha[j] * apr[j];
            }
        }
        let r_norm = col_dot(&r, &r);
        for j in 0..d {
            done[j] |= r_norm[j].sqrt() <= tol * b_norm[j];
        }
        s = precond(&r);
        let rs_new = col_dot(&r, &s);
        for (pr, sr) in p.chunks_exact_mut(d).zip(s.chunks_exact(d)) {
            for j in 0..d {
                let beta = match rs[j] > 0.0 {
                    true => rs_new[j] / rs[j],
                    false => 0.0,
                };
                pr[j] = sr[j] + beta * pr[j];
            }
        }
        rs = rs_new;
    }
    z
}
