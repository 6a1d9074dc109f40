//! Property tests of the search over random small, well-typed programs.
//!
//! Each case generates a prism.toml (1–3 f32 inputs over symbolic dims, up to
//! five generated operations plus the ones that make every input and every
//! intermediate reach the output), parses it with the front end and runs
//! `search`. Then:
//!
//! - the direct lowering always works (so at least one candidate lowers);
//! - the chosen candidate, if any, passed both the cross-check and the
//!   proof, and the graph the search returns is that candidate's lowering;
//!   no candidate is chosen only when none passed both (at most 5% of the
//!   programs: the proof is incomplete);
//! - every candidate that passed the cross-check (in particular every one
//!   that is also proven, i.e. verified) agrees with the reference
//!   interpreter on fresh seeded inputs at dims the cross-check did not use
//!   (1, 5, 17, 33, 70: below, between and beyond the tiles, not dividing
//!   them);
//! - every candidate that lowers passes the search's own cross-check (a
//!   failure there is a lowering bug, even though the search catches it).
//!
//! A second property runs the search twice on each program and wants the
//! same choice and byte-identical serialized graphs and reports.
//!
//! Programs stay numerically well-conditioned by construction: `exp` only of
//! values of small scale, `log`, `sqrt`, `rsqrt` and divisions only of
//! quantities bounded away from zero (`1 + exp(a)`, `square(a) + 1`,
//! `sigmoid(a) + 0.5`, or values positive by construction such as `exp(a)`
//! or `softmax(a)`), so the tolerance means something.
//!
//! The proptest runners use a fixed RNG seed and no failure persistence: the
//! cases are the same on every run.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use prism::frontend;
use prism::ir::{BinaryOp, DimBindings, ScalarExpr, Workload};
use prism::reference::{self, Precision, compare};
use prism::search::crosscheck::{CrossCheckOptions, trial_dims};
use prism::search::strategies::{Strategy, rebuild, search};
use prism::ugraph::lower::{LowerOptions, lower};
use prism::ugraph::{BlockOp, KernelBody, KernelGraph, interp};
use proptest::collection::vec;
use proptest::num::u32::ANY;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed, TestCaseError, TestRunner};

/// Cases of the main property.
const CASES: u32 = 200;
/// Cases of the determinism property (each runs the search twice).
const DETERMINISM_CASES: u32 = 48;

/// Relative L2 error above which a candidate disagrees with the reference.
/// Both interpreters compute in f64 (inputs are f32 values), so they differ
/// only by summation order; 1e-6 is far above that and far below any real
/// error (a flipped sign or a wrong constant is O(1)).
const TOLERANCE: f64 = 1e-6;

/// An output whose largest absolute error is below this agrees even when its
/// relative error is large: a result that is zero up to rounding (e.g.
/// `mean(a - mean(a))`) has no meaningful relative error.
const ABS_FLOOR: f64 = 1e-10;

/// Dim values of the fresh checks. The cross-check uses 2, 3, 5, 7, 11, 13,
/// 17, `tile + 3` and `2 * tile + 3` (tiles are 16..=1024), in combinations
/// that `fresh_dims` excludes anyway.
const FRESH: [i64; 5] = [70, 33, 17, 5, 1];

/// Seeds of the fresh inputs; the search's cross-check uses `1 + trial`.
const FRESH_SEED: u64 = 0xF2E5_0000;

/// `exp` is applied only to values whose scale is at most this.
const EXP_SCALE: f64 = 2.5;

// ------------------------------------------------------------------ generator

use common::Tape;

/// A value of the program: an input or a `let`.
#[derive(Clone, Debug)]
struct Val {
    name: String,
    /// Each dim as program text: `n`, `1`, `b * n`.
    shape: Vec<String>,
    /// A rough bound on the typical magnitude (gates `exp`).
    scale: f64,
    /// Positive and computed accurately (no cancellation): a safe divisor
    /// and argument of `log`, `sqrt`, `rsqrt`.
    pos: bool,
    input: bool,
}

fn shape_of(dims: &[&str]) -> Vec<String> {
    dims.iter().map(|d| d.to_string()).collect()
}

/// Numpy broadcasting of two symbolic shapes (dims equal as text, or `1`).
fn broadcast(a: &[String], b: &[String]) -> Option<Vec<String>> {
    let r = a.len().max(b.len());
    let at = |s: &[String], i: usize| (i + s.len()).checked_sub(r).map(|j| s[j].clone());
    (0..r)
        .map(|i| match (at(a, i), at(b, i)) {
            (Some(x), Some(y)) if x == y => Some(x),
            (Some(x), Some(y)) if x == "1" => Some(y),
            (Some(x), Some(y)) if y == "1" => Some(x),
            (Some(_), Some(_)) => None,
            (Some(x), None) | (None, Some(x)) => Some(x),
            (None, None) => None,
        })
        .collect()
}

/// A dim that is one declared name (not `1`, not a product).
fn atomic(d: &str) -> bool {
    d.chars().all(|c| c.is_ascii_alphabetic())
}

