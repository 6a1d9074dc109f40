//! The probes that measure a device's floors (`cuda/bench/probes.cu`,
//! compiled at run time for its arch): a 1 GiB device-to-device copy, back-to-back
//! `mma.sync` on every SM, and an empty kernel; each timed like the
//! generated kernels ([`crate::tune::gpu::Device::time`]). Per benchmark
//! row, [`ReadProbe`] times a bare read of the row's bytes under the same
//! harness: its read floor.

use std::path::{Path, PathBuf};

use super::BenchError;
use super::floors::Floors;
use crate::ir::Arch;
use crate::tune::gpu::{Device, median};

/// The probe kernels' source.
pub const PROBES_CU: &str = include_str!("../../cuda/bench/probes.cu");

/// The empty kernel (no parameters).
pub const EMPTY: &str = "prism_probe_empty";
/// The mma kernel: `(float* out, unsigned long long iters)`.
pub const MMA: &str = "prism_probe_mma";
/// The read kernel: `(const unsigned* src, unsigned long long chunks, unsigned* sink)`.
pub const READ: &str = "prism_probe_read";
/// Blocks per SM and threads per block of the read probe.
pub const READ_BLOCKS_PER_SM: u32 = 4;
pub const READ_THREADS: u32 = 512;

/// Bytes of the copy probe's source (and destination).
pub const COPY_BYTES: usize = 1 << 30;
/// Warps per block of the mma probe (its `__launch_bounds__` is 256).
pub const MMA_WARPS_PER_BLOCK: u32 = 8;
/// Blocks per SM of the mma probe.
pub const MMA_BLOCKS_PER_SM: u32 = 4;
/// Independent accumulator chains per warp (`PRISM_PROBE_CHAINS`).
pub const MMA_CHAINS: u64 = 4;
/// Rounds of [`MMA_CHAINS`] mmas per warp: about 2 ms on an H100.
pub const MMA_ITERS: u64 = 16384;
/// Flops of one m16n8k16 mma (one warp).
pub const MMA_FLOPS: u64 = 2 * 16 * 8 * 16;

/// What `mma_flops_per_s` measures, for the report.
pub const MMA_NOTE: &str = "peak of mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 \
     (4 independent accumulator chains per warp, 8 warps per block, 4 blocks per SM); \
     sm_90's wgmma peak is higher: compare with the larger of this and a measured matmul peak";

/// Blocks of the mma probe on a device with `sms` SMs.
pub fn mma_blocks(sms: u32) -> u32 {
    sms.max(1) * MMA_BLOCKS_PER_SM
}

/// Flops of one mma probe launch of `blocks` blocks.
pub fn mma_probe_flops(blocks: u32) -> u64 {
    u64::from(blocks) * u64::from(MMA_WARPS_PER_BLOCK) * MMA_ITERS * MMA_CHAINS * MMA_FLOPS
}

/// Write the probes' `.cu` into `dir` and compile it for `arch`; the
/// fatbin's path.
pub fn compile(nvcc: &Path, dir: &Path, arch: &Arch) -> Result<PathBuf, BenchError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BenchError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let cu = dir.join("probes.cu");
    let fatbin = dir.join("probes.fatbin");
    std::fs::write(&cu, PROBES_CU).map_err(io(&cu))?;
    crate::nvcc::compile_fatbin(nvcc, &cu, &fatbin, dir, std::slice::from_ref(arch))?;
    Ok(fatbin)
}

/// `dev`'s SM count (the probes' grids are sized by it).
fn sm_count(dev: &Device) -> Result<u32, BenchError> {
    dev.sms
        .ok_or_else(|| BenchError::Unsupported(format!("cannot read the SM count of {}", dev.name)))
}

/// Median seconds of `micros`.
fn median_s(micros: &[f64]) -> f64 {
    median(micros) * 1e-6
}

