//! The embedded device library compiles with nvcc for the bundled targets.
//! Needs nvcc: CI installs it (scripts/install-nvcc.sh) and sets
//! PRISM_REQUIRE_NVCC=1 so this fails instead of skipping when nvcc is absent.

mod common;

use prism::device_library::{DEVICE_LIBRARY, write_to};

#[test]
fn device_library_is_embedded() {
    assert!(DEVICE_LIBRARY.iter().any(|(p, _)| *p == "prism/common.cuh"));
    let dir = std::env::temp_dir().join(format!("prism-devlib-{}", std::process::id()));
    let written = write_to(&dir).expect("write headers");
    assert_eq!(written.len(), DEVICE_LIBRARY.len());
    for (p, (_, text)) in written.iter().zip(DEVICE_LIBRARY) {
        assert_eq!(&std::fs::read_to_string(p).expect("read back"), text);
    }
}

/// Writers racing readers (parallel compiles share one include folder):
/// a reader sees the whole header, old or new, never a truncated one; a
/// stale header is replaced; no temporary file is left behind.
#[test]
fn concurrent_writes_never_show_a_truncated_header() {
    let dir = std::env::temp_dir().join(format!("prism-devlib-race-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    write_to(&dir).expect("write headers");
    let (rel, text) = DEVICE_LIBRARY
        .iter()
        .max_by_key(|(_, t)| t.len())
        .expect("a header");
    let path = dir.join(rel);
    // A stale header of the same length, swapped in whole (by rename), so
    // the writers really rewrite it; every complete header has this length.
    let mut stale = text.as_bytes().to_vec();
    stale[0] = if stale[0] == b' ' { b'\n' } else { b' ' };
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..200 {
                let tmp = dir.join(format!("stale-{i}"));
                std::fs::write(&tmp, &stale).expect("write stale");
                std::fs::rename(&tmp, &path).expect("swap stale in");
            }
        });
        for _ in 0..3 {
            s.spawn(|| {
                for _ in 0..200 {
                    write_to(&dir).expect("write headers");
                }
            });
        }
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..500 {
                    let read = std::fs::read(&path).expect("read");
                    assert_eq!(read.len(), text.len(), "a reader saw a truncated header");
                }
            });
        }
    });
    // A stale header is replaced.
    std::fs::write(&path, "stale").expect("write stale");
    write_to(&dir).expect("write headers");
    assert_eq!(&std::fs::read_to_string(&path).expect("read"), text);
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().expect("parent"))
        .expect("list")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn device_library_compiles_for_the_bundled_targets() {
    let Some(nvcc) = common::nvcc() else { return };
    let spec = prism::frontend::embedded().expect("bundled prism.toml parses");
    let dir = std::env::temp_dir().join(format!("prism-devlib-nvcc-{}", std::process::id()));
    let include = dir.join("include");
    write_to(&include).expect("write headers");
    let mut cu = String::new();
    for (p, _) in DEVICE_LIBRARY {
        cu.push_str(&format!("#include <{p}>\n"));
    }
    cu.push_str(
        "extern \"C\" __global__ void scale(const __half* x, __half* y, float s, int n) {\n\
         int i = blockIdx.x * blockDim.x + threadIdx.x;\n\
         if (i < n) y[i] = prism::from_float<__half>(prism::to_float(x[i]) * s);\n}\n",
    );
    let src = dir.join("probe.cu");
    std::fs::write(&src, cu).expect("write probe");
    let out = dir.join("probe.fatbin");
    prism::nvcc::compile_fatbin(&nvcc, &src, &out, &include, &spec.target.archs)
        .unwrap_or_else(|e| panic!("{e}"));
    let bytes = std::fs::read(&out).expect("fatbin written");
    assert!(bytes.len() > 1000, "fatbin of {} bytes", bytes.len());

    // nvcc's own errors come back with the generated file's path.
    let bad = dir.join("bad.cu");
    std::fs::write(&bad, "this is not CUDA").expect("write");
    let err = prism::nvcc::compile_fatbin(
        &nvcc,
        &bad,
        &dir.join("bad.fatbin"),
        &include,
        &spec.target.archs,
    )
    .expect_err("nvcc rejects it");
    let msg = err.to_string();
    assert!(msg.contains("bad.cu"), "{msg}");
}

/// The tile configurations the code generator uses (BM, BN, BK, WARPS_M, WARPS_N).
const GEMM_CONFIGS: [(u32, u32, u32, u32, u32); 6] = [
    (16, 64, 64, 1, 4),
    (16, 128, 64, 1, 4),
    (32, 64, 32, 1, 2),
    (64, 64, 32, 2, 2),
    (64, 128, 32, 2, 4),
    (128, 128, 32, 2, 4),
];

