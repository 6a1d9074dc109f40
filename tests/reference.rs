//! The reference interpreter against hand-computed values and direct formulas.

use prism::frontend;
use prism::ir::{DimBindings, Workload};
use prism::reference::{EvalError, Precision, Tensor, compare, eval, random_inputs};

/// A one-workload prism.toml.
fn workload(inputs: &str, program: &str, dims: &str) -> Workload {
    let src = format!(
        "[workload.w]\ninputs = {{ {inputs} }}\nprogram = \"\"\"\n{program}\n\"\"\"\ndims = {{ {dims} }}\n"
    );
    match frontend::parse("test.toml", &src) {
        Ok(mut spec) => spec.workloads.remove(0),
        Err(r) => panic!("test workload does not parse:\n{r}"),
    }
}

fn t(shape: &[usize], data: &[f64]) -> Tensor {
    Tensor::new(shape.to_vec(), data.to_vec()).expect("shape matches data")
}

fn dims(pairs: &[(&str, i64)]) -> DimBindings {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn run(w: &Workload, d: &DimBindings, inputs: &[Tensor]) -> Vec<Tensor> {
    eval(&w.graph, d, inputs, Precision::F64).expect("evaluates")
}

fn assert_close(got: &Tensor, want: &[f64]) {
    assert_eq!(got.data.len(), want.len(), "length of {:?}", got.shape);
    for (i, (g, w)) in got.data.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-12 * w.abs().max(1.0),
            "element {i}: got {g}, want {w}"
        );
    }
}

