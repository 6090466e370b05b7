//! The CUDA backend: the device, the kernel compiler and its cache, typed launches of every
//! kernel in `kernels/*.cu`, GPU scoring and hashing, and the GPU trainers.
//!
//! - **Loading.** Kernels are compiled at run time by NVRTC (`libnvrtc.so.12`, loaded
//!   dynamically) for the device's virtual architecture (`compute_XY`), once per process and
//!   file, and cached on disk by a hash of the source and the architecture
//!   (`$LSHREC_CACHE_DIR`, else `$XDG_CACHE_HOME/lshrec`, else `~/.cache/lshrec`). The driver
//!   JIT-compiles the PTX, so the driver must understand the PTX ISA of the NVRTC in use
//!   (NVRTC 12.9 emits ISA 8.8: driver 575 or later).
//! - **Memory.** Plain device allocations (no managed memory). Every trainer estimates its
//!   footprint first and refuses, with the need and the free memory, a model that does not fit.
//! - **Equivalence.** A GPU trainer starts from exactly the CPU trainer's initial vectors and
//!   consumes the CPU trainer's samples in the same order. iALS, SpMM, the Gram matrix and the
//!   scorer use no float atomics and are deterministic; the SGD kernels (MF, BPR) are Hogwild
//!   and LightGCN's gradient scatter uses float atomics, so those models match the CPU only to
//!   rounding, and are not bit-reproducible run to run.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, CudaView, DeviceRepr,
    DriverError, LaunchConfig, PushKernelArg, ValidAsZeroBits,
};
use cudarc::nvrtc::{CompileError, CompileOptions, Ptx};

use super::shapes::{self, Shape};
use super::{nvrtc_source, KernelFile, FILES};
use crate::data::Csr;
use crate::error::{Error, Result};
use crate::score::Scored;
use crate::train::{self, bpr, graph, ials, mf, ModelKind, TrainConfig, Trained, Trainer};

fn drv(during: &str) -> impl FnOnce(DriverError) -> Error + '_ {
    move |e| Error::Cuda {
        during: during.to_string(),
        reason: format!("{e:?}"),
    }
}

/// The first device's name, or why no device is usable. Never panics.
pub fn probe() -> Result<String> {
    // SAFETY: `is_culib_present` only tries to dlopen the driver library by name and drops it;
    // it has no preconditions.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err(Error::CudaUnavailable {
            reason: "no CUDA driver (libcuda) found".into(),
        });
    }
    let count = std::panic::catch_unwind(CudaContext::device_count)
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
    let ctx = new_context()?;
    ctx.name().map_err(|e| Error::CudaUnavailable {
        reason: format!("cannot read the device name: {e:?}"),
    })
}

fn new_context() -> Result<Arc<CudaContext>> {
    std::panic::catch_unwind(|| CudaContext::new(0))
        .map_err(|_| Error::CudaUnavailable {
            reason: "creating a CUDA context panicked".into(),
        })?
        .map_err(|e| Error::CudaUnavailable {
            reason: format!("cannot create a CUDA context: {e:?}"),
        })
}

/// Whether NVRTC (`libnvrtc.so.12`) can be loaded.
pub fn nvrtc_present() -> bool {
    // SAFETY: as for the driver probe: a dlopen by name, no preconditions.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

const NVRTC_MISSING: &str = "NVRTC (libnvrtc.so.12) not found: install the CUDA toolkit's NVRTC, or `pip install nvidia-cuda-nvrtc-cu12` and add its nvidia/cuda_nvrtc/lib folder to LD_LIBRARY_PATH";

/// The virtual architecture for a compute capability (`80` → `compute_80`).
pub fn arch_name(cc: u32) -> Result<&'static str> {
    Ok(match cc {
        70 => "compute_70",
        72 => "compute_72",
        75 => "compute_75",
        80 => "compute_80",
        86 => "compute_86",
        87 => "compute_87",
        89 => "compute_89",
        90 => "compute_90",
        100 => "compute_100",
        120 => "compute_120",
        _ => {
            return Err(Error::invalid(
                "compute capability",
                format!("{cc} is not one lshrec compiles for (70–120)"),
            ))
        }
    })
}

/// Compiles one kernel file to PTX for `arch` with NVRTC.
pub fn compile(file: &KernelFile, arch: &'static str) -> Result<String> {
    if !nvrtc_present() {
        return Err(Error::CudaUnavailable {
            reason: NVRTC_MISSING.into(),
        });
    }
    let src = nvrtc_source(file);
    let opts = CompileOptions {
        arch: Some(arch),
        name: Some(file.file.to_string()),
        options: vec!["-std=c++17".into()],
        ..Default::default()
    };
    let result = std::panic::catch_unwind(|| cudarc::nvrtc::compile_ptx_with_opts(&src, opts))
        .map_err(|_| Error::CudaUnavailable {
            reason: "NVRTC failed to load".into(),
        })?;
    let fail = |log: String| Error::KernelCompile {
        file: file.file.into(),
        arch: arch.into(),
        log,
    };
    match result {
        Ok(ptx) => Ok(ptx.to_src()),
        Err(CompileError::CompileError { log, .. }) => Err(fail(log.to_string_lossy().into())),
        Err(e) => Err(fail(format!("{e:?}"))),
    }
}

fn cache_dir() -> Option<std::path::PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    env("LSHREC_CACHE_DIR")
        .map(Into::into)
        .or_else(|| env("XDG_CACHE_HOME").map(|p| std::path::PathBuf::from(p).join("lshrec")))
        .or_else(|| env("HOME").map(|p| std::path::PathBuf::from(p).join(".cache/lshrec")))
        .map(|p| p.join("kernels"))
}

