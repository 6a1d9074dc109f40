//! μGraph validation and interpretation: hand-built μGraphs run by
//! `ugraph::interp` against the reference interpreter of the equivalent tensor
//! program, and one test per structural error.

use prism::frontend::library;
use prism::ir::{
    BinaryOp, DType, DimBindings, DimExpr, Graph, GraphBuilder, NodeId, ReduceOp, ScalarExpr,
    UnaryOp,
};
use prism::reference::{self, Precision, Tensor, compare};
use prism::ugraph::interp::{self, InterpError};
use prism::ugraph::validate::{self, AxisRole, Phase, TileExtent, UGraphError};
use prism::ugraph::*;

// ------------------------------------------------------------------ builders

fn sym(s: &str) -> DimExpr {
    DimExpr::symbol(s)
}

fn cst(c: i64) -> DimExpr {
    DimExpr::constant(c)
}

fn dims(pairs: &[(&str, i64)]) -> DimBindings {
    pairs.iter().map(|&(k, v)| (k.to_string(), v)).collect()
}

/// Global tensors, numbering inputs and outputs in creation order.
#[derive(Default)]
struct Tensors {
    tensors: Vec<GlobalTensor>,
    inputs: usize,
    outputs: usize,
}

impl Tensors {
    fn add(&mut self, name: &str, shape: Vec<DimExpr>, role: TensorRole) -> TensorId {
        self.tensors.push(GlobalTensor {
            name: name.into(),
            shape,
            dtype: DType::F32,
            role,
        });
        TensorId(self.tensors.len() - 1)
    }
    fn input(&mut self, name: &str, shape: Vec<DimExpr>) -> TensorId {
        self.inputs += 1;
        self.add(name, shape, TensorRole::Input(self.inputs - 1))
    }
    fn output(&mut self, name: &str, shape: Vec<DimExpr>) -> TensorId {
        self.outputs += 1;
        self.add(name, shape, TensorRole::Output(self.outputs - 1))
    }
    fn inter(&mut self, name: &str, shape: Vec<DimExpr>) -> TensorId {
        self.add(name, shape, TensorRole::Intermediate)
    }
    fn graph(self, kernels: Vec<Kernel>) -> KernelGraph {
        KernelGraph {
            tensors: self.tensors,
            kernels,
        }
    }
}

fn gd(extents: Vec<DimExpr>, tile: u32) -> GridDim {
    GridDim { extents, tile }
}

fn tmap(
    tensor: TensorId,
    view: &[DimExpr],
    imap: &[Option<&[usize]>],
    fmap: Option<usize>,
) -> TileMap {
    TileMap {
        tensor,
        view: view.to_vec(),
        imap: imap.iter().map(|m| m.map(|a| a.to_vec())).collect(),
        fmap,
    }
}

/// A block graph under construction.
struct Block(BlockGraph);

impl Block {
    fn new(grid: Vec<GridDim>, forloop: Option<(DimExpr, u32)>) -> Self {
        Block(BlockGraph {
            grid,
            forloop: forloop.map(|(extent, tile)| ForLoop::new(extent, tile)),
            inputs: vec![],
            ops: vec![],
            outputs: vec![],
            params: LaunchParams::default(),
        })
    }
    fn op(&mut self, op: BlockOp) -> ValueId {
        self.0.ops.push(op);
        ValueId(self.0.ops.len() - 1)
    }
    fn load(&mut self, map: TileMap) -> ValueId {
        self.0.inputs.push(map);
        self.op(BlockOp::Input(self.0.inputs.len() - 1))
    }
    fn un(&mut self, u: UnaryOp, a: ValueId) -> ValueId {
        self.op(BlockOp::Unary(u, a))
    }
    fn bin(&mut self, b: BinaryOp, x: ValueId, y: ValueId) -> ValueId {
        self.op(BlockOp::Binary(b, x, y))
    }
    fn lit(&mut self, v: f64) -> ValueId {
        self.op(BlockOp::Const(ScalarExpr::lit(v)))
    }
    fn mm(&mut self, x: ValueId, y: ValueId) -> ValueId {
        self.op(BlockOp::Matmul(x, y))
    }
    fn reduce(
        &mut self,
        op: ReduceOp,
        input: ValueId,
        axis: usize,
        count: Option<DimExpr>,
    ) -> ValueId {
        self.op(BlockOp::Reduce {
            op,
            input,
            axis,
            count,
        })
    }
    fn acc(&mut self, kind: AccumKind, input: ValueId) -> ValueId {
        self.op(BlockOp::Accum { kind, input })
    }
    fn store(&mut self, value: ValueId, map: TileMap) {
        self.0.outputs.push(BlockOutput { value, map });
    }
    fn kernel(self, name: &str) -> Kernel {
        Kernel {
            name: name.into(),
            body: KernelBody::Block(self.0),
        }
    }
}

fn block_mut(g: &mut KernelGraph, k: usize) -> &mut BlockGraph {
    match &mut g.kernels[k].body {
        KernelBody::Block(b) => b,
        KernelBody::Predefined(_) => panic!("kernel {k} is pre-defined"),
    }
}

/// A test case: a μGraph, the equivalent tensor program, and dims.
struct Case {
    ugraph: KernelGraph,
    program: Graph,
    dims: DimBindings,
}

/// Seeded normal inputs for `g` at `dims`.
fn inputs_for(g: &Graph, dims: &DimBindings, seed: u64) -> Vec<Tensor> {
    g.inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            let shape = input
                .shape
                .iter()
                .map(|d| d.eval(dims).unwrap() as usize)
                .collect();
            reference::random::normal(shape, 1.0, seed + i as u64, |v| v)
        })
        .collect()
}

/// Largest relative L2 error of the μGraph's outputs against the reference.
fn error_of(case: &Case, seed: u64) -> f64 {
    validate::validate(&case.ugraph).unwrap_or_else(|e| panic!("invalid μGraph: {e}"));
    let inputs = inputs_for(&case.program, &case.dims, seed);
    let want = reference::eval(&case.program, &case.dims, &inputs, Precision::F64).unwrap();
    let got = interp::run(&case.ugraph, &case.dims, &inputs).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(&want)
        .map(|(g, w)| {
            let c = compare(g, w).expect("output shapes differ");
            if c.non_finite_mismatches > 0 {
                f64::INFINITY
            } else {
                c.rel_l2
            }
        })
        .fold(0.0, f64::max)
}

