//! `lshrec kernels`: the CUDA kernel sources embedded in this binary, and their compilation to
//! PTX with NVRTC (which needs `libnvrtc.so.12`, but no GPU and no driver).

use std::path::PathBuf;

use clap::Subcommand;

use crate::error::{Error, Result};
use crate::gpu::FILES;

/// `lshrec kernels …`
#[derive(Debug, Subcommand)]
pub enum KernelsCommand {
    /// List the kernel files and the kernels each defines.
    List,
    /// Compile every kernel file to PTX for each architecture, writing FILE.compute_XY.ptx
    /// into --out. Needs a build with `--features cuda` and NVRTC on the library path.
    #[command(
        after_help = "Example (no GPU needed):\n  pip install nvidia-cuda-nvrtc-cu12\n  LD_LIBRARY_PATH=$VENV/lib/python3.*/site-packages/nvidia/cuda_nvrtc/lib \\\n    lshrec kernels compile --arch 80,90 --out ptx/\n  ptxas -arch=sm_90 -v -o score.cubin ptx/score.compute_90.ptx"
    )]
    Compile {
        /// Compute capabilities, comma-separated (80 = compute_80).
        #[arg(long, default_value = "80,90", value_delimiter = ',')]
        arch: Vec<u32>,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `lshrec kernels`.
pub fn run(c: KernelsCommand) -> Result<()> {
    match c {
        KernelsCommand::List => {
            for f in FILES {
                super::say!("{:<10} {}", f.file, f.kernels.join(", "))?;
            }
            Ok(())
        }
        KernelsCommand::Compile { arch, out, json } => compile(&arch, &out, json),
    }
}

#[cfg(not(feature = "cuda"))]
fn compile(_arch: &[u32], _out: &std::path::Path, _json: bool) -> Result<()> {
    Err(Error::CudaNotCompiled)
}

#[cfg(feature = "cuda")]
fn compile(arch: &[u32], out: &std::path::Path, json: bool) -> Result<()> {
    use crate::gpu::cuda;
    if arch.is_empty() {
        return Err(Error::invalid(
            "--arch",
            "name at least one compute capability",
        ));
    }
    let mut rows = Vec::new();
    for &cc in arch {
        let a = cuda::arch_name(cc)?;
        for f in FILES {
            let start = std::time::Instant::now();
            let ptx = cuda::compile(f, a)?;
            let ms = start.elapsed().as_secs_f64() * 1e3;
            let stem = f.file.trim_end_matches(".cu");
            let path = out.join(format!("{stem}.{a}.ptx"));
            crate::store::atomic::write_atomic(&path, |w| w.write_all(ptx.as_bytes()))?;
            let version = ptx
                .lines()
                .find_map(|l| l.trim().strip_prefix(".version "))
                .unwrap_or("?")
                .to_string();
            if !json {
                super::say!(
                    "{:<10} {a:<11} PTX ISA {version:<5} {:>7} bytes  {ms:>6.1} ms  {}",
                    f.file,
                    ptx.len(),
                    path.display()
                )?;
            }
            rows.push(serde_json::json!({
                "file": f.file, "arch": a, "ptx_isa": version, "bytes": ptx.len(),
                "ms": ms, "path": path, "kernels": f.kernels,
            }));
        }
    }
    if json {
        super::say!("{}", serde_json::Value::Array(rows))?;
    }
    Ok(())
}
