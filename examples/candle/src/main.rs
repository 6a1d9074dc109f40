//! prism kernels on candle tensors.
//!
//! Runs two workloads of the bundled prism.toml, built by `build.rs` into the
//! module `kernels`, on the CUDA storage of candle tensors, and checks and
//! times them against the same computation written with candle:
//!
//! - `rms_norm`: `matmul(rms_norm(x), w)` with `x: f16[n, d]`, `w: f16[d, d]`
//!   (no gain, eps 1e-6);
//! - `swiglu`: `silu(x @ w_gate) * (x @ w_up)` with `x: f16[n, d]` and both
//!   weights `f16[d, d]`.
//!
//! At every declared point (n, d) of the two, on GPU 0:
//!
//! 1. seeded random inputs as candle f16 tensors (`x` of standard deviation
//!    1, weights of 1/sqrt(d), as prism.toml's `init` says);
//! 2. prism: the tensors' cudarc slices (no copy), one launch on candle's own
//!    stream into a buffer that then becomes a candle tensor;
//! 3. the reference: the same program in candle f32 ops on the GPU (no TF32:
//!    candle's default); prism's output and each candle baseline's must be
//!    within the workload's tolerance (relative L2 error, prism.toml's
//!    `tolerance`) of it;
//! 4. timing, all on candle's stream: 10 warm-up runs, then `--reps` timed
//!    runs (default 100), each after zeroing a 256 MiB buffer to flush the L2
//!    cache, between two CUDA events; the median in microseconds. The
//!    baselines are what a candle user writes, in f16: candle ops
//!    (`rms_norm` as `x / sqrt(mean(x², -1) + eps)` then `matmul`; `silu`,
//!    `matmul`, `*`) and, for `rms_norm`, `candle_nn::ops::rms_norm` (the
//!    fused kernel behind `candle_nn::RmsNorm`) then `matmul`. The speedup is
//!    the fastest candle baseline's median over prism's.
//!
//! ```sh
//! # where nvcc 13 is (no GPU needed); see cuda-link-stubs.sh without CUDA libraries
//! CUDA_COMPUTE_CAP=90 PRISM_OFFLINE=1 cargo build --release
//! # on the GPU machine (run.sh puts the CUDA libraries on the loader's path)
//! ./run.sh target/release/candle_example OUT.json [--reps N] [--seed N]
//! ```
//!
//! Prints a table and writes a JSON summary to OUT.json. Exit status 0 when
//! every point matched, 1 on a mismatch or when the GPU cannot be used, 2 for
//! a usage error.

use std::fmt::Display;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use candle_core::op::BackpropOp;
use candle_core::{CudaDevice, CudaStorage, D, DType, Device, Layout, Storage, Tensor};
use cudarc::driver::sys::CUevent_flags;
use cudarc::driver::{CudaEvent, CudaSlice, CudaStream, CudaView};
use half::f16;
use serde_json::{Value, json};

include!(concat!(env!("OUT_DIR"), "/kernels.rs"));

/// prism.toml's `rms_norm(x)` epsilon (its default; the program gives none).
const EPS: f64 = 1e-6;
/// Untimed runs before the timed ones.
const WARMUP: usize = 10;
/// Timed runs by default.
const DEFAULT_REPS: usize = 100;
/// Bytes zeroed before every timed run (larger than any L2 cache).
const FLUSH_BYTES: usize = 256 << 20;

/// A workload the example runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Workload {
    RmsNorm,
    Swiglu,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::RmsNorm => "rms_norm",
            Workload::Swiglu => "swiglu",
        }
    }
}

/// One declared point of a workload (see build.rs).
#[derive(Clone, Copy, Debug)]
struct Point {
    workload: Workload,
    n: usize,
    d: usize,
    /// Largest relative L2 error allowed.
    tolerance: f64,
}

include!(concat!(env!("OUT_DIR"), "/points.rs"));

