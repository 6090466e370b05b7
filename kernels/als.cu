// Weighted implicit ALS: the Gram matrix and the per-row conjugate-gradient solve.
#include "common.cuh"

// gram_partial_f32: partial[s] = Y[rows of split s]ᵀ · Y[rows of split s] for the n × d
// row-major Y, where split s (= blockIdx.y) takes the 32-row slabs s, s + gridDim.y, ...
// Launch: grid (ceil(d/32)², splits), block 256 = 32 columns × 8 row groups; each block owns a
// 32 × 32 tile of the d × d output and accumulates 4 entries per thread in registers from
// shared-memory slabs (a tiled GEMM). Deterministic: no atomics; gram_reduce_f32 sums the
// splits in a fixed order.
// CPU twin: train::ials::gram.
extern "C" __global__ void gram_partial_f32(const float* __restrict__ y, int n, int d,
                                            float* __restrict__ partial) {
    __shared__ float ta[32][33];
    __shared__ float tb[32][33];
    int tiles = (d + 31) / 32;
    int a0 = (blockIdx.x / tiles) * 32;
    int b0 = (blockIdx.x % tiles) * 32;
    int tx = threadIdx.x % 32;
    int ty = threadIdx.x / 32;
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (long long r0 = (long long)blockIdx.y * 32; r0 < n; r0 += (long long)gridDim.y * 32) {
        for (int k = ty; k < 32; k += 8) {
            long long r = r0 + k;
            ta[k][tx] = (r < n && a0 + tx < d) ? y[r * d + a0 + tx] : 0.0f;
            tb[k][tx] = (r < n && b0 + tx < d) ? y[r * d + b0 + tx] : 0.0f;
        }
        __syncthreads();
        for (int k = 0; k < 32; ++k) {
            float bv = tb[k][tx];
            for (int m = 0; m < 4; ++m) acc[m] += ta[k][ty + 8 * m] * bv;
        }
        __syncthreads();
    }
    float* out = partial + (size_t)blockIdx.y * d * d;
    for (int m = 0; m < 4; ++m) {
        int a = a0 + ty + 8 * m;
        int b = b0 + tx;
        if (a < d && b < d) out[(size_t)a * d + b] = acc[m];
    }
}

// gram_reduce_f32: g[e] = scale · Σ_s partial[s][e] for e < len, summing splits in order.
// Launch: 1-D, any grid (grid-stride over the entries).
// CPU twin: train::ials::gram (times w0 in the solver).
extern "C" __global__ void gram_reduce_f32(const float* __restrict__ partial, int splits,
                                           int len, float scale, float* __restrict__ g) {
    GRID_STRIDE_LOOP(e, len) {
        float s = 0.0f;
        for (int k = 0; k < splits; ++k) s += partial[(size_t)k * len + e];
        g[e] = scale * s;
    }
}

// Applies A v = w0G v + λ v + Σ_{i∈N} (c_i − w0)(y_i·v) y_i for one row; v is in shared memory,
// thread k < d gets component k. Every thread of the block must call it.
__device__ __forceinline__ float ials_apply(const float* __restrict__ w0g,
                                            const float* __restrict__ fixed,
                                            const unsigned* __restrict__ idx,
                                            const float* __restrict__ val, int deg, int d,
                                            float alpha, float cneg, float w0, float lam,
                                            const float* v, float* s_chunk) {
    int k = threadIdx.x;
    float out = 0.0f;
    if (k < d) {
        // G is symmetric: read column k so that neighbouring threads read neighbouring words.
        for (int j = 0; j < d; ++j) out += w0g[(size_t)j * d + k] * v[j];
        out += lam * v[k];
    }
    for (int c0 = 0; c0 < deg; c0 += blockDim.x) {
        int t = c0 + threadIdx.x;
        if (t < deg) {
            const float* yi = fixed + (size_t)idx[t] * d;
            float s = 0.0f;
            for (int j = 0; j < d; ++j) s += yi[j] * v[j];
            float c = val[t] > 0.0f ? 1.0f + alpha * val[t] : cneg;
            s_chunk[threadIdx.x] = (c - w0) * s;
        }
        __syncthreads();
        int m = min((int)blockDim.x, deg - c0);
        if (k < d)
            for (int q = 0; q < m; ++q) out += s_chunk[q] * fixed[(size_t)idx[c0 + q] * d + k];
        __syncthreads();
    }
    return out;
}

// The right-hand side b_k = Σ_{i∈N, val_i>0} c_i·y_ik for thread k < d (0 beyond), with
// c_i = 1 + alpha·val_i; adds Σ c_i over those entries to *csum. Known negatives (val ≤ 0) have
// target 0 and add nothing.
__device__ __forceinline__ float ials_rhs(const float* __restrict__ fixed,
                                          const unsigned* __restrict__ idx,
                                          const float* __restrict__ val, int deg, int d,
                                          float alpha, float* csum) {
    int k = threadIdx.x;
    float bk = 0.0f;
    for (int t = 0; t < deg; ++t)
        if (val[t] > 0.0f) {
            float c = 1.0f + alpha * val[t];
            *csum += c;
            if (k < d) bk += c * fixed[(size_t)idx[t] * d + k];
        }
    return bk;
}