fn assert_matches(case: &Case) {
    for seed in [1, 2] {
        let e = error_of(case, seed);
        assert!(e <= 1e-12, "relative L2 error {e} (seed {seed})");
    }
}

fn f32_input(b: &mut GraphBuilder, name: &str, shape: &[DimExpr]) -> NodeId {
    b.input(name, DType::F32, shape.to_vec())
}

// --------------------------------------------------------------- the cases

/// `silu(x) * y + bias * 0.5` on a 2-D grid of 4 x 32 tiles.
fn elementwise() -> Case {
    let (n, d) = (sym("n"), sym("d"));
    let mut t = Tensors::default();
    let (x, y) = (
        t.input("x", vec![n.clone(), d.clone()]),
        t.input("y", vec![n.clone(), d.clone()]),
    );
    let bias = t.input("bias", vec![cst(1), d.clone()]);
    let out = t.output("out", vec![n.clone(), d.clone()]);
    let nd = [n.clone(), d.clone()];
    let both: [Option<&[usize]>; 2] = [Some(&[0]), Some(&[1])];
    let mut b = Block::new(vec![gd(vec![n.clone()], 4), gd(vec![d.clone()], 32)], None);
    let xv = b.load(tmap(x, &nd, &both, None));
    let yv = b.load(tmap(y, &nd, &both, None));
    let bv = b.load(tmap(bias, &[cst(1), d.clone()], &both, None));
    let s = b.un(UnaryOp::Silu, xv);
    let p = b.bin(BinaryOp::Mul, s, yv);
    let half = b.lit(0.5);
    let hb = b.bin(BinaryOp::Mul, bv, half);
    let r = b.bin(BinaryOp::Add, p, hb);
    b.store(r, tmap(out, &nd, &both, None));
    let ugraph = t.graph(vec![b.kernel("ew")]);

    let mut g = GraphBuilder::new();
    let (gx, gy) = (f32_input(&mut g, "x", &nd), f32_input(&mut g, "y", &nd));
    let gb = f32_input(&mut g, "bias", &[cst(1), d.clone()]);
    let s = g.unary(UnaryOp::Silu, gx);
    let p = g.binary(BinaryOp::Mul, s, gy).unwrap();
    let h = g.constant(ScalarExpr::lit(0.5), DType::F32);
    let hb = g.binary(BinaryOp::Mul, gb, h).unwrap();
    let r = g.binary(BinaryOp::Add, p, hb).unwrap();
    g.output("out", r);
    Case {
        ugraph,
        program: g.finish(),
        dims: dims(&[("n", 7), ("d", 100)]),
    }
}

/// rms_norm(x) * g in two kernels: per-row `rsqrt(mean(x²) + eps)` with a
/// for-loop over d (tile 64), then an elementwise kernel. `count` is the
/// Mean's count (the data extent `d` for the right answer).
fn rms_two_kernels(count: Option<DimExpr>) -> Case {
    let (n, d) = (sym("n"), sym("d"));
    let mut t = Tensors::default();
    let x = t.input("x", vec![n.clone(), d.clone()]);
    let gamma = t.input("g", vec![d.clone()]);
    let r = t.inter("r", vec![n.clone(), cst(1)]);
    let y = t.output("y", vec![n.clone(), d.clone()]);
    let nd = [n.clone(), d.clone()];

    let mut k1 = Block::new(vec![gd(vec![n.clone()], 2)], Some((d.clone(), 64)));
    let xv = k1.load(tmap(x, &nd, &[Some(&[0])], Some(1)));
    let sq = k1.un(UnaryOp::Square, xv);
    let ms = k1.reduce(ReduceOp::Mean, sq, 1, count);
    let acc = k1.acc(AccumKind::Sum, ms);
    let eps = k1.lit(1e-6);
    let sh = k1.bin(BinaryOp::Add, acc, eps);
    let inv = k1.un(UnaryOp::Rsqrt, sh);
    k1.store(inv, tmap(r, &[n.clone(), cst(1)], &[Some(&[0])], None));

    let both: [Option<&[usize]>; 2] = [Some(&[0]), Some(&[1])];
    let mut k2 = Block::new(vec![gd(vec![n.clone()], 4), gd(vec![d.clone()], 128)], None);
    let xv = k2.load(tmap(x, &nd, &both, None));
    let rv = k2.load(tmap(r, &[n.clone(), cst(1)], &[Some(&[0]), None], None));
    let gv = k2.load(tmap(gamma, &[cst(1), d.clone()], &[None, Some(&[1])], None));
    let xr = k2.bin(BinaryOp::Mul, xv, rv);
    let out = k2.bin(BinaryOp::Mul, xr, gv);
    k2.store(out, tmap(y, &nd, &both, None));
    let ugraph = t.graph(vec![k1.kernel("rms_factor"), k2.kernel("rms_apply")]);

    let mut g = GraphBuilder::new();
    let gx = f32_input(&mut g, "x", &nd);
    let gg = f32_input(&mut g, "g", std::slice::from_ref(&d));
    let o = library::rms_norm(&mut g, gx, Some(gg), ScalarExpr::lit(1e-6)).unwrap();
    g.output("y", o);
    Case {
        ugraph,
        program: g.finish(),
        dims: dims(&[("n", 7), ("d", 1000)]),
    }
}