/// A generated program.
#[derive(Clone, Debug)]
struct Program {
    toml: String,
    /// Declared dims with their largest value (all ranges start at 1).
    dims: Vec<(String, i64)>,
    /// Builtins and operators used (coverage).
    ops: BTreeSet<&'static str>,
}

struct Gen<'a> {
    tape: Tape<'a>,
    vals: Vec<Val>,
    used: Vec<bool>,
    stmts: Vec<String>,
    ops: BTreeSet<&'static str>,
    dims: Vec<String>,
}

impl Gen<'_> {
    /// Pick an operand satisfying `ok`: mostly the first of the inputs
    /// nobody used yet, then the values nobody used yet (most recent first),
    /// then the others (most recent first); sometimes any of them.
    fn operand(&mut self, ok: impl Fn(&Val) -> bool) -> Option<usize> {
        let n = self.vals.len();
        let (vals, used) = (&self.vals, &self.used);
        let mut order: Vec<usize> = (0..n).filter(|&i| vals[i].input && !used[i]).collect();
        order.extend((0..n).rev().filter(|&i| !vals[i].input && !used[i]));
        order.extend((0..n).rev().filter(|&i| used[i]));
        order.retain(|&i| ok(&vals[i]));
        if order.is_empty() {
            return None;
        }
        let i = if self.tape.chance(1, 3) {
            order[self.tape.pick(order.len())]
        } else {
            order[0]
        };
        self.used[i] = true;
        Some(i)
    }

    fn push(&mut self, expr: String, shape: Vec<String>, scale: f64, pos: bool) {
        let name = format!("v{}", self.stmts.len());
        self.stmts.push(format!("let {name} = {expr}"));
        self.vals.push(Val {
            name,
            shape,
            scale: scale.min(1e6),
            pos,
            input: false,
        });
        self.used.push(false);
    }

    fn op(&mut self, name: &'static str) {
        self.ops.insert(name);
    }

    fn has_dim(&self, d: &str) -> bool {
        self.dims.iter().any(|x| x == d)
    }

    /// An expression over `v` that is at least `min` > 0, with its scale
    /// and `min`.
    fn positive(&mut self, v: &Val) -> (String, f64, f64) {
        if v.pos && self.tape.chance(1, 3) {
            return (v.name.clone(), v.scale, 0.0);
        }
        match self.tape.pick(3) {
            1 => {
                self.op("sigmoid");
                (format!("(sigmoid({}) + 0.5)", v.name), 1.5, 0.5)
            }
            2 if v.scale <= EXP_SCALE => {
                self.op("exp");
                (
                    format!("(1 + exp({}))", v.name),
                    1.0 + (4.0 * v.scale).exp(),
                    1.0,
                )
            }
            _ => {
                self.op("square");
                (
                    format!("(square({}) + 1)", v.name),
                    v.scale * v.scale + 1.0,
                    1.0,
                )
            }
        }
    }

    fn unary(&mut self) {
        let Some(a) = self.operand(|_| true) else {
            return;
        };
        let a = self.vals[a].clone();
        let names = ["neg", "relu", "sigmoid", "silu", "gelu", "square", "exp"];
        let mut f = *self.tape.of(&names);
        if f == "exp" && a.scale > EXP_SCALE {
            f = "sigmoid";
        }
        let (scale, pos) = match f {
            "sigmoid" => (1.0, true),
            "square" => (a.scale * a.scale, false),
            "exp" => ((4.0 * a.scale).exp(), true),
            _ => (a.scale, false),
        };
        self.op(f);
        let expr = if f == "neg" && self.tape.chance(1, 2) {
            self.op("-x");
            format!("-{}", a.name)
        } else {
            format!("{f}({})", a.name)
        };
        self.push(expr, a.shape, scale, pos);
    }

    fn binary(&mut self) {
        let Some(a) = self.operand(|_| true) else {
            return;
        };
        let a = self.vals[a].clone();
        let Some(b) = self.operand(|v| broadcast(&a.shape, &v.shape).is_some()) else {
            return;
        };
        let b = self.vals[b].clone();
        let shape = broadcast(&a.shape, &b.shape).expect("checked by operand");
        let (sym, func, name) =
            *self
                .tape
                .of(&[("+", "add", "+"), ("-", "sub", "-"), ("*", "mul", "*")]);
        self.op(name);
        let expr = if self.tape.chance(1, 4) {
            self.op("add/sub/mul/div()");
            format!("{func}({}, {})", a.name, b.name)
        } else {
            format!("{} {sym} {}", a.name, b.name)
        };
        let (scale, pos) = match sym {
            "*" => (a.scale * b.scale, a.pos && b.pos),
            "+" => (a.scale + b.scale, a.pos && b.pos),
            _ => (a.scale + b.scale, false),
        };
        self.push(expr, shape, scale, pos);
    }

    fn scalar(&mut self) {
        let Some(a) = self.operand(|_| true) else {
            return;
        };
        let a = self.vals[a].clone();
        // (text, largest, smallest magnitude); all positive.
        let mut constants = vec![("0.5", 0.5, 0.5), ("2", 2.0, 2.0), ("1.5", 1.5, 1.5)];
        if self.has_dim("d") {
            constants.push(("(1 / d)", 1.0, 1.0 / 80.0));
        }
        if self.has_dim("n") {
            constants.push(("(1 / sqrt(n))", 1.0, 1.0 / 9.0));
        }
        let (c, hi, lo) = *self.tape.of(&constants);
        self.op("scalar");
        if c.contains('d') || c.contains('n') {
            self.op("dim as scalar");
        }
        let (expr, scale, pos) = match self.tape.pick(5) {
            0 => (format!("{} * {c}", a.name), a.scale * hi, a.pos),
            1 => (format!("{c} * {}", a.name), a.scale * hi, a.pos),
            2 => (format!("{} + {c}", a.name), a.scale + hi, a.pos),
            3 => (format!("{c} - {}", a.name), a.scale + hi, false),
            _ => (format!("{} / {c}", a.name), a.scale / lo, a.pos),
        };
        self.push(expr, a.shape, scale, pos);
    }

    fn div(&mut self) {
        let Some(a) = self.operand(|_| true) else {
            return;
        };
        let a = self.vals[a].clone();
        let Some(b) = self.operand(|v| broadcast(&a.shape, &v.shape).is_some()) else {
            return;
        };
        let b = self.vals[b].clone();
        let shape = broadcast(&a.shape, &b.shape).expect("checked by operand");
        let (p, _, min) = self.positive(&b);
        self.op("/");
        let expr = if self.tape.chance(1, 4) {
            self.op("add/sub/mul/div()");
            format!("div({}, {p})", a.name)
        } else {
            format!("{} / {p}", a.name)
        };
        let scale = if min > 0.0 { a.scale / min } else { 1e6 };
        self.push(expr, shape, scale, a.pos && b.pos);
    }

    fn positive_unary(&mut self) {
        let Some(a) = self.operand(|_| true) else {
            return;
        };
        let a = self.vals[a].clone();
        let (p, ps, min) = self.positive(&a);
        let f = *self.tape.of(&["sqrt", "rsqrt", "log"]);
        self.op(f);
        let scale = match f {
            "sqrt" => ps.sqrt(),
            "rsqrt" if min > 0.0 => 1.0 / min.sqrt(),
            "log" => 2.0 + ps.ln().abs() + if min > 0.0 { min.ln().abs() } else { 20.0 },
            _ => 1e6,
        };
        self.push(format!("{f}({p})"), a.shape, scale, f != "log");
    }

    fn reduce(&mut self) {
        let Some(a) = self.operand(|_| true) else {
            return;
        };
        let a = self.vals[a].clone();
        let rank = a.shape.len() as i64;
        let f = *self.tape.of(&["sum", "max", "mean"]);
        self.op(f);
        let axis = *self.tape.of(&[-1, 0, rank - 2, 1]);
        let axis = if axis >= rank { -1 } else { axis };
        let keepdim = rank == 1 || self.tape.chance(1, 2);
        let at = if axis < 0 { rank + axis } else { axis } as usize;
        let mut shape = a.shape.clone();
        if keepdim {
            shape[at] = "1".into();
            self.op("keepdim");
        } else {
            shape.remove(at);
        }
        let expr = match (axis, keepdim, self.tape.pick(3)) {
            (-1, false, 0) => format!("{f}({})", a.name),
            (_, false, 1) => format!("{f}({}, axis={axis})", a.name),
            (_, false, _) => format!("{f}({}, {axis})", a.name),
            (_, true, 0) => format!("{f}({}, {axis}, keepdim=true)", a.name),
            (_, true, _) => format!("{f}({}, axis={axis}, keepdim=true)", a.name),
        };
        let scale = match f {
            "sum" if a.pos => a.scale * 80.0,
            "sum" => a.scale * 9.0,
            _ => a.scale,
        };
        self.push(expr, shape, scale, a.pos);
    }

    /// `a @ b`, `matmul(a, b)` or `a @ transpose(b)`, batch dims broadcast.
    fn matmul(&mut self) {
        fn fits(a: &Val, b: &Val) -> Option<(Vec<String>, bool)> {
            let (ra, rb) = (a.shape.len(), b.shape.len());
            if ra < 2 || rb < 2 {
                return None;
            }
            let batch = broadcast(&a.shape[..ra - 2], &b.shape[..rb - 2])?;
            let k = &a.shape[ra - 1];
            let (direct, transposed) = (&b.shape[rb - 2] == k, &b.shape[rb - 1] == k);
            let last = if direct {
                &b.shape[rb - 1]
            } else if transposed {
                &b.shape[rb - 2]
            } else {
                return None;
            };
            let mut shape = batch;
            shape.push(a.shape[ra - 2].clone());
            shape.push(last.clone());
            Some((shape, !direct))
        }
        let vals = self.vals.clone();
        let Some(a) = self.operand(|a| vals.iter().any(|b| fits(a, b).is_some())) else {
            return self.unary();
        };
        let a = self.vals[a].clone();
        let Some(b) = self.operand(|b| fits(&a, b).is_some()) else {
            return self.unary();
        };
        let b = self.vals[b].clone();
        let (shape, transposed) = fits(&a, &b).expect("checked by operand");
        let rhs = if transposed {
            self.op("transpose");
            format!("transpose({})", b.name)
        } else {
            b.name.clone()
        };
        let expr = if self.tape.chance(1, 3) {
            self.op("matmul()");
            format!("matmul({}, {rhs})", a.name)
        } else {
            self.op("@");
            format!("{} @ {rhs}", a.name)
        };
        self.push(expr, shape, a.scale * b.scale * 9.0, a.pos && b.pos);
    }

    fn rms_norm(&mut self) {
        let Some(a) = self.operand(|_| true) else {
            return;
        };
        let a = self.vals[a].clone();
        self.op("rms_norm");
        let last = a.shape[a.shape.len() - 1].clone();
        let g = if self.tape.chance(1, 2) {
            self.operand(|v| v.shape == [last.clone()])
                .map(|g| self.vals[g].clone())
        } else {
            None
        };
        let eps = self.tape.chance(1, 3);
        let expr = match (&g, eps) {
            (None, false) => format!("rms_norm({})", a.name),
            (None, true) => format!("rms_norm({}, eps=1e-5)", a.name),
            (Some(g), false) => format!("rms_norm({}, {})", a.name, g.name),
            (Some(g), true) => format!("rms_norm({}, {}, 1e-5)", a.name, g.name),
        };
        if g.is_some() {
            self.op("rms_norm gain");
        }
        let scale = g.map_or(1.0, |g| g.scale);
        self.push(expr, a.shape, scale, false);
    }

    fn softmax(&mut self) {
        let Some(a) = self.operand(|_| true) else {
            return;
        };
        let a = self.vals[a].clone();
        self.op("softmax");
        let rank = a.shape.len() as i64;
        let expr = match self.tape.pick(4) {
            1 if rank >= 2 => {
                self.op("softmax axis");
                format!("softmax({}, 0)", a.name)
            }
            2 => format!("softmax({}, axis=-1)", a.name),
            3 if rank >= 2 => {
                self.op("softmax axis");
                format!("softmax({}, axis=-2)", a.name)
            }
            _ => format!("softmax({})", a.name),
        };
        self.push(expr, a.shape, 1.0, true);
    }

    /// transpose, permute, reshape.
    fn layout(&mut self) {
        let Some(a) = self.operand(|v| v.shape.len() >= 2) else {
            return self.unary();
        };
        let a = self.vals[a].clone();
        let s = &a.shape;
        let rank = s.len();
        let mut shape = s.clone();
        let expr = match (rank, self.tape.pick(4)) {
            (2, 1) => {
                self.op("permute");
                shape.swap(0, 1);
                format!("permute({}, [1, 0])", a.name)
            }
            (3, 1) => {
                self.op("permute");
                shape = vec![s[2].clone(), s[0].clone(), s[1].clone()];
                format!("permute({}, [2, 0, 1])", a.name)
            }
            (3, 2) => {
                self.op("transpose");
                shape.swap(0, 1);
                format!("transpose({}, 0, 1)", a.name)
            }
            (3, 3) if atomic(&s[0]) && atomic(&s[1]) => {
                self.op("reshape");
                shape = vec![format!("{} * {}", s[0], s[1]), s[2].clone()];
                format!("reshape({}, [{}])", a.name, shape.join(", "))
            }
            (2, 3) if s[0] == "b * n" => {
                self.op("reshape");
                shape = shape_of(&["b", "n", &s[1]]);
                format!("reshape({}, [{}])", a.name, shape.join(", "))
            }
            _ => {
                self.op("transpose");
                shape.swap(rank - 2, rank - 1);
                format!("transpose({})", a.name)
            }
        };
        self.push(expr, shape, a.scale, a.pos);
    }

    /// Use value `u` in the last value, so that every input and every `let`
    /// reaches the output.
    fn close(&mut self, u: usize) {
        let last = self.vals.len() - 1;
        let (l, v) = (self.vals[last].clone(), self.vals[u].clone());
        self.used[u] = true;
        self.used[last] = true;
        if let Some(shape) = broadcast(&l.shape, &v.shape) {
            self.op("+");
            self.push(
                format!("{} + {}", l.name, v.name),
                shape,
                l.scale + v.scale,
                false,
            );
        } else if l.shape.len() >= 2
            && v.shape.len() == 2
            && v.shape[0] == l.shape[l.shape.len() - 1]
        {
            self.op("@");
            let mut shape = l.shape.clone();
            *shape.last_mut().expect("rank 2") = v.shape[1].clone();
            self.push(
                format!("{} @ {}", l.name, v.name),
                shape,
                l.scale * v.scale * 9.0,
                false,
            );
        } else {
            // Sum `v` down to all-ones dims, which broadcast with anything.
            self.op("sum");
            self.op("keepdim");
            let mut e = v.name.clone();
            for axis in 0..v.shape.len() {
                e = format!("sum({e}, {axis}, keepdim=true)");
            }
            let ones = vec!["1".to_string(); v.shape.len()];
            let shape = broadcast(&l.shape, &ones).expect("ones broadcast");
            self.op("+");
            self.push(
                format!("{} + {e}", l.name),
                shape,
                l.scale + v.scale * 80.0,
                false,
            );
        }
    }
}