/// [`compile`], cached on disk by a hash of the source and the architecture. A cache that cannot
/// be read or written is skipped silently (it is only a cache).
pub fn compile_cached(file: &KernelFile, arch: &'static str) -> Result<String> {
    let src = nvrtc_source(file);
    let key = xxhash_rust::xxh3::xxh3_64(format!("{arch}\n{src}").as_bytes());
    let path = cache_dir().map(|d| d.join(format!("{}-{arch}-{key:016x}.ptx", file.file)));
    if let Some(p) = &path {
        if let Ok(ptx) = std::fs::read_to_string(p) {
            if ptx.contains(".version") && ptx.contains(".target") {
                return Ok(ptx);
            }
        }
    }
    let ptx = compile(file, arch)?;
    if let Some(p) = &path {
        let _ = crate::store::atomic::write_atomic(p, |w| w.write_all(ptx.as_bytes()));
    }
    Ok(ptx)
}

/// An opened GPU: its context, stream, and the kernel modules loaded so far.
pub struct Gpu {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    name: String,
    arch: &'static str,
    modules: Mutex<HashMap<&'static str, Arc<CudaModule>>>,
}

/// A CSR matrix on the device (32-bit offsets).
pub struct DevCsr {
    pub rows: usize,
    pub indptr: CudaSlice<u32>,
    pub idx: CudaSlice<u32>,
    pub val: CudaSlice<f32>,
}

fn cfg(s: Shape) -> LaunchConfig {
    LaunchConfig {
        grid_dim: s.grid,
        block_dim: s.block,
        shared_mem_bytes: 0,
    }
}

fn int(what: &str, v: usize) -> Result<i32> {
    i32::try_from(v)
        .map_err(|_| Error::invalid(what, format!("{v} exceeds the GPU kernels' 32-bit range")))
}

/// Launches `$kernel` with `$shape` and the listed arguments (references), in the kernel's
/// parameter order.
macro_rules! launch {
    ($gpu:expr, $kernel:literal, $shape:expr; $($arg:expr),* $(,)?) => {{
        let f = $gpu.function($kernel)?;
        let mut b = $gpu.stream.launch_builder(&f);
        $( b.arg($arg); )*
        // SAFETY: the arguments follow the kernel's parameter list in number, order and type
        // (the emulation tests call the same kernels with the same order and shapes), every
        // device buffer holds at least the elements the kernel indexes for the sizes passed,
        // and the shape is the one the kernel's header comment requires.
        unsafe { b.launch(cfg($shape)) }.map(|_| ()).map_err(drv($kernel))
    }};
}

impl Gpu {
    /// Opens device 0. Fails cleanly (never panics) without a driver, a device or NVRTC.
    pub fn open() -> Result<Arc<Gpu>> {
        let name = probe()?;
        if !nvrtc_present() {
            return Err(Error::CudaUnavailable {
                reason: NVRTC_MISSING.into(),
            });
        }
        let ctx = new_context()?;
        let (major, minor) = ctx
            .compute_capability()
            .map_err(drv("reading the compute capability"))?;
        let arch = arch_name((major * 10 + minor) as u32)?;
        let stream = ctx.default_stream();
        Ok(Arc::new(Gpu {
            ctx,
            stream,
            name,
            arch,
            modules: Mutex::new(HashMap::new()),
        }))
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The virtual architecture kernels are compiled for.
    pub fn arch(&self) -> &'static str {
        self.arch
    }

    /// Kernel `kernel`, its file compiled and loaded on first use.
    pub fn function(&self, kernel: &'static str) -> Result<CudaFunction> {
        let file = FILES
            .iter()
            .find(|f| f.kernels.contains(&kernel))
            .ok_or_else(|| Error::invalid("kernel", format!("{kernel} is in no kernel file")))?;
        let module = {
            let mut m = self.modules.lock().unwrap_or_else(|e| e.into_inner());
            match m.get(file.file) {
                Some(x) => x.clone(),
                None => {
                    let ptx = compile_cached(file, self.arch)?;
                    let md = self
                        .ctx
                        .load_module(Ptx::from_src(ptx))
                        .map_err(drv(file.file))?;
                    m.insert(file.file, md.clone());
                    md
                }
            }
        };
        module.load_function(kernel).map_err(drv(kernel))
    }

    /// Free device memory in bytes.
    pub fn free_bytes(&self) -> Result<usize> {
        Ok(self
            .ctx
            .mem_get_info()
            .map_err(drv("reading free memory"))?
            .0)
    }

    /// Refuses `what` when `bytes` (plus a 64 MiB margin) exceed the free device memory.
    pub fn reserve(&self, what: &str, bytes: usize) -> Result<()> {
        let free = self.free_bytes()?;
        if bytes + (64 << 20) > free {
            return Err(Error::GpuMemory {
                what: what.into(),
                need_mib: (bytes >> 20) as u64 + 1,
                free_mib: (free >> 20) as u64,
            });
        }
        Ok(())
    }

    /// Copies `v` to a new device buffer (one zero element when `v` is empty).
    pub fn upload<T: DeviceRepr + ValidAsZeroBits>(&self, v: &[T]) -> Result<CudaSlice<T>> {
        if v.is_empty() {
            return self.zeros(1);
        }
        self.stream
            .clone_htod(v)
            .map_err(drv("copying to the device"))
    }