// ials_cg_f32: for every row r of the CSR (indptr, idx, val), `steps` conjugate-gradient steps
// on (w0·G + Σ_{i∈N(r)} (c_i − w0) y_i y_iᵀ + λ_r I) x_r = Σ c_i p_i y_i, warm-started from x_r,
// with c_i = 1 + alpha·val_i and p_i = 1 for val_i > 0, c_i = cneg and p_i = 0 for a known
// negative (val_i ≤ 0),
// and λ_r = reg·(|N(r)| + w0·n_other)^nu. w0g holds w0·G.
// Launch: block-per-row grid-stride (any grid), blockDim a power of two ≥ d (≤ 1024); thread k
// owns component k. A·p is applied matrix-free, O(d² + |N|·d) per step.
// CPU twin: train::ials::solve_side_cg.
extern "C" __global__ void ials_cg_f32(const float* __restrict__ w0g,
                                       const float* __restrict__ fixed,
                                       const unsigned* __restrict__ indptr,
                                       const unsigned* __restrict__ idx,
                                       const float* __restrict__ val, int rows, int d,
                                       int n_other, float alpha, float cneg, float w0, float reg,
                                       float nu,
                                       int steps, float* x) {
    __shared__ float v[LSHREC_MAX_DIM];
    __shared__ float s_chunk[1024];
    __shared__ float scratch[1024];
    int k = threadIdx.x;
    BLOCK_ROW_LOOP(r, rows) {
        unsigned start = indptr[r];
        int deg = (int)(indptr[r + 1] - start);
        const unsigned* ri = idx + start;
        const float* rv = val + start;
        float lam = reg * powf((float)deg + w0 * (float)n_other, nu);
        float* xr = x + (size_t)r * d;
        float xk = k < d ? xr[k] : 0.0f;
        // res = b − A x
        if (k < d) v[k] = xk;
        __syncthreads();
        float ax = ials_apply(w0g, fixed, ri, rv, deg, d, alpha, cneg, w0, lam, v, s_chunk);
        float csum = 0.0f;
        float bk = ials_rhs(fixed, ri, rv, deg, d, alpha, &csum);
        float res = k < d ? bk - ax : 0.0f;
        float pk = res;
        float rs = block_sum(res * res, scratch);
        for (int step = 0; step < steps; ++step) {
            if (rs <= 1e-20f) break;  // rs is the same in every thread: no divergence
            if (k < d) v[k] = pk;
            __syncthreads();
            float ap = ials_apply(w0g, fixed, ri, rv, deg, d, alpha, cneg, w0, lam, v, s_chunk);
            float pap = block_sum(pk * ap, scratch);
            float a = rs / pap;
            xk += a * pk;
            res -= a * ap;
            float rs_new = block_sum(res * res, scratch);
            float beta = rs_new / rs;
            pk = res + beta * pk;
            rs = rs_new;
        }
        if (k < d) xr[k] = xk;
        __syncthreads();
    }
}

// ials_loss_grad_f32: the iALS objective's gradient and loss at fixed vectors, row by row (the
// pointwise loss LightGCN trains through its propagation). For every row r of the CSR
// (indptr, idx, val) with vector x_r (row-major x) and the other side's vectors `other`:
//   grad_r += scale·(A_r x_r − b_r),  A_r = w0·G + Σ_{i∈N(r)} (c_i − w0) y_i y_iᵀ,
//   b_r = Σ_{i∈N(r)} c_i p_i y_i,
//   row_loss[r] = x_r·A_r x_r − 2 x_r·b_r + Σ_{i∈N(r)} c_i p_i,
// with c_i, p_i as in ials_cg_f32 and w0g holding w0·G of `other`. Summed over the users,
// row_loss is the objective Σ_{u,i} c_ui (p_ui − x_u·y_i)² (the w0·x·Gx terms add up to
// w0·tr(G_U G_I)); an item side passes its positives only (known negatives are one-sided).
// Launch: block-per-row grid-stride (any grid), blockDim a power of two ≥ d (≤ 1024); thread k
// owns component k. No atomics: deterministic.
// CPU twin: train::graph::Pointwise::loss_and_grad.
extern "C" __global__ void ials_loss_grad_f32(const float* __restrict__ w0g,
                                              const float* __restrict__ other,
                                              const unsigned* __restrict__ indptr,
                                              const unsigned* __restrict__ idx,
                                              const float* __restrict__ val, int rows, int d,
                                              float alpha, float cneg, float w0, float scale,
                                              const float* __restrict__ x,
                                              float* __restrict__ grad,
                                              float* __restrict__ row_loss) {
    __shared__ float v[LSHREC_MAX_DIM];
    __shared__ float s_chunk[1024];
    __shared__ float scratch[1024];
    int k = threadIdx.x;
    BLOCK_ROW_LOOP(r, rows) {
        unsigned start = indptr[r];
        int deg = (int)(indptr[r + 1] - start);
        const unsigned* ri = idx + start;
        const float* rv = val + start;
        float xk = k < d ? x[(size_t)r * d + k] : 0.0f;
        if (k < d) v[k] = xk;
        __syncthreads();
        float ax = ials_apply(w0g, other, ri, rv, deg, d, alpha, cneg, w0, 0.0f, v, s_chunk);
        float cp = 0.0f;
        float bk = ials_rhs(other, ri, rv, deg, d, alpha, &cp);
        if (k < d) grad[(size_t)r * d + k] += scale * (ax - bk);
        float quad = block_sum(k < d ? xk * (ax - 2.0f * bk) : 0.0f, scratch);
        if (k == 0) row_loss[r] = quad + cp;
        __syncthreads();
    }
}
