//! Random-hyperplane hashing: projections onto seeded Gaussian hyperplanes and sign-packing into
//! bucket keys (`bits` per table) and long codes (`u64` words).

use faer::{Accum, MatMut, MatRef, Par};

use crate::rng::Rng;

/// `count` Gaussian hyperplanes of dimension `d1`, row-major.
pub fn hyperplanes(count: usize, d1: usize, seed: u64, stream: u64) -> Vec<f32> {
    let mut r = Rng::stream(seed, stream);
    (0..count * d1).map(|_| r.normal() as f32).collect()
}

/// Projections of `rows` (n × d1) onto `planes` (m × d1): n × m, row-major, by GEMM.
pub fn project_rows(rows: &[f32], d1: usize, planes: &[f32]) -> Vec<f32> {
    let n = rows.len() / d1;
    let m = planes.len() / d1;
    let mut out = vec![0f32; n * m];
    if n == 0 || m == 0 {
        return out;
    }
    faer::linalg::matmul::matmul(
        MatMut::from_row_major_slice_mut(&mut out, n, m),
        Accum::Replace,
        MatRef::from_row_major_slice(rows, n, d1),
        MatRef::from_row_major_slice(planes, m, d1).transpose(),
        1.0f32,
        Par::Seq,
    );
    out
}

/// Projections of one query onto `planes` (m × d1), where the query's coordinates beyond
/// `q.len()` are zero (the transformed query's appended coordinate).
pub fn project_query(q: &[f32], d1: usize, planes: &[f32], out: &mut Vec<f32>) {
    out.clear();
    out.extend(
        planes
            .chunks_exact(d1)
            .map(|p| crate::simd::dot(&p[..q.len()], q)),
    );
}

/// The bucket key of one table from its `bits` projections.
#[inline]
pub fn key(proj: &[f32]) -> u32 {
    let mut k = 0u32;
    for (j, &p) in proj.iter().enumerate() {
        k |= ((p >= 0.0) as u32) << j;
    }
    k
}

/// Packs signs of `proj` (64·words values) into `words` u64.
#[inline]
pub fn pack(proj: &[f32], out: &mut [u64]) {
    for (w, chunk) in out.iter_mut().zip(proj.chunks(64)) {
        let mut x = 0u64;
        for (j, &p) in chunk.iter().enumerate() {
            x |= ((p >= 0.0) as u64) << j;
        }
        *w = x;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemm_projection_matches_query_projection_and_keys() {
        let d1 = 9;
        let planes = hyperplanes(40, d1, 1, 0);
        let mut r = Rng::new(2);
        let rows: Vec<f32> = (0..5 * d1).map(|_| r.normal() as f32).collect();
        let p = project_rows(&rows, d1, &planes);
        let mut q = Vec::new();
        for i in 0..5 {
            project_query(&rows[i * d1..(i + 1) * d1], d1, &planes, &mut q);
            for j in 0..40 {
                assert!((p[i * 40 + j] - q[j]).abs() < 1e-4);
            }
        }
        assert_eq!(key(&[1.0, -1.0, 0.0, -0.5]), 0b0101);
        let mut w = [0u64; 1];
        pack(&[-1.0, 2.0, 3.0], &mut w);
        assert_eq!(w[0], 0b110);
    }
}