/// Fused `matmul(rms_norm(x), w)`: BM x BN output tiles, a loop over K.
fn fused_rms_matmul() -> Case {
    let (n, d, e) = (sym("n"), sym("d"), sym("e"));
    let mut t = Tensors::default();
    let x = t.input("x", vec![n.clone(), d.clone()]);
    let w = t.input("w", vec![d.clone(), e.clone()]);
    let y = t.output("y", vec![n.clone(), e.clone()]);
    let mut b = Block::new(
        vec![gd(vec![n.clone()], 4), gd(vec![e.clone()], 16)],
        Some((d.clone(), 16)),
    );
    let xv = b.load(tmap(
        x,
        &[n.clone(), d.clone()],
        &[Some(&[0]), None],
        Some(1),
    ));
    let wv = b.load(tmap(
        w,
        &[d.clone(), e.clone()],
        &[None, Some(&[1])],
        Some(0),
    ));
    let prod = b.mm(xv, wv);
    let acc = b.acc(AccumKind::Sum, prod);
    let sq = b.un(UnaryOp::Square, xv);
    let ssq = b.reduce(ReduceOp::Sum, sq, 1, None);
    let ss = b.acc(AccumKind::Sum, ssq);
    let dd = b.op(BlockOp::Const(ScalarExpr::Dim("d".into())));
    let ms = b.bin(BinaryOp::Div, ss, dd);
    let eps = b.lit(1e-6);
    let sh = b.bin(BinaryOp::Add, ms, eps);
    let inv = b.un(UnaryOp::Rsqrt, sh);
    let out = b.bin(BinaryOp::Mul, acc, inv);
    b.store(
        out,
        tmap(y, &[n.clone(), e.clone()], &[Some(&[0]), Some(&[1])], None),
    );
    let ugraph = t.graph(vec![b.kernel("rms_matmul")]);

    let mut g = GraphBuilder::new();
    let gx = f32_input(&mut g, "x", &[n.clone(), d.clone()]);
    let gw = f32_input(&mut g, "w", &[d.clone(), e.clone()]);
    let h = library::rms_norm(&mut g, gx, None, ScalarExpr::lit(1e-6)).unwrap();
    let o = g.matmul(h, gw).unwrap();
    g.output("y", o);
    Case {
        ugraph,
        program: g.finish(),
        dims: dims(&[("n", 7), ("d", 72), ("e", 40)]),
    }
}

/// Grouped-query scores: q `[b, 32, 16]` viewed as `[b, 8, 4, 16]` times a
/// batch-shared kᵀ `[1, 8, 16, s]` (broadcast onto the grid's batch extent).
/// Grid dim 0 walks (b, kv head) with kv heads in tiles of 3.
fn gqa_scores() -> Case {
    let (bb, s) = (sym("b"), sym("s"));
    let mut t = Tensors::default();
    let q = t.input("q", vec![bb.clone(), cst(32), cst(16)]);
    let kt = t.input("kt", vec![cst(1), cst(8), cst(16), s.clone()]);
    let out = t.output("scores", vec![bb.clone(), cst(8), cst(4), s.clone()]);
    let grid = vec![gd(vec![bb.clone(), cst(8)], 3), gd(vec![s.clone()], 16)];
    let mut b = Block::new(grid, None);
    let qv = b.load(tmap(
        q,
        &[bb.clone(), cst(8), cst(4), cst(16)],
        &[Some(&[0, 1]), None],
        None,
    ));
    let kv = b.load(tmap(
        kt,
        &[cst(1), cst(8), cst(16), s.clone()],
        &[Some(&[0, 1]), Some(&[3])],
        None,
    ));
    let sc = b.mm(qv, kv);
    let out_view = [bb.clone(), cst(8), cst(4), s.clone()];
    b.store(sc, tmap(out, &out_view, &[Some(&[0, 1]), Some(&[3])], None));
    let ugraph = t.graph(vec![b.kernel("gqa")]);

    let mut g = GraphBuilder::new();
    let gq = f32_input(&mut g, "q", &[bb.clone(), cst(32), cst(16)]);
    let gk = f32_input(&mut g, "kt", &[cst(1), cst(8), cst(16), s.clone()]);
    let q4 = g
        .reshape(gq, vec![bb.clone(), cst(8), cst(4), cst(16)])
        .unwrap();
    let o = g.matmul(q4, gk).unwrap();
    g.output("scores", o);
    Case {
        ugraph,
        program: g.finish(),
        dims: dims(&[("b", 3), ("s", 50)]),
    }
}

/// Flash attention: `softmax(q @ kt * scale, -1) @ v` with an online softmax
/// over kv in tiles of 16; blocks own (head, 8 query rows).
fn flash_attention() -> Case {
    let (h, m, dh, kv) = (sym("h"), sym("m"), sym("dh"), sym("kv"));
    let mut t = Tensors::default();
    let q = t.input("q", vec![h.clone(), m.clone(), dh.clone()]);
    let kt = t.input("kt", vec![h.clone(), dh.clone(), kv.clone()]);
    let v = t.input("v", vec![h.clone(), kv.clone(), dh.clone()]);
    let o = t.output("o", vec![h.clone(), m.clone(), dh.clone()]);
    let grid = vec![gd(vec![h.clone()], 1), gd(vec![m.clone()], 8)];
    let mut b = Block::new(grid, Some((kv.clone(), 16)));
    let qv = b.load(tmap(
        q,
        &[h.clone(), m.clone(), dh.clone()],
        &[Some(&[0]), Some(&[1])],
        None,
    ));
    let kv_t = b.load(tmap(
        kt,
        &[h.clone(), dh.clone(), kv.clone()],
        &[Some(&[0]), None],
        Some(2),
    ));
    let vv = b.load(tmap(
        v,
        &[h.clone(), kv.clone(), dh.clone()],
        &[Some(&[0]), None],
        Some(1),
    ));
    let scale = b.op(BlockOp::Const(ScalarExpr::Binary(
        BinaryOp::Div,
        Box::new(ScalarExpr::lit(1.0)),
        Box::new(ScalarExpr::Unary(
            UnaryOp::Sqrt,
            Box::new(ScalarExpr::Dim("dh".into())),
        )),
    )));
    let qk = b.mm(qv, kv_t);
    let s = b.bin(BinaryOp::Mul, qk, scale);
    let rowmax = b.reduce(ReduceOp::Max, s, 2, None);
    let mx = b.acc(AccumKind::Max, rowmax);
    let run = b.op(BlockOp::Running(mx));
    let sh = b.bin(BinaryOp::Sub, s, run);
    let p = b.un(UnaryOp::Exp, sh);
    let rowsum = b.reduce(ReduceOp::Sum, p, 2, None);
    let l = b.acc(AccumKind::RescaledSum { max: mx }, rowsum);
    let pv = b.mm(p, vv);
    let num = b.acc(AccumKind::RescaledSum { max: mx }, pv);
    let res = b.bin(BinaryOp::Div, num, l);
    b.store(
        res,
        tmap(
            o,
            &[h.clone(), m.clone(), dh.clone()],
            &[Some(&[0]), Some(&[1])],
            None,
        ),
    );
    let ugraph = t.graph(vec![b.kernel("flash")]);

    let mut g = GraphBuilder::new();
    let gq = f32_input(&mut g, "q", &[h.clone(), m.clone(), dh.clone()]);
    let gk = f32_input(&mut g, "kt", &[h.clone(), dh.clone(), kv.clone()]);
    let gv = f32_input(&mut g, "v", &[h.clone(), kv.clone(), dh.clone()]);
    let qk = g.matmul(gq, gk).unwrap();
    let sc = g.constant(
        ScalarExpr::Binary(
            BinaryOp::Div,
            Box::new(ScalarExpr::lit(1.0)),
            Box::new(ScalarExpr::Unary(
                UnaryOp::Sqrt,
                Box::new(ScalarExpr::Dim("dh".into())),
            )),
        ),
        DType::F32,
    );
    let s = g.binary(BinaryOp::Mul, qk, sc).unwrap();
    let p = library::softmax(&mut g, s, -1).unwrap();
    let out = g.matmul(p, gv).unwrap();
    g.output("o", out);
    Case {
        ugraph,
        program: g.finish(),
        dims: dims(&[("h", 3), ("m", 13), ("dh", 16), ("kv", 100)]),
    }
}