/// `Result` with a message saying what failed.
type Res<T> = Result<T, String>;

/// Say what failed, whatever the error type.
trait At<T> {
    fn at(self, what: &str) -> Res<T>;
}

impl<T, E: Display> At<T> for Result<T, E> {
    fn at(self, what: &str) -> Res<T> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}

// ---------------------------------------------------------------- inputs

/// SplitMix64: a small seeded generator, the same numbers on every machine.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// An f16 `[rows, cols]` tensor on `device`, normal with standard deviation
/// `std`.
fn randn(device: &Device, rows: usize, cols: usize, std: f64, seed: u64) -> Res<Tensor> {
    let mut rng = Rng(seed);
    let data: Vec<f16> = (0..rows * cols)
        .map(|_| f16::from_f64(rng.normal() * std))
        .collect();
    Tensor::from_vec(data, (rows, cols), device).at("upload an input")
}

/// A stable seed per point and input.
fn seed(base: u64, p: &Point, input: u64) -> u64 {
    let w = match p.workload {
        Workload::RmsNorm => 1,
        Workload::Swiglu => 2,
    };
    base ^ (w << 56) ^ ((p.n as u64) << 40) ^ ((p.d as u64) << 8) ^ input
}

// ---------------------------------------------------------------- candle ↔ cudarc

/// The f16 elements of a contiguous tensor on a CUDA device, as a cudarc
/// view of its storage (no copy). `storage` and `layout` come from
/// `Tensor::storage_and_layout`, whose read guard must outlive the view.
fn cuda_view<'a>(storage: &'a Storage, layout: &Layout) -> Res<CudaView<'a, f16>> {
    let Storage::Cuda(cuda) = storage else {
        return Err("the tensor is not on a CUDA device".into());
    };
    let slice = cuda.as_cuda_slice::<f16>().at("the tensor's storage")?;
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or("the tensor is not contiguous (call `.contiguous()` first)")?;
    slice
        .try_slice(start..end)
        .ok_or_else(|| format!("the layout {start}..{end} is outside the storage"))
}

/// A candle tensor of shape `[n, d]` owning `slice` (no copy).
fn into_tensor(slice: CudaSlice<f16>, device: &CudaDevice, n: usize, d: usize) -> Tensor {
    let storage = CudaStorage::wrap_cuda_slice(slice, device.clone());
    Tensor::from_storage(Storage::Cuda(storage), (n, d), BackpropOp::none(), false)
}

/// The kernels of the two workloads, loaded in candle's CUDA context.
struct Prism {
    rms_norm: kernels::RmsNorm,
    swiglu: kernels::Swiglu,
}

impl Prism {
    /// One launch of `p`'s workload on `stream`: `inputs` in prism.toml
    /// order, the output `[n, d]` into `out`.
    fn launch(
        &self,
        stream: &Arc<CudaStream>,
        p: &Point,
        inputs: &[CudaView<'_, f16>],
        out: &mut CudaSlice<f16>,
    ) -> Res<()> {
        let (n, d) = (p.n, p.d);
        match (p.workload, inputs) {
            (Workload::RmsNorm, [x, w]) => {
                self.rms_norm
                    .launch(stream, x, w, out, kernels::RmsNormDims { n, d })
            }
            (Workload::Swiglu, [x, w_gate, w_up]) => {
                self.swiglu
                    .launch(stream, x, w_gate, w_up, out, kernels::SwigluDims { n, d })
            }
            _ => return Err(format!("{}: wrong number of inputs", p.workload.name())),
        }
        .at("prism launch")
    }

    /// The label of the tuned variant a launch at `p` runs on this device.
    fn variant(&self, p: &Point) -> &'static str {
        let (n, d) = (p.n, p.d);
        match p.workload {
            Workload::RmsNorm => self.rms_norm.variant_for(kernels::RmsNormDims { n, d }),
            Workload::Swiglu => self.swiglu.variant_for(kernels::SwigluDims { n, d }),
        }
    }
}

