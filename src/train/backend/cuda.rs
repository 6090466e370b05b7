//! Probing the CUDA driver through cudarc's dynamic loading, without panicking.

use crate::error::{Error, Result};

/// The first device's name, or why no device is usable.
pub fn probe() -> Result<String> {
    // SAFETY: `is_culib_present` only tries to dlopen the driver library by name and drops it;
    // it has no preconditions.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err(Error::CudaUnavailable {
            reason: "no CUDA driver (libcuda) found".into(),
        });
    }
    let count = std::panic::catch_unwind(cudarc::driver::CudaContext::device_count)
        .map_err(|_| Error::CudaUnavailable {
            reason: "the CUDA driver failed to load".into(),
        })?
        .map_err(|e| Error::CudaUnavailable {
            reason: format!("the CUDA driver reports an error: {e:?}"),
        })?;
    if count < 1 {
        return Err(Error::CudaUnavailable {
            reason: "the CUDA driver reports no device".into(),
        });
    }
    let ctx = std::panic::catch_unwind(|| cudarc::driver::CudaContext::new(0))
        .map_err(|_| Error::CudaUnavailable {
            reason: "creating a CUDA context panicked".into(),
        })?
        .map_err(|e| Error::CudaUnavailable {
            reason: format!("cannot create a CUDA context: {e:?}"),
        })?;
    ctx.name().map_err(|e| Error::CudaUnavailable {
        reason: format!("cannot read the device name: {e:?}"),
    })
}
