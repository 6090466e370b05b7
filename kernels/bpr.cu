// BPR-MF: one SGD step per (user, positive, negative) triple of a batch.
#include "common.cuh"

// bpr_sgd_step_f32: for each triple (u, i, j), x = b_i − b_j + p_u·(q_i − q_j),
// g = σ(−x); b_i += lr(g − reg·b_i), b_j += lr(−g − reg·b_j),
// p_u += lr(g(q_i − q_j) − reg·p_u), q_i += lr(g·p_u − reg·q_i), q_j += lr(−g·p_u − reg·q_j),
// all from the values read before the step. *loss accumulates Σ ln(1 + e^−x) (one atomic per
// block).
// Launch: 1-D, any grid (grid-stride over the batch), blockDim a power of two (block_sum).
// One thread per triple, Hogwild with atomics: every update is an atomicAdd of its delta, so no
// update is lost when triples of one batch share a row, but a thread may read a row another
// thread is updating (stale reads, as in Hogwild). Not bit-reproducible on a GPU; the CPU
// trainer is the reference. With disjoint rows it equals the CPU step exactly.
// CPU twin: train::bpr::Bpr::step.
extern "C" __global__ void bpr_sgd_step_f32(const unsigned* __restrict__ us,
                                            const unsigned* __restrict__ is,
                                            const unsigned* __restrict__ js, int n, int d,
                                            float lr, float reg, float* p, float* q, float* b,
                                            float* loss) {
    __shared__ float scratch[1024];
    float local = 0.0f;
    GRID_STRIDE_LOOP(t, n) {
        unsigned u = us[t];
        unsigned i = is[t];
        unsigned j = js[t];
        float* pu = p + (size_t)u * d;
        float* qi = q + (size_t)i * d;
        float* qj = q + (size_t)j * d;
        float x = b[i] - b[j];
        for (int f = 0; f < d; ++f) x += pu[f] * (qi[f] - qj[f]);
        float e = expf(-x);
        local += log1pf(e);
        float g = e / (1.0f + e);
        float bi = b[i];
        float bj = b[j];
        atomicAdd(&b[i], lr * (g - reg * bi));
        atomicAdd(&b[j], lr * (-g - reg * bj));
        for (int f = 0; f < d; ++f) {
            float a = pu[f];
            float vi = qi[f];
            float vj = qj[f];
            atomicAdd(&pu[f], lr * (g * (vi - vj) - reg * a));
            atomicAdd(&qi[f], lr * (g * a - reg * vi));
            atomicAdd(&qj[f], lr * (-g * a - reg * vj));
        }
    }
    float s = block_sum(local, scratch);
    if (threadIdx.x == 0) atomicAdd(loss, s);
}