// ---------------------------------------------------------------- candle programs

/// `x / sqrt(mean(x², -1) + eps)` in candle ops, in `x`'s dtype.
fn rms_norm_ops(x: &Tensor) -> candle_core::Result<Tensor> {
    let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
    x.broadcast_div(&(ms + EPS)?.sqrt()?)
}

/// `silu(x @ w_gate) * (x @ w_up)` in candle ops, in the inputs' dtype.
fn swiglu_ops(x: &Tensor, w_gate: &Tensor, w_up: &Tensor) -> candle_core::Result<Tensor> {
    x.matmul(w_gate)?.silu()? * x.matmul(w_up)?
}

/// A way to compute a workload with candle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Candle {
    /// The program in candle ops, f16.
    Ops,
    /// `candle_nn::ops::rms_norm` (fused, gain of ones), then `matmul`, f16.
    Nn,
    /// The program in candle ops, f32: the reference.
    Reference,
}

impl Candle {
    fn label(self) -> &'static str {
        match self {
            Candle::Ops => "candle_ops",
            Candle::Nn => "candle_nn",
            Candle::Reference => "candle_f32",
        }
    }

    /// The baselines of `w`, timed.
    fn baselines(w: Workload) -> &'static [Candle] {
        match w {
            Workload::RmsNorm => &[Candle::Ops, Candle::Nn],
            Workload::Swiglu => &[Candle::Ops],
        }
    }

    /// Run `w` on `inputs` (f16, prism.toml order); `ones` is the `[d]` gain
    /// that candle_nn's rms_norm takes.
    fn run(self, w: Workload, inputs: &[Tensor], ones: &Tensor) -> candle_core::Result<Tensor> {
        let up = |t: &Tensor| match self {
            Candle::Reference => t.to_dtype(DType::F32),
            _ => Ok(t.clone()),
        };
        match (w, inputs) {
            (Workload::RmsNorm, [x, wt]) => match self {
                Candle::Nn => candle_nn::ops::rms_norm(x, ones, EPS as f32)?.matmul(wt),
                _ => rms_norm_ops(&up(x)?)?.matmul(&up(wt)?),
            },
            (Workload::Swiglu, [x, w_gate, w_up]) => swiglu_ops(&up(x)?, &up(w_gate)?, &up(w_up)?),
            _ => candle_core::bail!("{}: wrong number of inputs", w.name()),
        }
    }
}

/// Whether a relative error is within `tolerance` (NaN is not).
fn within(error: f64, tolerance: f64) -> bool {
    error <= tolerance
}

/// `‖got − want‖₂ / ‖want‖₂`, on the GPU in f32.
fn rel_l2(got: &Tensor, want: &Tensor) -> Res<f64> {
    let f = || -> candle_core::Result<f64> {
        let diff = (got.to_dtype(DType::F32)? - want)?;
        let num = diff.sqr()?.sum_all()?.to_scalar::<f32>()?;
        let den = want.sqr()?.sum_all()?.to_scalar::<f32>()?;
        Ok((f64::from(num) / f64::from(den)).sqrt())
    };
    f().at("relative L2 error")
}

// ---------------------------------------------------------------- timing

/// The stream, the flush buffer and the events every measurement shares.
struct Timer {
    stream: Arc<CudaStream>,
    flush: CudaSlice<u8>,
    /// One (start, end) pair per timed run, timing enabled.
    events: Vec<(CudaEvent, CudaEvent)>,
}

impl Timer {
    fn new(stream: &Arc<CudaStream>, reps: usize) -> Res<Timer> {
        let flush = stream
            .alloc_zeros::<u8>(FLUSH_BYTES)
            .at("allocate the L2 flush buffer")?;
        let ctx = stream.context();
        let event = || {
            ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
                .at("create an event")
        };
        let events = (0..reps)
            .map(|_| Ok((event()?, event()?)))
            .collect::<Res<Vec<_>>>()?;
        Ok(Timer {
            stream: stream.clone(),
            flush,
            events,
        })
    }

