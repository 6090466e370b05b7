// Host emulation of the CUDA built-ins lshrec's kernels use, so that the same kernel sources run
// in CI (which has no GPU) under the host C++ compiler. Test-only.
//
// Model: a launch runs the grid's blocks one after another; each block is blockDim real threads
// (std::thread), so __syncthreads is a real barrier and races inside a block are real.
// __shared__ becomes `static`: one copy shared by the block's threads, reused by the next block
// (CUDA gives no initial value either). Launches are serialised by the launcher, so two kernels
// never share static storage at once. Threads that return early leave the barrier, as exited
// threads do on a GPU.
#pragma once

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <mutex>

struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

namespace emu {

// A reusable barrier whose party count shrinks when a thread finishes its kernel.
struct Barrier {
    std::mutex m;
    std::condition_variable cv;
    unsigned expected = 0;
    unsigned count = 0;
    unsigned long long generation = 0;

    void reset(unsigned n) {
        std::lock_guard<std::mutex> g(m);
        expected = n;
        count = 0;
    }
    void release_locked() {
        count = 0;
        ++generation;
        cv.notify_all();
    }
    void wait() {
        std::unique_lock<std::mutex> l(m);
        unsigned long long gen = generation;
        if (++count >= expected) {
            release_locked();
        } else {
            cv.wait(l, [&] { return generation != gen; });
        }
    }
    // The calling thread has left the kernel: it no longer takes part in this block's barriers.
    void leave() {
        std::lock_guard<std::mutex> g(m);
        --expected;
        if (expected > 0 && count >= expected) release_locked();
    }
};

inline thread_local dim3 thread_idx;
inline thread_local dim3 block_idx;
inline dim3 block_dim;
inline dim3 grid_dim;
inline Barrier* block_barrier = nullptr;

inline uint32_t f2u(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}
inline float u2f(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

}  // namespace emu

#define threadIdx (::emu::thread_idx)
#define blockIdx (::emu::block_idx)
#define blockDim (::emu::block_dim)
#define gridDim (::emu::grid_dim)

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __shared__ static
#define __launch_bounds__(...)

inline void __syncthreads() { emu::block_barrier->wait(); }

inline float atomicAdd(float* addr, float v) {
    uint32_t* p = reinterpret_cast<uint32_t*>(addr);
    uint32_t old = __atomic_load_n(p, __ATOMIC_RELAXED);
    for (;;) {
        uint32_t want = emu::f2u(emu::u2f(old) + v);
        if (__atomic_compare_exchange_n(p, &old, want, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            return emu::u2f(old);
    }
}
inline unsigned atomicAdd(unsigned* addr, unsigned v) {
    return __atomic_fetch_add(addr, v, __ATOMIC_RELAXED);
}
inline int atomicAdd(int* addr, int v) { return __atomic_fetch_add(addr, v, __ATOMIC_RELAXED); }

using std::max;
using std::min;

inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
template <typename T>
inline T __ldg(const T* p) {
    return *p;
}