    /// A zeroed device buffer of `n` elements (at least one).
    pub fn zeros<T: DeviceRepr + ValidAsZeroBits>(&self, n: usize) -> Result<CudaSlice<T>> {
        self.stream
            .alloc_zeros(n.max(1))
            .map_err(drv("allocating device memory"))
    }

    /// The first `n` elements of a device buffer.
    pub fn download<T: DeviceRepr>(&self, s: &CudaSlice<T>, n: usize) -> Result<Vec<T>> {
        let mut v = self
            .stream
            .clone_dtoh(s)
            .map_err(drv("copying from the device"))?;
        v.truncate(n);
        Ok(v)
    }

    /// Overwrites the start of `dst` with `src`.
    pub fn write<T: DeviceRepr>(&self, src: &[T], dst: &mut CudaSlice<T>) -> Result<()> {
        if src.is_empty() {
            return Ok(());
        }
        self.stream
            .memcpy_htod(src, &mut dst.slice_mut(..src.len()))
            .map_err(drv("copying to the device"))
    }

    /// Zeroes a device buffer.
    pub fn clear<T: DeviceRepr + ValidAsZeroBits>(&self, s: &mut CudaSlice<T>) -> Result<()> {
        self.stream
            .memset_zeros(s)
            .map_err(drv("clearing device memory"))
    }

    /// Copies `src` into `dst` on the device.
    pub fn copy<T: DeviceRepr>(&self, src: &CudaSlice<T>, dst: &mut CudaSlice<T>) -> Result<()> {
        self.stream
            .memcpy_dtod(src, dst)
            .map_err(drv("copying on the device"))
    }

    /// Waits for all queued work (benchmarks stop their clocks after this).
    pub fn sync(&self) -> Result<()> {
        self.stream.synchronize().map_err(drv("synchronising"))
    }

    /// Uploads a CSR matrix.
    pub fn upload_csr(&self, m: &Csr) -> Result<DevCsr> {
        if m.nnz() > u32::MAX as usize {
            return Err(Error::invalid(
                "interactions",
                "more than 2³² non-zeros do not fit the GPU kernels' 32-bit offsets",
            ));
        }
        let indptr: Vec<u32> = m.indptr.iter().map(|&x| x as u32).collect();
        Ok(DevCsr {
            rows: m.rows,
            indptr: self.upload(&indptr)?,
            idx: self.upload(&m.indices)?,
            val: self.upload(&m.values)?,
        })
    }

    /// `out = scale·YᵀY` for the n × d row-major `y` (`partial` holds
    /// `shapes::gram_splits(n)·d·d` floats).
    pub fn gram(
        &self,
        y: &CudaView<'_, f32>,
        n: usize,
        d: usize,
        scale: f32,
        partial: &mut CudaSlice<f32>,
        out: &mut CudaSlice<f32>,
    ) -> Result<()> {
        let (ni, di) = (int("rows", n)?, int("--dim", d)?);
        let splits = shapes::gram_splits(n) as i32;
        let len = int("--dim", d * d)?;
        launch!(self, "gram_partial_f32", shapes::gram(d, n); y, &ni, &di, &mut *partial)?;
        launch!(self, "gram_reduce_f32", shapes::elementwise(d * d); &*partial, &splits, &len, &scale, out)
    }

    /// `cfg.cg_steps` conjugate-gradient steps for every row of `rows` (see `ials_cg_f32`).
    #[allow(clippy::too_many_arguments)]
    pub fn ials_cg(
        &self,
        cfg: &ials::IalsConfig,
        w0g: &CudaSlice<f32>,
        fixed: &CudaSlice<f32>,
        rows: &DevCsr,
        n_other: usize,
        x: &mut CudaSlice<f32>,
    ) -> Result<()> {
        let (nr, d, no) = (
            int("rows", rows.rows)?,
            int("--dim", cfg.factors)?,
            int("rows", n_other)?,
        );
        let steps = int("--cg-steps", cfg.cg_steps)?;
        launch!(self, "ials_cg_f32", shapes::ials_rows(rows.rows, cfg.factors);
            w0g, fixed, &rows.indptr, &rows.idx, &rows.val, &nr, &d, &no,
            &cfg.alpha, &cfg.negative_confidence, &cfg.unobserved_weight, &cfg.reg,
            &cfg.reg_exponent, &steps, x)
    }

    /// `out = A·x` (d columns).
    pub fn spmm(
        &self,
        a: &DevCsr,
        d: usize,
        x: &CudaSlice<f32>,
        out: &mut CudaSlice<f32>,
    ) -> Result<()> {
        let (r, di) = (int("rows", a.rows)?, int("--dim", d)?);
        launch!(self, "spmm_csr_f32", shapes::spmm(a.rows); &a.indptr, &a.idx, &a.val, &r, &di, x, out)
    }

    /// `y = a·x + b·y` over `n` values.
    pub fn axpby(
        &self,
        n: usize,
        a: f32,
        x: &CudaSlice<f32>,
        b: f32,
        y: &mut CudaSlice<f32>,
    ) -> Result<()> {
        let ni = int("length", n)?;
        launch!(self, "axpby_f32", shapes::elementwise(n); &ni, &a, x, &b, y)
    }