    /// `WARMUP` untimed calls of `f`, then one per event pair, each after
    /// flushing the L2 cache when `flush`, between its two events; all
    /// queued on the stream, then one synchronization. The median time in
    /// microseconds, and the samples.
    fn time<T>(&mut self, flush: bool, mut f: impl FnMut() -> Res<T>) -> Res<Stats> {
        for _ in 0..WARMUP {
            f()?;
        }
        self.stream.synchronize().at("warm-up")?;
        for (start, end) in &self.events {
            if flush {
                self.stream
                    .memset_zeros(&mut self.flush)
                    .at("flush the L2 cache")?;
            }
            start.record(&self.stream).at("record an event")?;
            let kept = f()?;
            end.record(&self.stream).at("record an event")?;
            drop(kept);
        }
        self.stream.synchronize().at("timed runs")?;
        self.stream.context().check_err().at("timed runs")?;
        let samples = self
            .events
            .iter()
            .map(|(start, end)| {
                start
                    .elapsed_ms(end)
                    .map(|ms| f64::from(ms) * 1e3)
                    .at("elapsed time")
            })
            .collect::<Res<Vec<f64>>>()?;
        Stats::of(samples)
    }
}

/// Summary of timed samples, in microseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Stats {
    median: f64,
    min: f64,
    p90: f64,
    samples: usize,
}

impl Stats {
    fn of(mut samples: Vec<f64>) -> Res<Stats> {
        if samples.is_empty() {
            return Err("no samples".into());
        }
        if let Some(bad) = samples.iter().find(|v| !v.is_finite()) {
            return Err(format!("a sample is {bad}"));
        }
        samples.sort_by(f64::total_cmp);
        Ok(Stats {
            median: quantile(&samples, 0.5),
            min: samples[0],
            p90: quantile(&samples, 0.9),
            samples: samples.len(),
        })
    }

    fn json(&self) -> Value {
        json!({
            "median_us": self.median,
            "min_us": self.min,
            "p90_us": self.p90,
            "samples": self.samples,
        })
    }
}

