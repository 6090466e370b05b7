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

/// `y += a·x` over two equal-length slices (one fused multiply-add per element where the CPU
/// has FMA, so the result may differ from the scalar twin's in the last bit).
#[inline]
pub fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    debug_assert_eq!(x.len(), y.len());
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2_fma() {
            // SAFETY: the CPU supports AVX2 and FMA (checked above); the kernel reads and
            // writes only within the shorter of `x` and `y`.
            unsafe { x86::axpy_avx2(a, x, y) };
            return;
        }
    }
    axpy_scalar(a, x, y);
}

/// Scalar twin of [`axpy`] (a separate multiply and add).
#[inline]
pub fn axpy_scalar(a: f32, x: &[f32], y: &mut [f32]) {
    for (v, &u) in y.iter_mut().zip(x) {
        *v += a * u;
    }
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
    assert!(out.len() * w <= codes.len() && query.len() >= w);
    #[cfg(target_arch = "x86_64")]
    {
        if 8 % w == 0 && has_vpopcntdq() {
            // SAFETY: AVX-512F and VPOPCNTDQ are available (checked above); the kernel reads
            // `out.len() * w` words of `codes` and `w` of `query`, both asserted above.
            unsafe { x86::hamming_scan_vpopcntdq(codes, w, query, out) };
            return;
        }
        // Without VPOPCNTDQ, the nibble-table AVX2 kernel beats scalar POPCNT at every width it
        // takes (`cargo bench --bench serving -- hamming_scan`: 1.4-1.6x on an AMD EPYC).
        if 4 % w == 0 && has_avx2_fma() {
            // SAFETY: AVX2 is available (checked above); bounds as asserted above.
            unsafe { x86::hamming_scan_avx2(codes, w, query, out) };
            return;
        }
        if has_popcnt() {
            // SAFETY: POPCNT is available (checked above); indices stay within `codes` and `out`
            // because `out.len() * w <= codes.len()` is asserted inside.
            unsafe { x86::hamming_scan_popcnt(codes, w, query, out) };
            return;
        }
    }
    hamming_scan_scalar(codes, w, query, out);
}

/// Hints the CPU to fetch the cache lines of `row` (a no-op where unsupported).
#[inline]
pub fn prefetch(row: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: prefetching is a hint: it never faults, even for addresses past the end;
        // each address touched is within `row` anyway. SSE is part of baseline x86-64.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let p = row.as_ptr() as *const i8;
            let mut off = 0;
            while off < row.len() * 4 {
                _mm_prefetch::<_MM_HINT_T0>(p.add(off));
                off += 64;
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = row;
}

/// How many rows ahead [`prefetch_gather`] fetches: a row gathered at random from a large
/// embedding matrix is a cache miss, and a few in flight hide most of its latency.
const GATHER_AHEAD: usize = 4;

/// For a loop gathering the rows `cols[k]` (`d` wide) of `x`: prefetches the row
/// `GATHER_AHEAD` positions after the `k`-th, if there is one.
#[inline]
pub fn prefetch_gather(cols: &[u32], k: usize, x: &[f32], d: usize) {
    if let Some(&c) = cols.get(k + GATHER_AHEAD) {
        prefetch(&x[c as usize * d..][..d]);
    }
}

/// Scalar twin of [`hamming_scan`].
pub fn hamming_scan_scalar(codes: &[u64], w: usize, query: &[u64], out: &mut [u32]) {
    for (o, c) in out.iter_mut().zip(codes.chunks_exact(w)) {
        *o = hamming_scalar(c, query);
    }
}

/// Offers every `row[j]` (item `base + j`) to `top`, skipping in bulk the values that cannot
/// enter it. This is the selection half of exact scoring: most scores fall below the current
/// K-th best, and AVX2 compares eight of them per instruction.
#[inline]
pub fn offer_row(row: &[f32], base: u32, top: &mut crate::score::TopK) {
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2_fma() {
            // SAFETY: AVX2 is available (checked above); the kernel reads `row` within bounds.
            unsafe { x86::offer_row_avx2(row, base, top) };
            return;
        }
    }
    offer_row_scalar(row, base, top);
}

/// Scalar twin of [`offer_row`].
#[inline]
pub fn offer_row_scalar(row: &[f32], base: u32, top: &mut crate::score::TopK) {
    let mut th = top.threshold();
    for (j, &s) in row.iter().enumerate() {
        if s >= th && s > f32::NEG_INFINITY {
            top.push(base + j as u32, s);
            th = top.threshold();
        }
    }
}

/// Users per [`score_rows`] call: two AVX2 registers of eight.
pub const TILE_USERS: usize = 16;