#[test]
fn matmul_by_hand() {
    let w = workload(
        "a = \"f32[m, k]\", b = \"f32[k, n]\"",
        "a @ b",
        "m = [2], k = [3], n = [2]",
    );
    let a = t(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
    let b = t(&[3, 2], &[7., 8., 9., 10., 11., 12.]);
    let out = run(&w, &dims(&[("m", 2), ("k", 3), ("n", 2)]), &[a, b]);
    assert_eq!(out[0].shape, vec![2, 2]);
    assert_close(&out[0], &[58., 64., 139., 154.]);
}

#[test]
fn batched_matmul_broadcasts_batch_dims() {
    // a: [2, 1, 2], b: [2, 1] (no batch) -> [2, 1, 1]
    let w = workload(
        "a = \"f32[2, 1, 2]\", b = \"f32[2, 1]\"",
        "matmul(a, b)",
        "",
    );
    let out = run(
        &w,
        &DimBindings::new(),
        &[t(&[2, 1, 2], &[1., 2., 3., 4.]), t(&[2, 1], &[10., 100.])],
    );
    assert_eq!(out[0].shape, vec![2, 1, 1]);
    assert_close(&out[0], &[210., 430.]);
}

#[test]
fn broadcasting_elementwise() {
    let w = workload(
        "x = \"f32[2, 3]\", r = \"f32[3]\", c = \"f32[2, 1]\"",
        "(x + r) * c - 1",
        "",
    );
    let x = t(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
    let r = t(&[3], &[10., 20., 30.]);
    let c = t(&[2, 1], &[2., 3.]);
    let out = run(&w, &DimBindings::new(), &[x, r, c]);
    assert_close(&out[0], &[21., 43., 65., 41., 74., 107.]);
}

#[test]
fn reductions_keepdim_and_axes() {
    let w = workload(
        "x = \"f32[2, 3]\"",
        "s = sum(x, 0)\nm = max(x, axis=1, keepdim=true)\na = mean(x, -1)",
        "",
    );
    let out = run(
        &w,
        &DimBindings::new(),
        &[t(&[2, 3], &[1., 5., 3., -4., 2., 8.])],
    );
    assert_eq!(out[0].shape, vec![3]);
    assert_close(&out[0], &[-3., 7., 11.]);
    assert_eq!(out[1].shape, vec![2, 1]);
    assert_close(&out[1], &[5., 8.]);
    assert_close(&out[2], &[3., 2.]);
}

#[test]
fn unary_ops_by_hand() {
    let w = workload(
        "x = \"f32[4]\"",
        "a = exp(x)\nb = relu(x)\nc = sigmoid(x)\nd = silu(x)\ne = square(x)\nf = -x\ng = gelu(x)",
        "",
    );
    let xs = [-2.0f64, -0.5, 0.0, 1.5];
    let out = run(&w, &DimBindings::new(), &[t(&[4], &xs)]);
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    assert_close(&out[0], &xs.map(f64::exp));
    assert_close(&out[1], &[0., 0., 0., 1.5]);
    assert_close(&out[2], &xs.map(sig));
    assert_close(&out[3], &xs.map(|x| x * sig(x)));
    assert_close(&out[4], &[4., 0.25, 0., 2.25]);
    assert_close(&out[5], &[2., 0.5, 0., -1.5]);
    // gelu(x) = x Φ(x): Φ(1.5) = 0.9331927987311419, Φ(-0.5) = 0.3085375387259869.
    assert_close(
        &out[6],
        &[
            -2.0 * 0.022750131948179195,
            -0.5 * 0.3085375387259869,
            0.0,
            1.5 * 0.9331927987311419,
        ],
    );
    let w = workload(
        "x = \"f32[3]\"",
        "a = log(x)\nb = sqrt(x)\nc = rsqrt(x)",
        "",
    );
    let out = run(&w, &DimBindings::new(), &[t(&[3], &[1., 4., 16.])]);
    assert_close(&out[0], &[0., 4f64.ln(), 16f64.ln()]);
    assert_close(&out[1], &[1., 2., 4.]);
    assert_close(&out[2], &[1., 0.5, 0.25]);
}

#[test]
fn transpose_permute_reshape() {
    let w = workload(
        "x = \"f32[2, 3, 2]\"",
        "a = transpose(x)\nb = permute(x, [2, 0, 1])\nc = reshape(x, [3, 4])",
        "",
    );
    let x: Vec<f64> = (0..12).map(f64::from).collect();
    let out = run(&w, &DimBindings::new(), &[t(&[2, 3, 2], &x)]);
    assert_eq!(out[0].shape, vec![2, 2, 3]);
    assert_close(&out[0], &[0., 2., 4., 1., 3., 5., 6., 8., 10., 7., 9., 11.]);
    assert_eq!(out[1].shape, vec![2, 2, 3]);
    assert_close(&out[1], &[0., 2., 4., 6., 8., 10., 1., 3., 5., 7., 9., 11.]);
    assert_eq!(out[2].shape, vec![3, 4]);
    assert_close(&out[2], &x);
}

#[test]
fn scalars_over_dims() {
    let w = workload(
        "x = \"f32[n]\"",
        "x * (1 / sqrt(d)) + 1/d",
        "n = [2], d = [4, 16]",
    );
    let out = run(&w, &dims(&[("n", 2), ("d", 16)]), &[t(&[2], &[4., 8.])]);
    assert_close(&out[0], &[1.0 + 1.0 / 16.0, 2.0 + 1.0 / 16.0]);
}

#[test]
fn rms_norm_matches_the_direct_formula() {
    let w = workload(
        "x = \"f32[n, d]\", g = \"f32[d]\"",
        "rms_norm(x, g, eps=1e-5)",
        "n = [3], d = [5]",
    );
    let d = dims(&[("n", 3), ("d", 5)]);
    let inputs = random_inputs(&w, &d, 7).expect("inputs");
    let out = run(&w, &d, &inputs);
    let (x, g) = (&inputs[0].data, &inputs[1].data);
    let mut want = Vec::new();
    for row in x.chunks(5) {
        let ms = row.iter().map(|v| v * v).sum::<f64>() / 5.0;
        let r = (ms + 1e-5).sqrt();
        want.extend(row.iter().zip(g).map(|(v, gi)| v / r * gi));
    }
    assert_close(&out[0], &want);
}

#[test]
fn softmax_matches_the_direct_formula_and_is_stable() {
    let w = workload(
        "x = \"f32[2, 4]\"",
        "a = softmax(x, -1)\nb = softmax(x, 0)",
        "",
    );
    // Large logits overflow exp without the max subtraction.
    let x = [1000., 1001., 1002., 1003., -1., 0., 1., 2.];
    let out = run(&w, &DimBindings::new(), &[t(&[2, 4], &x)]);
    let mut want = Vec::new();
    for row in [[0., 1., 2., 3.], [-1., 0., 1., 2.]] {
        let z: f64 = row.iter().map(|v: &f64| v.exp()).sum();
        want.extend(row.iter().map(|v| v.exp() / z));
    }
    assert_close(&out[0], &want);
    assert!(out[0].data.iter().all(|v| v.is_finite()));
    // Along axis 0: column j is softmax([x0j, x1j]); x0j dominates.
    let col0 = 1.0 / (1.0 + (-1001.0f64).exp());
    assert!((out[1].data[0] - col0).abs() < 1e-12);
}

#[test]
fn gqa_reshape_groups_heads() {
    // q[b, 4 heads, dh] grouped over 2 KV heads: head h uses KV head h / 2.
    let w = workload(
        "q = \"f32[1, 4, 2]\", k = \"f32[1, 2, s, 2]\", v = \"f32[1, 2, s, 2]\"",
        "let qg = reshape(q, [1, 2, 2, 2])\nlet p = softmax(qg @ transpose(k, 2, 3), -1)\nout = reshape(p @ v, [1, 4, 2])",
        "s = [3]",
    );
    let d = dims(&[("s", 3)]);
    let inputs = random_inputs(&w, &d, 3).expect("inputs");
    let out = run(&w, &d, &inputs);
    let (q, k, v) = (&inputs[0].data, &inputs[1].data, &inputs[2].data);
    let mut want = Vec::new();
    for h in 0..4 {
        let kvh = h / 2;
        let scores: Vec<f64> = (0..3)
            .map(|j| {
                (0..2)
                    .map(|e| q[h * 2 + e] * k[(kvh * 3 + j) * 2 + e])
                    .sum()
            })
            .collect();
        let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = scores.iter().map(|s| (s - m).exp()).sum();
        for e in 0..2 {
            want.push(
                (0..3)
                    .map(|j| (scores[j] - m).exp() / z * v[(kvh * 3 + j) * 2 + e])
                    .sum(),
            );
        }
    }
    assert_close(&out[0], &want);
}

#[test]
fn declared_precision_rounds_like_f16() {
    let w = workload("x = \"f16[n]\", y = \"f16[n]\"", "x + y", "n = [1]");
    let d = dims(&[("n", 1)]);
    // 2048 + 1 is not representable in f16 (spacing 2 there): rounds to even, 2048.
    let inputs = [t(&[1], &[2048.]), t(&[1], &[1.])];
    let exact = eval(&w.graph, &d, &inputs, Precision::F64).expect("f64");
    let half = eval(&w.graph, &d, &inputs, Precision::Declared).expect("f16");
    assert_eq!(exact[0].data, vec![2049.]);
    assert_eq!(half[0].data, vec![2048.]);
}

#[test]
fn declared_precision_rounds_inputs_and_constants() {
    let w = workload("x = \"f16[n]\"", "x * 0.1", "n = [1]");
    let d = dims(&[("n", 1)]);
    let out = eval(&w.graph, &d, &[t(&[1], &[0.1])], Precision::Declared).expect("f16");
    let h = |v: f64| half::f16::from_f64(v).to_f64();
    assert_eq!(out[0].data, vec![h((h(0.1) as f32 * h(0.1) as f32) as f64)]);
    let exact = eval(&w.graph, &d, &[t(&[1], &[0.1])], Precision::F64).expect("f64");
    assert!(
        (exact[0].data[0] - 0.01).abs() < 1e-15,
        "f64 mode keeps inputs as given"
    );
}

#[test]
fn declared_precision_tracks_f64_on_bundled_workloads() {
    let spec = frontend::embedded().expect("bundled prism.toml parses");
    for name in [
        "rms_norm",
        "swiglu",
        "attention",
        "qk_norm_attention",
        "ntrans",
    ] {
        let w = spec.workload(name).expect("bundled workload");
        let p = &w.points[0];
        let inputs = random_inputs(w, p, 1).expect("inputs");
        let exact = eval(&w.graph, p, &inputs, Precision::F64).expect("f64");
        let half = eval(&w.graph, p, &inputs, Precision::Declared).expect("declared");
        let c = compare(&half[0], &exact[0]).expect("same shape");
        assert!(
            c.within(w.tolerance),
            "{name}: f16 emulation is {c:?} from f64"
        );
        assert!(c.rel_l2 > 0.0, "{name}: f16 emulation must round somewhere");
    }
}

#[test]
fn evaluation_is_deterministic() {
    let spec = frontend::embedded().expect("bundled prism.toml parses");
    let w = spec.workload("rmsnorm_mlp").expect("bundled workload");
    let p = &w.points[0];
    let a = random_inputs(w, p, 42).expect("inputs");
    let b = random_inputs(w, p, 42).expect("inputs");
    assert_eq!(a, b);
    assert_ne!(a, random_inputs(w, p, 43).expect("inputs"));
    let r1 = eval(&w.graph, p, &a, Precision::Declared).expect("eval");
    let r2 = eval(&w.graph, p, &b, Precision::Declared).expect("eval");
    assert_eq!(r1, r2);
}

#[test]
fn init_sets_the_standard_deviation() {
    let w = workload("x = \"f32[n]\"", "exp(x)", "n = [100000]");
    let src = "[workload.w]\ninputs = { x = \"f32[n]\" }\nprogram = \"exp(x)\"\ndims = { n = [100000] }\ninit = { x = \"1/sqrt(n)\" }\n";
    let scaled = frontend::parse("t.toml", src)
        .expect("parses")
        .workloads
        .remove(0);
    let d = dims(&[("n", 100_000)]);
    let std = |t: &Tensor| (t.data.iter().map(|v| v * v).sum::<f64>() / t.len() as f64).sqrt();
    let unit = random_inputs(&w, &d, 5).expect("inputs");
    let small = random_inputs(&scaled, &d, 5).expect("inputs");
    assert!((std(&unit[0]) - 1.0).abs() < 0.02, "std {}", std(&unit[0]));
    assert!(
        (std(&small[0]) - 1.0 / 316.227_766).abs() < 1e-4,
        "std {}",
        std(&small[0])
    );
}

#[test]
fn bad_calls_are_errors_not_panics() {
    let w = workload("x = \"f32[n]\"", "exp(x)", "n = [1, 2]");
    let d = dims(&[("n", 2)]);
    assert!(matches!(
        eval(&w.graph, &d, &[], Precision::F64),
        Err(EvalError::InputCount {
            expected: 1,
            got: 0
        })
    ));
    let wrong = t(&[3], &[1., 2., 3.]);
    assert!(matches!(
        eval(&w.graph, &d, &[wrong], Precision::F64),
        Err(EvalError::InputShape { .. })
    ));
    let x = t(&[2], &[1., 2.]);
    assert!(matches!(
        eval(
            &w.graph,
            &DimBindings::new(),
            std::slice::from_ref(&x),
            Precision::F64
        ),
        Err(EvalError::Dim(_))
    ));
    assert!(matches!(
        eval(&w.graph, &dims(&[("n", 0)]), &[x], Precision::F64),
        Err(EvalError::BadDim { .. })
    ));
    let huge = dims(&[("n", i64::MAX)]);
    assert!(matches!(
        random_inputs(&w, &huge, 0),
        Err(EvalError::TooLarge(_))
    ));
}

#[test]
fn compare_reports_relative_error_and_non_finite() {
    let want = t(&[2], &[3., 4.]);
    let c = compare(&t(&[2], &[3., 4.5]), &want).expect("same shape");
    assert!((c.rel_l2 - 0.1).abs() < 1e-12);
    assert!((c.max_abs - 0.5).abs() < 1e-12);
    let c = compare(&t(&[2], &[f64::NAN, 4.]), &want).expect("same shape");
    assert_eq!(c.non_finite_mismatches, 1);
    assert!(!c.within(1.0));
    assert!(compare(&t(&[1], &[1.]), &want).is_none());
}