    /// The exact top-`k` of every user (see `score_topk_f32`); `seen` masks each user's
    /// training items.
    pub fn topk(
        &self,
        users: &[f32],
        items: &[f32],
        d: usize,
        k: usize,
        seen: Option<&Csr>,
    ) -> Result<Vec<Vec<Scored>>> {
        let (nu, ni) = (users.len() / d.max(1), items.len() / d.max(1));
        crate::score::check_k(k, ni)?;
        if k > shapes::TOPK_MAX {
            return Err(Error::invalid(
                "--k",
                format!("the GPU scorer selects at most {} items", shapes::TOPK_MAX),
            ));
        }
        self.reserve(
            "exact scoring",
            4 * (users.len() + items.len() + 2 * nu * k)
                + seen.map_or(0, |s| 4 * (s.nnz() + s.rows)),
        )?;
        let (du, di) = (self.upload(users)?, self.upload(items)?);
        let mut ids = self.zeros::<u32>(nu * k)?;
        let mut scores = self.zeros::<f32>(nu * k)?;
        let (nui, nii, dd, kk) = (
            int("users", nu)?,
            int("items", ni)?,
            int("--dim", d)?,
            k as i32,
        );
        match seen {
            Some(s) => {
                let s = self.upload_csr(s)?;
                launch!(self, "score_topk_f32", shapes::score(nu);
                    &du, &nui, &di, &nii, &dd, &s.indptr, &s.idx, &kk, &mut ids, &mut scores)?;
            }
            None => {
                let null = 0u64;
                launch!(self, "score_topk_f32", shapes::score(nu);
                    &du, &nui, &di, &nii, &dd, &null, &null, &kk, &mut ids, &mut scores)?;
            }
        }
        let (ids, scores) = (
            self.download(&ids, nu * k)?,
            self.download(&scores, nu * k)?,
        );
        Ok((0..nu)
            .map(|u| {
                (0..k)
                    .filter(|&r| ids[u * k + r] != u32::MAX)
                    .map(|r| Scored {
                        item: ids[u * k + r],
                        score: scores[u * k + r],
                    })
                    .collect()
            })
            .collect())
    }

    /// Sign codes of `rows` (n × d) against `planes` ((64·words) × d1), transformed by the
    /// per-row norm-range maxima when given (see `lsh_hash_f32`).
    pub fn hash(
        &self,
        rows: &[f32],
        d: usize,
        range_max: Option<&[f32]>,
        planes: &[f32],
        d1: usize,
        words: usize,
    ) -> Result<Vec<u64>> {
        let n = rows.len() / d.max(1);
        let (x, p) = (self.upload(rows)?, self.upload(planes)?);
        let mut codes = self.zeros::<u64>(n * words)?;
        let (ni, di, d1i, wi) = (
            int("rows", n)?,
            int("--dim", d)?,
            int("--dim", d1)?,
            int("bits", words)?,
        );
        match range_max {
            Some(m) => {
                let m = self.upload(m)?;
                launch!(self, "lsh_hash_f32", shapes::elementwise(n * words);
                    &x, &m, &ni, &di, &d1i, &p, &wi, &mut codes)?;
            }
            None => {
                let null = 0u64;
                launch!(self, "lsh_hash_f32", shapes::elementwise(n * words);
                    &x, &null, &ni, &di, &d1i, &p, &wi, &mut codes)?;
            }
        }
        self.download(&codes, n * words)
    }

    /// Hamming distances of every query code to every code (query-major).
    pub fn hamming(&self, codes: &[u64], words: usize, queries: &[u64]) -> Result<Vec<u32>> {
        let (n, nq) = (codes.len() / words.max(1), queries.len() / words.max(1));
        let (c, q) = (self.upload(codes)?, self.upload(queries)?);
        let mut out = self.zeros::<u32>(n * nq)?;
        let (ni, wi, nqi) = (int("codes", n)?, int("bits", words)?, int("queries", nq)?);
        launch!(self, "hamming_scan_u64", shapes::elementwise(n * nq); &c, &ni, &wi, &q, &nqi, &mut out)?;
        self.download(&out, n * nq)
    }
}

/// A GPU trainer for `cfg.kind` on `m`.
pub fn trainer(gpu: &Arc<Gpu>, cfg: &TrainConfig, m: Csr) -> Result<Box<dyn Trainer>> {
    if cfg.item_features || cfg.user_features {
        return Err(Error::invalid(
            "--features",
            "side features train on the CPU only; use --backend cpu",
        ));
    }
    if cfg.kind == ModelKind::Lightgcn && cfg.loss == graph::Loss::Margin {
        return Err(Error::invalid(
            "--loss margin",
            "the GPU LightGCN kernels implement the ials and bpr losses: add --backend cpu for max-margin",
        ));
    }
    if cfg.kind == ModelKind::Bpr && cfg.hard_negatives > 1 {
        return Err(Error::invalid(
            "--hard-negatives",
            "rank-aware negatives for bpr train on the CPU only (the GPU's Hogwild steps draw before they score): add --hard-negatives 1, or --backend cpu",
        ));
    }
    if cfg.dim > shapes::MAX_DIM {
        return Err(Error::invalid(
            "--dim",
            format!("the GPU kernels take at most {} factors", shapes::MAX_DIM),
        ));
    }
    Ok(match cfg.kind {
        ModelKind::Ials => Box::new(GpuIals::new(gpu.clone(), cfg, m)?),
        ModelKind::Mf => Box::new(GpuMf::new(gpu.clone(), cfg, m)?),
        ModelKind::Bpr => Box::new(GpuBpr::new(gpu.clone(), cfg, m)?),
        ModelKind::Lightgcn => Box::new(GpuLightGcn::new(gpu.clone(), cfg, m)?),
    })
}

