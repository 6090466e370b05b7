// Random-hyperplane LSH: projection and sign-packing, and the Hamming scan.
#include "common.cuh"

// lsh_hash_f32: codes[r][w] bit b = (planes[64w + b]·t_r ≥ 0), where t_r is row r of x (n × d)
// transformed as the index does: with range_max, t_r = [x_r/m_r, √max(0, 1 − |x_r|²/m_r²)]
// (simple-LSH, d1 = d + 1); without (nullptr), t_r = x_r padded with zeros to d1.
// planes is (64·words) × d1, row-major.
// Launch: 1-D, any grid (grid-stride over n·words); one thread per output word.
// CPU twin: index::build::transform_item + index::hash::project_rows + index::hash::pack.
extern "C" __global__ void lsh_hash_f32(const float* __restrict__ x,
                                        const float* __restrict__ range_max, int n, int d,
                                        int d1, const float* __restrict__ planes, int words,
                                        unsigned long long* __restrict__ codes) {
    GRID_STRIDE_LOOP(e, (long long)n * words) {
        long long r = e / words;
        int wd = (int)(e % words);
        const float* xr = x + r * d;
        float m = 1.0f;
        float tail = 0.0f;
        if (range_max != nullptr) {
            m = range_max[r];
            float n2 = 0.0f;
            for (int j = 0; j < d; ++j) n2 += xr[j] * xr[j];
            tail = sqrtf(fmaxf(1.0f - n2 / (m * m), 0.0f));
        }
        unsigned long long word = 0;
        for (int b = 0; b < 64; ++b) {
            const float* pl = planes + (size_t)(64 * wd + b) * d1;
            float s = 0.0f;
            for (int j = 0; j < d; ++j) s += pl[j] * (range_max != nullptr ? xr[j] / m : xr[j]);
            if (range_max != nullptr && d1 > d) s += pl[d] * tail;
            if (s >= 0.0f) word |= 1ull << b;
        }
        codes[e] = word;
    }
}

// hamming_scan_u64: dist[q][i] = popcount(codes[i] ⊕ queries[q]) over `words` u64 words, for
// nq queries against n codes.
// Launch: 1-D, any grid (grid-stride over nq·n); one thread per (query, code).
// CPU twin: simd::hamming_scan_scalar.
extern "C" __global__ void hamming_scan_u64(const unsigned long long* __restrict__ codes,
                                            int n, int words,
                                            const unsigned long long* __restrict__ queries,
                                            int nq, unsigned* __restrict__ dist) {
    GRID_STRIDE_LOOP(e, (long long)nq * n) {
        long long q = e / n;
        long long i = e % n;
        unsigned s = 0;
        for (int w = 0; w < words; ++w) s += __popcll(codes[i * words + w] ^ queries[q * words + w]);
        dist[e] = s;
    }
}
