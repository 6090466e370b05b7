//! The GPU side: the CUDA kernel sources (`kernels/*.cu`, embedded in the binary), their launch
//! shapes, and (behind the `cuda` cargo feature) the device, the NVRTC compiler cache, the
//! launches and the GPU trainers in `cuda` (with the `cuda` feature).
//!
//! The launch shapes live here, outside the feature, because two callers share them: the CUDA
//! launcher, and the test-only emulation harness that runs the same kernel sources on the host
//! (`kernels/emu`). A kernel tested under the harness is therefore tested with the shape the
//! GPU path launches.

#[cfg(feature = "cuda")]
pub mod cuda;

/// One kernel source file.
#[derive(Clone, Copy, Debug)]
pub struct KernelFile {
    /// The file name under `kernels/`.
    pub file: &'static str,
    /// Its text.
    pub source: &'static str,
    /// The `extern "C"` kernels it defines.
    pub kernels: &'static [&'static str],
}

/// `kernels/common.cuh`, included by every kernel file.
pub const COMMON: &str = include_str!("../../kernels/common.cuh");

/// Every kernel file.
pub const FILES: &[KernelFile] = &[
    KernelFile {
        file: "mf.cu",
        source: include_str!("../../kernels/mf.cu"),
        kernels: &["mf_sgd_step_f32"],
    },
    KernelFile {
        file: "bpr.cu",
        source: include_str!("../../kernels/bpr.cu"),
        kernels: &["bpr_sgd_step_f32"],
    },
    KernelFile {
        file: "als.cu",
        source: include_str!("../../kernels/als.cu"),
        kernels: &[
            "gram_partial_f32",
            "gram_reduce_f32",
            "ials_cg_f32",
            "ials_loss_grad_f32",
        ],
    },
    KernelFile {
        file: "graph.cu",
        source: include_str!("../../kernels/graph.cu"),
        kernels: &[
            "spmm_csr_f32",
            "axpby_f32",
            "lightgcn_pick_negatives_u32",
            "lightgcn_bpr_grad_f32",
            "lightgcn_l2_f32",
            "lightgcn_l2_all_f32",
            "adam_f32",
        ],
    },
    KernelFile {
        file: "score.cu",
        source: include_str!("../../kernels/score.cu"),
        kernels: &["score_topk_f32"],
    },
    KernelFile {
        file: "hash.cu",
        source: include_str!("../../kernels/hash.cu"),
        kernels: &["lsh_hash_f32", "hamming_scan_u64"],
    },
];

