// The emulation harness: every kernel file of kernels/, compiled for the host, behind one
// launcher shaped like cuLaunchKernel (a kernel name, grid, block, and an array of pointers to
// the argument values).
#include "../common.cuh"

#include "../als.cu"
#include "../bpr.cu"
#include "../graph.cu"
#include "../hash.cu"
#include "../mf.cu"
#include "../score.cu"

#include <cstring>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

template <typename F>
struct Invoker;

template <typename... A>
struct Invoker<void (*)(A...)> {
    template <void (*K)(A...), std::size_t... I>
    static void call(void** args, std::index_sequence<I...>) {
        K(*static_cast<std::decay_t<A>*>(args[I])...);
    }
    template <void (*K)(A...)>
    static void run(void** args) {
        call<K>(args, std::index_sequence_for<A...>{});
    }
};

struct Entry {
    const char* name;
    void (*run)(void**);
};

#define LSHREC_ENTRY(k) \
    Entry { #k, &Invoker<decltype(&k)>::template run<&k> }

const Entry TABLE[] = {
    LSHREC_ENTRY(mf_sgd_step_f32),   LSHREC_ENTRY(bpr_sgd_step_f32),
    LSHREC_ENTRY(gram_partial_f32),  LSHREC_ENTRY(gram_reduce_f32),
    LSHREC_ENTRY(ials_cg_f32),       LSHREC_ENTRY(spmm_csr_f32),
    LSHREC_ENTRY(axpby_f32),         LSHREC_ENTRY(lightgcn_bpr_grad_f32),
    LSHREC_ENTRY(lightgcn_l2_f32),   LSHREC_ENTRY(adam_f32),
    LSHREC_ENTRY(score_topk_f32),    LSHREC_ENTRY(lsh_hash_f32),
    LSHREC_ENTRY(hamming_scan_u64),  LSHREC_ENTRY(lightgcn_pick_negatives_u32),
    LSHREC_ENTRY(ials_loss_grad_f32), LSHREC_ENTRY(lightgcn_l2_all_f32),
};

std::mutex launch_mutex;

}  // namespace

// Runs kernel `name` over the grid: blocks one after another, each as block[0]·block[1]·block[2]
// real threads. Returns 0, or 1 for an unknown kernel, 2 for an empty or oversized shape.
extern "C" int lshrec_emu_launch(const char* name, const unsigned* grid, const unsigned* block,
                                 void** args) {
    const Entry* entry = nullptr;
    for (const Entry& e : TABLE)
        if (std::strcmp(e.name, name) == 0) entry = &e;
    if (entry == nullptr) return 1;
    unsigned threads = block[0] * block[1] * block[2];
    if (threads == 0 || threads > 1024 || grid[0] * grid[1] * grid[2] == 0) return 2;

    std::lock_guard<std::mutex> guard(launch_mutex);
    emu::block_dim = dim3(block[0], block[1], block[2]);
    emu::grid_dim = dim3(grid[0], grid[1], grid[2]);
    emu::Barrier in_block;
    emu::Barrier between_blocks;
    in_block.reset(threads);
    between_blocks.reset(threads);
    emu::block_barrier = &in_block;
    std::vector<std::thread> pool;
    pool.reserve(threads);
    for (unsigned t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            emu::thread_idx = dim3(t % block[0], (t / block[0]) % block[1], t / (block[0] * block[1]));
            for (unsigned bz = 0; bz < grid[2]; ++bz)
                for (unsigned by = 0; by < grid[1]; ++by)
                    for (unsigned bx = 0; bx < grid[0]; ++bx) {
                        emu::block_idx = dim3(bx, by, bz);
                        entry->run(args);
                        in_block.leave();
                        between_blocks.wait();
                        if (t == 0) in_block.reset(threads);
                        between_blocks.wait();
                    }
        });
    }
    for (std::thread& th : pool) th.join();
    emu::block_barrier = nullptr;
    return 0;
}