/// Split-K `a @ b` with K = s * ks: kernel 1 writes one partial product per
/// split (grid dim 0 over the splits, a for-loop over each split's ks in
/// tiles of 8, one row of `a` per block), kernel 2 sums them.
fn split_k() -> Case {
    let (m, s, ks, n) = (sym("m"), sym("s"), sym("ks"), sym("n"));
    let k = s.mul(&ks);
    let mut t = Tensors::default();
    let a = t.input("a", vec![m.clone(), k.clone()]);
    let bt = t.input("b", vec![k.clone(), n.clone()]);
    let part = t.inter("partials", vec![s.clone(), m.clone(), n.clone()]);
    let c = t.output("c", vec![m.clone(), n.clone()]);
    let grid = vec![
        gd(vec![s.clone()], 1),
        gd(vec![m.clone()], 1),
        gd(vec![n.clone()], 16),
    ];
    let mut b = Block::new(grid, Some((ks.clone(), 8)));
    let av = b.load(tmap(
        a,
        &[m.clone(), s.clone(), ks.clone()],
        &[Some(&[1]), Some(&[0]), None],
        Some(2),
    ));
    let bv = b.load(tmap(
        bt,
        &[s.clone(), ks.clone(), n.clone()],
        &[Some(&[0]), None, Some(&[2])],
        Some(1),
    ));
    let prod = b.mm(av, bv);
    let acc = b.acc(AccumKind::Sum, prod);
    let imap: [Option<&[usize]>; 3] = [Some(&[0]), Some(&[1]), Some(&[2])];
    b.store(
        acc,
        tmap(part, &[s.clone(), m.clone(), n.clone()], &imap, None),
    );
    let combine = Kernel {
        name: "combine".into(),
        body: KernelBody::Predefined(Predefined::SplitCombine {
            partials: part,
            output: c,
        }),
    };
    let ugraph = t.graph(vec![b.kernel("split_k"), combine]);

    let mut g = GraphBuilder::new();
    let ga = f32_input(&mut g, "a", &[m.clone(), k.clone()]);
    let gb = f32_input(&mut g, "b", &[k.clone(), n.clone()]);
    let o = g.matmul(ga, gb).unwrap();
    g.output("c", o);
    Case {
        ugraph,
        program: g.finish(),
        dims: dims(&[("m", 3), ("s", 4), ("ks", 20), ("n", 40)]),
    }
}

// ---------------------------------------------------- interpreter vs reference

#[test]
fn elementwise_with_broadcast_and_ragged_tiles() {
    let case = elementwise();
    assert_matches(&case);
    let KernelBody::Block(b) = &case.ugraph.kernels[0].body else {
        unreachable!()
    };
    let info = validate::check_block(b, &case.ugraph.tensors).unwrap();
    let part = |e: &str, tile| TileExtent::Part {
        extent: sym(e),
        tile,
    };
    assert_eq!(info.shapes[2], vec![TileExtent::One, part("d", 32)]);
    assert_eq!(info.shapes[7], vec![part("n", 4), part("d", 32)]);
    assert!(info.phases.iter().all(|&p| p == Phase::Loop));
    assert_eq!(info.input_axes[2][0], AxisRole::Broadcast);
}

#[test]
fn rms_norm_in_two_kernels() {
    assert_matches(&rms_two_kernels(Some(sym("d"))));
}

#[test]
fn fused_rms_norm_matmul() {
    let case = fused_rms_matmul();
    assert_matches(&case);
    let KernelBody::Block(b) = &case.ugraph.kernels[0].body else {
        unreachable!()
    };
    let info = validate::check_block(b, &case.ugraph.tensors).unwrap();
    use Phase::{Loop, Post};
    let want = [
        Loop, Loop, Loop, Post, Loop, Loop, Post, Loop, Post, Loop, Post, Post, Post,
    ];
    assert_eq!(info.phases, want);
    assert!(!info.loop_variant[7], "the constant d is loop-invariant");
}

#[test]
fn batched_matmul_with_view_and_broadcast_batch() {
    assert_matches(&gqa_scores());
}

#[test]
fn flash_attention_online_softmax() {
    assert_matches(&flash_attention());
}

#[test]
fn flash_attention_one_iteration_and_tile_one() {
    // kv within one tile (a Full loop axis), and kv tiles of 1.
    let mut case = flash_attention();
    case.dims.insert("kv".into(), 9);
    assert_matches(&case);
    block_mut(&mut case.ugraph, 0)
        .forloop
        .as_mut()
        .unwrap()
        .tile = 1;
    assert_matches(&case);
}

#[test]
fn split_k_with_combine() {
    assert_matches(&split_k());
}

#[test]
fn results_are_deterministic() {
    let case = flash_attention();
    let inputs = inputs_for(&case.program, &case.dims, 7);
    let a = interp::run(&case.ugraph, &case.dims, &inputs).unwrap();
    let b = interp::run(&case.ugraph, &case.dims, &inputs).unwrap();
    let bits = |t: &[Tensor]| -> Vec<u64> {
        t.iter()
            .flat_map(|x| x.data.iter().map(|v| v.to_bits()))
            .collect()
    };
    assert_eq!(bits(&a), bits(&b));
}

#[test]
fn a_wrong_ugraph_disagrees_with_the_reference() {
    // Mean over a loop-partitioned axis divided by the tile's extent instead
    // of d: each tile's mean, summed over 16 tiles.
    let e = error_of(&rms_two_kernels(None), 1);
    assert!(e > 1e-2, "a wrong μGraph matched the reference (error {e})");
}

