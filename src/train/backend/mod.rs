//! Compute backends for training: the CPU (rayon, faer) and NVIDIA GPUs (cudarc, behind the
//! `cuda` cargo feature, with dynamic loading so that builds and tests need no CUDA at all).
//!
//! `--backend auto` probes for a driver without panicking (cudarc's context constructor panics
//! when libcuda is missing, so the library's presence is checked first and the device count is
//! read under `catch_unwind`) and falls back to the CPU with one informational line.
//!
//! Status: the GPU training kernels are not written yet (`kernels/` holds none), so the CUDA
//! backend reports itself unavailable even where a GPU exists, and `auto` trains on the CPU.

#[cfg(feature = "cuda")]
mod cuda;

use crate::error::{Error, Result};

/// What the user asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// The GPU when one is usable, else the CPU (with a note).
    Auto,
    Cpu,
    Cuda,
}

/// The backend a run uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    Cpu,
}

/// Why the GPU cannot be used here, or `Ok` with the device's name.
pub fn probe_gpu() -> Result<String> {
    #[cfg(feature = "cuda")]
    {
        cuda::probe()
    }
    #[cfg(not(feature = "cuda"))]
    {
        Err(Error::CudaNotCompiled)
    }
}

/// Resolves a choice into a backend, plus an informational line when `auto` fell back.
pub fn select(choice: BackendChoice) -> Result<(Backend, Option<String>)> {
    match choice {
        BackendChoice::Cpu => Ok((Backend::Cpu, None)),
        BackendChoice::Cuda => match probe_gpu() {
            Ok(name) => Err(Error::CudaUnavailable {
                reason: format!("found {name}, but lshrec's GPU training kernels are not written yet; use --backend cpu"),
            }),
            Err(e) => Err(e),
        },
        BackendChoice::Auto => {
            let why = match probe_gpu() {
                Ok(name) => format!("found {name}, but the GPU training kernels are not written yet"),
                Err(Error::CudaNotCompiled) => "this build has no CUDA backend (cargo feature `cuda`)".into(),
                Err(e) => e.to_string(),
            };
            Ok((Backend::Cpu, Some(format!("note: training on the CPU: {why}"))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_resolve_without_panicking() {
        assert_eq!(select(BackendChoice::Cpu).unwrap(), (Backend::Cpu, None));
        let (b, note) = select(BackendChoice::Auto).unwrap();
        assert_eq!(b, Backend::Cpu);
        assert!(note.unwrap().starts_with("note: training on the CPU"));
        // No usable GPU backend exists yet in any build: `cuda` is always a clear error.
        let e = select(BackendChoice::Cuda).unwrap_err();
        #[cfg(not(feature = "cuda"))]
        assert!(matches!(e, Error::CudaNotCompiled), "{e}");
        #[cfg(feature = "cuda")]
        assert!(matches!(e, Error::CudaUnavailable { .. }), "{e}");
    }
}