/// Exact scores of sixteen users against a run of item rows, fused with the top-K selection's
/// filter.
///
/// `users` holds `TILE_USERS` query vectors packed dimension-major (`users[k·16 + u]` is user
/// `u`'s `k`-th component, `d` of them); `items` holds whole rows of `d` floats. Every score
/// `Σ_k items[i][k]·users[k·16 + u]` is computed with one fused multiply-add per term in `k`
/// order, six items at a time, in registers. Scores below the user's threshold `th[u]` never
/// leave them; for each score that reaches it (`>=`, so a NaN never does), in item order and
/// then user order, `push(i, u, score)` is called and returns the user's new threshold. The
/// scalar twin computes the same sums with `f32::mul_add` in the same order, so the two make
/// the same calls with the same scores, to the bit.
#[inline]
pub fn score_rows(
    users: &[f32],
    items: &[f32],
    d: usize,
    th: &mut [f32; TILE_USERS],
    push: impl FnMut(usize, usize, f32) -> f32,
) {
    assert!(d > 0 && users.len() >= d * TILE_USERS && items.len().is_multiple_of(d));
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2_fma() {
            // SAFETY: AVX2 and FMA are available (checked above); the kernel reads `users`
            // below `d * TILE_USERS` and `items` in whole rows of `d`, as asserted above.
            unsafe { x86::score_rows_avx2(users, items, d, th, push) };
            return;
        }
    }
    score_rows_scalar(users, items, d, th, push)
}

/// Scalar twin of [`score_rows`].
pub fn score_rows_scalar(
    users: &[f32],
    items: &[f32],
    d: usize,
    th: &mut [f32; TILE_USERS],
    mut push: impl FnMut(usize, usize, f32) -> f32,
) {
    for (i, row) in items.chunks_exact(d).enumerate() {
        for (u, t) in th.iter_mut().enumerate() {
            let mut acc = 0f32;
            for k in 0..d {
                acc = row[k].mul_add(users[k * TILE_USERS + u], acc);
            }
            if acc >= *t {
                *t = push(i, u, acc);
            }
        }
    }
}

/// Whether the exact scorer should use [`score_rows`] rather than a GEMM and a separate
/// selection pass: on CPUs with AVX2 and FMA but not AVX-512, where faer's GEMM would run at
/// the same width and the fused tile saves the score matrix's round trip through memory.
/// Where AVX-512 is present, faer's twice-as-wide kernels win.
pub fn fused_scoring() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        has_avx2_fma() && !has_avx512f()
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// The selection key of distance `dist` at position `pos`: `dist << 32 | pos`, so that keys
/// order by distance, then position. [`collect_below`]'s kernels all write this layout (the
/// AVX-512 one builds it in vector lanes).
#[inline]
pub fn scan_key(dist: u32, pos: usize) -> u64 {
    (dist as u64) << 32 | pos as u64
}

/// Appends the key [`scan_key`]`(dists[p], p)` for the positions `p ≥ start` whose distance is below
/// `tau`, in order, until `out` holds `limit` keys (a block may add up to 15 beyond the limit in
/// the SIMD kernels, the scalar twin stops exactly; the return value says where to resume).
/// Returns the position after the last one whose key was considered (`dists.len()` at the end).
/// Keys order as (distance, position). This is the filter half of selecting the smallest Hamming
/// distances: once the threshold is tight most distances fail it, and AVX-512 (or AVX2) tests 16
/// (or 8) per instruction and stores the survivors without a branch (AVX-512 compress).
#[inline]
pub fn collect_below(
    dists: &[u32],
    start: usize,
    tau: u32,
    limit: usize,
    out: &mut Vec<u64>,
) -> usize {
    assert!(start <= dists.len() && dists.len() <= u32::MAX as usize);
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx512f() {
            // SAFETY: AVX-512F is available (checked above); the kernel reserves room for every
            // key it stores and loads 16 values only while 16 remain from `start <= len`.
            return unsafe { x86::collect_below_avx512(dists, start, tau, limit, out) };
        }
        if has_avx2_fma() {
            // SAFETY: AVX2 is available (checked above); the kernel loads eight values only
            // while eight remain from its position, which starts at `start <= dists.len()`.
            return unsafe { x86::collect_below_avx2(dists, start, tau, limit, out) };
        }
    }
    collect_below_scalar(dists, start, tau, limit, out)
}

/// Scalar twin of [`collect_below`]: stops as soon as `out` holds `limit` keys.
#[inline]
pub fn collect_below_scalar(
    dists: &[u32],
    start: usize,
    tau: u32,
    limit: usize,
    out: &mut Vec<u64>,
) -> usize {
    let mut p = start;
    while p < dists.len() && out.len() < limit {
        if dists[p] < tau {
            out.push(scan_key(dists[p], p));
        }
        p += 1;
    }
    p
}

#[cfg(target_arch = "x86_64")]
fn has_avx512f() -> bool {
    use std::sync::OnceLock;
    static F: OnceLock<bool> = OnceLock::new();
    *F.get_or_init(|| is_x86_feature_detected!("avx512f"))
}

#[cfg(target_arch = "x86_64")]
fn has_avx2_fma() -> bool {
    use std::sync::OnceLock;
    static F: OnceLock<bool> = OnceLock::new();
    *F.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

#[cfg(target_arch = "x86_64")]
fn has_vpopcntdq() -> bool {
    use std::sync::OnceLock;
    static F: OnceLock<bool> = OnceLock::new();
    *F.get_or_init(|| {
        is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vpopcntdq")
    })
}

/// Which Hamming-scan kernel runs for `w`-word codes on this CPU.
pub fn hamming_scan_kernel(w: usize) -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if 8 % w == 0 && has_vpopcntdq() {
            return "avx512-vpopcntdq";
        }
        if 4 % w == 0 && has_avx2_fma() {
            return "avx2";
        }
        if has_popcnt() {
            return "popcnt";
        }
    }
    let _ = w;
    "scalar"
}