/// Ratings or triples per SGD launch: the Hogwild concurrency.
const SGD_BATCH: usize = 8192;

struct GpuIals {
    gpu: Arc<Gpu>,
    cfg: ials::IalsConfig,
    host: Csr,
    by_user: DevCsr,
    by_item: DevCsr,
    users: CudaSlice<f32>,
    items: CudaSlice<f32>,
    partial: CudaSlice<f32>,
    w0g: CudaSlice<f32>,
}

impl GpuIals {
    fn new(gpu: Arc<Gpu>, cfg: &TrainConfig, m: Csr) -> Result<Self> {
        if cfg.cg_steps == 0 {
            return Err(Error::invalid(
                "--cg-steps",
                "the GPU solves rows by conjugate gradient: use --cg-steps 1 or more, or --backend cpu",
            ));
        }
        let cpu = ials::Ials::new(ials::config(cfg), m, cfg.seed)?;
        let d = cfg.dim;
        let m = cpu.by_user();
        let (nu, ni) = (m.rows, m.cols);
        let splits = shapes::gram_splits(nu.max(ni));
        gpu.reserve(
            "iALS training",
            4 * ((nu + ni) * d + 4 * m.nnz() + 2 * (nu + ni) + (splits + 1) * d * d),
        )?;
        Ok(GpuIals {
            by_user: gpu.upload_csr(m)?,
            by_item: gpu.upload_csr(cpu.by_item())?,
            users: gpu.upload(&cpu.users)?,
            items: gpu.upload(&cpu.items)?,
            partial: gpu.zeros(splits * d * d)?,
            w0g: gpu.zeros(d * d)?,
            host: m.clone(),
            cfg: cpu.cfg.clone(),
            gpu,
        })
    }
}

impl Trainer for GpuIals {
    fn epoch(&mut self) -> Result<f64> {
        let (d, w0) = (self.cfg.factors, self.cfg.unobserved_weight);
        let (nu, ni) = (self.host.rows, self.host.cols);
        let g = &self.gpu;
        g.gram(
            &self.items.slice(..),
            ni,
            d,
            w0,
            &mut self.partial,
            &mut self.w0g,
        )?;
        g.ials_cg(
            &self.cfg,
            &self.w0g,
            &self.items,
            &self.by_user,
            ni,
            &mut self.users,
        )?;
        g.gram(
            &self.users.slice(..),
            nu,
            d,
            w0,
            &mut self.partial,
            &mut self.w0g,
        )?;
        g.ials_cg(
            &self.cfg,
            &self.w0g,
            &self.users,
            &self.by_item,
            nu,
            &mut self.items,
        )?;
        let t = self.export_result()?;
        Ok(ials::loss(&self.cfg, &t.users, &t.items, &self.host))
    }

    fn export(&self) -> Result<Trained> {
        self.export_result()
    }
}

impl GpuIals {
    fn export_result(&self) -> Result<Trained> {
        let d = self.cfg.factors;
        let users = self.gpu.download(&self.users, self.host.rows * d)?;
        let items = self.gpu.download(&self.items, self.host.cols * d)?;
        Ok(Trained::plain(ModelKind::Ials, users, items, d, false))
    }
}

struct GpuMf {
    gpu: Arc<Gpu>,
    host: RefCell<mf::Mf>,
    n: usize,
    p: CudaSlice<f32>,
    q: CudaSlice<f32>,
    bu: CudaSlice<f32>,
    bi: CudaSlice<f32>,
    us: CudaSlice<u32>,
    is: CudaSlice<u32>,
    rs: CudaSlice<f32>,
    err: CudaSlice<f32>,
}

impl GpuMf {
    fn new(gpu: Arc<Gpu>, cfg: &TrainConfig, m: Csr) -> Result<Self> {
        let host = mf::Mf::new(train::mf_config(cfg), &m, cfg.seed)?;
        let n = m.nnz();
        gpu.reserve(
            "MF training",
            4 * ((m.rows + m.cols) * (cfg.dim + 1) + 3 * n),
        )?;
        Ok(GpuMf {
            p: gpu.upload(&host.p)?,
            q: gpu.upload(&host.q)?,
            bu: gpu.upload(&host.bu)?,
            bi: gpu.upload(&host.bi)?,
            us: gpu.zeros(n)?,
            is: gpu.zeros(n)?,
            rs: gpu.zeros(n)?,
            err: gpu.zeros(1)?,
            host: RefCell::new(host),
            n,
            gpu,
        })
    }
}

impl Trainer for GpuMf {
    fn epoch(&mut self) -> Result<f64> {
        let mut host = self.host.borrow_mut();
        let c = host.cfg.clone();
        let mu = host.mu;
        let order = host.shuffle_epoch();
        let us: Vec<u32> = order.iter().map(|t| t.0).collect();
        let is: Vec<u32> = order.iter().map(|t| t.1).collect();
        let rs: Vec<f32> = order.iter().map(|t| t.2).collect();
        drop(host);
        let g = &self.gpu;
        g.write(&us, &mut self.us)?;
        g.write(&is, &mut self.is)?;
        g.write(&rs, &mut self.rs)?;
        g.clear(&mut self.err)?;
        let d = int("--dim", c.factors)?;
        for s in (0..self.n).step_by(SGD_BATCH) {
            let e = (s + SGD_BATCH).min(self.n);
            let len = (e - s) as i32;
            let (u, i, r) = (
                self.us.slice(s..e),
                self.is.slice(s..e),
                self.rs.slice(s..e),
            );
            launch!(g, "mf_sgd_step_f32", shapes::elementwise(e - s);
                &u, &i, &r, &len, &d, &c.lr, &c.reg, &c.reg_bias, &mu,
                &mut self.p, &mut self.q, &mut self.bu, &mut self.bi, &mut self.err)?;
        }
        let se = g.download(&self.err, 1)?[0] as f64;
        Ok(se / self.n.max(1) as f64)
    }