#[test]
fn rescaled_sum_starts_from_minus_infinity_without_nan() {
    // Rows of x whose first loop tiles are -inf: the max accumulator stays
    // -inf for a while. l = rescaled sum of y's row sums must equal
    // sum_i y_i * exp(m_i - m_final), with exp(-inf - m) = 0 and no NaN.
    let (n, l) = (sym("n"), sym("l"));
    let mut t = Tensors::default();
    let x = t.input("x", vec![n.clone(), l.clone()]);
    let y = t.input("y", vec![n.clone(), l.clone()]);
    let out = t.output("out", vec![n.clone(), cst(1)]);
    let mut b = Block::new(vec![gd(vec![n.clone()], 1)], Some((l.clone(), 2)));
    let xv = b.load(tmap(x, &[n.clone(), l.clone()], &[Some(&[0])], Some(1)));
    let yv = b.load(tmap(y, &[n.clone(), l.clone()], &[Some(&[0])], Some(1)));
    let xm = b.reduce(ReduceOp::Max, xv, 1, None);
    let mx = b.acc(AccumKind::Max, xm);
    let ys = b.reduce(ReduceOp::Sum, yv, 1, None);
    let acc = b.acc(AccumKind::RescaledSum { max: mx }, ys);
    b.store(acc, tmap(out, &[n.clone(), cst(1)], &[Some(&[0])], None));
    let g = t.graph(vec![b.kernel("rescale")]);
    let inf = f64::NEG_INFINITY;
    let xs = vec![
        inf, inf, inf, inf, 1.0, 3.0, // row 0: -inf for two tiles
        inf, inf, 2.0, 0.0, 1.0, 1.0, // row 1
        inf, inf, inf, inf, inf, inf, // row 2: all -inf
    ];
    let ys = vec![
        1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0,
    ];
    let d = dims(&[("n", 3), ("l", 6)]);
    let inputs = [
        Tensor::new(vec![3, 6], xs).unwrap(),
        Tensor::new(vec![3, 6], ys).unwrap(),
    ];
    let got = interp::run(&g, &d, &inputs).unwrap();
    // Row 0: m = -inf, -inf, 3 -> only the last tile counts: 5 + 6.
    // Row 1: m = -inf, 2, 2 -> 2 + 2.
    // Row 2: m stays -inf: factors are 1, the plain sum.
    assert_eq!(got[0].data, vec![11.0, 4.0, 21.0]);
}

// ------------------------------------------------------------ interp errors

#[test]
fn interp_rejects_bad_inputs_and_dims() {
    let case = elementwise();
    let inputs = inputs_for(&case.program, &case.dims, 1);
    let run = |d: &DimBindings, i: &[Tensor]| interp::run(&case.ugraph, d, i).unwrap_err();
    assert!(matches!(
        run(&case.dims, &inputs[..2]),
        InterpError::InputCount {
            expected: 3,
            got: 2
        }
    ));
    let mut wrong = inputs.clone();
    wrong[1] = Tensor::new(vec![7, 99], vec![0.0; 693]).unwrap();
    assert!(matches!(
        run(&case.dims, &wrong),
        InterpError::InputShape { index: 1, .. }
    ));
    let mut malformed = inputs.clone();
    malformed[0].data.pop();
    assert!(matches!(
        run(&case.dims, &malformed),
        InterpError::MalformedInput { index: 0, .. }
    ));
    let unbound = dims(&[("n", 7)]);
    assert!(matches!(
        run(&unbound, &inputs),
        InterpError::Dim(prism::ir::DimEvalError::Unbound(d)) if d == "d"
    ));
    assert!(matches!(
        run(&dims(&[("n", 0), ("d", 100)]), &inputs),
        InterpError::BadDim { .. }
    ));
    assert!(matches!(
        run(&dims(&[("n", -3), ("d", 100)]), &inputs),
        InterpError::BadDim { .. }
    ));
    assert!(matches!(
        run(&dims(&[("n", 1 << 30), ("d", 1 << 30)]), &inputs),
        InterpError::TooLarge { .. }
    ));
    let mut bad = case.ugraph.clone();
    block_mut(&mut bad, 0).grid[0].tile = 0;
    assert!(matches!(
        interp::run(&bad, &case.dims, &inputs).unwrap_err(),
        InterpError::Invalid(UGraphError::ZeroTile { .. })
    ));
}

// ------------------------------------------------------ one test per UGraphError

fn err(g: &KernelGraph) -> UGraphError {
    let e = validate::validate(g).expect_err("the broken μGraph validated");
    assert!(!e.to_string().is_empty());
    e
}

/// The elementwise case's μGraph after `f`.
fn ew(f: impl FnOnce(&mut KernelGraph)) -> KernelGraph {
    let mut g = elementwise().ugraph;
    f(&mut g);
    g
}

/// The fused rms_norm → matmul μGraph after `f` (ops: 0 x, 1 w, 2 x@w,
/// 3 acc, 4 x², 5 Σx², 6 ss, 7 d, 8 ss/d, 9 eps, 10 +, 11 rsqrt, 12 out).
fn fused(f: impl FnOnce(&mut BlockGraph)) -> KernelGraph {
    let mut g = fused_rms_matmul().ugraph;
    f(block_mut(&mut g, 0));
    g
}

#[test]
fn all_cases_validate() {
    for c in [
        elementwise(),
        rms_two_kernels(Some(sym("d"))),
        fused_rms_matmul(),
        gqa_scores(),
        flash_attention(),
        split_k(),
    ] {
        validate::validate(&c.ugraph).unwrap();
    }
}

#[test]
fn error_roles() {
    let g = ew(|g| g.tensors[1].role = TensorRole::Input(0));
    assert!(matches!(err(&g), UGraphError::Roles(_)));
}

#[test]
fn error_kernel_name() {
    let g = ew(|g| g.kernels[0].name = "1st".into());
    assert!(matches!(err(&g), UGraphError::KernelName { .. }));
    let mut g = rms_two_kernels(Some(sym("d"))).ugraph;
    g.kernels[1].name = g.kernels[0].name.clone();
    assert!(matches!(err(&g), UGraphError::KernelName { index: 1, .. }));
}