/// The `q` quantile of sorted, non-empty `v`, interpolating linearly between
/// the closest ranks (as numpy does).
fn quantile(v: &[f64], q: f64) -> f64 {
    let pos = q * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

// ---------------------------------------------------------------- one point

/// A candle baseline at one point.
struct Baseline {
    candle: Candle,
    rel_l2: f64,
    time: Stats,
}

/// What one point gave.
struct Outcome {
    point: Point,
    variant: &'static str,
    prism_rel_l2: f64,
    prism_time: Stats,
    baselines: Vec<Baseline>,
}

impl Outcome {
    /// The fastest candle baseline's median over prism's.
    fn speedup(&self) -> f64 {
        let best = self
            .baselines
            .iter()
            .map(|b| b.time.median)
            .fold(f64::INFINITY, f64::min);
        best / self.prism_time.median
    }

    /// Every error within the tolerance.
    fn ok(&self) -> bool {
        let tol = self.point.tolerance;
        within(self.prism_rel_l2, tol) && self.baselines.iter().all(|b| within(b.rel_l2, tol))
    }

    fn json(&self) -> Value {
        let p = &self.point;
        json!({
            "workload": p.workload.name(),
            "n": p.n,
            "d": p.d,
            "tolerance": p.tolerance,
            "variant": self.variant,
            "ok": self.ok(),
            "prism": { "rel_l2": self.prism_rel_l2, "time": self.prism_time.json() },
            "candle": self.baselines.iter().map(|b| json!({
                "baseline": b.candle.label(),
                "rel_l2": b.rel_l2,
                "time": b.time.json(),
            })).collect::<Vec<_>>(),
            "speedup": self.speedup(),
        })
    }
}

/// Check and time one point.
fn run_point(
    device: &Device,
    prism: &Prism,
    timer: &mut Timer,
    p: &Point,
    base_seed: u64,
) -> Res<Outcome> {
    let cuda = device.as_cuda_device().at("device")?;
    let stream = cuda.cuda_stream();
    let (n, d) = (p.n, p.d);
    let w_std = 1.0 / (d as f64).sqrt();
    let mut inputs = vec![randn(device, n, d, 1.0, seed(base_seed, p, 0))?];
    let weights = match p.workload {
        Workload::RmsNorm => 1,
        Workload::Swiglu => 2,
    };
    for i in 0..weights {
        inputs.push(randn(device, d, d, w_std, seed(base_seed, p, 1 + i))?);
    }
    let ones = Tensor::ones(d, DType::F16, device).at("the rms_norm gain")?;

    // prism, straight on the tensors' storage, into a buffer candle owns
    // afterwards.
    let mut out = cuda.alloc_zeros::<f16>(n * d).at("allocate the output")?;
    let prism_time = {
        let guards: Vec<_> = inputs.iter().map(Tensor::storage_and_layout).collect();
        let views = guards
            .iter()
            .map(|(storage, layout)| cuda_view(storage, layout))
            .collect::<Res<Vec<_>>>()?;
        prism.launch(&stream, p, &views, &mut out)?;
        timer.time(true, || prism.launch(&stream, p, &views, &mut out))?
    };
    let prism_out = into_tensor(out, cuda, n, d);

    let reference = Candle::Reference
        .run(p.workload, &inputs, &ones)
        .at("candle reference")?;
    let prism_rel_l2 = rel_l2(&prism_out, &reference)?;

    let mut baselines = Vec::new();
    for &candle in Candle::baselines(p.workload) {
        let what = candle.label();
        let got = candle.run(p.workload, &inputs, &ones).at(what)?;
        let rel = rel_l2(&got, &reference)?;
        let time = timer.time(true, || candle.run(p.workload, &inputs, &ones).at(what))?;
        baselines.push(Baseline {
            candle,
            rel_l2: rel,
            time,
        });
    }
    Ok(Outcome {
        point: *p,
        variant: prism.variant(p),
        prism_rel_l2,
        prism_time,
        baselines,
    })
}

// ---------------------------------------------------------------- main

/// Command-line options.
#[derive(Debug, PartialEq)]
struct Options {
    out: PathBuf,
    reps: usize,
    seed: u64,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Res<Options> {
    let mut args = args.into_iter();
    let (mut out, mut reps, mut seed) = (None, DEFAULT_REPS, 0u64);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--reps" => {
                let v = args.next().ok_or("--reps needs a number")?;
                reps = v
                    .parse()
                    .ok()
                    .filter(|&n: &usize| n >= 1)
                    .ok_or_else(|| format!("--reps {v}: not a positive number"))?;
            }
            "--seed" => {
                let v = args.next().ok_or("--seed needs a number")?;
                seed = v.parse().map_err(|_| format!("--seed {v}: not a number"))?;
            }
            "-h" | "--help" => return Err(String::new()),
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            s => {
                if out.replace(PathBuf::from(s)).is_some() {
                    return Err("give one output path".into());
                }
            }
        }
    }
    Ok(Options {
        out: out.ok_or("missing the output path")?,
        reps,
        seed,
    })
}

fn write_json(path: &std::path::Path, value: &Value) -> Res<()> {
    let text = serde_json::to_string_pretty(value).at("encode the summary")?;
    std::fs::write(path, text + "\n").at(&format!("write {}", path.display()))
}