/// The program for a tape of choices.
fn generate(choices: &[u32]) -> Program {
    let mut tape = Tape { choices, at: 0 };
    // Inputs: x, then up to two more of a kind that relates to x.
    let batched = tape.chance(1, 4);
    let x = if batched {
        shape_of(&["b", "n", "d"])
    } else {
        shape_of(&["n", "d"])
    };
    let mut inputs: Vec<(String, Vec<String>, bool)> = vec![("x".into(), x.clone(), false)];
    let extra = tape.pick(3);
    for name in ["y", "z"].into_iter().take(extra) {
        // (shape, scaled init 1/sqrt(d))
        let kinds: [(Vec<String>, bool); 6] = [
            (x.clone(), false),
            (shape_of(&["d", "e"]), true),
            (shape_of(&["d"]), false),
            (shape_of(&["n", "1"]), false),
            (shape_of(&["1", "d"]), false),
            (shape_of(&["e", "d"]), true),
        ];
        let (shape, init) = tape.of(&kinds).clone();
        inputs.push((name.into(), shape, init));
    }
    // Dims: every atomic dim of an input, each a range from 1.
    let mut dims: Vec<(String, i64)> = Vec::new();
    for (_, shape, _) in &inputs {
        for d in shape.iter().filter(|d| atomic(d)) {
            if dims.iter().all(|(n, _)| n != d) {
                let hi = match d.as_str() {
                    "b" => *tape.of(&[3, 2]),
                    "n" => *tape.of(&[64, 16, 80, 33]),
                    "d" => *tape.of(&[64, 80, 16, 48]),
                    _ => *tape.of(&[16, 64, 80]),
                };
                dims.push((d.clone(), hi));
            }
        }
    }
    let mut g = Gen {
        tape,
        vals: inputs
            .iter()
            .map(|(name, shape, init)| Val {
                name: name.clone(),
                shape: shape.clone(),
                // A weight with init 1/sqrt(d): products over d keep scale 1.
                scale: if *init { 1.0 / 9.0 } else { 1.0 },
                pos: false,
                input: true,
            })
            .collect(),
        used: vec![false; inputs.len()],
        stmts: Vec::new(),
        ops: BTreeSet::new(),
        dims: dims.iter().map(|(d, _)| d.clone()).collect(),
    };
    let n_ops = 1 + g.tape.pick(5);
    for _ in 0..n_ops {
        match g.tape.pick(10) {
            0 => g.unary(),
            1 => g.binary(),
            2 => g.scalar(),
            3 => g.div(),
            4 => g.positive_unary(),
            5 => g.reduce(),
            6 => g.matmul(),
            7 => g.rms_norm(),
            8 => g.softmax(),
            _ => g.layout(),
        }
    }
    if g.stmts.is_empty() {
        g.unary();
    }
    // Sometimes an earlier value is an output too.
    let generated = g.stmts.len();
    let aux = (generated > 1 && g.tape.chance(1, 4)).then(|| g.tape.pick(generated - 1));
    if let Some(j) = aux {
        g.used[inputs.len() + j] = true;
    }
    // Every input and every value flows into the last value (no dead code).
    let dangling: Vec<usize> = (0..g.vals.len() - 1).filter(|&i| !g.used[i]).collect();
    for u in dangling {
        g.close(u);
    }
    let last = g.stmts.len() - 1;
    g.stmts[last] = g.stmts[last].replacen(&format!("let v{last} = "), "out = ", 1);
    if let Some(j) = aux {
        g.stmts[j] = g.stmts[j].replacen("let ", "", 1);
        g.ops.insert("two outputs");
    }
    let inputs_text: Vec<String> = inputs
        .iter()
        .map(|(name, shape, _)| format!("{name} = \"f32[{}]\"", shape.join(", ")))
        .collect();
    let dims_text: Vec<String> = dims
        .iter()
        .map(|(d, hi)| format!("{d} = \"1..={hi}\""))
        .collect();
    let init: Vec<String> = inputs
        .iter()
        .filter(|(_, _, init)| *init)
        .map(|(name, _, _)| format!("{name} = \"1/sqrt(d)\""))
        .collect();
    let mut toml = format!(
        "[workload.prop]\ninputs = {{ {} }}\nprogram = \"\"\"\n{}\n\"\"\"\ndims = {{ {} }}\n",
        inputs_text.join(", "),
        g.stmts.join("\n"),
        dims_text.join(", "),
    );
    if !init.is_empty() {
        toml.push_str(&format!("init = {{ {} }}\n", init.join(", ")));
    }
    Program {
        toml,
        dims,
        ops: g.ops,
    }
}