/// Measure the floors on `dev` with the probes in `fatbin`.
pub fn measure(
    dev: &Device,
    fatbin: &Path,
    warmup: usize,
    reps: usize,
) -> Result<Floors, BenchError> {
    if dev.capability < 80 {
        return Err(BenchError::Unsupported(format!(
            "{} is sm_{}: the mma probe needs mma.sync m16n8k16 (sm_80 or newer)",
            dev.name, dev.capability
        )));
    }
    let f = dev.load_functions(fatbin, &[EMPTY, MMA])?;
    let (empty, mma) = (&f[0], &f[1]);

    // The launch floor.
    // SAFETY: the empty kernel takes no parameters.
    let launch = dev.time(warmup, reps, || unsafe {
        dev.launch_raw(empty, 1, 32, &[])
    })?;

    // Copy bandwidth: bytes read plus bytes written.
    let (src, dst) = (dev.alloc_zeroed(COPY_BYTES)?, dev.alloc_zeroed(COPY_BYTES)?);
    let copy = dev.time(warmup, reps, || dev.copy(&src, &dst))?;
    drop((src, dst));

    // mma.sync peak.
    let sms = sm_count(dev)?;
    let blocks = mma_blocks(sms);
    let threads = MMA_WARPS_PER_BLOCK * 32;
    let out = dev.alloc_zeroed(blocks as usize * threads as usize * 4)?;
    let args = [dev.address(&out), MMA_ITERS];
    // SAFETY: `prism_probe_mma(float*, unsigned long long)`; `out` holds one
    // float per thread of the grid.
    let mma_us = dev.time(warmup, reps, || unsafe {
        dev.launch_raw(mma, blocks, threads, &args)
    })?;
    let sums = dev.read(&out)?;
    if sums
        .chunks_exact(4)
        .any(|c| !f32::from_le_bytes([c[0], c[1], c[2], c[3]]).is_finite())
    {
        return Err(BenchError::Unsupported(
            "the mma probe wrote non-finite sums (no mma.sync m16n8k16 in its SASS?)".into(),
        ));
    }

    Ok(Floors {
        copy_bytes_per_s: 2.0 * COPY_BYTES as f64 / median_s(&copy),
        mma_flops_per_s: mma_probe_flops(blocks) as f64 / median_s(&mma_us),
        launch_floor_us: median(&launch),
    })
}

/// The read probe, loaded, with a zeroed source buffer of `capacity` bytes.
pub struct ReadProbe {
    function: cudarc::driver::CudaFunction,
    src: cudarc::driver::CudaSlice<u8>,
    sink: cudarc::driver::CudaSlice<u8>,
    blocks: u32,
}

impl ReadProbe {
    /// Load the probe from `fatbin` and allocate `capacity` bytes to read
    /// (the largest row's bytes, rounded up to 16).
    pub fn load(dev: &Device, fatbin: &Path, capacity: u64) -> Result<ReadProbe, BenchError> {
        let capacity = usize::try_from(capacity.div_ceil(16).max(1) * 16).map_err(|_| {
            BenchError::Unsupported(format!(
                "a read floor of {capacity} bytes does not fit this host's memory"
            ))
        })?;
        let mut f = dev.load_functions(fatbin, &[READ])?;
        let sms = sm_count(dev)?;
        Ok(ReadProbe {
            function: f.remove(0),
            src: dev.alloc_zeroed(capacity)?,
            sink: dev.alloc_zeroed(4)?,
            blocks: sms.max(1) * READ_BLOCKS_PER_SM,
        })
    }

    /// Median µs of reading `bytes` (at most the capacity), timed as the
    /// generated kernels are.
    pub fn floor_us(
        &self,
        dev: &Device,
        bytes: u64,
        warmup: usize,
        reps: usize,
    ) -> Result<f64, BenchError> {
        let chunks = bytes.div_ceil(16);
        if chunks * 16 > self.src.len() as u64 {
            return Err(BenchError::Unsupported(format!(
                "the read probe holds {} bytes, not {bytes}",
                self.src.len()
            )));
        }
        let args = [dev.address(&self.src), chunks, dev.address(&self.sink)];
        // SAFETY: `prism_probe_read(const unsigned*, unsigned long long,
        // unsigned*)`; `src` holds at least `chunks` 16-byte chunks and
        // `sink` one u32.
        let micros = dev.time(warmup, reps, || unsafe {
            dev.launch_raw(&self.function, self.blocks, READ_THREADS, &args)
        })?;
        Ok(median(&micros))
    }
}