#[test]
fn error_tensor_out_of_range() {
    let g = ew(|g| block_mut(g, 0).inputs[1].tensor = TensorId(99));
    assert!(matches!(
        err(&g),
        UGraphError::TensorOutOfRange { tensor: 99, .. }
    ));
}

#[test]
fn error_view_count() {
    let g = ew(|g| block_mut(g, 0).inputs[0].view.push(cst(2)));
    assert!(matches!(err(&g), UGraphError::ViewCount { .. }));
}

#[test]
fn error_read_before_write() {
    let mut g = rms_two_kernels(Some(sym("d"))).ugraph;
    g.kernels.swap(0, 1);
    assert!(matches!(err(&g), UGraphError::ReadBeforeWrite { tensor, .. } if tensor == "r"));
}

#[test]
fn error_write_to_input() {
    // Write y (a graph input) from a kernel that reads only x.
    let g = ew(|g| {
        let b = block_mut(g, 0);
        b.inputs.truncate(1);
        b.ops = vec![BlockOp::Input(0)];
        b.outputs[0].value = ValueId(0);
        b.outputs[0].map.tensor = TensorId(1);
    });
    assert!(matches!(err(&g), UGraphError::WriteToInput { tensor, .. } if tensor == "y"));
}

#[test]
fn error_written_twice() {
    let g = ew(|g| {
        let mut k = g.kernels[0].clone();
        k.name = "again".into();
        g.kernels.push(k);
    });
    assert!(matches!(err(&g), UGraphError::WrittenTwice { kernel, .. } if kernel == "again"));
}

#[test]
fn error_output_not_written() {
    let g = ew(|g| g.kernels.clear());
    assert!(matches!(err(&g), UGraphError::OutputNotWritten { tensor } if tensor == "out"));
}

#[test]
fn error_reads_own_output() {
    let g = ew(|g| block_mut(g, 0).inputs[1].tensor = TensorId(3));
    assert!(matches!(err(&g), UGraphError::ReadsOwnOutput { tensor, .. } if tensor == "out"));
}

#[test]
fn error_too_many_grid_dims() {
    let g = ew(|g| {
        block_mut(g, 0)
            .grid
            .extend([gd(vec![cst(1)], 1), gd(vec![cst(1)], 1)])
    });
    assert!(matches!(
        err(&g),
        UGraphError::TooManyGridDims { count: 4, .. }
    ));
}

#[test]
fn error_empty_grid_dim() {
    let g = ew(|g| block_mut(g, 0).grid[1].extents.clear());
    assert!(matches!(err(&g), UGraphError::EmptyGridDim { dim: 1, .. }));
}

#[test]
fn error_zero_tile() {
    let g = fused(|b| b.forloop.as_mut().unwrap().tile = 0);
    assert!(matches!(err(&g), UGraphError::ZeroTile { .. }));
}

#[test]
fn error_map_arity() {
    let g = ew(|g| {
        block_mut(g, 0).inputs[0].imap.pop();
    });
    assert!(matches!(err(&g), UGraphError::MapArity { .. }));
    let g = ew(|g| block_mut(g, 0).inputs[0].imap[0] = Some(vec![0, 1]));
    assert!(matches!(err(&g), UGraphError::MapArity { .. }));
}

#[test]
fn error_axis_out_of_range() {
    let g = ew(|g| block_mut(g, 0).inputs[0].imap[1] = Some(vec![5]));
    assert!(matches!(
        err(&g),
        UGraphError::AxisOutOfRange {
            axis: 5,
            rank: 2,
            ..
        }
    ));
    let g = fused(|b| {
        b.ops[5] = BlockOp::Reduce {
            op: ReduceOp::Sum,
            input: ValueId(4),
            axis: 2,
            count: None,
        }
    });
    assert!(matches!(
        err(&g),
        UGraphError::AxisOutOfRange { axis: 2, .. }
    ));
}

#[test]
fn error_axis_partitioned_twice() {
    let g = fused(|b| b.inputs[0].fmap = Some(0));
    assert!(matches!(
        err(&g),
        UGraphError::AxisPartitionedTwice { axis: 0, .. }
    ));
}

#[test]
fn error_grid_extent() {
    let g = ew(|g| block_mut(g, 0).inputs[0].imap = vec![Some(vec![1]), Some(vec![0])]);
    assert!(matches!(
        err(&g),
        UGraphError::GridExtent {
            grid_dim: 0,
            axis: 1,
            ..
        }
    ));
}

#[test]
fn error_loop_extent() {
    let g = fused(|b| {
        b.inputs[1].imap[1] = None;
        b.inputs[1].fmap = Some(1);
    });
    assert!(matches!(err(&g), UGraphError::LoopExtent { axis: 1, .. }));
}

#[test]
fn error_fmap() {
    let g = ew(|g| block_mut(g, 0).inputs[0].fmap = Some(1));
    assert!(matches!(err(&g), UGraphError::Fmap { .. }));
    let g = fused(|b| b.outputs[0].map.fmap = Some(1));
    assert!(matches!(err(&g), UGraphError::Fmap { .. }));
}

#[test]
fn error_output_not_partitioned() {
    let g = ew(|g| block_mut(g, 0).outputs[0].map.imap[1] = None);
    assert!(matches!(
        err(&g),
        UGraphError::OutputNotPartitioned { grid_dim: 1, .. }
    ));
}

#[test]
fn error_output_shape() {
    // Write the row sum of squares [n/4, 1] into an [n/4, e/16] tile.
    let g = fused(|b| b.outputs[0].value = ValueId(6));
    assert!(matches!(err(&g), UGraphError::OutputShape { .. }));
}

#[test]
fn error_output_phase() {
    // With a for-loop, output x@w of the current iteration.
    let g = fused(|b| b.outputs[0].value = ValueId(2));
    assert!(matches!(err(&g), UGraphError::OutputPhase { .. }));
}

#[test]
fn error_operand_order() {
    let g = ew(|g| block_mut(g, 0).ops[3] = BlockOp::Unary(UnaryOp::Silu, ValueId(5)));
    assert!(matches!(
        err(&g),
        UGraphError::OperandOrder { operand: 5, .. }
    ));
    let g = ew(|g| block_mut(g, 0).outputs[0].value = ValueId(50));
    assert!(matches!(
        err(&g),
        UGraphError::OperandOrder { operand: 50, .. }
    ));
}

