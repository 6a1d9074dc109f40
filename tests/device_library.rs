//! The embedded device library compiles with nvcc for the bundled targets.
//! Needs nvcc: CI installs it (scripts/install-nvcc.sh) and sets
//! PRISM_REQUIRE_NVCC=1 so this fails instead of skipping when nvcc is absent.

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

#[test]
fn device_library_compiles_for_the_bundled_targets() {
    let nvcc = match prism::nvcc::find() {
        Ok(n) => n,
        Err(e) if std::env::var_os("PRISM_REQUIRE_NVCC").is_none() => {
            eprintln!("skipping: {e}\n(set PRISM_REQUIRE_NVCC=1 to make this a failure)");
            return;
        }
        Err(e) => panic!("{e}"),
    };
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