    fn export(&self) -> Result<Trained> {
        let mut h = self.host.borrow_mut();
        let g = &self.gpu;
        let (pl, ql, ul, il) = (h.p.len(), h.q.len(), h.bu.len(), h.bi.len());
        h.p = g.download(&self.p, pl)?;
        h.q = g.download(&self.q, ql)?;
        h.bu = g.download(&self.bu, ul)?;
        h.bi = g.download(&self.bi, il)?;
        Ok(Trained::mf(&h))
    }
}

struct GpuBpr {
    gpu: Arc<Gpu>,
    host: RefCell<bpr::Bpr>,
    p: CudaSlice<f32>,
    q: CudaSlice<f32>,
    b: CudaSlice<f32>,
    us: CudaSlice<u32>,
    is: CudaSlice<u32>,
    js: CudaSlice<u32>,
    loss: CudaSlice<f32>,
    triples: Vec<(u32, u32, u32)>,
}

impl GpuBpr {
    fn new(gpu: Arc<Gpu>, cfg: &TrainConfig, m: Csr) -> Result<Self> {
        let n = m.nnz();
        gpu.reserve(
            "BPR training",
            4 * ((m.rows + m.cols) * (cfg.dim + 1) + 3 * n),
        )?;
        let host = bpr::Bpr::new(train::bpr_config(cfg), m, cfg.seed)?;
        Ok(GpuBpr {
            p: gpu.upload(&host.p)?,
            q: gpu.upload(&host.q)?,
            b: gpu.upload(&host.b)?,
            us: gpu.zeros(n)?,
            is: gpu.zeros(n)?,
            js: gpu.zeros(n)?,
            loss: gpu.zeros(1)?,
            host: RefCell::new(host),
            triples: Vec::new(),
            gpu,
        })
    }
}

/// Uploads triples into three device columns.
fn write_triples(
    g: &Gpu,
    t: &[(u32, u32, u32)],
    us: &mut CudaSlice<u32>,
    is: &mut CudaSlice<u32>,
    js: &mut CudaSlice<u32>,
) -> Result<()> {
    g.write(&t.iter().map(|x| x.0).collect::<Vec<_>>(), us)?;
    g.write(&t.iter().map(|x| x.1).collect::<Vec<_>>(), is)?;
    g.write(&t.iter().map(|x| x.2).collect::<Vec<_>>(), js)
}

impl Trainer for GpuBpr {
    fn epoch(&mut self) -> Result<f64> {
        let (draws, c) = {
            let mut h = self.host.borrow_mut();
            (h.sample_epoch(&mut self.triples), h.cfg.clone())
        };
        let g = &self.gpu;
        write_triples(g, &self.triples, &mut self.us, &mut self.is, &mut self.js)?;
        g.clear(&mut self.loss)?;
        let d = int("--dim", c.factors)?;
        let n = self.triples.len();
        for s in (0..n).step_by(SGD_BATCH) {
            let e = (s + SGD_BATCH).min(n);
            let len = (e - s) as i32;
            let (u, i, j) = (
                self.us.slice(s..e),
                self.is.slice(s..e),
                self.js.slice(s..e),
            );
            launch!(g, "bpr_sgd_step_f32", shapes::elementwise(e - s);
                &u, &i, &j, &len, &d, &c.lr, &c.reg,
                &mut self.p, &mut self.q, &mut self.b, &mut self.loss)?;
        }
        Ok(g.download(&self.loss, 1)?[0] as f64 / draws.max(1) as f64)
    }

    fn export(&self) -> Result<Trained> {
        let mut h = self.host.borrow_mut();
        let g = &self.gpu;
        let (pl, ql, bl) = (h.p.len(), h.q.len(), h.b.len());
        h.p = g.download(&self.p, pl)?;
        h.q = g.download(&self.q, ql)?;
        h.b = g.download(&self.b, bl)?;
        let (users, items, dim) = h.export();
        Ok(Trained::plain(ModelKind::Bpr, users, items, dim, true))
    }
}

struct GpuLightGcn {
    gpu: Arc<Gpu>,
    host: graph::LightGcn,
    adj: DevCsr,
    d: usize,
    layers: usize,
    e0: CudaSlice<f32>,
    m: CudaSlice<f32>,
    v: CudaSlice<f32>,
    fin: CudaSlice<f32>,
    cur: CudaSlice<f32>,
    next: CudaSlice<f32>,
    grad: CudaSlice<f32>,
    g0: CudaSlice<f32>,
    us: CudaSlice<u32>,
    is: CudaSlice<u32>,
    js: CudaSlice<u32>,
    /// Rank-aware negatives: `hard_negatives` candidates per triple.
    cands: CudaSlice<u32>,
    loss: CudaSlice<f32>,
    penalty: CudaSlice<f32>,
    t: i32,
    triples: Vec<(u32, u32, u32)>,
    /// The pointwise loss's entries and scratch (`--loss ials`).
    pointwise: Option<DevPointwise>,
}

