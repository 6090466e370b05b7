// LightGCN: the propagation (CSR SpMM, forward and backward) and the pieces of a training step.
#include "common.cuh"

// spmm_csr_f32: out = A·x for the CSR matrix A (indptr, idx, w) of `rows` rows and row-major
// x (· × d). The backward of y = A·x is ∂x = Aᵀ·∂y, the same kernel on Aᵀ's CSR; LightGCN's
// Â = D^-½ A D^-½ is symmetric, so its backward passes Â again.
// Launch: 1-D, any grid, blockDim a multiple of 32: one warp per row (grid-stride over rows),
// lane l computes columns l, l + 32, ... No atomics: deterministic.
// CPU twin: train::graph::spmm.
extern "C" __global__ void spmm_csr_f32(const unsigned* __restrict__ indptr,
                                        const unsigned* __restrict__ idx,
                                        const float* __restrict__ w, int rows, int d,
                                        const float* __restrict__ x, float* __restrict__ out) {
    int lane = threadIdx.x % 32;
    long long warp = ((long long)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    long long warps = (long long)gridDim.x * blockDim.x / 32;
    for (long long r = warp; r < rows; r += warps) {
        unsigned s = indptr[r];
        unsigned e = indptr[r + 1];
        for (int c = lane; c < d; c += 32) {
            float acc = 0.0f;
            for (unsigned t = s; t < e; ++t) acc += w[t] * x[(size_t)idx[t] * d + c];
            out[(size_t)r * d + c] = acc;
        }
    }
}

// axpby_f32: y = a·x + b·y, elementwise over n values (the layer sums and the final mean).
// Launch: 1-D, any grid (grid-stride).
// CPU twin: the accumulation loops of train::graph::propagate.
extern "C" __global__ void axpby_f32(int n, float a, const float* __restrict__ x, float b,
                                     float* __restrict__ y) {
    GRID_STRIDE_LOOP(e, n) { y[e] = a * x[e] + b * y[e]; }
}

// lightgcn_pick_negatives_u32: rank-aware negatives. For each triple t, js[t] = the candidate
// among cands[t·m .. t·m + m) (item ids, offset by n_users into the node table) whose final
// embedding has the largest inner product with f_{us[t]}, the first on ties (NaN never wins).
// Launch: 1-D, any grid (grid-stride over triples). No atomics: deterministic.
// CPU twin: train::graph::pick_negatives (same summation order, so the same choice).
extern "C" __global__ void lightgcn_pick_negatives_u32(const unsigned* __restrict__ us,
                                                       const unsigned* __restrict__ cands,
                                                       int n, int m, int d, int n_users,
                                                       const float* __restrict__ f,
                                                       unsigned* __restrict__ js) {
    GRID_STRIDE_LOOP(t, n) {
        size_t u = us[t];
        const unsigned* c = cands + (size_t)t * m;
        unsigned best = c[0];
        float top = LSHREC_NEG_INF;
        for (int a = 0; a < m; ++a) {
            size_t j = (size_t)n_users + c[a];
            float s = 0.0f;
            for (int k = 0; k < d; ++k) s += f[u * d + k] * f[j * d + k];
            if (s > top) {
                top = s;
                best = c[a];
            }
        }
        js[t] = best;
    }
}

// lightgcn_bpr_grad_f32: for each triple (u, i, j) of the batch (item ids offset by n_users
// into the node table), with x = f_u·(f_i − f_j) on the final embeddings f and
// g = σ(−x)·scale: grad_u −= g(f_i − f_j), grad_i −= g·f_u, grad_j += g·f_u (atomics: rows
// repeat within a batch). *loss accumulates Σ ln(1 + e^−x) (one atomic per block).
// Launch: 1-D, any grid (grid-stride over triples), blockDim a power of two (block_sum).
// Float atomics make the summation order, and so the last bits, launch-dependent.
// CPU twin: the triple loop of train::graph::LightGcn::loss_and_grad.
extern "C" __global__ void lightgcn_bpr_grad_f32(const unsigned* __restrict__ us,
                                                 const unsigned* __restrict__ is,
                                                 const unsigned* __restrict__ js, int n,
                                                 int d, int n_users, float scale,
                                                 const float* __restrict__ f, float* grad,
                                                 float* loss) {
    __shared__ float scratch[1024];
    float local = 0.0f;
    GRID_STRIDE_LOOP(t, n) {
        size_t u = us[t];
        size_t i = (size_t)n_users + is[t];
        size_t j = (size_t)n_users + js[t];
        float x = 0.0f;
        for (int k = 0; k < d; ++k) x += f[u * d + k] * (f[i * d + k] - f[j * d + k]);
        float e = expf(-x);
        local += log1pf(e);
        float g = e / (1.0f + e) * scale;
        for (int k = 0; k < d; ++k) {
            float fu = f[u * d + k];
            float fi = f[i * d + k];
            float fj = f[j * d + k];
            atomicAdd(&grad[u * d + k], -g * (fi - fj));
            atomicAdd(&grad[i * d + k], -g * fu);
            atomicAdd(&grad[j * d + k], g * fu);
        }
    }
    float s = block_sum(local, scratch);
    if (threadIdx.x == 0) atomicAdd(loss, s);
}

// lightgcn_l2_f32: for each triple, grad[r] += reg·scale·e0[r] for its user row and both item
// rows (L2 on the batch's base embeddings; atomics: rows repeat). *penalty accumulates
// ½·coef·Σ|e0[r]|² (one atomic per block).
// Launch: 1-D, any grid (grid-stride over triples), blockDim a power of two (block_sum).
// CPU twin: the L2 loop of train::graph::LightGcn::loss_and_grad.
extern "C" __global__ void lightgcn_l2_f32(const unsigned* __restrict__ us,
                                           const unsigned* __restrict__ is,
                                           const unsigned* __restrict__ js, int n, int d,
                                           int n_users, float coef,
                                           const float* __restrict__ e0, float* grad,
                                           float* penalty) {
    __shared__ float scratch[1024];
    float local = 0.0f;
    GRID_STRIDE_LOOP(t, n) {
        size_t rows[3] = {us[t], (size_t)n_users + is[t], (size_t)n_users + js[t]};
        for (int m = 0; m < 3; ++m)
            for (int k = 0; k < d; ++k) {
                float w = e0[rows[m] * d + k];
                atomicAdd(&grad[rows[m] * d + k], coef * w);
                local += 0.5f * coef * w * w;
            }
    }
    float s = block_sum(local, scratch);
    if (threadIdx.x == 0) atomicAdd(penalty, s);
}

// adam_f32: one Adam step, elementwise: m = β1·m + (1−β1)g, v = β2·v + (1−β2)g²,
// w −= lr·(m/c1)/(√(v/c2) + 1e-8) with the bias corrections c1 = 1 − β1^t, c2 = 1 − β2^t
// passed in.
// Launch: 1-D, any grid (grid-stride).
// CPU twin: train::graph::LightGcn::adam.
extern "C" __global__ void adam_f32(int n, float lr, float b1, float b2, float c1, float c2,
                                    const float* __restrict__ g, float* __restrict__ m,
                                    float* __restrict__ v, float* __restrict__ w) {
    GRID_STRIDE_LOOP(e, n) {
        float ge = g[e];
        float me = b1 * m[e] + (1.0f - b1) * ge;
        float ve = b2 * v[e] + (1.0f - b2) * ge * ge;
        m[e] = me;
        v[e] = ve;
        w[e] -= lr * (me / c1) / (sqrtf(ve / c2) + 1e-8f);
    }
}

// lightgcn_l2_all_f32: grad[e] += coef·e0[e] over all n values (the full batch's L2 on the base
// embeddings); *penalty accumulates ½·coef·Σ e0[e]² (one atomic per block, so the reported
// penalty's last bits depend on the launch; the gradient does not).
// Launch: 1-D, any grid (grid-stride), blockDim a power of two (block_sum).
// CPU twin: train::graph::l2_all.
extern "C" __global__ void lightgcn_l2_all_f32(int n, float coef, const float* __restrict__ e0,
                                               float* __restrict__ grad, float* penalty) {
    __shared__ float scratch[1024];
    float local = 0.0f;
    GRID_STRIDE_LOOP(e, n) {
        float w = e0[e];
        grad[e] += coef * w;
        local += 0.5f * coef * w * w;
    }
    float s = block_sum(local, scratch);
    if (threadIdx.x == 0) atomicAdd(penalty, s);
}
