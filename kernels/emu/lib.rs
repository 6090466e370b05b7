//! Test-only: runs lshrec's CUDA kernel sources (`kernels/*.cu`) on the host under
//! `emulate.hpp`, through a launcher shaped like `cuLaunchKernel`.

use std::ffi::{c_char, c_int, c_void, CString};

extern "C" {
    fn lshrec_emu_launch(
        name: *const c_char,
        grid: *const u32,
        block: *const u32,
        args: *mut *mut c_void,
    ) -> c_int;
}

/// Kernel arguments, each stored in its own 8-byte slot (every argument of lshrec's kernels is
/// a pointer, an `int`, or a `float`).
#[derive(Default)]
pub struct Args {
    slots: Vec<Box<u64>>,
}

impl Args {
    pub fn new() -> Self {
        Self::default()
    }
    fn push_bytes(mut self, bytes: &[u8]) -> Self {
        let mut v = [0u8; 8];
        v[..bytes.len()].copy_from_slice(bytes);
        self.slots.push(Box::new(u64::from_ne_bytes(v)));
        self
    }
    /// A device pointer (here: a host pointer).
    pub fn ptr<T>(self, p: *const T) -> Self {
        self.push_bytes(&(p as usize).to_ne_bytes())
    }
    /// A null pointer.
    pub fn null(self) -> Self {
        self.ptr(std::ptr::null::<u8>())
    }
    pub fn i32(self, v: i32) -> Self {
        self.push_bytes(&v.to_ne_bytes())
    }
    pub fn f32(self, v: f32) -> Self {
        self.push_bytes(&v.to_ne_bytes())
    }
}

/// Runs kernel `name` with `grid` × `block` threads.
///
/// # Safety
/// `args` must match the kernel's parameters in number and type, and every pointer must be
/// valid for everything the kernel reads and writes through it at this shape.
pub unsafe fn launch(
    name: &str,
    grid: (u32, u32, u32),
    block: (u32, u32, u32),
    args: &Args,
) -> Result<(), String> {
    let c = CString::new(name).map_err(|e| e.to_string())?;
    let g = [grid.0, grid.1, grid.2];
    let b = [block.0, block.1, block.2];
    let mut ptrs: Vec<*mut c_void> = args
        .slots
        .iter()
        .map(|s| &**s as *const u64 as *mut c_void)
        .collect();
    // SAFETY: the caller guarantees the arguments; the names, shapes and slot array are valid
    // for the call, and the launcher only reads them.
    let rc = unsafe { lshrec_emu_launch(c.as_ptr(), g.as_ptr(), b.as_ptr(), ptrs.as_mut_ptr()) };
    match rc {
        0 => Ok(()),
        1 => Err(format!("no kernel named {name}")),
        _ => Err(format!("bad launch shape {grid:?} × {block:?}")),
    }
}