/// The device side of `graph::Pointwise`.
struct DevPointwise {
    /// Positives and known negatives by user.
    by_user: DevCsr,
    /// Positives by item.
    by_item: DevCsr,
    /// w0 times the Gram matrix of the users' and of the items' final embeddings.
    w0g_users: CudaSlice<f32>,
    w0g_items: CudaSlice<f32>,
    partial: CudaSlice<f32>,
    /// Each row's loss (the users' sum to the objective; the items' are not read).
    loss_users: CudaSlice<f32>,
    loss_items: CudaSlice<f32>,
}

/// `out = (x + Âx + … + Â^K x)/(K+1)` on the device (the twin of `graph::propagate`).
#[allow(clippy::too_many_arguments)]
fn propagate(
    g: &Gpu,
    adj: &DevCsr,
    d: usize,
    layers: usize,
    x: &CudaSlice<f32>,
    out: &mut CudaSlice<f32>,
    cur: &mut CudaSlice<f32>,
    next: &mut CudaSlice<f32>,
) -> Result<()> {
    let n = adj.rows * d;
    g.copy(x, out)?;
    g.copy(x, cur)?;
    for _ in 0..layers {
        g.spmm(adj, d, cur, next)?;
        g.axpby(n, 1.0, next, 1.0, out)?;
        std::mem::swap(cur, next);
    }
    g.axpby(n, 0.0, next, 1.0 / (layers + 1) as f32, out)
}

impl GpuLightGcn {
    fn new(gpu: Arc<Gpu>, cfg: &TrainConfig, m: Csr) -> Result<Self> {
        let c = train::lightgcn_config(cfg);
        let host = graph::LightGcn::new(c.clone(), m, cfg.seed)?;
        let adj = host.adjacency();
        let (nodes, d) = (adj.rows, c.factors);
        // A batch holds `negatives` triples per sampled positive, each with its candidates; the
        // pointwise loss samples none (one-element buffers keep the struct uniform).
        let triples = match host.pointwise() {
            Some(_) => 1,
            None => c.batch * c.negatives.max(1),
        };
        let m = c.hard_negatives.max(1);
        gpu.reserve(
            "LightGCN training",
            4 * (8 * nodes * d + 2 * adj.nnz() + adj.rows + (3 + m) * triples),
        )?;
        let z = |n: usize| gpu.zeros::<f32>(n);
        let pointwise = match host.pointwise() {
            Some(p) => {
                let (nu, ni) = (p.by_user.rows, p.by_user.cols);
                let splits = shapes::gram_splits(nu.max(ni));
                gpu.reserve(
                    "LightGCN's pointwise loss",
                    4 * (4 * p.by_user.nnz() + nu + ni + (splits + 2) * d * d + nu + ni),
                )?;
                Some(DevPointwise {
                    by_user: gpu.upload_csr(&p.by_user)?,
                    by_item: gpu.upload_csr(&p.by_item)?,
                    w0g_users: z(d * d)?,
                    w0g_items: z(d * d)?,
                    partial: z(splits * d * d)?,
                    loss_users: z(nu.max(1))?,
                    loss_items: z(ni.max(1))?,
                })
            }
            None => None,
        };
        Ok(GpuLightGcn {
            pointwise,
            adj: gpu.upload_csr(adj)?,
            d,
            layers: c.layers,
            e0: gpu.upload(&host.e0)?,
            m: z(nodes * d)?,
            v: z(nodes * d)?,
            fin: z(nodes * d)?,
            cur: z(nodes * d)?,
            next: z(nodes * d)?,
            grad: z(nodes * d)?,
            g0: z(nodes * d)?,
            us: gpu.zeros(triples)?,
            is: gpu.zeros(triples)?,
            js: gpu.zeros(triples)?,
            cands: gpu.zeros(if m > 1 { triples * m } else { 1 })?,
            loss: z(1)?,
            penalty: z(1)?,
            t: 0,
            triples: Vec::with_capacity(triples),
            host,
            gpu,
        })
    }

    /// The final embeddings of the current E⁰ into `fin`.
    fn forward(&mut self) -> Result<()> {
        propagate(
            &self.gpu,
            &self.adj,
            self.d,
            self.layers,
            &self.e0,
            &mut self.fin,
            &mut self.cur,
            &mut self.next,
        )
    }

    /// The gradient with respect to E⁰ into `g0`, from the one with respect to the final
    /// embeddings in `grad` (Â is symmetric: the same propagation).
    fn backward(&mut self) -> Result<()> {
        propagate(
            &self.gpu,
            &self.adj,
            self.d,
            self.layers,
            &self.grad,
            &mut self.g0,
            &mut self.cur,
            &mut self.next,
        )
    }