// -------------------------------------------------------------------- checker

/// Run `g` and the reference on seeded inputs at `dims`: the worst relative
/// L2 error over the outputs (for the statistics), or why they disagree.
fn agreement(w: &Workload, g: &KernelGraph, dims: &DimBindings, seed: u64) -> Result<f64, String> {
    let inputs = reference::random_inputs(w, dims, seed).map_err(|e| format!("inputs: {e}"))?;
    let want = reference::eval(&w.graph, dims, &inputs, Precision::F64)
        .map_err(|e| format!("reference: {e}"))?;
    let got = interp::run(g, dims, &inputs).map_err(|e| format!("μGraph interpreter: {e}"))?;
    if got.len() != want.len() {
        return Err(format!("{} outputs, want {}", got.len(), want.len()));
    }
    let mut worst = 0.0f64;
    for (i, (got, want)) in got.iter().zip(&want).enumerate() {
        let name = &w.graph.outputs[i].name;
        let c = compare(got, want).ok_or_else(|| {
            format!(
                "output `{name}`: shape {:?}, want {:?}",
                got.shape, want.shape
            )
        })?;
        if c.non_finite_mismatches > 0 || !(c.rel_l2 <= TOLERANCE || c.max_abs <= ABS_FLOOR) {
            return Err(format!("output `{name}` disagrees: {c:?}"));
        }
        worst = worst.max(c.rel_l2);
    }
    Ok(worst)
}