fn main() -> ExitCode {
    let opts = match parse_args(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("candle_example: {e}");
            }
            eprintln!("usage: candle_example OUT.json [--reps N] [--seed N]");
            return ExitCode::from(2);
        }
    };
    match run(&opts) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("candle_example: FAIL: {e}");
            let value = json!({ "device": Value::Null, "error": e, "ok": false, "cases": [] });
            if let Err(e) = write_json(&opts.out, &value) {
                eprintln!("candle_example: {e}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Run every point; `Ok(false)` when one did not match or failed (the JSON
/// is written either way), `Err` when nothing could run.
fn run(opts: &Options) -> Res<bool> {
    let device = Device::new_cuda(0).at("cannot use GPU 0 through candle")?;
    let cuda = device.as_cuda_device().at("device")?;
    let stream = cuda.cuda_stream();
    let ctx = stream.context().clone();
    let name = ctx.name().at("query GPU 0")?;
    let cc = ctx.compute_capability().at("query GPU 0")?;
    let prism = Prism {
        rms_norm: kernels::RmsNorm::load(&ctx).at("load prism's rms_norm")?,
        swiglu: kernels::Swiglu::load(&ctx).at("load prism's swiglu")?,
    };
    let mut timer = Timer::new(&stream, opts.reps)?;
    println!(
        "candle_example: {name} (compute capability {}.{}), everything on candle's stream; \
         {WARMUP} warm-up and {} timed runs per case, {} MiB L2 flush",
        cc.0,
        cc.1,
        opts.reps,
        FLUSH_BYTES >> 20
    );
    let overhead = timer.time(false, || Ok(()))?;
    println!("event overhead: median {:.2} us", overhead.median);
    println!(
        "{:<9} {:>3} {:>5}  {:>9} {:>11} {:>10} {:>8}  {:>10} {:>10} {:>10}  variant",
        "workload",
        "n",
        "d",
        "prism us",
        "candle us",
        "nn us",
        "speedup",
        "prism err",
        "candle err",
        "nn err"
    );

    let mut outcomes = Vec::new();
    let mut failures = Vec::new();
    for p in POINTS {
        match run_point(&device, &prism, &mut timer, p, opts.seed) {
            Ok(o) => {
                let get = |c: Candle, f: fn(&Baseline) -> f64| {
                    o.baselines
                        .iter()
                        .find(|b| b.candle == c)
                        .map_or("-".to_string(), |b| format!("{:.2}", f(b)))
                };
                let err = |c: Candle| {
                    o.baselines
                        .iter()
                        .find(|b| b.candle == c)
                        .map_or("-".to_string(), |b| format!("{:.2e}", b.rel_l2))
                };
                println!(
                    "{:<9} {:>3} {:>5}  {:>9.2} {:>11} {:>10} {:>7.2}x  {:>10.2e} {:>10} {:>10}  {}{}",
                    p.workload.name(),
                    p.n,
                    p.d,
                    o.prism_time.median,
                    get(Candle::Ops, |b| b.time.median),
                    get(Candle::Nn, |b| b.time.median),
                    o.speedup(),
                    o.prism_rel_l2,
                    err(Candle::Ops),
                    err(Candle::Nn),
                    o.variant,
                    if o.ok() { "" } else { "  MISMATCH" }
                );
                if !o.ok() {
                    let mut errs = vec![("prism", o.prism_rel_l2)];
                    errs.extend(o.baselines.iter().map(|b| (b.candle.label(), b.rel_l2)));
                    let bad: Vec<String> = errs
                        .iter()
                        .filter(|(_, e)| !within(*e, p.tolerance))
                        .map(|(who, e)| format!("{who} {e:.3e}"))
                        .collect();
                    failures.push(format!(
                        "{} n={} d={}: relative L2 error above {} against candle f32: {}",
                        p.workload.name(),
                        p.n,
                        p.d,
                        p.tolerance,
                        bad.join(", ")
                    ));
                }
                outcomes.push(o.json());
            }
            Err(e) => {
                println!("{:<9} {:>3} {:>5}  FAIL: {e}", p.workload.name(), p.n, p.d);
                failures.push(format!("{} n={} d={}: {e}", p.workload.name(), p.n, p.d));
                outcomes.push(json!({
                    "workload": p.workload.name(), "n": p.n, "d": p.d, "ok": false, "error": e,
                }));
            }
        }
    }
    let ok = failures.is_empty();
    println!(
        "candle_example: {} of {} points matched{}",
        POINTS.len() - failures.len(),
        POINTS.len(),
        if ok { "" } else { "; FAILED:" }
    );
    for f in &failures {
        println!("  {f}");
    }
    let value = json!({
        "device": name,
        "compute_capability": [cc.0, cc.1],
        "warmup": WARMUP,
        "reps": opts.reps,
        "seed": opts.seed,
        "flush_bytes": FLUSH_BYTES,
        "event_overhead_us": overhead.median,
        "speedup": "fastest candle baseline's median time over prism's",
        "ok": ok,
        "cases": outcomes,
    });
    write_json(&opts.out, &value)?;
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Res<Options> {
        parse_args(a.iter().map(|s| s.to_string()))
    }

    #[test]
    fn options() {
        assert_eq!(
            args(&["out.json"]),
            Ok(Options {
                out: "out.json".into(),
                reps: DEFAULT_REPS,
                seed: 0
            })
        );
        assert_eq!(
            args(&["--reps", "7", "o.json", "--seed", "3"]),
            Ok(Options {
                out: "o.json".into(),
                reps: 7,
                seed: 3
            })
        );
        assert!(args(&[]).is_err());
        assert!(args(&["a", "b"]).is_err());
        assert!(args(&["a", "--reps", "0"]).is_err());
        assert!(args(&["a", "--reps"]).is_err());
        assert!(args(&["a", "--bogus"]).is_err());
        assert_eq!(args(&["--help"]), Err(String::new()));
    }

    /// Every point of prism.toml's two workloads, each inside the dims the
    /// generated module accepts.
    #[test]
    fn points_follow_the_generated_module() {
        for w in [Workload::RmsNorm, Workload::Swiglu] {
            let info = kernels::info(w.name()).expect("a workload of the module");
            let points: Vec<&Point> = POINTS.iter().filter(|p| p.workload == w).collect();
            assert_eq!(points.len(), 5, "{}", w.name());
            for p in points {
                let dims = [("n", p.n as i64), ("d", p.d as i64)];
                let values = info.dim_values(&dims).expect("dims n and d");
                for (dim, v) in info.dims.iter().zip(&values) {
                    assert!(dim.values.contains(*v), "{} {p:?}", w.name());
                }
                assert!(p.tolerance > 0.0 && p.tolerance < 1.0);
            }
            let inputs = match w {
                Workload::RmsNorm => 2,
                Workload::Swiglu => 3,
            };
            assert_eq!(info.inputs.len(), inputs);
            assert!(info.inputs.iter().all(|t| t.dtype == kernels::DType::F16));
        }
    }

    #[test]
    fn quantiles() {
        let s = Stats::of(vec![4.0, 1.0, 3.0, 2.0, 5.0]).expect("stats");
        assert_eq!((s.median, s.min, s.samples), (3.0, 1.0, 5));
        assert!((s.p90 - 4.6).abs() < 1e-12);
        assert!(Stats::of(vec![]).is_err());
        assert!(Stats::of(vec![1.0, f64::NAN]).is_err());
        assert!(within(0.01, 0.01) && !within(0.02, 0.01) && !within(f64::NAN, 0.01));
    }

    #[test]
    fn inputs_are_seeded() {
        let mut a = Rng(5);
        let mut b = Rng(5);
        let xs: Vec<f64> = (0..1000).map(|_| a.normal()).collect();
        assert!(
            xs.iter()
                .zip((0..1000).map(|_| b.normal()))
                .all(|(x, y)| *x == y)
        );
        let mean = xs.iter().sum::<f64>() / 1000.0;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / 1000.0;
        assert!(
            mean.abs() < 0.15 && (var - 1.0).abs() < 0.15,
            "{mean} {var}"
        );
    }
}