/// The individual kernels, callable directly so tests can compare every twin that this CPU can
/// run against the scalar one. Each returns `false` when the CPU lacks its features.
pub mod kernels {
    /// AVX-512 VPOPCNTDQ Hamming scan (`8 % w == 0`).
    pub fn hamming_scan_vpopcntdq(codes: &[u64], w: usize, query: &[u64], out: &mut [u32]) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            if 8 % w == 0
                && super::has_vpopcntdq()
                && out.len() * w <= codes.len()
                && query.len() >= w
            {
                // SAFETY: features and bounds checked just above.
                unsafe { super::x86::hamming_scan_vpopcntdq(codes, w, query, out) };
                return true;
            }
        }
        let _ = (codes, w, query, out);
        false
    }

    /// The AVX2 [`super::collect_below`] (the dispatcher prefers AVX-512 where present), or
    /// `None` without AVX2.
    pub fn collect_below_avx2(
        dists: &[u32],
        start: usize,
        tau: u32,
        limit: usize,
        out: &mut Vec<u64>,
    ) -> Option<usize> {
        #[cfg(target_arch = "x86_64")]
        {
            if super::has_avx2_fma() && start <= dists.len() {
                // SAFETY: AVX2 is available and `start <= dists.len()` (checked just above).
                return Some(unsafe {
                    super::x86::collect_below_avx2(dists, start, tau, limit, out)
                });
            }
        }
        let _ = (dists, start, tau, limit, out);
        None
    }

    /// POPCNT Hamming scan (any `w`).
    pub fn hamming_scan_popcnt(codes: &[u64], w: usize, query: &[u64], out: &mut [u32]) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            if super::has_popcnt() && out.len() * w <= codes.len() && query.len() >= w {
                // SAFETY: features and bounds checked just above.
                unsafe { super::x86::hamming_scan_popcnt(codes, w, query, out) };
                return true;
            }
        }
        let _ = (codes, w, query, out);
        false
    }

    /// AVX2 (nibble-table popcount) Hamming scan (`4 % w == 0`).
    pub fn hamming_scan_avx2(codes: &[u64], w: usize, query: &[u64], out: &mut [u32]) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            if 4 % w == 0
                && super::has_avx2_fma()
                && out.len() * w <= codes.len()
                && query.len() >= w
            {
                // SAFETY: features and bounds checked just above.
                unsafe { super::x86::hamming_scan_avx2(codes, w, query, out) };
                return true;
            }
        }
        let _ = (codes, w, query, out);
        false
    }
}

#[cfg(target_arch = "x86_64")]
fn has_popcnt() -> bool {
    use std::sync::OnceLock;
    static F: OnceLock<bool> = OnceLock::new();
    *F.get_or_init(|| is_x86_feature_detected!("popcnt"))
}

