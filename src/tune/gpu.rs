//! Running generated kernels on a GPU to time them (cudarc, driver API,
//! loaded at run time: a machine without CUDA builds and runs prism, and
//! [`device_count`] says 0).
//!
//! A [`Device`] loads one workload's fatbin (every variant), holds inputs
//! uploaded once, and runs a variant at a shape point: once to read its
//! outputs (poisoned first with NaN bytes, so an unwritten element fails
//! the comparison), then timed with CUDA events, the L2 cache flushed
//! before each timed launch, after warm-up; the median counts.

use std::sync::Arc;

use cudarc::driver::sys::{CUdevice_attribute, CUevent_flags, CUfunction_attribute};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, DevicePtr, DriverError, LaunchConfig,
    PushKernelArg,
};

use super::tensor_map::{self, TensorMapArg};
use crate::codegen::{Variant, WorkloadKernels};
use crate::ir::{DType, DimBindings};
use crate::reference::Tensor;
use crate::ugraph::TensorRole;

/// Why a GPU step failed.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// The CUDA driver library cannot be loaded.
    #[error("no CUDA driver library on this machine")]
    NoDriver,
    /// A CUDA driver call failed.
    #[error("CUDA driver: {0}")]
    Driver(#[from] DriverError),
    /// A compiled fatbin cannot be read.
    #[error("cannot read the fatbin {path}: {source}")]
    Fatbin {
        /// The fatbin.
        path: std::path::PathBuf,
        /// Why reading failed.
        #[source]
        source: std::io::Error,
    },
    /// A launch plan cannot be run (a missing kernel, a bad size).
    #[error("{0}")]
    Plan(String),
}

/// GPUs visible to the driver; 0 without a driver library or on any error.
pub fn device_count() -> usize {
    // SAFETY: only tries to open the driver library; it calls none of its
    // functions.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return 0;
    }
    CudaContext::device_count().map_or(0, |n| usize::try_from(n).unwrap_or(0))
}

/// One GPU, with a stream and an L2-sized buffer to flush the cache.
pub struct Device {
    pub ordinal: usize,
    pub name: String,
    /// Compute capability times ten.
    pub capability: u32,
    /// Streaming multiprocessors, read off the device.
    pub sms: Option<u32>,
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    flush: CudaSlice<u8>,
}

/// A loaded workload: per variant its functions, in launch order.
pub struct Module {
    kernels: WorkloadKernels,
    functions: Vec<Vec<CudaFunction>>,
}

/// A run's outputs (by output index) and times (µs, one per timed launch).
pub struct Run {
    pub outputs: Vec<Tensor>,
    pub micros: Vec<f64>,
}

impl Run {
    pub fn median(&self) -> f64 {
        median(&self.micros)
    }
}

/// The median of `v` (the mean of the middle two for an even count).
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn to_bytes(t: &Tensor, dtype: DType) -> Vec<u8> {
    let mut out = Vec::with_capacity(t.data.len() * dtype.size());
    for &v in &t.data {
        match dtype {
            DType::F16 => out.extend(half::f16::from_f64(v).to_le_bytes()),
            DType::BF16 => out.extend(half::bf16::from_f64(v).to_le_bytes()),
            DType::F32 => out.extend((v as f32).to_le_bytes()),
        }
    }
    out
}

fn from_bytes(b: &[u8], dtype: DType, shape: Vec<usize>) -> Tensor {
    let data = match dtype {
        DType::F16 => b
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f64())
            .collect(),
        DType::BF16 => b
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f64())
            .collect(),
        DType::F32 => b
            .chunks_exact(4)
            .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
    };
    Tensor { shape, data }
}

impl Device {
    /// Open GPU `ordinal`, with a flush buffer of twice its L2 cache.
    pub fn open(ordinal: usize) -> Result<Device, GpuError> {
        Device::open_with_flush(ordinal, None)
    }