/// Dim bindings for the fresh checks: all ones, the largest fresh value
/// allowed for each dim (70 where the range allows it), and a random mix of
/// fresh values and the range's upper end; none equal to a binding the
/// cross-check of any candidate could use.
fn fresh_dims(p: &Program, w: &Workload, graphs: &[&KernelGraph], mix: &[u32]) -> Vec<DimBindings> {
    // The fresh values within the declared range, and its upper end; largest first.
    let allowed = |hi: i64| {
        let mut v: Vec<i64> = FRESH.iter().copied().filter(|&v| v <= hi).collect();
        v.push(hi);
        v.sort_unstable_by(|a, b| b.cmp(a));
        v.dedup();
        v
    };
    let ones: DimBindings = p.dims.iter().map(|(d, _)| (d.clone(), 1)).collect();
    let big: DimBindings = p
        .dims
        .iter()
        .map(|(d, hi)| {
            let v = FRESH.iter().copied().find(|&v| v <= *hi && v > 1);
            (d.clone(), v.unwrap_or(*hi))
        })
        .collect();
    let mixed: DimBindings = p
        .dims
        .iter()
        .enumerate()
        .map(|(i, (d, hi))| {
            let vals = allowed(*hi);
            let c = mix.get(i).copied().unwrap_or(0) as usize;
            (d.clone(), vals[c % vals.len()])
        })
        .collect();
    let used: Vec<DimBindings> = graphs
        .iter()
        .flat_map(|g| (0..CrossCheckOptions::default().trials).map(|t| trial_dims(w, g, t)))
        .collect();
    let mut out: Vec<DimBindings> = Vec::new();
    for dims in [ones, big, mixed] {
        if !used.contains(&dims) && !out.contains(&dims) {
            out.push(dims);
        }
    }
    out
}