/// Which kernels this CPU runs (for `bench` reports), with the Hamming scan's for `w`-word codes.
pub fn dispatch_names(w: usize) -> String {
    #[cfg(target_arch = "x86_64")]
    {
        format!(
            "dot: {}, hamming scan: {}",
            if has_avx2_fma() { "avx2+fma" } else { "scalar" },
            hamming_scan_kernel(w)
        )
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = w;
        "dot: scalar, hamming scan: scalar".to_string()
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

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn axpy_avx2(a: f32, x: &[f32], y: &mut [f32]) {
        let n = x.len().min(y.len());
        let va = _mm256_set1_ps(a);
        let chunks = n / 8;
        for c in 0..chunks {
            // SAFETY: c * 8 + 8 <= n, so the unaligned loads and the store stay in bounds.
            unsafe {
                let px = x.as_ptr().add(c * 8);
                let py = y.as_mut_ptr().add(c * 8);
                let v = _mm256_fmadd_ps(va, _mm256_loadu_ps(px), _mm256_loadu_ps(py));
                _mm256_storeu_ps(py, v);
            }
        }
        for i in chunks * 8..n {
            y[i] = a.mul_add(x[i], y[i]);
        }
    }

    /// Where [`super::collect_below`] stops without reading a value: at `start` when the buffer
    /// is already full, at the end when no distance can be below a zero threshold.
    fn collect_trivially(
        n: usize,
        start: usize,
        tau: u32,
        limit: usize,
        len: usize,
    ) -> Option<usize> {
        if len >= limit {
            Some(start)
        } else if tau == 0 {
            Some(n)
        } else {
            None
        }
    }

    #[target_feature(enable = "avx2")]
    pub unsafe fn collect_below_avx2(
        dists: &[u32],
        start: usize,
        tau: u32,
        limit: usize,
        out: &mut Vec<u64>,
    ) -> usize {
        if let Some(p) = collect_trivially(dists.len(), start, tau, limit, out.len()) {
            return p;
        }
        let n = dists.len();
        // x < tau ⇔ max(x, tau − 1) == tau − 1, in unsigned lanes.
        let tm1 = _mm256_set1_epi32((tau - 1) as i32);
        let mut p = start;
        // Once the threshold is tight most blocks have no survivor: test sixteen per branch.
        while p + 16 <= n {
            // SAFETY: p + 16 <= n.
            let (a, b) = unsafe {
                let at = dists.as_ptr().add(p) as *const __m256i;
                (_mm256_loadu_si256(at), _mm256_loadu_si256(at.add(1)))
            };
            let below_a = _mm256_cmpeq_epi32(_mm256_max_epu32(a, tm1), tm1);
            let below_b = _mm256_cmpeq_epi32(_mm256_max_epu32(b, tm1), tm1);
            let mut m = _mm256_movemask_ps(_mm256_castsi256_ps(below_a)) as u32
                | (_mm256_movemask_ps(_mm256_castsi256_ps(below_b)) as u32) << 8;
            if m != 0 {
                while m != 0 {
                    let j = p + m.trailing_zeros() as usize;
                    m &= m - 1;
                    out.push(super::scan_key(dists[j], j));
                }
                if out.len() >= limit {
                    return p + 16;
                }
            }
            p += 16;
        }
        while p + 8 <= n {
            // SAFETY: p + 8 <= n.
            let v = unsafe { _mm256_loadu_si256(dists.as_ptr().add(p) as *const __m256i) };
            let below = _mm256_cmpeq_epi32(_mm256_max_epu32(v, tm1), tm1);
            let mut m = _mm256_movemask_ps(_mm256_castsi256_ps(below)) as u32;
            while m != 0 {
                let j = p + m.trailing_zeros() as usize;
                m &= m - 1;
                out.push(super::scan_key(dists[j], j));
            }
            p += 8;
            if out.len() >= limit {
                return p;
            }
        }
        super::collect_below_scalar(dists, p, tau, limit, out)
    }

    #[target_feature(enable = "avx512f")]
    pub unsafe fn collect_below_avx512(
        dists: &[u32],
        start: usize,
        tau: u32,
        limit: usize,
        out: &mut Vec<u64>,
    ) -> usize {
        if let Some(p) = collect_trivially(dists.len(), start, tau, limit, out.len()) {
            return p;
        }
        let n = dists.len();
        let vtau = _mm512_set1_epi32(tau as i32);
        let lanes = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
        let mut p = start;
        while p + 16 <= n {
            // SAFETY: p + 16 <= n.
            let v = unsafe { _mm512_loadu_si512(dists.as_ptr().add(p) as *const _) };
            let m = _mm512_cmplt_epu32_mask(v, vtau);
            if m != 0 {
                out.reserve(16);
                let pos = _mm512_add_epi64(_mm512_set1_epi64(p as i64), lanes);
                let mut len = out.len();
                for (half, mh) in [(0, m as u8), (1, (m >> 8) as u8)] {
                    let d = if half == 0 {
                        _mm512_castsi512_si256(v)
                    } else {
                        _mm512_extracti64x4_epi64::<1>(v)
                    };
                    let keys = _mm512_or_si512(
                        _mm512_slli_epi64::<32>(_mm512_cvtepu32_epi64(d)),
                        _mm512_add_epi64(pos, _mm512_set1_epi64(8 * half)),
                    );
                    // SAFETY: `reserve(16)` above leaves room for the (at most 16) keys of this
                    // block after `len`; they are initialised here before `set_len` below.
                    unsafe {
                        _mm512_mask_compressstoreu_epi64(
                            out.as_mut_ptr().add(len) as *mut _,
                            mh,
                            keys,
                        )
                    };
                    len += mh.count_ones() as usize;
                }
                // SAFETY: the keys up to `len` were written just above, within capacity.
                unsafe { out.set_len(len) };
            }
            p += 16;
            if out.len() >= limit {
                return p;
            }
        }
        super::collect_below_scalar(dists, p, tau, limit, out)
    }

    /// See [`super::score_rows`]; the caller checks the bounds.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn score_rows_avx2(
        users: &[f32],
        items: &[f32],
        d: usize,
        th: &mut [f32; super::TILE_USERS],
        mut push: impl FnMut(usize, usize, f32) -> f32,
    ) {
        const TI: usize = 6;
        let n = items.len() / d;
        let pu = users.as_ptr();
        let mut out = [0f32; 16 * TI];
        // SAFETY: th holds 16 floats.
        let (mut t0, mut t1) = unsafe {
            (
                _mm256_loadu_ps(th.as_ptr()),
                _mm256_loadu_ps(th.as_ptr().add(8)),
            )
        };
        let mut i0 = 0;
        while i0 < n {
            let m = (n - i0).min(TI);
            // Past the last item, the rows repeat it; their scores are never reported.
            let r: [*const f32; TI] =
                std::array::from_fn(|j| items[(i0 + j.min(m - 1)) * d..].as_ptr());
            let mut c = [_mm256_setzero_ps(); 12];
            for k in 0..d {
                // SAFETY: k < d, so k·16 + 16 <= users.len(), and every row pointer starts a
                // whole row of `items` (d floats; checked by the caller).
                unsafe {
                    let u0 = _mm256_loadu_ps(pu.add(k * 16));
                    let u1 = _mm256_loadu_ps(pu.add(k * 16 + 8));
                    for (j, row) in r.iter().enumerate() {
                        let x = _mm256_broadcast_ss(&*row.add(k));
                        c[2 * j] = _mm256_fmadd_ps(x, u0, c[2 * j]);
                        c[2 * j + 1] = _mm256_fmadd_ps(x, u1, c[2 * j + 1]);
                    }
                }
            }
            let mut any = 0;
            let mut masks = [0u32; TI];
            for (j, mk) in masks.iter_mut().enumerate().take(m) {
                let lo = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GE_OQ>(c[2 * j], t0)) as u32;
                let hi = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GE_OQ>(c[2 * j + 1], t1)) as u32;
                *mk = lo | hi << 8;
                any |= *mk;
            }
            if any != 0 {
                let po = out.as_mut_ptr();
                for (j, &mk) in masks.iter().enumerate().take(m) {
                    // SAFETY: j < 6, so j·16 + 16 <= out.len() = 96.
                    unsafe {
                        _mm256_storeu_ps(po.add(j * 16), c[2 * j]);
                        _mm256_storeu_ps(po.add(j * 16 + 8), c[2 * j + 1]);
                    }
                    let mut mk = mk;
                    while mk != 0 {
                        let u = mk.trailing_zeros() as usize;
                        mk &= mk - 1;
                        let s = out[j * 16 + u];
                        // The mask used the thresholds before this tile's first push.
                        if s >= th[u] {
                            th[u] = push(i0 + j, u, s);
                        }
                    }
                }
                // SAFETY: th holds 16 floats.
                unsafe {
                    t0 = _mm256_loadu_ps(th.as_ptr());
                    t1 = _mm256_loadu_ps(th.as_ptr().add(8));
                }
            }
            i0 += m;
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn offer_row_avx2(row: &[f32], base: u32, top: &mut crate::score::TopK) {
        let chunks = row.len() / 8;
        let mut th = top.threshold();
        let mut vth = _mm256_set1_ps(th);
        for c in 0..chunks {
            // SAFETY: c * 8 + 8 <= row.len().
            let v = unsafe { _mm256_loadu_ps(row.as_ptr().add(c * 8)) };
            let mut m = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GE_OQ>(v, vth)) as u32;
            while m != 0 {
                let j = c * 8 + m.trailing_zeros() as usize;
                m &= m - 1;
                let s = row[j];
                if s >= th && s > f32::NEG_INFINITY {
                    top.push(base + j as u32, s);
                    th = top.threshold();
                }
            }
            vth = _mm256_set1_ps(th);
        }
        for (j, &s) in row.iter().enumerate().skip(chunks * 8) {
            if s >= th && s > f32::NEG_INFINITY {
                top.push(base + j as u32, s);
                th = top.threshold();
            }
        }
    }

    #[target_feature(enable = "popcnt")]
    pub unsafe fn hamming_popcnt(a: &[u64], b: &[u64]) -> u32 {
        let mut s = 0u32;
        for (x, y) in a.iter().zip(b) {
            s += _popcnt64((x ^ y) as i64) as u32;
        }
        s
    }

    /// 8 u64 lanes per vector hold 8/w items; the query is broadcast in a period-w pattern.
    #[target_feature(enable = "avx512f,avx512vpopcntdq")]
    pub unsafe fn hamming_scan_vpopcntdq(codes: &[u64], w: usize, query: &[u64], out: &mut [u32]) {
        let per = 8 / w;
        let mut pat = [0u64; 8];
        for (l, p) in pat.iter_mut().enumerate() {
            *p = query[l % w];
        }
        // SAFETY: `pat` holds 8 u64.
        let qv = unsafe { _mm512_loadu_si512(pat.as_ptr() as *const _) };
        let done;
        if w == 1 {
            let blocks = out.len() / 8;
            for b in 0..blocks {
                // SAFETY: b * 8 + 8 <= out.len() <= codes.len().
                let c = unsafe { _mm512_loadu_si512(codes.as_ptr().add(b * 8) as *const _) };
                let pc = _mm512_popcnt_epi64(_mm512_xor_si512(c, qv));
                // SAFETY: b * 8 + 8 <= out.len().
                unsafe {
                    _mm256_storeu_si256(
                        out.as_mut_ptr().add(b * 8) as *mut _,
                        _mm512_cvtepi64_epi32(pc),
                    )
                };
            }
            done = blocks * 8;
        } else if w == 2 {
            // Two vectors hold 8 items; sum their (even, odd) lane pairs in one permute-add.
            let even = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
            let odd = _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15);
            let blocks = out.len() / 8;
            for b in 0..blocks {
                // SAFETY: b * 16 + 16 <= out.len() * 2 <= codes.len().
                let (c1, c2) = unsafe {
                    (
                        _mm512_loadu_si512(codes.as_ptr().add(b * 16) as *const _),
                        _mm512_loadu_si512(codes.as_ptr().add(b * 16 + 8) as *const _),
                    )
                };
                let p1 = _mm512_popcnt_epi64(_mm512_xor_si512(c1, qv));
                let p2 = _mm512_popcnt_epi64(_mm512_xor_si512(c2, qv));
                let sum = _mm512_add_epi64(
                    _mm512_permutex2var_epi64(p1, even, p2),
                    _mm512_permutex2var_epi64(p1, odd, p2),
                );
                // SAFETY: b * 8 + 8 <= out.len().
                unsafe {
                    _mm256_storeu_si256(
                        out.as_mut_ptr().add(b * 8) as *mut _,
                        _mm512_cvtepi64_epi32(sum),
                    )
                };
            }
            done = blocks * 8;
        } else if w == 4 {
            // Four vectors hold 8 items of 4 words: two rounds of (even, odd) permute-adds
            // reduce each item's 4 lane counts to one.
            let even = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
            let odd = _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15);
            let blocks = out.len() / 8;
            for b in 0..blocks {
                let base = codes.as_ptr();
                // SAFETY: b * 32 + 32 <= out.len() * 4 <= codes.len().
                let (c1, c2, c3, c4) = unsafe {
                    (
                        _mm512_loadu_si512(base.add(b * 32) as *const _),
                        _mm512_loadu_si512(base.add(b * 32 + 8) as *const _),
                        _mm512_loadu_si512(base.add(b * 32 + 16) as *const _),
                        _mm512_loadu_si512(base.add(b * 32 + 24) as *const _),
                    )
                };
                let p1 = _mm512_popcnt_epi64(_mm512_xor_si512(c1, qv));
                let p2 = _mm512_popcnt_epi64(_mm512_xor_si512(c2, qv));
                let p3 = _mm512_popcnt_epi64(_mm512_xor_si512(c3, qv));
                let p4 = _mm512_popcnt_epi64(_mm512_xor_si512(c4, qv));
                let s12 = _mm512_add_epi64(
                    _mm512_permutex2var_epi64(p1, even, p2),
                    _mm512_permutex2var_epi64(p1, odd, p2),
                );
                let s34 = _mm512_add_epi64(
                    _mm512_permutex2var_epi64(p3, even, p4),
                    _mm512_permutex2var_epi64(p3, odd, p4),
                );
                let sum = _mm512_add_epi64(
                    _mm512_permutex2var_epi64(s12, even, s34),
                    _mm512_permutex2var_epi64(s12, odd, s34),
                );
                // SAFETY: b * 8 + 8 <= out.len().
                unsafe {
                    _mm256_storeu_si256(
                        out.as_mut_ptr().add(b * 8) as *mut _,
                        _mm512_cvtepi64_epi32(sum),
                    )
                };
            }
            done = blocks * 8;
        } else {
            let groups = out.len() / per;
            let mut lanes = [0u64; 8];
            for g in 0..groups {
                // SAFETY: g * 8 + 8 <= groups * per * w <= out.len() * w <= codes.len().
                let c = unsafe { _mm512_loadu_si512(codes.as_ptr().add(g * 8) as *const _) };
                let pc = _mm512_popcnt_epi64(_mm512_xor_si512(c, qv));
                // SAFETY: `lanes` holds 8 u64.
                unsafe { _mm512_storeu_si512(lanes.as_mut_ptr() as *mut _, pc) };
                for k in 0..per {
                    out[g * per + k] = lanes[k * w..(k + 1) * w].iter().sum::<u64>() as u32;
                }
            }
            done = groups * per;
        }
        for i in done..out.len() {
            out[i] = (0..w)
                .map(|k| (codes[i * w + k] ^ query[k]).count_ones())
                .sum();
        }
    }

    /// Popcount of each byte of `x` by nibble lookup (Muła), summed per 64-bit lane with SAD.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn lane_popcounts(x: __m256i) -> __m256i {
        let lut = _mm256_setr_epi8(
            0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2,
            3, 3, 4,
        );
        let low = _mm256_set1_epi8(0x0f);
        let lo = _mm256_shuffle_epi8(lut, _mm256_and_si256(x, low));
        let hi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(x, 4), low));
        _mm256_sad_epu8(_mm256_add_epi8(lo, hi), _mm256_setzero_si256())
    }

    /// Adds the 64-bit lanes of `a` and `b` in pairs within each 128-bit half:
    /// `[a0+a1, b0+b1, a2+a3, b2+b3]`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn pair_sums(a: __m256i, b: __m256i) -> __m256i {
        _mm256_add_epi64(_mm256_unpacklo_epi64(a, b), _mm256_unpackhi_epi64(a, b))
    }

    /// Eight codes' distances, held as 64-bit lanes `lo` and `hi` (each below 2³²), as eight
    /// 32-bit lanes in the order `perm` gives for the interleaving `[lo0, hi0, lo1, hi1, …]`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn pack_eight(lo: __m256i, hi: __m256i, perm: __m256i) -> __m256i {
        let mixed = _mm256_or_si256(lo, _mm256_slli_epi64(hi, 32));
        _mm256_permutevar8x32_epi32(mixed, perm)
    }

    /// Nibble-table popcounts, eight codes per step, reduced in registers: for `w` = 4 a code is
    /// one vector, for `w` = 2 a vector holds two, for `w` = 1 four.
    #[target_feature(enable = "avx2")]
    pub unsafe fn hamming_scan_avx2(codes: &[u64], w: usize, query: &[u64], out: &mut [u32]) {
        let mut pat = [0u64; 4];
        for (l, p) in pat.iter_mut().enumerate() {
            *p = query[l % w];
        }
        // SAFETY: `pat` holds 4 u64.
        let qv = unsafe { _mm256_loadu_si256(pat.as_ptr() as *const _) };
        let blocks = if matches!(w, 1 | 2 | 4) {
            out.len() / 8
        } else {
            0
        };
        let base = codes.as_ptr();
        // SAFETY (every load below): block `b` reads words `b * 8 * w .. (b + 1) * 8 * w`, and
        // `(b + 1) * 8 <= out.len()` with `out.len() * w <= codes.len()` (the caller's contract).
        let load = |word: usize| unsafe { _mm256_loadu_si256(base.add(word) as *const _) };
        let count = |word: usize| lane_popcounts(_mm256_xor_si256(load(word), qv));
        for b in 0..blocks {
            let at = b * 8 * w;
            let packed = match w {
                4 => {
                    // Code j's four lane counts are vector j's: pair-sum, then add the halves.
                    let (s0, s1, s2, s3) =
                        (count(at), count(at + 4), count(at + 8), count(at + 12));
                    let (t01, t23) = (pair_sums(s0, s1), pair_sums(s2, s3));
                    let first = _mm256_add_epi64(
                        _mm256_permute2x128_si256(t01, t23, 0x20),
                        _mm256_permute2x128_si256(t01, t23, 0x31),
                    );
                    let (s4, s5, s6, s7) = (
                        count(at + 16),
                        count(at + 20),
                        count(at + 24),
                        count(at + 28),
                    );
                    let (t45, t67) = (pair_sums(s4, s5), pair_sums(s6, s7));
                    let second = _mm256_add_epi64(
                        _mm256_permute2x128_si256(t45, t67, 0x20),
                        _mm256_permute2x128_si256(t45, t67, 0x31),
                    );
                    // first = codes 0-3, second = 4-7.
                    pack_eight(first, second, _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7))
                }
                2 => {
                    // pair_sums(s0, s1) = codes [0, 2, 1, 3], pair_sums(s2, s3) = [4, 6, 5, 7].
                    let t01 = pair_sums(count(at), count(at + 4));
                    let t23 = pair_sums(count(at + 8), count(at + 12));
                    pack_eight(t01, t23, _mm256_setr_epi32(0, 4, 2, 6, 1, 5, 3, 7))
                }
                _ => pack_eight(
                    count(at),
                    count(at + 4),
                    _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7),
                ),
            };
            // SAFETY: b * 8 + 8 <= out.len().
            unsafe { _mm256_storeu_si256(out.as_mut_ptr().add(b * 8) as *mut _, packed) };
        }
        for i in blocks * 8..out.len() {
            out[i] = (0..w)
                .map(|k| (codes[i * w + k] ^ query[k]).count_ones())
                .sum();
        }
    }

    #[target_feature(enable = "popcnt")]
    pub unsafe fn hamming_scan_popcnt(codes: &[u64], w: usize, query: &[u64], out: &mut [u32]) {
        assert!(out.len() * w <= codes.len() && query.len() >= w);
        let pc = |x: u64| _popcnt64(x as i64);
        if w == 1 {
            let q0 = query[0];
            for (o, &c) in out.iter_mut().zip(codes) {
                *o = pc(c ^ q0) as u32;
            }
            return;
        }
        if w == 2 {
            let (q0, q1) = (query[0], query[1]);
            for (o, c) in out.iter_mut().zip(codes.chunks_exact(2)) {
                *o = (pc(c[0] ^ q0) + pc(c[1] ^ q1)) as u32;
            }
            return;
        }
        if w == 4 {
            let (q0, q1, q2, q3) = (query[0], query[1], query[2], query[3]);
            for (o, c) in out.iter_mut().zip(codes.chunks_exact(4)) {
                *o = (pc(c[0] ^ q0) + pc(c[1] ^ q1) + pc(c[2] ^ q2) + pc(c[3] ^ q3)) as u32;
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
        fn axpy_matches_scalar(
            v in proptest::collection::vec((-100f32..100.0, -100f32..100.0), 0..200),
            a in -10f32..10.0,
        ) {
            let (x, y): (Vec<f32>, Vec<f32>) = v.into_iter().unzip();
            let (mut s, mut f) = (y.clone(), y.clone());
            axpy_scalar(a, &x, &mut s);
            axpy(a, &x, &mut f);
            for ((s, f), (x, y)) in s.iter().zip(&f).zip(x.iter().zip(&y)) {
                // One rounding apart at most: FMA rounds a·x + y once, the twin twice.
                let mag = (a * x).abs() + y.abs();
                prop_assert!((s - f).abs() <= 2.0 * f32::EPSILON * mag, "{s} vs {f}");
            }
        }

        #[test]
        fn offer_row_matches_scalar(
            v in proptest::collection::vec(-3i8..3, 0..300),
            w in proptest::collection::vec(-40i16..40, 0..1500),
            k in 1usize..20,
        ) {
            // Two rows offered in turn to one selector, as the exact scorer's item blocks are:
            // a short one with many ties and −∞ (excluded) scores, then a long one with a NaN.
            let row: Vec<f32> = v.iter().map(|&x| if x == -3 { f32::NEG_INFINITY } else { x as f32 }).collect();
            let mut long: Vec<f32> = w.iter().map(|&x| if x == -40 { f32::NEG_INFINITY } else { x as f32 / 4.0 }).collect();
            if let Some(x) = long.get_mut(7) {
                *x = f32::NAN;
            }
            let mut a = crate::score::TopK::new(k);
            let mut b = crate::score::TopK::new(k);
            offer_row(&row, 5, &mut a);
            offer_row_scalar(&row, 5, &mut b);
            prop_assert_eq!(a.clone().into_sorted(), b.clone().into_sorted());
            offer_row(&long, 400, &mut a);
            offer_row_scalar(&long, 400, &mut b);
            prop_assert_eq!(a.into_sorted(), b.into_sorted());
        }

        #[test]
        fn score_rows_matches_scalar(
            d in 1usize..40,
            n in 0usize..30,
            seed in any::<u64>(),
            k in 1usize..5,
            nan_at in proptest::option::of(0usize..2000),
        ) {
            // Random users and items (one maybe NaN), a top-k per user as the push: the SIMD
            // kernel and its twin must make the same calls with the same scores, to the bit.
            let mut r = crate::rng::Rng::new(seed);
            let users: Vec<f32> = (0..d * TILE_USERS).map(|_| r.normal() as f32).collect();
            let mut items: Vec<f32> = (0..n * d).map(|_| r.normal() as f32).collect();
            if let Some(x) = nan_at.and_then(|i| items.get_mut(i)) {
                *x = f32::NAN;
            }
            let run = |simd: bool| {
                let mut calls = Vec::new();
                let mut tops: Vec<_> = (0..TILE_USERS).map(|_| crate::score::TopK::new(k)).collect();
                let mut th = [f32::NEG_INFINITY; TILE_USERS];
                th[3] = f32::INFINITY; // a padding lane
                let push = |i: usize, u: usize, s: f32| {
                    calls.push((i, u, s.to_bits()));
                    tops[u].push(i as u32, s);
                    tops[u].threshold()
                };
                match simd {
                    true => score_rows(&users, &items, d, &mut th, push),
                    false => score_rows_scalar(&users, &items, d, &mut th, push),
                }
                calls
            };
            let (a, b) = (run(true), run(false));
            prop_assert!(a.iter().all(|c| c.1 != 3));
            // A NaN score never beats a threshold, so only an all-finite item must be offered:
            // with one item and the NaN in it, nothing is pushed.
            let finite_item = items.chunks(d).any(|row| row.iter().all(|x| x.is_finite()));
            prop_assert!(!finite_item || !a.is_empty());
            prop_assert_eq!(a, b);
        }

        #[test]
        fn collect_below_matches_scalar(
            d in proptest::collection::vec(prop_oneof![0u32..12, Just(u32::MAX), Just(0x8000_0000)], 0..100),
            start_frac in 0.0f64..=1.0,
            tau in prop_oneof![0u32..14, Just(u32::MAX), Just(0x8000_0001)],
            limit in 0usize..40,
            pre in 0usize..5,
        ) {
            let start = (d.len() as f64 * start_frac) as usize;
            let pre: Vec<u64> = (0..pre).map(|i| scan_key(i as u32, 1000 + i)).collect();
            let key = |p: usize| scan_key(d[p], p);
            let mut b = pre.clone();
            let pb = collect_below_scalar(&d, start, tau, limit, &mut b);
            // The scalar twin against the definition: every key below tau in [start, pb), and
            // it stops only at the end or at the limit.
            let want: Vec<u64> = (start..pb).filter(|&p| d[p] < tau).map(key).collect();
            prop_assert_eq!(&b[pre.len()..], &want[..]);
            prop_assert!(pb == d.len() || b.len() >= limit);
            // The dispatched kernel may run past the limit by part of a block: its keys are the
            // same sequence, cut at its own return position, and resuming there from both
            // gives the same keys to the end.
            collect_below_scalar(&d, pb, tau, usize::MAX, &mut b);
            type Kernel = dyn Fn(&[u32], usize, u32, usize, &mut Vec<u64>) -> Option<usize>;
            let kernels: [(&str, &Kernel); 2] = [
                ("dispatch", &|d, s, t, l, o| Some(collect_below(d, s, t, l, o))),
                ("avx2", &kernels::collect_below_avx2),
            ];
            for (name, f) in kernels {
                let mut a = pre.clone();
                let Some(pa) = f(&d, start, tau, limit, &mut a) else { continue };
                prop_assert!(pa >= pb && (pa == d.len() || a.len() >= limit), "{}", name);
                let upto: Vec<u64> = (start..pa).filter(|&p| d[p] < tau).map(key).collect();
                prop_assert_eq!(&a[pre.len()..], &upto[..], "{}", name);
                f(&d, pa, tau, usize::MAX, &mut a);
                prop_assert_eq!(&a, &b, "{}", name);
            }
        }

        #[test]
        fn hamming_matches_scalar(v in proptest::collection::vec(any::<u64>(), 1..300), w in 1usize..5) {
            let n = v.len() / w;
            let q: Vec<u64> = v[..w.min(v.len())].to_vec();
            if n == 0 || q.len() < w { return Ok(()); }
            let codes = &v[..n * w];
            let mut a = vec![0; n];
            let mut b = vec![0; n];
            hamming_scan(codes, w, &q, &mut a);
            hamming_scan_scalar(codes, w, &q, &mut b);
            prop_assert_eq!(&a, &b);
            let mut c = vec![0; n];
            if kernels::hamming_scan_vpopcntdq(codes, w, &q, &mut c) {
                prop_assert_eq!(&c, &b, "vpopcntdq");
            }
            let mut c = vec![0; n];
            if kernels::hamming_scan_avx2(codes, w, &q, &mut c) {
                prop_assert_eq!(&c, &b, "avx2");
            }
            let mut c = vec![0; n];
            if kernels::hamming_scan_popcnt(codes, w, &q, &mut c) {
                prop_assert_eq!(&c, &b, "popcnt");
            }
            for i in 0..n {
                let naive: u32 = (0..w).map(|k| (codes[i * w + k] ^ q[k]).count_ones()).sum();
                prop_assert_eq!(a[i], naive);
                prop_assert_eq!(hamming(&codes[i * w..(i + 1) * w], &q), naive);
            }
        }
    }
}
