// Biased matrix factorisation: one SGD step per rating of a batch.
#include "common.cuh"

// mf_sgd_step_f32: for each rating (u, i, r) of the batch, e = r − (μ + b_u + b_i + p_u·q_i),
// then b_u += lr(e − reg_bias·b_u), b_i += lr(e − reg_bias·b_i),
// p_u += lr(e·q_i − reg·p_u), q_i += lr(e·p_u − reg·q_i), all from the values read before
// the step. *sq_err accumulates Σ e² (one atomic per block).
// Launch: 1-D, any grid (grid-stride over the batch), blockDim a power of two (block_sum).
// One thread per rating, Hogwild: two ratings of the same user or item in one batch race on its
// row (plain stores); the CPU trainer is the bit-reproducible reference.
// CPU twin: train::mf::Mf::step.
extern "C" __global__ void mf_sgd_step_f32(const unsigned* __restrict__ users,
                                           const unsigned* __restrict__ items,
                                           const float* __restrict__ ratings, int n, int d,
                                           float lr, float reg, float reg_bias, float mu,
                                           float* p, float* q, float* bu, float* bi,
                                           float* sq_err) {
    __shared__ float scratch[1024];
    float local = 0.0f;
    GRID_STRIDE_LOOP(t, n) {
        unsigned u = users[t];
        unsigned i = items[t];
        float* pu = p + (size_t)u * d;
        float* qi = q + (size_t)i * d;
        float dot = 0.0f;
        for (int f = 0; f < d; ++f) dot += pu[f] * qi[f];
        float e = ratings[t] - (mu + bu[u] + bi[i] + dot);
        bu[u] += lr * (e - reg_bias * bu[u]);
        bi[i] += lr * (e - reg_bias * bi[i]);
        for (int f = 0; f < d; ++f) {
            float a = pu[f];
            float b = qi[f];
            pu[f] = a + lr * (e * b - reg * a);
            qi[f] = b + lr * (e * a - reg * b);
        }
        local += e * e;
    }
    float s = block_sum(local, scratch);
    if (threadIdx.x == 0) atomicAdd(sq_err, s);
}