#[derive(Debug, Default)]
struct Stats {
    cases: usize,
    lowered: usize,
    cross_checked: usize,
    proven: usize,
    verified: usize,
    none_chosen: Vec<String>,
    /// Candidates that lowered but failed the cross-check (a lowering bug
    /// the search caught).
    rejected: Vec<String>,
    chosen: BTreeMap<&'static str, usize>,
    fresh_checks: usize,
    worst_rel_l2: f64,
    ops: BTreeSet<&'static str>,
}

fn parse(p: &Program) -> Result<Workload, TestCaseError> {
    let spec = frontend::parse("property.toml", &p.toml).map_err(|r| {
        TestCaseError::fail(format!(
            "the generator wrote an invalid program:\n{}\n{r}",
            p.toml
        ))
    })?;
    spec.workloads
        .into_iter()
        .next()
        .ok_or_else(|| TestCaseError::fail("no workload"))
}

/// A candidate's graph again: its lowering, or the enumeration's candidate
/// of its rank.
fn rebuilt(w: &Workload, s: Strategy, prog: &str) -> Result<KernelGraph, TestCaseError> {
    rebuild(w, s, &|g: &KernelGraph| prism::codegen::cuda::fits(w, g))
        .map_err(|e| TestCaseError::fail(format!("{e}\n{prog}")))
}

