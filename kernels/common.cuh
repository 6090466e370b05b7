// Shared definitions for lshrec's CUDA kernels.
//
// Every kernel file includes this header. On a GPU the sources are compiled by NVRTC (the Rust
// side inlines this header, so no include path is needed). In tests the very same files are
// compiled by the host C++ compiler with LSHREC_EMULATE defined, which swaps in emulate.hpp: real
// threads per block, a real barrier for __syncthreads, and static storage for __shared__.
#pragma once

#ifdef LSHREC_EMULATE
#include "emulate.hpp"
#endif

// The largest factor count the row kernels keep in shared memory (iALS solve, scoring).
#define LSHREC_MAX_DIM 1024
// The largest k the fused top-K scorer selects.
#define LSHREC_TOPK_MAX 128
// Users per block of the fused top-K scorer (one warp each) and items per tile.
#define LSHREC_SCORE_USERS 8
#define LSHREC_SCORE_TILE 32

// Negative infinity (the score of an empty top-K slot).
#ifdef LSHREC_EMULATE
#define LSHREC_NEG_INF (-HUGE_VALF)
#else
#define LSHREC_NEG_INF __int_as_float(0xff800000)
#endif

// Grid-stride loop over [0, n): any grid size covers any n.
#define GRID_STRIDE_LOOP(i, n)                                                         \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (long long)(n); \
         i += (long long)blockDim.x * gridDim.x)

// Block-per-row grid-stride loop: block b handles rows b, b + gridDim.x, ...
#define BLOCK_ROW_LOOP(r, n) for (long long r = blockIdx.x; r < (long long)(n); r += gridDim.x)

// Sum of v over the block, returned to every thread. blockDim.x must be a power of two and
// scratch must hold blockDim.x floats. Every thread of the block must call it (it synchronises).
// The tree order is fixed, so the result is deterministic.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
    scratch[threadIdx.x] = v;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) scratch[threadIdx.x] += scratch[threadIdx.x + s];
        __syncthreads();
    }
    float r = scratch[0];
    __syncthreads();
    return r;
}
