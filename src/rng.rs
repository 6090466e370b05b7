//! A small, explicitly seeded random number generator (xoshiro256++ seeded through SplitMix64).
//!
//! lshrec's results must be bit-reproducible from a seed across platforms and crate upgrades, so
//! the generator is written here rather than taken from a crate whose stream may change between
//! versions. Parallel code derives one independent stream per work unit with [`Rng::stream`], so
//! results do not depend on how rayon schedules the work.

/// SplitMix64 step: used for seeding and for hashing a (seed, stream) pair.
#[inline]
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xoshiro256++ generator.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator seeded from `seed`.
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        let s = [
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
        ];
        Rng { s }
    }

    /// An independent generator for work unit `stream` under `seed` (for parallel loops).
    pub fn stream(seed: u64, stream: u64) -> Self {
        let mut sm = seed ^ 0xA076_1D64_78BD_642F;
        let a = splitmix64(&mut sm);
        let mut sm2 = a ^ stream.wrapping_mul(0xE703_7ED1_A0B4_28DB);
        Rng::new(splitmix64(&mut sm2))
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = (s[0].wrapping_add(s[3])).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1) with 53 bits of precision.
    #[inline]
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [0, 1) as f32.
    #[inline]
    pub fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u32 << 24) as f32)
    }

    /// Uniform integer in [0, n). `n` must be positive. Uses Lemire's multiply-shift (the tiny bias
    /// for n far below 2^64 is irrelevant here and keeps the stream branch-free).
    #[inline]
    pub fn below(&mut self, n: usize) -> usize {
        debug_assert!(n > 0);
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// A standard normal sample (Box-Muller).
    #[inline]
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.f64(); // (0, 1]
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

/// NumPy's legacy generator, `numpy.random.RandomState(seed)`: MT19937 seeded as NumPy seeds it,
/// with `permutation` drawing as NumPy's legacy shuffle does, so that a split made by a Python
/// pipeline (`RandomState(42).permutation(n)` per user, as the P2 references were split) can be
/// made here bit for bit. Only what the `per-user-numpy` split needs is implemented.
#[derive(Clone)]
pub struct NumpyRandomState {
    mt: Box<[u32; 624]>,
    at: usize,
}

impl NumpyRandomState {
    /// `RandomState(seed)`: NumPy takes seeds in 0..2^32.
    pub fn new(seed: u32) -> Self {
        let mut mt = Box::new([0u32; 624]);
        mt[0] = seed;
        for i in 1..624 {
            let prev = mt[i - 1];
            mt[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        NumpyRandomState { mt, at: 624 }
    }

    /// The next 32-bit output of MT19937.
    pub fn next_u32(&mut self) -> u32 {
        if self.at >= 624 {
            let mt = &mut self.mt;
            for i in 0..624 {
                let y = (mt[i] & 0x8000_0000) | (mt[(i + 1) % 624] & 0x7fff_ffff);
                let mut v = mt[(i + 397) % 624] ^ (y >> 1);
                if y & 1 != 0 {
                    v ^= 0x9908_b0df;
                }
                mt[i] = v;
            }
            self.at = 0;
        }
        let mut y = self.mt[self.at];
        self.at += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// A uniform integer in `0..=max`, as NumPy's legacy `random_interval` draws it: the
    /// smallest all-ones mask covering `max`, and rejection of masked draws above it. (NumPy
    /// draws 64 bits for a `max` beyond 32 bits; a permutation that long is not needed here.)
    fn interval(&mut self, max: u32) -> u32 {
        if max == 0 {
            return 0;
        }
        let mask = u32::MAX >> max.leading_zeros();
        loop {
            let v = self.next_u32() & mask;
            if v <= max {
                return v;
            }
        }
    }

    /// `RandomState.permutation(n)`: `0..n` shuffled by NumPy's legacy Fisher-Yates, for
    /// `n` up to 2^32.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        assert!(
            n as u64 <= 1 << 32,
            "permutation of {n} items: at most 2^32"
        );
        let mut v: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.interval(i as u32) as usize;
            v.swap(i, j);
        }
        v
    }
}

impl std::fmt::Debug for NumpyRandomState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NumpyRandomState {{ at: {} }}", self.at)
    }
}

/// Walker's alias table: O(1) sampling from a discrete distribution.
#[derive(Clone, Debug)]
pub struct AliasTable {
    prob: Vec<f64>,
    alias: Vec<u32>,
}