fn check_search(choices: &[u32], mix: &[u32], stats: &Mutex<Stats>) -> Result<(), TestCaseError> {
    let p = generate(choices);
    let w = parse(&p)?;
    let options = CrossCheckOptions::default();
    let (report, chosen_graph) = search(&w, &options);
    let prog = &p.toml;
    let searched = report
        .candidates
        .iter()
        .filter(|c| matches!(c.strategy, Strategy::Searched(_)))
        .count();
    proptest::prop_assert_eq!(report.candidates.len(), Strategy::ALL.len() + searched);
    // The direct lowering works on every well-typed program.
    let direct = &report.candidates[searched];
    proptest::prop_assert_eq!(direct.strategy, Strategy::Direct);
    proptest::prop_assert!(
        direct.cost.is_some(),
        "the direct lowering failed: {:?}\n{prog}",
        direct.cross_check
    );
    // The choice passed both the cross-check and the proof, and its graph is
    // what the search returns. No choice only when no candidate passed both.
    match (report.chosen, &chosen_graph) {
        (Some(i), Some(g)) => {
            let c = &report.candidates[i];
            proptest::prop_assert!(
                c.cross_check.is_ok() && c.proof.is_ok(),
                "chosen {c:?}\n{prog}"
            );
            let again = rebuilt(&w, c.strategy, prog)?;
            proptest::prop_assert!(&again == g, "the chosen graph is not its rebuild\n{prog}");
            proptest::prop_assert_eq!(c.kernels, g.kernels.len());
        }
        (None, None) => proptest::prop_assert!(
            report
                .candidates
                .iter()
                .all(|c| c.cross_check.is_err() || c.proof.is_err()),
            "a candidate passed both checks but none was chosen\n{prog}"
        ),
        (i, g) => proptest::prop_assert!(
            false,
            "chosen {i:?} but graph returned: {}\n{prog}",
            g.is_some()
        ),
    }
    // Every candidate that passed the cross-check agrees at fresh dims and seeds.
    let graphs: Vec<(Strategy, bool, KernelGraph)> = report
        .candidates
        .iter()
        .filter(|c| c.cross_check.is_ok())
        .map(|c| rebuilt(&w, c.strategy, prog).map(|g| (c.strategy, c.proof.is_ok(), g)))
        .collect::<Result<_, _>>()?;
    let lowered: Vec<KernelGraph> = report
        .candidates
        .iter()
        .filter_map(|c| rebuilt(&w, c.strategy, prog).ok())
        .collect();
    let lowered_refs: Vec<&KernelGraph> = lowered.iter().collect();
    let fresh = fresh_dims(&p, &w, &lowered_refs, mix);
    proptest::prop_assert!(!fresh.is_empty());
    let mut worst = 0.0f64;
    for (k, dims) in fresh.iter().enumerate() {
        let seed = FRESH_SEED + k as u64;
        for (strategy, proven, g) in &graphs {
            let r = agreement(&w, g, dims, seed).map_err(|e| {
                TestCaseError::fail(format!(
                    "{} candidate (cross-checked, proof {}) disagrees at {dims:?}, seed {seed}: {e}\n{prog}",
                    strategy.name(),
                    if *proven { "ok" } else { "not ok" }
                ))
            })?;
            worst = worst.max(r);
        }
    }
    let mut st = stats.lock().expect("stats");
    st.cases += 1;
    st.lowered += report
        .candidates
        .iter()
        .filter(|c| c.cost.is_some())
        .count();
    st.cross_checked += graphs.len();
    st.proven += report.candidates.iter().filter(|c| c.proof.is_ok()).count();
    st.verified += graphs.iter().filter(|(_, proven, _)| *proven).count();
    st.fresh_checks += fresh.len() * graphs.len();
    st.worst_rel_l2 = st.worst_rel_l2.max(worst);
    match report.chosen {
        Some(i) => {
            *st.chosen
                .entry(report.candidates[i].strategy.name())
                .or_default() += 1
        }
        None => st.none_chosen.push(format!(
            "{prog}{:?}",
            report
                .candidates
                .iter()
                .map(|c| &c.cross_check)
                .collect::<Vec<_>>()
        )),
    }
    for c in report.candidates.iter().filter(|c| c.cost.is_some()) {
        if let Err(e) = &c.cross_check {
            st.rejected
                .push(format!("{}: {e}\n{prog}", c.strategy.name()));
        }
    }
    st.ops.extend(p.ops.iter().copied());
    Ok(())
}

fn runner(cases: u32, seed: u64) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(seed),
        max_shrink_iters: 256,
        ..Config::default()
    })
}

// ---------------------------------------------------------------------- tests

