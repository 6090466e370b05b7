// Exact scoring: a tiled GEMM of users × items with a fused per-user top-K.
#include "common.cuh"

#define LSHREC_TOPK_CAP (2 * LSHREC_TOPK_MAX)

// a ranks before b: higher score first, ties by lower item id (as the CPU scorer).
__device__ __forceinline__ bool topk_better(float sa, unsigned ia, float sb, unsigned ib) {
    return sa > sb || (sa == sb && ia < ib);
}

// Whether `item` is in the sorted list seen[lo, hi).
__device__ __forceinline__ bool topk_is_seen(const unsigned* __restrict__ seen, unsigned lo,
                                             unsigned hi, unsigned item) {
    unsigned end = hi;
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        if (seen[mid] < item)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < end && seen[lo] == item;
}

// Sorts each warp's candidate buffer (bitonic, best first, the padding last) and keeps the best
// k; the k-th score becomes the admission threshold once k are kept. Every thread calls it.
__device__ __forceinline__ void topk_compact(int lane, float* cs, unsigned* ci, unsigned* cnt,
                                             float* thr, int k) {
    for (unsigned t = *cnt + lane; t < LSHREC_TOPK_CAP; t += 32) {
        cs[t] = LSHREC_NEG_INF;
        ci[t] = 0xffffffffu;
    }
    __syncthreads();
    for (unsigned size = 2; size <= LSHREC_TOPK_CAP; size <<= 1) {
        for (unsigned stride = size >> 1; stride > 0; stride >>= 1) {
            for (unsigned t = lane; t < LSHREC_TOPK_CAP / 2; t += 32) {
                unsigned i = (t / stride) * 2 * stride + t % stride;
                unsigned j = i + stride;
                bool up = (i & size) == 0;
                bool swap = up ? topk_better(cs[j], ci[j], cs[i], ci[i])
                               : topk_better(cs[i], ci[i], cs[j], ci[j]);
                if (swap) {
                    float s = cs[i];
                    cs[i] = cs[j];
                    cs[j] = s;
                    unsigned x = ci[i];
                    ci[i] = ci[j];
                    ci[j] = x;
                }
            }
            __syncthreads();
        }
    }
    if (lane == 0) {
        unsigned kept = *cnt < (unsigned)k ? *cnt : (unsigned)k;
        *cnt = kept;
        *thr = kept == (unsigned)k ? cs[k - 1] : LSHREC_NEG_INF;
    }
    __syncthreads();
}

// score_topk_f32: for each user u, the k items of highest users[u]·items[i] (ties by lower
// id), skipping the sorted seen items seen_idx[seen_indptr[u], seen_indptr[u+1]) when
// seen_indptr is not null. Writes out_ids[u·k + r] and out_scores[u·k + r], best first; slots
// beyond the user's eligible items get id 0xffffffff and score −inf. 1 ≤ k ≤ LSHREC_TOPK_MAX.
// Launch: 1-D, any grid, blockDim exactly 32·LSHREC_SCORE_USERS (256): a block takes 8 users
// at a time (grid-stride), warp w serves user u0 + w. Items arrive in tiles of 32; each tile's
// 8 × 32 scores are a small GEMM over 32-wide shared-memory slices of d (the tiled GEMM), so
// each item slice read from memory serves 8 users. A score enters the user's shared-memory
// buffer (2·LSHREC_TOPK_MAX slots) when it beats the current k-th; a bitonic sort compacts the
// buffer when it could overflow and at the end. All users × items is never materialised.
// CPU twin: score::exact::topk_exact.
extern "C" __global__ void score_topk_f32(const float* __restrict__ users, int n_users,
                                          const float* __restrict__ items, int n_items, int d,
                                          const unsigned* __restrict__ seen_indptr,
                                          const unsigned* __restrict__ seen_idx, int k,
                                          unsigned* __restrict__ out_ids,
                                          float* __restrict__ out_scores) {
    __shared__ float us[LSHREC_SCORE_USERS][33];
    __shared__ float its[LSHREC_SCORE_TILE][33];
    __shared__ float cs[LSHREC_SCORE_USERS][LSHREC_TOPK_CAP];
    __shared__ unsigned ci[LSHREC_SCORE_USERS][LSHREC_TOPK_CAP];
    __shared__ unsigned cnt[LSHREC_SCORE_USERS];
    __shared__ float thr[LSHREC_SCORE_USERS];
    __shared__ int need;
    int lane = threadIdx.x % 32;
    int w = threadIdx.x / 32;
    for (long long u0 = (long long)blockIdx.x * LSHREC_SCORE_USERS; u0 < n_users;
         u0 += (long long)gridDim.x * LSHREC_SCORE_USERS) {
        long long u = u0 + w;
        bool active = u < n_users;
        unsigned s_lo = 0;
        unsigned s_hi = 0;
        if (active && seen_indptr != nullptr) {
            s_lo = seen_indptr[u];
            s_hi = seen_indptr[u + 1];
        }
        if (lane == 0) {
            cnt[w] = 0;
            thr[w] = LSHREC_NEG_INF;
        }
        __syncthreads();
        for (long long i0 = 0; i0 < n_items; i0 += LSHREC_SCORE_TILE) {
            float acc = 0.0f;
            for (int d0 = 0; d0 < d; d0 += 32) {
                us[w][lane] = (active && d0 + lane < d) ? users[u * d + d0 + lane] : 0.0f;
                for (int q = w; q < LSHREC_SCORE_TILE; q += LSHREC_SCORE_USERS) {
                    long long it = i0 + q;
                    its[q][lane] = (it < n_items && d0 + lane < d) ? items[it * d + d0 + lane] : 0.0f;
                }
                __syncthreads();
                for (int kk = 0; kk < 32; ++kk) acc += us[w][kk] * its[lane][kk];
                __syncthreads();
            }
            long long item = i0 + lane;
            if (active && item < n_items && acc > thr[w] &&
                !(s_hi > s_lo && topk_is_seen(seen_idx, s_lo, s_hi, (unsigned)item))) {
                unsigned pos = atomicAdd(&cnt[w], 1u);
                cs[w][pos] = acc;
                ci[w][pos] = (unsigned)item;
            }
            __syncthreads();
            if (threadIdx.x == 0) {
                need = i0 + LSHREC_SCORE_TILE >= n_items;
                for (int q = 0; q < LSHREC_SCORE_USERS; ++q)
                    if (cnt[q] > LSHREC_TOPK_CAP - LSHREC_SCORE_TILE) need = 1;
            }
            __syncthreads();
            if (need) topk_compact(lane, cs[w], ci[w], &cnt[w], &thr[w], k);
        }
        if (active) {
            for (int r = lane; r < k; r += 32) {
                bool has = (unsigned)r < cnt[w];
                out_ids[u * k + r] = has ? ci[w][r] : 0xffffffffu;
                out_scores[u * k + r] = has ? cs[w][r] : LSHREC_NEG_INF;
            }
        }
        __syncthreads();
    }
}