/// A probe that includes every header and instantiates TileGemm for every
/// element type and listed configuration (STAGES rotating through 1..=4, plus
/// the decode shapes with 4 stages), a reduction kernel and an epilogue.
/// Returns the source and the number of kernels in it.
fn gemm_probe_source() -> (String, usize) {
    let mut cu = String::new();
    for (p, _) in DEVICE_LIBRARY {
        cu.push_str(&format!("#include <{p}>\n"));
    }
    cu.push_str(
        r#"
template <class G>
__global__ void __launch_bounds__(G::THREADS)
gemm_probe(const typename G::Element* A, long long lda, const typename G::Element* B, long long ldb,
           typename G::Element* C, long long ldc, const float* scale, int M, int N, int K) {
  using T = typename G::Element;
  extern __shared__ __align__(16) char smem[];
  __shared__ float row_scale[G::TILE_M];
  const int m0 = blockIdx.y * G::TILE_M, n0 = blockIdx.x * G::TILE_N;
  for (int r = threadIdx.x; r < G::TILE_M; r += G::THREADS) row_scale[r] = m0 + r < M ? scale[m0 + r] : 0.0f;
  G g;
  g.clear();
  g.mainloop(A + m0 * lda, lda, M - m0, B + n0, ldb, N - n0, 0, K, smem);
  g.for_each(prism::epilogue(prism::RowScale{row_scale},
                             prism::StoreTo<T>{C + m0 * ldc + n0, ldc, M - m0, N - n0}));
}

extern "C" __global__ void __launch_bounds__(256)
reduce_probe(const __half* x, __half* y, float* stats, int d) {
  __shared__ float scratch[32];
  const __half* row = x + (long long)blockIdx.x * d;
  float ss = 0.0f, mx = -INFINITY;
  for (int i = threadIdx.x; i < d; i += 256) {
    const float v = prism::to_float(row[i]);
    ss += prism::op::square(v);
    mx = prism::op::max(mx, v);
  }
  const float total = prism::block_reduce<prism::SumOp, 256>(ss, scratch);
  const float peak = prism::block_reduce<prism::MaxOp, 256>(mx, scratch);
  const float inv = prism::op::rsqrt(total / d + 1e-6f);
  for (int i = threadIdx.x; i < d; i += 256) {
    const float v = prism::to_float(row[i]) * inv;
    y[(long long)blockIdx.x * d + i] = prism::from_float<__half>(prism::op::silu(v) + prism::op::gelu(v));
  }
  const float lane_sum = prism::warp_reduce<prism::SumOp>(ss);
  if (threadIdx.x == 0) stats[blockIdx.x] = peak + lane_sum;
}
"#,
    );
    let mut kernels = 1;
    let mut instantiate = |ty: &str,
                           (bm, bn, bk, wm, wn): (u32, u32, u32, u32, u32),
                           stages: u32| {
        cu.push_str(&format!(
            "template __global__ void gemm_probe<prism::TileGemm<{ty}, {bm}, {bn}, {bk}, {wm}, {wn}, {stages}>>(\
             const {ty}*, long long, const {ty}*, long long, {ty}*, long long, const float*, int, int, int);\n"
        ));
        kernels += 1;
    };
    for (ti, ty) in ["__half", "__nv_bfloat16", "float"].iter().enumerate() {
        for (ci, cfg) in GEMM_CONFIGS.iter().enumerate() {
            instantiate(ty, *cfg, 1 + ((ci + ti) % 4) as u32);
        }
    }
    for ty in ["__half", "__nv_bfloat16"] {
        instantiate(ty, GEMM_CONFIGS[0], 4);
        instantiate(ty, GEMM_CONFIGS[1], 4);
    }
    (cu, kernels)
}

#[test]
fn gemm_and_reductions_use_no_local_memory() {
    let Some(nvcc) = common::nvcc() else { return };
    let spec = prism::frontend::embedded().expect("bundled prism.toml parses");
    let dir = std::env::temp_dir().join(format!("prism-devlib-gemm-{}", std::process::id()));
    let include = dir.join("include");
    write_to(&include).expect("write headers");
    let (cu, kernels) = gemm_probe_source();
    let src = dir.join("gemm_probe.cu");
    std::fs::write(&src, cu).expect("write probe");

    // One nvcc per architecture, in parallel: the probe has many kernels.
    let reports: Vec<(String, String)> = std::thread::scope(|s| {
        let jobs: Vec<_> = spec
            .target
            .archs
            .iter()
            .map(|arch| {
                let (nvcc, src, include) = (&nvcc, &src, &include);
                let out = dir.join(format!("gemm_probe_{arch}.fatbin"));
                s.spawn(move || {
                    let report = prism::nvcc::compile_fatbin_ptxas_report(
                        nvcc,
                        src,
                        &out,
                        include,
                        std::slice::from_ref(arch),
                    )
                    .unwrap_or_else(|e| panic!("{e}"));
                    (arch.to_string(), report)
                })
            })
            .collect();
        jobs.into_iter()
            .map(|j| j.join().expect("nvcc thread"))
            .collect()
    });

    let mut failures = Vec::new();
    for (arch, report) in &reports {
        let usages = prism::nvcc::parse_ptxas_report(report);
        let probes: Vec<_> = usages
            .iter()
            .filter(|u| u.function.contains("gemm_probe") || u.function.contains("reduce_probe"))
            .collect();
        assert_eq!(
            probes.len(),
            kernels,
            "{arch}: expected a ptxas report for each of the {kernels} kernels:\n{report}"
        );
        for u in &usages {
            eprintln!(
                "{arch} {:>3} registers, stack {} B, spills {}/{} B: {}",
                u.registers.map_or("-".to_string(), |r| r.to_string()),
                u.stack_frame_bytes,
                u.spill_store_bytes,
                u.spill_load_bytes,
                u.function
            );
            if u.uses_local_memory() {
                failures.push(format!("{arch}: {u:?}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "kernels using local memory (stack frame or spills):\n{}",
        failures.join("\n")
    );
}