#[test]
fn error_input_index() {
    let g = ew(|g| block_mut(g, 0).ops[0] = BlockOp::Input(7));
    assert!(matches!(
        err(&g),
        UGraphError::InputIndex {
            index: 7,
            count: 3,
            ..
        }
    ));
}

#[test]
fn error_broadcast() {
    // [n/4, d/16 (loop)] + [d/16 (loop), e/16].
    let g = fused(|b| b.ops[2] = BlockOp::Binary(BinaryOp::Add, ValueId(0), ValueId(1)));
    assert!(matches!(err(&g), UGraphError::Broadcast { op: 2, .. }));
}

#[test]
fn error_broadcast_of_different_partitions() {
    // Two [n/4]-looking tiles from different grid dims do not broadcast.
    let n = sym("n");
    let mut t = Tensors::default();
    let x = t.input("x", vec![n.clone()]);
    let y = t.input("y", vec![n.clone()]);
    let out = t.output("o", vec![n.clone(), n.clone()]);
    let mut b = Block::new(vec![gd(vec![n.clone()], 4), gd(vec![n.clone()], 4)], None);
    let xv = b.load(tmap(x, std::slice::from_ref(&n), &[Some(&[0]), None], None));
    let yv = b.load(tmap(y, std::slice::from_ref(&n), &[None, Some(&[0])], None));
    let s = b.bin(BinaryOp::Add, xv, yv);
    b.store(
        s,
        tmap(
            out,
            &[n.clone(), n.clone()],
            &[Some(&[0]), Some(&[1])],
            None,
        ),
    );
    let g = t.graph(vec![b.kernel("k")]);
    assert!(matches!(err(&g), UGraphError::Broadcast { op: 2, .. }));
}

#[test]
fn error_matmul_rank() {
    let g = fused(|b| {
        b.ops[2] = BlockOp::Const(ScalarExpr::lit(1.0));
        b.ops[3] = BlockOp::Matmul(ValueId(2), ValueId(1));
    });
    assert!(matches!(err(&g), UGraphError::MatmulRank { op: 3, .. }));
}

#[test]
fn error_matmul_inner() {
    // x@x: contraction d/16 (loop) against n/4.
    let g = fused(|b| b.ops[2] = BlockOp::Matmul(ValueId(0), ValueId(0)));
    assert!(matches!(err(&g), UGraphError::MatmulInner { op: 2, .. }));
}

#[test]
fn error_dtype_mismatch() {
    let mut g = fused_rms_matmul().ugraph;
    g.tensors[1].dtype = DType::F16;
    assert!(matches!(
        err(&g),
        UGraphError::DtypeMismatch {
            left: DType::F32,
            right: DType::F16,
            ..
        }
    ));
}

#[test]
fn error_accum_without_loop() {
    let g = ew(|g| {
        block_mut(g, 0).ops[3] = BlockOp::Accum {
            kind: AccumKind::Sum,
            input: ValueId(0),
        }
    });
    assert!(matches!(
        err(&g),
        UGraphError::AccumWithoutLoop { op: 3, .. }
    ));
}

#[test]
fn error_accum_of_post() {
    let g = fused(|b| {
        b.ops[6] = BlockOp::Accum {
            kind: AccumKind::Sum,
            input: ValueId(3),
        }
    });
    assert!(matches!(
        err(&g),
        UGraphError::AccumOfPost {
            op: 6,
            input: 3,
            ..
        }
    ));
}

#[test]
fn error_accum_loop_axis() {
    let g = fused(|b| {
        b.ops[3] = BlockOp::Accum {
            kind: AccumKind::Sum,
            input: ValueId(0),
        }
    });
    assert!(matches!(err(&g), UGraphError::AccumLoopAxis { op: 3, .. }));
}

#[test]
fn error_running() {
    let g = fused(|b| b.ops[4] = BlockOp::Running(ValueId(2)));
    assert!(matches!(
        err(&g),
        UGraphError::Running {
            op: 4,
            operand: 2,
            ..
        }
    ));
}

#[test]
fn error_rescale_max() {
    let g = fused(|b| {
        b.ops[6] = BlockOp::Accum {
            kind: AccumKind::RescaledSum { max: ValueId(3) },
            input: ValueId(5),
        }
    });
    assert!(matches!(
        err(&g),
        UGraphError::RescaleMax { op: 6, max: 3, .. }
    ));
}

#[test]
fn error_rescale_max_must_broadcast() {
    // The running max [n/4, e/16] cannot rescale a [n/4, 1] sum.
    let g = fused(|b| {
        b.ops[3] = BlockOp::Accum {
            kind: AccumKind::Max,
            input: ValueId(2),
        };
        b.ops[6] = BlockOp::Accum {
            kind: AccumKind::RescaledSum { max: ValueId(3) },
            input: ValueId(5),
        };
    });
    assert!(matches!(err(&g), UGraphError::Broadcast { op: 6, .. }));
}

#[test]
fn error_post_reads_variant() {
    // After the loop, scale by the last iteration's Σx² tile.
    let g = fused(|b| b.ops[12] = BlockOp::Binary(BinaryOp::Mul, ValueId(3), ValueId(5)));
    assert!(matches!(
        err(&g),
        UGraphError::PostReadsVariant {
            op: 12,
            operand: 5,
            ..
        }
    ));
}

#[test]
fn error_split_combine_shape() {
    let mut g = split_k().ugraph;
    g.tensors[3].shape = vec![sym("n"), sym("m")];
    assert!(matches!(err(&g), UGraphError::SplitCombineShape { .. }));
}

#[test]
fn error_permutation() {
    let g = ew(|g| block_mut(g, 0).ops[3] = BlockOp::Permute(ValueId(0), vec![0, 0]));
    assert!(matches!(err(&g), UGraphError::Permutation { op: 3, .. }));
}

#[test]
fn permute_transposes_a_tile() {
    // out[d, n] = x[n, d]ᵀ, with a 2-D grid: the permuted tile's axes swap.
    let (n, d) = (sym("n"), sym("d"));
    let mut t = Tensors::default();
    let x = t.input("x", vec![n.clone(), d.clone()]);
    let out = t.output("xt", vec![d.clone(), n.clone()]);
    let mut b = Block::new(vec![gd(vec![n.clone()], 4), gd(vec![d.clone()], 8)], None);
    let xv = b.load(tmap(
        x,
        &[n.clone(), d.clone()],
        &[Some(&[0]), Some(&[1])],
        None,
    ));
    let p = b.op(BlockOp::Permute(xv, vec![1, 0]));
    b.store(
        p,
        tmap(
            out,
            &[d.clone(), n.clone()],
            &[Some(&[1]), Some(&[0])],
            None,
        ),
    );
    let mut g = GraphBuilder::new();
    let gx = f32_input(&mut g, "x", &[n.clone(), d.clone()]);
    let o = g.transpose(gx, 0, 1).unwrap();
    g.output("xt", o);
    assert_matches(&Case {
        ugraph: t.graph(vec![b.kernel("transpose")]),
        program: g.finish(),
        dims: dims(&[("n", 10), ("d", 19)]),
    });
}