/// The source NVRTC compiles for `file`: `common.cuh` inlined in place of its `#include`, so the
/// compiler needs no include path and the cache key covers both.
pub fn nvrtc_source(file: &KernelFile) -> String {
    let mut out = String::with_capacity(COMMON.len() + file.source.len());
    for line in file.source.lines() {
        if line.trim() == "#include \"common.cuh\"" {
            out.push_str(COMMON);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// Launch shapes shared by the CUDA launcher and the emulation harness. The constants mirror
/// `kernels/common.cuh` (a test checks that they agree).
pub mod shapes {
    /// The largest factor count of the iALS row solve (`LSHREC_MAX_DIM`).
    pub const MAX_DIM: usize = 1024;
    /// The largest k of the fused top-K scorer (`LSHREC_TOPK_MAX`).
    pub const TOPK_MAX: usize = 128;
    /// Users per block of the scorer (`LSHREC_SCORE_USERS`).
    pub const SCORE_USERS: usize = 8;
    /// Items per tile of the scorer (`LSHREC_SCORE_TILE`).
    pub const SCORE_TILE: usize = 32;

    /// A launch: grid and block dimensions.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Shape {
        pub grid: (u32, u32, u32),
        pub block: (u32, u32, u32),
    }

    impl Shape {
        fn flat(blocks: usize, threads: u32) -> Shape {
            Shape {
                grid: (blocks.clamp(1, 65_535) as u32, 1, 1),
                block: (threads, 1, 1),
            }
        }
    }

    /// Grid-stride elementwise kernels and per-item/per-triple kernels over `n` work items
    /// (256 threads per block; the grid is capped, the kernels stride).
    pub fn elementwise(n: usize) -> Shape {
        Shape::flat(n.div_ceil(256).min(4096), 256)
    }

    /// The iALS row solve: one block per row (grid-stride), a power-of-two block of at least
    /// `d` threads (at least a warp).
    pub fn ials_rows(rows: usize, d: usize) -> Shape {
        Shape::flat(rows.min(65_535), d.next_power_of_two().max(32) as u32)
    }

    /// The Gram matrix's partial products: a 32 × 32 output tile per block in x, `splits`
    /// row splits in y (more splits for more rows, at most 64).
    pub fn gram(d: usize, n: usize) -> Shape {
        let tiles = d.div_ceil(32);
        Shape {
            grid: ((tiles * tiles) as u32, gram_splits(n) as u32, 1),
            block: (256, 1, 1),
        }
    }

    /// How many row splits [`gram`] uses for `n` rows.
    pub fn gram_splits(n: usize) -> usize {
        n.div_ceil(1024).clamp(1, 64)
    }

    /// CSR SpMM: a warp per row, 8 warps per block.
    pub fn spmm(rows: usize) -> Shape {
        Shape::flat(rows.div_ceil(8).min(65_535), 256)
    }

    /// The fused top-K scorer: 8 users per block, exactly 256 threads.
    pub fn score(users: usize) -> Shape {
        Shape::flat(
            users.div_ceil(SCORE_USERS).min(65_535),
            32 * SCORE_USERS as u32,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn define(name: &str) -> usize {
        let line = COMMON
            .lines()
            .find(|l| l.starts_with(&format!("#define {name} ")))
            .unwrap_or_else(|| panic!("{name} not in common.cuh"));
        line.split_whitespace().nth(2).unwrap().parse().unwrap()
    }

    #[test]
    fn shapes_agree_with_the_kernel_header() {
        assert_eq!(define("LSHREC_MAX_DIM"), shapes::MAX_DIM);
        assert_eq!(define("LSHREC_TOPK_MAX"), shapes::TOPK_MAX);
        assert_eq!(define("LSHREC_SCORE_USERS"), shapes::SCORE_USERS);
        assert_eq!(define("LSHREC_SCORE_TILE"), shapes::SCORE_TILE);
    }

    #[test]
    fn every_kernel_is_declared_in_its_file_with_a_header_comment() {
        for f in FILES {
            let src = nvrtc_source(f);
            assert!(!src.contains("#include \"common.cuh\""), "{}", f.file);
            assert!(
                src.contains("block_sum"),
                "{}: common.cuh not inlined",
                f.file
            );
            for k in f.kernels {
                let decl = format!("extern \"C\" __global__ void {k}(");
                let at = f
                    .source
                    .find(&decl)
                    .unwrap_or_else(|| panic!("{} does not define {k}", f.file));
                // The comment block right above names the kernel, its launch and its CPU twin.
                let before = &f.source[..at];
                let comment: Vec<&str> = before
                    .lines()
                    .rev()
                    .take_while(|l| l.starts_with("//"))
                    .collect();
                let text = comment.join("\n");
                assert!(text.contains(&format!("// {k}:")), "{k}: no header comment");
                assert!(text.contains("Launch:"), "{k}: no launch shape");
                assert!(text.contains("CPU twin:"), "{k}: no CPU twin");
            }
        }
        // Every kernel file on disk is embedded.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("kernels");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".cu"))
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = FILES.iter().map(|f| f.file.to_string()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded);
    }

    #[test]
    fn shapes_cover_their_work() {
        let s = shapes::ials_rows(943, 64);
        assert_eq!((s.grid.0, s.block.0), (943, 64));
        assert_eq!(shapes::ials_rows(10, 5).block.0, 32);
        assert_eq!(shapes::ials_rows(10, 65).block.0, 128);
        let g = shapes::gram(64, 100_000);
        assert_eq!((g.grid.0, g.grid.1), (4, 64));
        assert_eq!(shapes::score(17).grid.0, 3);
        assert_eq!(shapes::elementwise(0).grid.0, 1);
    }
}