impl AliasTable {
    /// Builds the table from non-negative weights with a positive sum.
    pub fn new(weights: &[f64]) -> Self {
        let n = weights.len();
        let sum: f64 = weights.iter().sum();
        let mut prob: Vec<f64> = weights.iter().map(|w| w * n as f64 / sum).collect();
        let mut alias = vec![0u32; n];
        let (mut small, mut large): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| prob[i] < 1.0);
        while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
            alias[s] = l as u32;
            prob[l] -= 1.0 - prob[s];
            if prob[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        for &i in small.iter().chain(large.iter()) {
            prob[i] = 1.0;
        }
        AliasTable { prob, alias }
    }

    /// Draws one index.
    #[inline]
    pub fn sample(&self, rng: &mut Rng) -> usize {
        let i = rng.below(self.prob.len());
        if rng.f64() < self.prob[i] {
            i
        } else {
            self.alias[i] as usize
        }
    }

    /// Number of outcomes.
    pub fn len(&self) -> usize {
        self.prob.len()
    }

    /// True when there are no outcomes.
    pub fn is_empty(&self) -> bool {
        self.prob.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values printed by NumPy 2.4 (`RandomState(s).randint(0, 2**32, dtype=np.uint64)` for
    /// the raw outputs, and `RandomState(s).permutation(n)`).
    #[test]
    fn numpy_random_state_matches_numpy() {
        let raw = |seed: u32, n: usize| -> Vec<u32> {
            let mut r = NumpyRandomState::new(seed);
            (0..n).map(|_| r.next_u32()).collect()
        };
        assert_eq!(raw(42, 3), [1608637542, 3421126067, 4083286876]);
        assert_eq!(raw(0, 2), [2357136044, 2546248239]);
        assert_eq!(raw(u32::MAX, 2), [419326371, 479346978]);
        // Past the first 624-word refill.
        assert_eq!(raw(42, 701)[700], 2160953785);

        let mut r = NumpyRandomState::new(42);
        assert_eq!(r.permutation(10), [8, 1, 5, 0, 7, 2, 9, 4, 3, 6]);
        let mut r = NumpyRandomState::new(42);
        assert_eq!(
            r.permutation(70_000)[..5],
            [46730, 48393, 41416, 34506, 43725]
        );
        assert_eq!(
            r.permutation(3),
            [0, 2, 1],
            "the stream continues across calls"
        );
        let mut r = NumpyRandomState::new(7);
        assert_eq!(r.permutation(5), [0, 3, 2, 1, 4]);
        assert_eq!(r.permutation(1), [0]);
        assert!(r.permutation(0).is_empty());
        assert_eq!(
            r.permutation(33),
            [
                32, 2, 24, 1, 18, 13, 9, 15, 22, 5, 3, 20, 26, 17, 11, 0, 12, 21, 16, 4, 6, 30, 29,
                10, 27, 8, 31, 14, 25, 28, 7, 23, 19
            ]
        );
    }

    #[test]
    fn same_seed_same_stream_and_streams_differ() {
        let a: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let mut r = Rng::new(7);
        let b: Vec<u64> = (0..8).map(|_| r.next_u64()).collect();
        assert_eq!(a, b);
        assert_ne!(Rng::stream(7, 0).next_u64(), Rng::stream(7, 1).next_u64());
    }

    #[test]
    fn uniform_and_normal_moments() {
        let mut r = Rng::new(1);
        let n = 200_000;
        let mean: f64 = (0..n).map(|_| r.f64()).sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.01, "mean {mean}");
        let xs: Vec<f64> = (0..n).map(|_| r.normal()).collect();
        let m = xs.iter().sum::<f64>() / n as f64;
        let v = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n as f64;
        assert!(m.abs() < 0.01 && (v - 1.0).abs() < 0.02, "mean {m} var {v}");
    }

    #[test]
    fn alias_table_matches_weights() {
        let w = [1.0, 2.0, 0.0, 7.0];
        let t = AliasTable::new(&w);
        let mut r = Rng::new(3);
        let mut c = [0usize; 4];
        let n = 100_000;
        for _ in 0..n {
            c[t.sample(&mut r)] += 1;
        }
        assert_eq!(c[2], 0);
        for i in [0, 1, 3] {
            let p = c[i] as f64 / n as f64;
            assert!((p - w[i] / 10.0).abs() < 0.01, "outcome {i}: {p}");
        }
    }
}