// ------------------------------------------------------------- split loops

/// `a @ b` with the loop over k split 4 ways (grid x, extent 4, tile 1):
/// split j runs k tiles `[j*per, (j+1)*per)`; partials `[4, m, n]`, summed
/// by a combine. Splits past the last k tile stay at 0.
fn split_loop_matmul() -> Case {
    let (m, k, n) = (sym("m"), sym("k"), sym("n"));
    let splits = DimExpr::constant(4);
    let mut t = Tensors::default();
    let a = t.input("a", vec![m.clone(), k.clone()]);
    let bt = t.input("b", vec![k.clone(), n.clone()]);
    let part = t.inter("partials", vec![splits.clone(), m.clone(), n.clone()]);
    let c = t.output("c", vec![m.clone(), n.clone()]);
    let grid = vec![
        gd(vec![splits.clone()], 1),
        gd(vec![m.clone()], 1),
        gd(vec![n.clone()], 16),
    ];
    let mut b = Block::new(grid, Some((k.clone(), 8)));
    b.0.forloop.as_mut().expect("a loop").split = Some(0);
    let one = DimExpr::constant(1);
    let av = b.load(tmap(
        a,
        &[one.clone(), m.clone(), k.clone()],
        &[Some(&[0]), Some(&[1]), None],
        Some(2),
    ));
    let bv = b.load(tmap(
        bt,
        &[one.clone(), k.clone(), n.clone()],
        &[Some(&[0]), None, Some(&[2])],
        Some(1),
    ));
    let prod = b.mm(av, bv);
    let acc = b.acc(AccumKind::Sum, prod);
    let imap: [Option<&[usize]>; 3] = [Some(&[0]), Some(&[1]), Some(&[2])];
    b.store(
        acc,
        tmap(part, &[splits, m.clone(), n.clone()], &imap, None),
    );
    let combine = Kernel {
        name: "combine".into(),
        body: KernelBody::Predefined(Predefined::SplitCombine {
            partials: part,
            output: c,
        }),
    };
    let ugraph = t.graph(vec![b.kernel("split_loop"), combine]);
    let mut g = GraphBuilder::new();
    let ga = f32_input(&mut g, "a", &[m.clone(), k.clone()]);
    let gb = f32_input(&mut g, "b", &[k.clone(), n.clone()]);
    let o = g.matmul(ga, gb).unwrap();
    g.output("c", o);
    Case {
        ugraph,
        program: g.finish(),
        dims: dims(&[("m", 3), ("k", 100), ("n", 40)]),
    }
}

#[test]
fn split_loop_shares_iterations_and_leaves_empty_splits_at_identity() {
    // k = 100: 13 tiles, 4 per split (the last split gets 1); k = 9: 2
    // tiles, splits 2 and 3 run nothing; k = 1: one element.
    for k in [100, 9, 1] {
        let mut case = split_loop_matmul();
        case.dims.insert("k".into(), k);
        assert_matches(&case);
    }
    // The ranges themselves.
    use prism::ugraph::split_range;
    assert_eq!(split_range(13, 4, 0), (0, 4));
    assert_eq!(split_range(13, 4, 3), (12, 13));
    assert_eq!(split_range(2, 4, 2), (2, 2));
    assert_eq!(split_range(5, 1, 0), (0, 5));
}

#[test]
fn split_loop_partials_hold_each_splits_share() {
    // With one split reading nothing (k = 9: tiles 0..2 go to splits 0 and
    // 1), the partials of splits 2 and 3 are exactly zero.
    let mut case = split_loop_matmul();
    case.dims.insert("k".into(), 9);
    let inputs = inputs_for(&case.program, &case.dims, 3);
    // Run the first kernel alone: make the partials an output.
    let mut g = case.ugraph.clone();
    g.kernels.truncate(1);
    g.tensors[2].role = TensorRole::Output(0);
    g.tensors[3].role = TensorRole::Intermediate;
    let out = interp::run(&g, &case.dims, &inputs).expect("runs");
    let (m, n) = (3, 40);
    let part = &out[0].data;
    assert_eq!(part.len(), 4 * m * n);
    assert!(part[2 * m * n..].iter().all(|v| *v == 0.0));
    assert!(part[..m * n].iter().any(|v| *v != 0.0));
}

#[test]
fn error_loop_split_grid_dim_missing() {
    let mut g = split_loop_matmul().ugraph;
    block_mut(&mut g, 0).forloop.as_mut().expect("a loop").split = Some(5);
    assert!(matches!(
        err(&g),
        UGraphError::LoopSplit { grid_dim: 5, .. }
    ));
}

#[test]
fn error_loop_split_needs_a_constant_extent_and_tile_1() {
    let mut g = split_loop_matmul().ugraph;
    block_mut(&mut g, 0).forloop.as_mut().expect("a loop").split = Some(1);
    assert!(matches!(
        err(&g),
        UGraphError::LoopSplit { grid_dim: 1, .. }
    ));
    let mut g = split_loop_matmul().ugraph;
    block_mut(&mut g, 0).grid[0].tile = 2;
    assert!(matches!(
        err(&g),
        UGraphError::LoopSplit { grid_dim: 0, .. }
    ));
}

#[test]
fn error_loop_split_dim_partitions_an_input() {
    // Input a's rows mapped to the split grid dim: the splits would read
    // different data, which a split loop does not allow.
    let mut g = split_loop_matmul().ugraph;
    let b = block_mut(&mut g, 0);
    b.inputs[0].view = vec![sym("m"), sym("k")];
    b.inputs[0].imap = vec![Some(vec![0]), None, None];
    b.inputs[0].fmap = Some(1);
    assert!(matches!(
        err(&g),
        UGraphError::LoopSplit { grid_dim: 0, .. }
    ));
}