    /// Open GPU `ordinal` with a flush buffer of `flush_bytes` (zeroed
    /// before every timed launch), or twice the L2 cache (at least 2 MiB)
    /// when `None`.
    pub fn open_with_flush(ordinal: usize, flush_bytes: Option<usize>) -> Result<Device, GpuError> {
        if device_count() == 0 {
            return Err(GpuError::NoDriver);
        }
        let ctx = CudaContext::new(ordinal)?;
        // Raw pointers and explicit synchronization below; no per-buffer
        // event bookkeeping.
        // SAFETY: every launch and copy here is on the one stream, and the
        // stream is synchronized before any buffer is read or freed.
        unsafe { ctx.disable_event_tracking() };
        let (major, minor) = ctx.compute_capability()?;
        let name = ctx.name()?;
        let l2 = ctx.attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE)?;
        let sms = ctx
            .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
            .ok()
            .and_then(|n| u32::try_from(n).ok());
        let stream = ctx.default_stream();
        let flush_bytes =
            flush_bytes.unwrap_or_else(|| usize::try_from(l2).unwrap_or(0).max(1 << 20) * 2);
        let flush = stream.alloc_zeros::<u8>(flush_bytes)?;
        Ok(Device {
            ordinal,
            name,
            capability: u32::try_from(major * 10 + minor).unwrap_or(0),
            sms,
            ctx,
            stream,
            flush,
        })
    }

    /// Load a fatbin holding `kernels`' variants.
    pub fn load(
        &self,
        fatbin: &std::path::Path,
        kernels: &WorkloadKernels,
    ) -> Result<Module, GpuError> {
        let module = self.module(fatbin)?;
        let mut functions = Vec::new();
        for v in &kernels.variants {
            let mut fs = Vec::new();
            for l in &v.launches {
                let f = module.load_function(&l.symbol)?;
                // Clusters of more than 8 blocks (a cluster combine of up
                // to 16 splits) need the non-portable size allowed.
                let blocks: i32 = [
                    CUfunction_attribute::CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH,
                    CUfunction_attribute::CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_HEIGHT,
                    CUfunction_attribute::CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_DEPTH,
                ]
                .into_iter()
                .map(|a| f.get_attribute(a).unwrap_or(0).max(1))
                .product();
                if blocks > 8 {
                    self.ctx.bind_to_thread()?;
                    f.set_attribute(
                        CUfunction_attribute::CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED,
                        1,
                    )?;
                }
                if l.shared_bytes > 48 * 1024 {
                    self.ctx.bind_to_thread()?;
                    f.set_attribute(
                        CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                        i32::try_from(l.shared_bytes).unwrap_or(i32::MAX),
                    )?;
                }
                fs.push(f);
            }
            functions.push(fs);
        }
        Ok(Module {
            kernels: kernels.clone(),
            functions,
        })
    }

    /// The module of the fatbin at `path`.
    fn module(&self, path: &std::path::Path) -> Result<Arc<cudarc::driver::CudaModule>, GpuError> {
        let image = std::fs::read(path).map_err(|source| GpuError::Fatbin {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(self
            .ctx
            .load_module(cudarc::nvrtc::Ptx::from_binary(image))?)
    }

    /// Set every byte of `buf` to `byte`, in stream order.
    fn fill(&self, buf: &CudaSlice<u8>, byte: u8) -> Result<(), GpuError> {
        let p = buf.device_ptr(&self.stream).0;
        // SAFETY: `p` is a live allocation of `buf.len()` bytes, on this
        // stream (every buffer here is allocated on it).
        unsafe {
            cudarc::driver::result::memset_d8_async(p, byte, buf.len(), self.stream.cu_stream())
        }?;
        Ok(())
    }

    /// Upload `inputs` (host tensors) as their dtypes.
    pub fn upload(&self, inputs: &[(&Tensor, DType)]) -> Result<Vec<CudaSlice<u8>>, GpuError> {
        inputs
            .iter()
            .map(|(t, d)| Ok(self.stream.clone_htod(&to_bytes(t, *d))?))
            .collect()
    }

    /// Run variant `v` of `m` at `dims` on `inputs` (uploaded at a point at
    /// least as large): once for its outputs, then `warmup` untimed and
    /// `reps` timed launches.
    pub fn run(
        &self,
        m: &Module,
        v: usize,
        dims: &DimBindings,
        inputs: &[CudaSlice<u8>],
        warmup: usize,
        reps: usize,
    ) -> Result<Run, GpuError> {
        let variant: &Variant = m
            .kernels
            .variants
            .get(v)
            .ok_or_else(|| GpuError::Plan(format!("no variant {v}")))?;
        let functions = &m.functions[v];
        let plan_err = |e: String| GpuError::Plan(format!("`{}`: {e}", variant.label));
        // Shapes at `dims`, and a buffer per tensor: inputs are the uploaded
        // ones, the rest allocated here.
        let mut shapes = Vec::new();
        for t in &variant.tensors {
            let mut s = Vec::new();
            for e in &t.shape {
                let x = e.eval(dims).map_err(|e| plan_err(e.to_string()))?;
                s.push(usize::try_from(x.max(1)).unwrap_or(1));
            }
            shapes.push(s);
        }
        let mut owned: Vec<Option<CudaSlice<u8>>> = Vec::new();
        let mut ptrs: Vec<u64> = Vec::new();
        for (t, s) in variant.tensors.iter().zip(&shapes) {
            let bytes = s.iter().product::<usize>() * t.dtype.size();
            match t.role {
                TensorRole::Input(i) => {
                    let buf = inputs
                        .get(i)
                        .ok_or_else(|| plan_err(format!("no input {i}")))?;
                    if buf.len() < bytes {
                        return Err(plan_err(format!("input {i} uploaded too small")));
                    }
                    ptrs.push(buf.device_ptr(&self.stream).0);
                    owned.push(None);
                }
                _ => {
                    // SAFETY: poisoned below before any kernel reads it.
                    let buf = unsafe { self.stream.alloc::<u8>(bytes) }?;
                    let p = buf.device_ptr(&self.stream).0;
                    // 0xFF bytes are NaN in f16, bf16 and f32.
                    self.fill(&buf, 0xFF)?;
                    ptrs.push(p);
                    owned.push(Some(buf));
                }
            }
        }
        let mut scratch: Vec<(CudaSlice<u32>, CudaSlice<f32>)> = Vec::new();
        let dim_values: Vec<i64> = m
            .kernels
            .dims
            .iter()
            .map(|d| dims.get(d).copied().unwrap_or(1))
            .collect();
        let mut grids = Vec::new();
        // Split-K: zeroed counters (the kernels leave them zero, so one
        // set serves every launch below, as a runtime keeps one per
        // stream) and an uninitialized workspace, per launch.
        let mut split_k: Vec<Option<[u64; 2]>> = Vec::new();
        for l in &variant.launches {
            let grid = l.grid_at(dims).map_err(|e| plan_err(e.to_string()))?;
            if l.split_k.is_some() {
                let counters = self.stream.alloc_zeros::<u32>(l.counters(grid).max(1))?;
                let elems = l.workspace_at(dims).map_err(|e| plan_err(e.to_string()))?;
                // SAFETY: every split writes its part before the tile's last
                // block reads it (the kernel's contract); never read here.
                let workspace = unsafe { self.stream.alloc::<f32>(elems.max(1)) }?;
                split_k.push(Some([
                    counters.device_ptr(&self.stream).0,
                    workspace.device_ptr(&self.stream).0,
                ]));
                scratch.push((counters, workspace));
            } else {
                split_k.push(None);
            }
            grids.push(grid);
        }
        // Tensor maps of TMA main loops.
        let mut maps: Vec<Vec<TensorMapArg>> = Vec::new();
        for l in &variant.launches {
            let mut encoded = Vec::new();
            for tm in &l.tensor_maps {
                let eval = |e: &crate::ir::DimExpr| {
                    e.eval(dims)
                        .map_err(|e| plan_err(e.to_string()))
                        .map(|x| x.max(0) as u64)
                };
                let t = &variant.tensors[tm.tensor.0];
                let (rows, cols) = (eval(&tm.rows)?, eval(&tm.cols)?);
                let map = tensor_map::encode(
                    ptrs[tm.tensor.0],
                    t.dtype,
                    rows,
                    cols,
                    tm.box_rows,
                    tm.box_cols,
                )
                .ok_or_else(|| {
                    plan_err(format!(
                        "`{}`: no TMA tensor map of tensor {} ({rows} × {cols})",
                        l.symbol, tm.tensor.0
                    ))
                })?;
                encoded.push(map);
            }
            maps.push(encoded);
        }
        let launch_all = || -> Result<(), GpuError> {
            for ((((l, f), grid), extra), tmaps) in variant
                .launches
                .iter()
                .zip(functions)
                .zip(&grids)
                .zip(&split_k)
                .zip(&maps)
            {
                let mut args: Vec<u64> = l.tensors.iter().map(|t| ptrs[t.0]).collect();
                args.extend(extra.iter().flatten());
                let mut b = self.stream.launch_builder(f);
                for p in &args {
                    b.arg(p);
                }
                for m in tmaps {
                    b.arg(m);
                }
                for d in &dim_values {
                    b.arg(d);
                }
                let cfg = LaunchConfig {
                    grid_dim: (grid[0], grid[1], grid[2]),
                    block_dim: (l.threads, 1, 1),
                    shared_mem_bytes: l.shared_bytes,
                };
                // SAFETY: the kernel was generated for exactly these
                // parameters (one device pointer per tensor of the launch,
                // the split-K counters and workspace when it splits K, its
                // tensor maps of those pointers, then every dim as i64),
                // each pointer a live buffer of at least
                // its tensor's (counters', workspace's) size at `dims`, over
                // the grid computed from the same dims.
                unsafe { b.launch(cfg) }?;
            }
            Ok(())
        };
        launch_all()?;
        self.stream.synchronize()?;
        let mut outputs = Vec::new();
        for ((t, s), buf) in variant.tensors.iter().zip(&shapes).zip(&owned) {
            if let (TensorRole::Output(i), Some(buf)) = (t.role, buf) {
                let host = self.stream.clone_dtoh(buf)?;
                outputs.push((i, from_bytes(&host, t.dtype, s.clone())));
            }
        }
        outputs.sort_by_key(|(i, _)| *i);
        let micros = self.time(warmup, reps, &launch_all)?;
        drop(owned);
        drop(scratch);
        Ok(Run {
            outputs: outputs.into_iter().map(|(_, t)| t).collect(),
            micros,
        })
    }
}

/// Hand-written kernels and raw timing, for probes (`prism bench`).
impl Device {
    /// Bytes of the buffer zeroed before every timed launch.
    pub fn flush_bytes(&self) -> usize {
        self.flush.len()
    }

    /// `launch` `warmup` times untimed, then `reps` times, each after
    /// zeroing the flush buffer, between two CUDA events recorded on the
    /// stream; the times in µs, in launch order.
    pub fn time<F: FnMut() -> Result<(), GpuError>>(
        &self,
        warmup: usize,
        reps: usize,
        mut launch: F,
    ) -> Result<Vec<f64>, GpuError> {
        for _ in 0..warmup {
            launch()?;
        }
        let timing = Some(CUevent_flags::CU_EVENT_DEFAULT);
        let mut events = Vec::with_capacity(reps);
        for _ in 0..reps {
            self.fill(&self.flush, 0)?;
            let (a, b) = (self.ctx.new_event(timing)?, self.ctx.new_event(timing)?);
            a.record(&self.stream)?;
            launch()?;
            b.record(&self.stream)?;
            events.push((a, b));
        }
        self.stream.synchronize()?;
        let mut micros = Vec::with_capacity(reps);
        for (a, b) in &events {
            micros.push(f64::from(a.elapsed_ms(b)?) * 1e3);
        }
        Ok(micros)
    }

    /// The functions `names` of the fatbin at `path`, in that order.
    pub fn load_functions(
        &self,
        path: &std::path::Path,
        names: &[&str],
    ) -> Result<Vec<CudaFunction>, GpuError> {
        let module = self.module(path)?;
        Ok(names
            .iter()
            .map(|n| module.load_function(n))
            .collect::<Result<_, _>>()?)
    }

    /// A zeroed buffer of `bytes` on this device's stream.
    pub fn alloc_zeroed(&self, bytes: usize) -> Result<CudaSlice<u8>, GpuError> {
        Ok(self.stream.alloc_zeros::<u8>(bytes)?)
    }

    /// The device address of `buf`, for [`Device::launch_raw`].
    pub fn address(&self, buf: &CudaSlice<u8>) -> u64 {
        buf.device_ptr(&self.stream).0
    }

    /// Copy `min(src.len(), dst.len())` bytes from `src` to `dst`, on the
    /// device, in stream order.
    pub fn copy(&self, src: &CudaSlice<u8>, dst: &CudaSlice<u8>) -> Result<(), GpuError> {
        let n = src.len().min(dst.len());
        let (s, d) = (self.address(src), self.address(dst));
        // SAFETY: both are live allocations of at least `n` bytes on this
        // stream, and the copy is ordered on it.
        unsafe { cudarc::driver::result::memcpy_dtod_async(d, s, n, self.stream.cu_stream()) }?;
        Ok(())
    }

    /// `buf`'s bytes on the host (synchronizes the stream).
    pub fn read(&self, buf: &CudaSlice<u8>) -> Result<Vec<u8>, GpuError> {
        Ok(self.stream.clone_dtoh(buf)?)
    }

    /// Launch `f` on `blocks` blocks of `threads` threads with no dynamic
    /// shared memory; each of `args` is passed as one 64-bit parameter.
    ///
    /// # Safety
    ///
    /// `f`'s parameters must be exactly `args.len()` 64-bit values (device
    /// pointers or integers), and every pointer among them a live buffer
    /// large enough for what the kernel does with it at this grid.
    pub unsafe fn launch_raw(
        &self,
        f: &CudaFunction,
        blocks: u32,
        threads: u32,
        args: &[u64],
    ) -> Result<(), GpuError> {
        let mut b = self.stream.launch_builder(f);
        for a in args {
            b.arg(a);
        }
        let cfg = LaunchConfig {
            grid_dim: (blocks, 1, 1),
            block_dim: (threads, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: the caller's contract.
        unsafe { b.launch(cfg) }?;
        Ok(())
    }
}