    fn step(&mut self) -> Result<f64> {
        self.forward()?;
        let g = &self.gpu;
        let (d, nu) = (self.d, self.host.n_users());
        self.host.sample_batch(&mut self.triples);
        let n = self.triples.len();
        write_triples(g, &self.triples, &mut self.us, &mut self.is, &mut self.js)?;
        let (ni, di, nui) = (n as i32, int("--dim", d)?, int("users", nu)?);
        let m = self.host.cfg.hard_negatives.max(1);
        if m > 1 {
            g.write(self.host.candidates(), &mut self.cands)?;
            let mi = int("--hard-negatives", m)?;
            launch!(g, "lightgcn_pick_negatives_u32", shapes::elementwise(n);
                &self.us, &self.cands, &ni, &mi, &di, &nui, &self.fin, &mut self.js)?;
        }
        g.clear(&mut self.grad)?;
        g.clear(&mut self.loss)?;
        g.clear(&mut self.penalty)?;
        let scale = 1.0 / n.max(1) as f32;
        launch!(g, "lightgcn_bpr_grad_f32", shapes::elementwise(n);
            &self.us, &self.is, &self.js, &ni, &di, &nui, &scale, &self.fin, &mut self.grad, &mut self.loss)?;
        self.backward()?;
        let g = &self.gpu;
        let coef = self.host.cfg.reg * scale;
        launch!(g, "lightgcn_l2_f32", shapes::elementwise(n);
            &self.us, &self.is, &self.js, &ni, &di, &nui, &coef, &self.e0, &mut self.g0, &mut self.penalty)?;
        self.adam()?;
        let g = &self.gpu;
        let l = g.download(&self.loss, 1)?[0] as f64;
        let p = g.download(&self.penalty, 1)?[0] as f64;
        Ok(l * scale as f64 + p)
    }

    /// One full-batch Adam step of the pointwise loss (the twin of `graph::LightGcn::epoch`
    /// with `Loss::Ials`): forward, the two Gram matrices, the gradient rows of the users (with
    /// their known negatives) and of the items (positives only), backward, L2 on every row.
    fn step_pointwise(&mut self) -> Result<f64> {
        self.forward()?;
        let g = &self.gpu;
        let (d, nu) = (self.d, self.host.n_users());
        let nodes = self.adj.rows;
        let w = self.host.cfg.weights;
        let reg = self.host.cfg.reg;
        let p = self
            .pointwise
            .as_mut()
            .expect("step_pointwise runs with the pointwise loss");
        let ni = nodes - nu;
        let (fu, fi) = (self.fin.slice(..nu * d), self.fin.slice(nu * d..));
        g.gram(&fu, nu, d, w.unobserved, &mut p.partial, &mut p.w0g_users)?;
        g.gram(&fi, ni, d, w.unobserved, &mut p.partial, &mut p.w0g_items)?;
        g.clear(&mut self.grad)?;
        let scale = 2.0 / nu.max(1) as f32;
        let di = int("--dim", d)?;
        {
            let (mut gu, mut gi) = self.grad.split_at_mut(nu * d);
            for (w0g, other, rows, x, grad, loss) in [
                (
                    &p.w0g_items,
                    &fi,
                    &p.by_user,
                    &fu,
                    &mut gu,
                    &mut p.loss_users,
                ),
                (
                    &p.w0g_users,
                    &fu,
                    &p.by_item,
                    &fi,
                    &mut gi,
                    &mut p.loss_items,
                ),
            ] {
                let n = int("rows", rows.rows)?;
                launch!(g, "ials_loss_grad_f32", shapes::ials_rows(rows.rows, d);
                    w0g, other, &rows.indptr, &rows.idx, &rows.val, &n, &di,
                    &w.alpha, &w.negative, &w.unobserved, &scale, x, grad, loss)?;
            }
        }
        let rows = g.download(&p.loss_users, nu)?;
        let loss = rows.iter().map(|&v| v as f64).sum::<f64>() / nu.max(1) as f64;
        self.backward()?;
        let g = &self.gpu;
        g.clear(&mut self.penalty)?;
        let len = int("embeddings", nodes * d)?;
        let coef = 2.0 * reg;
        launch!(g, "lightgcn_l2_all_f32", shapes::elementwise(nodes * d);
            &len, &coef, &self.e0, &mut self.g0, &mut self.penalty)?;
        let penalty = g.download(&self.penalty, 1)?[0] as f64;
        self.adam()?;
        Ok(loss + penalty)
    }

    /// One Adam step over the base embeddings with the gradient in `g0`.
    fn adam(&mut self) -> Result<()> {
        let g = &self.gpu;
        self.t += 1;
        let (b1, b2) = graph::ADAM_BETAS;
        let (c1, c2) = (1.0 - b1.powi(self.t), 1.0 - b2.powi(self.t));
        let len = self.e0.len();
        let n = int("embeddings", len)?;
        let lr = self.host.cfg.lr;
        launch!(g, "adam_f32", shapes::elementwise(len);
            &n, &lr, &b1, &b2, &c1, &c2, &self.g0, &mut self.m, &mut self.v, &mut self.e0)
    }
}

impl Trainer for GpuLightGcn {
    fn epoch(&mut self) -> Result<f64> {
        if self.pointwise.is_some() {
            return self.step_pointwise();
        }
        let batches = self.host.batches_per_epoch();
        let mut total = 0f64;
        for _ in 0..batches {
            total += self.step()?;
        }
        Ok(total / batches.max(1) as f64)
    }

    fn export(&self) -> Result<Trained> {
        {
            let g = &self.gpu;
            let nodes = self.adj.rows;
            let d = self.d;
            // Scratch buffers of our own: export takes &self.
            let mut fin = g.zeros::<f32>(nodes * d)?;
            let mut cur = g.zeros::<f32>(nodes * d)?;
            let mut next = g.zeros::<f32>(nodes * d)?;
            propagate(
                g,
                &self.adj,
                d,
                self.layers,
                &self.e0,
                &mut fin,
                &mut cur,
                &mut next,
            )?;
            let f = g.download(&fin, nodes * d)?;
            let nu = self.host.n_users();
            Ok(Trained::plain(
                ModelKind::Lightgcn,
                f[..nu * d].to_vec(),
                f[nu * d..].to_vec(),
                d,
                false,
            ))
        }
    }
}
