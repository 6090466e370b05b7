//! The one place with SIMD intrinsics. Every kernel has a plain scalar twin, selected at runtime
//! by CPU feature detection (shipped builds target baseline x86-64), and proptests compare the
//! two.

/// Dot product of two equal-length slices.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2_fma() {
            // SAFETY: the CPU supports AVX2 and FMA (checked above); the kernel reads only
            // within the bounds of `a` and `b`, whose lengths are equal.
            return unsafe { x86::dot_avx2(a, b) };
        }
    }
    dot_scalar(a, b)
}

/// Scalar twin of [`dot`] (8 independent accumulators, the same association order as the SIMD
/// kernel's lanes, so results agree to rounding).
#[inline]
pub fn dot_scalar(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = a.len() / 8;
    for c in 0..chunks {
        for l in 0..8 {
            acc[l] += a[c * 8 + l] * b[c * 8 + l];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for i in chunks * 8..a.len() {
        s += a[i] * b[i];
    }
    s
}

/// Hamming distance between two codes of equal length (in u64 words).
#[inline]
pub fn hamming(a: &[u64], b: &[u64]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        if has_popcnt() {
            // SAFETY: the CPU supports POPCNT (checked above); slices are read within bounds.
            return unsafe { x86::hamming_popcnt(a, b) };
        }
    }
    hamming_scalar(a, b)
}

/// Scalar twin of [`hamming`] (bit tricks, no POPCNT instruction needed).
#[inline]
pub fn hamming_scalar(a: &[u64], b: &[u64]) -> u32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let mut v = x ^ y;
            v = v - ((v >> 1) & 0x5555_5555_5555_5555);
            v = (v & 0x3333_3333_3333_3333) + ((v >> 2) & 0x3333_3333_3333_3333);
            v = (v + (v >> 4)) & 0x0F0F_0F0F_0F0F_0F0F;
            (v.wrapping_mul(0x0101_0101_0101_0101) >> 56) as u32
        })
        .sum()
}

/// Hamming distances of `query` (`w` words) to every code in `codes` (n × w words), into `out`.
pub fn hamming_scan(codes: &[u64], w: usize, query: &[u64], out: &mut [u32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if has_popcnt() {
            // SAFETY: POPCNT is available (checked above); indices stay within `codes` and `out`
            // because `out.len() * w <= codes.len()` is asserted inside.
            unsafe { x86::hamming_scan_popcnt(codes, w, query, out) };
            return;
        }
    }
    hamming_scan_scalar(codes, w, query, out);
}

/// Scalar twin of [`hamming_scan`].
pub fn hamming_scan_scalar(codes: &[u64], w: usize, query: &[u64], out: &mut [u32]) {
    for (o, c) in out.iter_mut().zip(codes.chunks_exact(w)) {
        *o = hamming_scalar(c, query);
    }
}

#[cfg(target_arch = "x86_64")]
fn has_avx2_fma() -> bool {
    use std::sync::OnceLock;
    static F: OnceLock<bool> = OnceLock::new();
    *F.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

#[cfg(target_arch = "x86_64")]
fn has_popcnt() -> bool {
    use std::sync::OnceLock;
    static F: OnceLock<bool> = OnceLock::new();
    *F.get_or_init(|| is_x86_feature_detected!("popcnt"))
}

/// Which kernels this CPU runs (for `bench` reports).
pub fn dispatch_names() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        format!(
            "dot: {}, hamming: {}",
            if has_avx2_fma() { "avx2+fma" } else { "scalar" },
            if has_popcnt() { "popcnt" } else { "scalar" }
        )
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        "dot: scalar, hamming: scalar".to_string()
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let chunks = n / 8;
        let mut acc = _mm256_setzero_ps();
        for c in 0..chunks {
            // SAFETY: c * 8 + 8 <= n, so both unaligned loads stay in bounds.
            let va = unsafe { _mm256_loadu_ps(a.as_ptr().add(c * 8)) };
            let vb = unsafe { _mm256_loadu_ps(b.as_ptr().add(c * 8)) };
            acc = _mm256_fmadd_ps(va, vb, acc);
        }
        let mut lanes = [0f32; 8];
        // SAFETY: `lanes` holds exactly 8 f32.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), acc) };
        let mut s = ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5]))
            + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
        for i in chunks * 8..n {
            s += a[i] * b[i];
        }
        s
    }

    #[target_feature(enable = "popcnt")]
    pub unsafe fn hamming_popcnt(a: &[u64], b: &[u64]) -> u32 {
        let mut s = 0u32;
        for (x, y) in a.iter().zip(b) {
            s += _popcnt64((x ^ y) as i64) as u32;
        }
        s
    }

    #[target_feature(enable = "popcnt")]
    pub unsafe fn hamming_scan_popcnt(codes: &[u64], w: usize, query: &[u64], out: &mut [u32]) {
        assert!(out.len() * w <= codes.len() && query.len() >= w);
        if w == 2 {
            let (q0, q1) = (query[0], query[1]);
            for (i, o) in out.iter_mut().enumerate() {
                let c = &codes[2 * i..2 * i + 2];
                *o = (_popcnt64((c[0] ^ q0) as i64) + _popcnt64((c[1] ^ q1) as i64)) as u32;
            }
            return;
        }
        for (i, o) in out.iter_mut().enumerate() {
            let c = &codes[w * i..w * i + w];
            let mut s = 0;
            for k in 0..w {
                s += _popcnt64((c[k] ^ query[k]) as i64);
            }
            *o = s as u32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn dot_matches_scalar(v in proptest::collection::vec((-100f32..100.0, -100f32..100.0), 0..200)) {
            let (a, b): (Vec<f32>, Vec<f32>) = v.into_iter().unzip();
            let s = dot_scalar(&a, &b);
            let f = dot(&a, &b);
            let mag: f32 = a.iter().zip(&b).map(|(x, y)| (x * y).abs()).sum();
            prop_assert!((s - f).abs() <= 1e-5 * mag.max(1.0), "{s} vs {f}");
        }

        #[test]
        fn hamming_matches_scalar(v in proptest::collection::vec(any::<u64>(), 1..64), w in 1usize..5) {
            let n = v.len() / w;
            let q: Vec<u64> = v[..w.min(v.len())].to_vec();
            if n == 0 || q.len() < w { return Ok(()); }
            let codes = &v[..n * w];
            let mut a = vec![0; n];
            let mut b = vec![0; n];
            hamming_scan(codes, w, &q, &mut a);
            hamming_scan_scalar(codes, w, &q, &mut b);
            prop_assert_eq!(&a, &b);
            for i in 0..n {
                let naive: u32 = (0..w).map(|k| (codes[i * w + k] ^ q[k]).count_ones()).sum();
                prop_assert_eq!(a[i], naive);
                prop_assert_eq!(hamming(&codes[i * w..(i + 1) * w], &q), naive);
            }
        }
    }
}