#[test]
fn verified_candidates_agree_with_the_reference_at_fresh_dims() {
    let stats = Mutex::new(Stats::default());
    let strategy = (vec(ANY, 0..48), vec(ANY, 4));
    let result = runner(CASES, 0x5EA2_C400).run(&strategy, |(choices, mix)| {
        check_search(&choices, &mix, &stats)
    });
    let st = stats.into_inner().expect("stats");
    eprintln!(
        "cases {}, candidates lowered {}, cross-checked {}, proven {}, verified (both) {}, \
         fresh checks {}, worst rel L2 {:.2e}, chosen {:?}, none chosen {}",
        st.cases,
        st.lowered,
        st.cross_checked,
        st.proven,
        st.verified,
        st.fresh_checks,
        st.worst_rel_l2,
        st.chosen,
        st.none_chosen.len()
    );
    eprintln!("ops: {:?}", st.ops);
    if let Err(e) = result {
        panic!("{e}");
    }
    assert_eq!(st.cases, CASES as usize, "{st:?}");
    // The property is not vacuous: most candidates are verified
    // (cross-checked and proven; 768 of 800 at the time of writing). Not
    // all: the proof is still incomplete.
    assert!(
        st.verified * 10 >= st.lowered * 9,
        "too few verified candidates: {st:?}"
    );
    // Programs whose candidates all pass the cross-check but none is proven
    // fall back to the direct lowering (the proof is incomplete; 4 of 200
    // at the time of writing). Bound them at 5% so a regression of the
    // verifier shows.
    assert!(
        st.none_chosen.len() * 20 <= st.cases,
        "too many programs with no proven candidate:\n{}",
        st.none_chosen.join("\n\n")
    );
    assert!(
        st.rejected.is_empty(),
        "candidates that lower but fail the cross-check:\n{}",
        st.rejected.join("\n\n")
    );
    let expected = [
        "+",
        "-",
        "*",
        "/",
        "-x",
        "add/sub/mul/div()",
        "neg",
        "relu",
        "sigmoid",
        "silu",
        "gelu",
        "square",
        "exp",
        "sqrt",
        "rsqrt",
        "log",
        "sum",
        "max",
        "mean",
        "keepdim",
        "@",
        "matmul()",
        "rms_norm",
        "rms_norm gain",
        "softmax",
        "softmax axis",
        "transpose",
        "permute",
        "reshape",
        "scalar",
        "dim as scalar",
        "two outputs",
    ];
    let missing: Vec<&str> = expected
        .iter()
        .copied()
        .filter(|o| !st.ops.contains(o))
        .collect();
    assert!(
        missing.is_empty(),
        "the generator never produced {missing:?}"
    );
}

#[test]
fn the_search_is_deterministic_on_random_programs() {
    let result = runner(DETERMINISM_CASES, 0xDE7E_2A11).run(&vec(ANY, 0..48), |choices| {
        let p = generate(&choices);
        let w = parse(&p)?;
        let options = CrossCheckOptions::default();
        let (a, ga) = search(&w, &options);
        let (b, gb) = search(&w, &options);
        let prog = &p.toml;
        proptest::prop_assert_eq!(a.chosen, b.chosen, "{}", prog);
        let strategy = |r: &prism::search::strategies::SearchReport| {
            r.chosen.map(|i| r.candidates[i].strategy)
        };
        proptest::prop_assert_eq!(strategy(&a), strategy(&b), "{}", prog);
        let json = |g: &Option<KernelGraph>| serde_json::to_string(g).expect("graphs serialize");
        proptest::prop_assert!(json(&ga) == json(&gb), "graphs differ\n{prog}");
        let json = |r: &prism::search::strategies::SearchReport| {
            serde_json::to_string(&(&r.point, &r.candidates)).expect("reports serialize")
        };
        proptest::prop_assert!(json(&a) == json(&b), "reports differ\n{prog}");
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// The checker is not vacuous: a lowered graph with one operator flipped or
/// one constant changed is reported, the unchanged graph is not.
#[test]
fn the_checker_catches_a_wrong_mugraph() {
    let toml = r#"
[workload.sanity]
inputs = { x = "f32[n, d]", y = "f32[n, d]" }
program = "x * 0.5 + y"
dims = { n = "1..=64", d = "1..=80" }
"#;
    let spec = frontend::parse("sanity.toml", toml).expect("parses");
    let w = &spec.workloads[0];
    let g = lower(w, &LowerOptions::direct()).expect("lowers");
    let dims: DimBindings = [("n".to_string(), 33), ("d".to_string(), 70)].into();
    assert!(agreement(w, &g, &dims, FRESH_SEED).is_ok());
    // Mutate every operator of one kind (here: one op in one kernel each);
    // the mutant must be caught.
    let mutate = |f: &dyn Fn(&mut BlockOp) -> bool| {
        let mut g = g.clone();
        let mut changed = 0;
        for k in &mut g.kernels {
            if let KernelBody::Block(b) = &mut k.body {
                for op in &mut b.ops {
                    changed += usize::from(f(op));
                }
            }
        }
        assert!(changed > 0, "nothing to mutate");
        g
    };
    let add_to_sub = mutate(&|op| match op {
        BlockOp::Binary(o @ BinaryOp::Add, _, _) => {
            *o = BinaryOp::Sub;
            true
        }
        _ => false,
    });
    let constant = mutate(&|op| match op {
        BlockOp::Const(c) => {
            *c = ScalarExpr::lit(0.25);
            true
        }
        _ => false,
    });
    for (label, mutant) in [("add → sub", add_to_sub), ("0.5 → 0.25", constant)] {
        let verdict = agreement(w, &mutant, &dims, FRESH_SEED);
        assert!(verdict.is_err(), "`{label}` not caught: {verdict:?}");
    }
}

/// Every program the generator writes parses (its coverage is asserted by
/// the main property).
#[test]
fn generated_programs_parse() {
    let mut runner = runner(64, 0x9A25_E000);
    let result = runner.run(&vec(ANY, 0..48), |choices| {
        parse(&generate(&choices)).map(|_| ())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // The empty tape is the simplest program: one unary op of x.
    let p = generate(&[]);
    assert!(p.toml.contains("out = neg(x)"), "{}", p.toml);
}
