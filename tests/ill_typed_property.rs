//! Property test of the front end on ill-typed programs: a located error,
//! never a panic, never acceptance.
//!
//! Each case generates a random well-typed prism.toml (1–2 f32 inputs over
//! symbolic dims, up to six operations, every input and value flowing into
//! one output; sometimes non-ASCII text before the program, so byte
//! offsets and character positions differ) and checks that it parses.
//! Then it injects exactly one typing error of one of [`KINDS`] at a
//! recorded byte range of the file (a new `let` statement at a random
//! place in the program, or an edit of the inputs or of the output
//! statement) and checks that `prism::frontend::parse`:
//!
//! - returns `Err` (no panic, no `Ok`);
//! - has at least one diagnostic whose span overlaps the injected text (or
//!   is empty and touches it) and whose code is the kind's;
//! - has only diagnostics whose spans lie inside the file on character
//!   boundaries, with a non-empty code of lowercase words and dashes and a
//!   non-blank hint;
//! - renders (plain and coloured, `Display`, and `located()` with the
//!   underlined text equal to the span's), and gives the same report when
//!   parsed again.
//!
//! A summary check wants every kind exercised at least [`MIN_PER_KIND`]
//! times. The proptest runner uses a fixed RNG seed and no failure
//! persistence: the cases are the same on every run.

mod common;

use std::collections::BTreeMap;
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;

use prism::diagnostics::Report;
use prism::frontend::parse;
use proptest::collection::vec;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed, TestCaseError, TestRunner};

/// Cases of the property.
const CASES: u32 = 1000;

/// Each kind must be exercised at least this often.
const MIN_PER_KIND: usize = 60;

/// The file name reports carry.
const FILE: &str = "ill_typed.toml";

/// The injected errors, each with the diagnostic code it must produce.
const KINDS: [(&str, &str); 9] = [
    ("matmul inner dims differ", "shape-mismatch"),
    ("operands do not broadcast", "shape-mismatch"),
    ("unknown name", "unknown-name"),
    ("wrong number of arguments", "wrong-arity"),
    ("axis out of range", "bad-axis"),
    ("reshape changes the element count", "shape-mismatch"),
    ("not a permutation", "bad-axis"),
    ("input with an undeclared dim", "unbound-dim"),
    ("output never assigned", "no-output"),
];

// ------------------------------------------------------------------ generator

use common::Tape;

/// A value of the program (an input or a `let`) and its symbolic shape,
/// each dim as program text (`n`, `1`, `b * n`).
#[derive(Clone, Debug)]
struct Val {
    name: String,
    shape: Vec<String>,
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

/// The shape of `a @ b`, when the inner dims agree and the batch dims
/// broadcast.
fn matmul_shape(a: &[String], b: &[String]) -> Option<Vec<String>> {
    let (ra, rb) = (a.len(), b.len());
    if ra < 2 || rb < 2 || a[ra - 1] != b[rb - 2] {
        return None;
    }
    let mut s = broadcast(&a[..ra - 2], &b[..rb - 2])?;
    s.push(a[ra - 2].clone());
    s.push(b[rb - 1].clone());
    Some(s)
}

fn atomic(d: &str) -> bool {
    d.chars().all(|c| c.is_ascii_alphabetic())
}

/// A well-typed program: its inputs, dims and statements (the last one
/// the output, `out = ...`).
#[derive(Clone, Debug)]
struct Program {
    inputs: Vec<Val>,
    /// The inputs, then the value each statement defines.
    vals: Vec<Val>,
    dims: Vec<(String, String)>,
    stmts: Vec<String>,
    /// Non-ASCII text put before the program.
    description: Option<&'static str>,
}

struct Gen<'a> {
    tape: Tape<'a>,
    vals: Vec<Val>,
    used: Vec<bool>,
    stmts: Vec<String>,
    dims: Vec<String>,
}

impl Gen<'_> {
    /// An operand satisfying `ok`: mostly the first unused one, sometimes
    /// any.
    fn operand(&mut self, ok: impl Fn(&Val) -> bool) -> Option<Val> {
        let mut order: Vec<usize> = (0..self.vals.len()).filter(|&i| !self.used[i]).collect();
        order.extend((0..self.vals.len()).rev().filter(|&i| self.used[i]));
        order.retain(|&i| ok(&self.vals[i]));
        if order.is_empty() {
            return None;
        }
        let i = if self.tape.chance(1, 3) {
            order[self.tape.pick(order.len())]
        } else {
            order[0]
        };
        self.used[i] = true;
        Some(self.vals[i].clone())
    }

    fn push(&mut self, expr: String, shape: Vec<String>) {
        let name = format!("v{}", self.stmts.len());
        self.stmts.push(format!("let {name} = {expr}"));
        self.vals.push(Val { name, shape });
        self.used.push(false);
    }

    fn step(&mut self) {
        let Some(a) = self.operand(|_| true) else {
            return;
        };
        let rank = a.shape.len();
        match self.tape.pick(9) {
            0 => {
                let f = *self
                    .tape
                    .of(&["exp", "neg", "relu", "sigmoid", "silu", "gelu", "square"]);
                self.push(format!("{f}({})", a.name), a.shape);
            }
            1 => {
                let Some(b) = self.operand(|v| broadcast(&a.shape, &v.shape).is_some()) else {
                    return;
                };
                let shape = broadcast(&a.shape, &b.shape).unwrap_or_default();
                let expr = match self.tape.pick(5) {
                    0 => format!("{} + {}", a.name, b.name),
                    1 => format!("{} - {}", a.name, b.name),
                    2 => format!("{} * {}", a.name, b.name),
                    3 => format!("mul({}, {})", a.name, b.name),
                    _ => format!("add({}, {})", a.name, b.name),
                };
                self.push(expr, shape);
            }
            2 => {
                let c = if self.dims.iter().any(|d| d == "d") && self.tape.chance(1, 3) {
                    "(1 / d)"
                } else {
                    *self.tape.of(&["2", "0.5", "1.5"])
                };
                let expr = match self.tape.pick(3) {
                    0 => format!("{} * {c}", a.name),
                    1 => format!("{c} + {}", a.name),
                    _ => format!("{} / {c}", a.name),
                };
                self.push(expr, a.shape);
            }
            3 => {
                let f = *self.tape.of(&["sum", "max", "mean"]);
                let axis = self.tape.pick(rank) as i64
                    - if self.tape.chance(1, 2) {
                        rank as i64
                    } else {
                        0
                    };
                let at = axis.rem_euclid(rank as i64) as usize;
                let keepdim = rank == 1 || self.tape.chance(1, 2);
                let mut shape = a.shape.clone();
                let expr = if keepdim {
                    shape[at] = "1".into();
                    format!("{f}({}, {axis}, keepdim=true)", a.name)
                } else {
                    shape.remove(at);
                    format!("{f}({}, axis={axis})", a.name)
                };
                self.push(expr, shape);
            }
            4 => {
                let direct = self.operand(|b| matmul_shape(&a.shape, &b.shape).is_some());
                if let Some(b) = direct {
                    let shape = matmul_shape(&a.shape, &b.shape).unwrap_or_default();
                    let expr = if self.tape.chance(1, 2) {
                        format!("{} @ {}", a.name, b.name)
                    } else {
                        format!("matmul({}, {})", a.name, b.name)
                    };
                    self.push(expr, shape);
                } else if rank >= 2 {
                    // a @ transpose(a): [.., m, k] @ [.., k, m].
                    let mut t = a.shape.clone();
                    t.swap(rank - 2, rank - 1);
                    let shape = matmul_shape(&a.shape, &t).unwrap_or_default();
                    self.push(format!("{0} @ transpose({0})", a.name), shape);
                } else {
                    self.push(format!("relu({})", a.name), a.shape);
                }
            }
            5 => {
                let expr = if rank >= 2 && self.tape.chance(1, 2) {
                    format!("softmax({}, axis=-2)", a.name)
                } else {
                    format!("softmax({})", a.name)
                };
                self.push(expr, a.shape);
            }
            6 => self.push(format!("rms_norm({})", a.name), a.shape),
            7 if rank >= 2 => {
                let mut shape = a.shape.clone();
                let expr = match (rank, self.tape.pick(3)) {
                    (2, 0) => {
                        shape.swap(0, 1);
                        format!("permute({}, [1, 0])", a.name)
                    }
                    (3, 0) => {
                        shape = vec![a.shape[2].clone(), a.shape[0].clone(), a.shape[1].clone()];
                        format!("permute({}, [2, 0, 1])", a.name)
                    }
                    (3, 1) if atomic(&a.shape[0]) && atomic(&a.shape[1]) => {
                        shape = vec![
                            format!("{} * {}", a.shape[0], a.shape[1]),
                            a.shape[2].clone(),
                        ];
                        format!("reshape({}, [{}])", a.name, shape.join(", "))
                    }
                    _ => {
                        shape.swap(rank - 2, rank - 1);
                        format!("transpose({})", a.name)
                    }
                };
                self.push(expr, shape);
            }
            _ => self.push(format!("sigmoid({})", a.name), a.shape),
        }
    }

    /// Use value `u` in a new last value.
    fn close(&mut self, u: usize) {
        let last = self.vals.len() - 1;
        let (l, v) = (self.vals[last].clone(), self.vals[u].clone());
        self.used[u] = true;
        self.used[last] = true;
        if let Some(shape) = broadcast(&l.shape, &v.shape) {
            self.push(format!("{} + {}", l.name, v.name), shape);
        } else {
            // `v` summed down to ones broadcasts with anything.
            let mut e = v.name.clone();
            for axis in 0..v.shape.len() {
                e = format!("sum({e}, {axis}, keepdim=true)");
            }
            let ones = vec!["1".to_string(); v.shape.len()];
            let shape = broadcast(&l.shape, &ones).unwrap_or_default();
            self.push(format!("{} + {e}", l.name), shape);
        }
    }
}

fn generate(choices: &[u32]) -> Program {
    let mut tape = Tape { choices, at: 0 };
    let x = if tape.chance(1, 4) {
        shape_of(&["b", "n", "d"])
    } else {
        shape_of(&["n", "d"])
    };
    let mut inputs = vec![Val {
        name: "x".into(),
        shape: x.clone(),
    }];
    if tape.chance(2, 3) {
        let kinds = [
            x.clone(),
            shape_of(&["d", "e"]),
            shape_of(&["d"]),
            shape_of(&["n", "1"]),
            shape_of(&["e", "d"]),
        ];
        inputs.push(Val {
            name: "y".into(),
            shape: tape.of(&kinds).clone(),
        });
    }
    let mut dims: Vec<(String, String)> = Vec::new();
    for v in &inputs {
        for d in v.shape.iter().filter(|d| atomic(d)) {
            if dims.iter().all(|(n, _)| n != d) {
                let values = match d.as_str() {
                    "b" => *tape.of(&["[2]", "\"1..=3\""]),
                    "n" => *tape.of(&["\"1..=64\"", "[8, 33]"]),
                    "d" => *tape.of(&["[64]", "\"1..=80\"", "[16, 48]"]),
                    _ => *tape.of(&["[16]", "\"1..=64\""]),
                };
                dims.push((d.clone(), values.to_string()));
            }
        }
    }
    let description = if tape.chance(1, 3) {
        Some(*tape.of(&["Größe × Gewicht — Δ ≤ ε", "日本語の説明 🚀", "naïve café ✓"]))
    } else {
        None
    };
    let mut g = Gen {
        tape,
        vals: inputs.clone(),
        used: vec![false; inputs.len()],
        stmts: Vec::new(),
        dims: dims.iter().map(|(d, _)| d.clone()).collect(),
    };
    for _ in 0..1 + g.tape.pick(6) {
        g.step();
    }
    if g.stmts.is_empty() {
        g.push("exp(x)".into(), inputs[0].shape.clone());
        g.used[0] = true;
    }
    let dangling: Vec<usize> = (0..g.vals.len() - 1).filter(|&i| !g.used[i]).collect();
    for u in dangling {
        g.close(u);
    }
    let last = g.stmts.len() - 1;
    g.stmts[last] = g.stmts[last].replacen(&format!("let v{last} = "), "out = ", 1);
    Program {
        inputs,
        vals: g.vals,
        dims,
        stmts: g.stmts,
        description,
    }
}

// ------------------------------------------------------------------ injection

/// A text split around the part that is the error.
#[derive(Clone, Debug, Default)]
struct Marked {
    before: String,
    bad: String,
    after: String,
}

impl Marked {
    fn new(before: impl Into<String>, bad: impl Into<String>, after: impl Into<String>) -> Self {
        Marked {
            before: before.into(),
            bad: bad.into(),
            after: after.into(),
        }
    }

    fn plain(text: impl Into<String>) -> Self {
        Marked::new(text, "", "")
    }
}

/// The file's text, and the byte range of the marked part (if any).
fn render(p: &Program, inputs: &[Marked], stmts: &[Marked]) -> (String, Option<Range<usize>>) {
    let mut out = String::from("[workload.prop]\n");
    let mut range = None;
    let mut put = |out: &mut String, m: &Marked| {
        out.push_str(&m.before);
        if !m.bad.is_empty() {
            range = Some(out.len()..out.len() + m.bad.len());
        }
        out.push_str(&m.bad);
        out.push_str(&m.after);
    };
    if let Some(d) = p.description {
        out.push_str(&format!("description = \"{d}\"\n"));
    }
    out.push_str("inputs = { ");
    for (i, m) in inputs.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        put(&mut out, m);
    }
    out.push_str(" }\nprogram = \"\"\"\n");
    if p.description.is_some() {
        out.push_str("# Größe: ünïcode in a comment shifts byte offsets\n");
    }
    for m in stmts {
        put(&mut out, m);
        out.push('\n');
    }
    out.push_str("\"\"\"\ndims = { ");
    let dims: Vec<String> = p.dims.iter().map(|(d, v)| format!("{d} = {v}")).collect();
    out.push_str(&dims.join(", "));
    out.push_str(" }\n");
    (out, range)
}

fn input_text(v: &Val) -> String {
    format!("{} = \"f32[{}]\"", v.name, v.shape.join(", "))
}

/// The well-typed file.
fn valid(p: &Program) -> String {
    let inputs: Vec<Marked> = p
        .inputs
        .iter()
        .map(|v| Marked::plain(input_text(v)))
        .collect();
    let stmts: Vec<Marked> = p.stmts.iter().map(|s| Marked::plain(s.clone())).collect();
    render(p, &inputs, &stmts).0
}

/// Names that no program defines, no builtin has and no dim is.
const UNKNOWN: [&str; 6] = ["wieght", "hidden", "bias2", "ouput", "tmp_val", "v99"];

/// Dims never declared.
const UNDECLARED: [&str; 4] = ["q", "m", "k", "seq"];

/// The file with one error of kind `kind` injected, and the byte range of
/// the injected text.
fn inject(p: &Program, kind: usize, tape: &mut Tape<'_>) -> (String, Range<usize>) {
    let mut inputs: Vec<Marked> = p
        .inputs
        .iter()
        .map(|v| Marked::plain(input_text(v)))
        .collect();
    let mut stmts: Vec<Marked> = p.stmts.iter().map(|s| Marked::plain(s.clone())).collect();
    // A new `let` before statement `at` (the output stays last), over the
    // values defined before it.
    let at = tape.pick(p.stmts.len());
    let avail: Vec<Val> = p.vals[..p.inputs.len() + at].to_vec();
    let x = p.inputs[0].clone();
    let any_name = tape.of(&avail).name.clone();
    // Values of rank 2 or more (`x` is one).
    let matrices: Vec<Val> = avail
        .iter()
        .filter(|v| v.shape.len() >= 2)
        .cloned()
        .collect();
    let new_let = |bad: String, after: &str| Marked::new("let bad = ", bad, after.to_string());
    let stmt = match kind {
        // Inner dims that differ (neither `1`), batch dims that broadcast;
        // `x @ x` ([.., n, d] @ [.., n, d]) always qualifies.
        0 => {
            let mut pairs = Vec::new();
            for a in &matrices {
                for b in &matrices {
                    let (ka, kb) = (&a.shape[a.shape.len() - 1], &b.shape[b.shape.len() - 2]);
                    let batch =
                        broadcast(&a.shape[..a.shape.len() - 2], &b.shape[..b.shape.len() - 2]);
                    if ka != kb && ka != "1" && kb != "1" && batch.is_some() {
                        pairs.push((a.name.clone(), b.name.clone()));
                    }
                }
            }
            let (a, b) = tape.of(&pairs).clone();
            let bad = if tape.chance(1, 2) {
                format!("{a} @ {b}")
            } else {
                format!("matmul({a}, {b})")
            };
            Some(new_let(bad, ""))
        }
        // Two values that do not broadcast; `x` against `transpose(x)`
        // ([.., n, d] and [.., d, n]) always qualifies.
        1 => {
            let mut pairs = vec![(x.name.clone(), format!("transpose({})", x.name))];
            for a in &avail {
                for b in &avail {
                    if broadcast(&a.shape, &b.shape).is_none() {
                        pairs.push((a.name.clone(), b.name.clone()));
                    }
                }
            }
            let (a, b) = tape.of(&pairs).clone();
            let op = *tape.of(&["+", "-", "*", "/"]);
            let bad = if tape.chance(1, 4) {
                let f = *tape.of(&["add", "sub", "mul", "div"]);
                format!("{f}({a}, {b})")
            } else {
                format!("{a} {op} {b}")
            };
            Some(new_let(bad, ""))
        }
        2 => {
            let unknown = tape.of(&UNKNOWN).to_string();
            let (before, after) = match tape.pick(4) {
                0 => ("exp(".to_string(), ")".to_string()),
                1 => (format!("{any_name} + "), String::new()),
                2 => (String::new(), format!(" * {any_name}")),
                _ => ("sum(".to_string(), ", 0)".to_string()),
            };
            Some(Marked::new(format!("let bad = {before}"), unknown, after))
        }
        3 => {
            let a = &any_name;
            let calls = [
                format!("exp({a}, {a})"),
                format!("relu({a}, 1)"),
                format!("matmul({a})"),
                format!("matmul({a}, {a}, {a})"),
                format!("add({a})"),
                format!("mul({a}, 2, 3)"),
                format!("sum({a}, 0, true, 1)"),
                format!("softmax({a}, -1, 0)"),
                format!("permute({a})"),
                format!("reshape({a})"),
                format!("rms_norm({a}, {a}, 1e-5, 1)"),
                format!("transpose({a}, 0, 1, 2)"),
                "sigmoid()".to_string(),
                "mean()".to_string(),
            ];
            Some(new_let(tape.of(&calls).clone(), ""))
        }
        4 => {
            let v = tape.of(&avail).clone();
            let r = v.shape.len() as i64;
            let axis = *tape.of(&[r, r + 1, -r - 1, 7, -9]);
            // The bad axis literal is the marked text.
            let (before, after) = match tape.pick(5) {
                0 => (format!("sum({}, ", v.name), ")".to_string()),
                1 => (
                    format!("max({}, axis=", v.name),
                    ", keepdim=true)".to_string(),
                ),
                2 => (format!("softmax({}, ", v.name), ")".to_string()),
                3 => (format!("transpose({}, 0, ", v.name), ")".to_string()),
                _ => (format!("mean({}, axis=", v.name), ")".to_string()),
            };
            Some(Marked::new(
                format!("let bad = {before}"),
                axis.to_string(),
                after,
            ))
        }
        // Another element count: a factor 2 or a dim more, or a dim that
        // is not `1` less.
        5 => {
            let v = tape.of(&avail).clone();
            let mut dims = v.shape.clone();
            let droppable: Vec<usize> = (0..dims.len()).filter(|&i| dims[i] != "1").collect();
            match tape.pick(3) {
                2 if dims.len() >= 2 && !droppable.is_empty() => {
                    dims.remove(*tape.of(&droppable));
                }
                1 => dims.push(tape.of(&["n", "d"]).to_string()),
                _ => dims.insert(0, "2".into()),
            }
            Some(new_let(
                format!("reshape({}, [{}])", v.name, dims.join(", ")),
                "",
            ))
        }
        6 => {
            let v = tape.of(&matrices).clone();
            let rank = v.shape.len();
            let mut perm: Vec<i64> = (0..rank as i64).collect();
            match tape.pick(4) {
                0 => perm[1] = perm[0],
                1 => perm[rank - 1] = rank as i64,
                2 => {
                    perm.pop();
                }
                _ => perm.push(0),
            }
            let list: Vec<String> = perm.iter().map(|i| i.to_string()).collect();
            Some(Marked::new(
                format!("let bad = permute({}, ", v.name),
                format!("[{}]", list.join(", ")),
                ")",
            ))
        }
        7 => {
            let i = tape.pick(p.inputs.len());
            let v = &p.inputs[i];
            let j = tape.pick(v.shape.len());
            let dim = tape.of(&UNDECLARED).to_string();
            let before: Vec<String> = v.shape[..j].to_vec();
            let after: Vec<String> = v.shape[j + 1..].to_vec();
            let sep = |s: &[String], lead: bool| {
                if s.is_empty() {
                    String::new()
                } else if lead {
                    format!("{}, ", s.join(", "))
                } else {
                    format!(", {}", s.join(", "))
                }
            };
            inputs[i] = Marked::new(
                format!("{} = \"f32[{}", v.name, sep(&before, true)),
                dim,
                format!("{}]\"", sep(&after, false)),
            );
            None
        }
        _ => {
            // The output becomes a `let`: the marked text is `let out`.
            let last = stmts.len() - 1;
            let rest = p.stmts[last]
                .strip_prefix("out")
                .unwrap_or_default()
                .to_string();
            stmts[last] = Marked::new("", "let out", rest);
            None
        }
    };
    if let Some(s) = stmt {
        stmts.insert(at, s);
    }
    let (text, range) = render(p, &inputs, &stmts);
    (text, range.unwrap_or(0..0))
}

// -------------------------------------------------------------------- checker

fn parse_no_panic(text: &str) -> Result<Result<prism::ir::Spec, Report>, String> {
    catch_unwind(AssertUnwindSafe(|| parse(FILE, text))).map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic".into())
    })
}

/// The property for one injected file: `Ok` or what went wrong.
fn check(text: &str, range: &Range<usize>, code: &str) -> Result<(), String> {
    let report = match parse_no_panic(text).map_err(|p| format!("PANIC: {p}"))? {
        Ok(_) => return Err("ACCEPTED".into()),
        Err(r) => r,
    };
    if report.diagnostics.is_empty() {
        return Err("an error without diagnostics".into());
    }
    for d in &report.diagnostics {
        let s = d.span;
        if !(s.start <= s.end
            && s.end <= text.len()
            && text.is_char_boundary(s.start)
            && text.is_char_boundary(s.end))
        {
            return Err(format!(
                "{}: span {s:?} outside the file or not on char boundaries",
                d.code
            ));
        }
        if d.code.is_empty() || !d.code.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
            return Err(format!("bad code {:?}", d.code));
        }
        if d.hint.as_deref().is_none_or(|h| h.trim().is_empty()) {
            return Err(format!("{}: no hint ({})", d.code, d.message));
        }
        if d.message.trim().is_empty() {
            return Err(format!("{}: no message", d.code));
        }
    }
    let touches = |s: prism::diagnostics::Span| {
        if s.start == s.end {
            range.start <= s.start && s.start <= range.end
        } else {
            s.start < range.end && range.start < s.end
        }
    };
    if !report
        .diagnostics
        .iter()
        .any(|d| d.code == code && touches(d.span))
    {
        let found: Vec<String> = report
            .diagnostics
            .iter()
            .map(|d| format!("{} at {:?} `{}`", d.code, d.span, &text[d.span.range()]))
            .collect();
        return Err(format!(
            "no `{code}` diagnostic at the injected `{}` ({range:?}); found {found:?}",
            &text[range.clone()]
        ));
    }
    let plain = report.render(false);
    let coloured = report.render(true);
    if !plain.contains(&format!("error[{code}]")) || !plain.contains(FILE) || coloured.is_empty() {
        return Err(format!("rendering:\n{plain}"));
    }
    if format!("{report}") != plain {
        return Err("Display differs from render(false)".into());
    }
    for (l, d) in report.located().iter().zip(&report.diagnostics) {
        if l.text != text[d.span.range()] || l.line == 0 || l.column == 0 {
            return Err(format!("located: {l:?}"));
        }
    }
    match parse_no_panic(text) {
        Ok(Err(again)) if again == report => Ok(()),
        _ => Err("a second parse gives another result".into()),
    }
}

#[test]
fn ill_typed_programs_give_located_errors() {
    let counts: Mutex<BTreeMap<usize, usize>> = Mutex::new(BTreeMap::new());
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(0x111_7e9ed),
        max_shrink_iters: 1024,
        ..Config::default()
    });
    let strategy = (
        0..KINDS.len(),
        vec(proptest::num::u32::ANY, 48),
        vec(proptest::num::u32::ANY, 16),
    );
    let result = runner.run(&strategy, |(kind, program_choices, inject_choices)| {
        let p = generate(&program_choices);
        let good = valid(&p);
        match parse_no_panic(&good) {
            Ok(Ok(_)) => {}
            Ok(Err(r)) => {
                return Err(TestCaseError::fail(format!(
                    "the generated program does not parse:\n{good}\n{r}"
                )));
            }
            Err(panic) => {
                return Err(TestCaseError::fail(format!("PANIC on\n{good}\n{panic}")));
            }
        }
        let mut tape = Tape {
            choices: &inject_choices,
            at: 0,
        };
        let (text, range) = inject(&p, kind, &mut tape);
        if range.is_empty() || text == good {
            return Err(TestCaseError::fail(format!("nothing injected:\n{text}")));
        }
        let (name, code) = KINDS[kind];
        check(&text, &range, code).map_err(|why| {
            TestCaseError::fail(format!(
                "{name}: {why}\n--- injected `{}` at {range:?} of:\n{text}",
                &text[range.clone()]
            ))
        })?;
        if let Ok(mut c) = counts.lock() {
            *c.entry(kind).or_default() += 1;
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let counts = counts.into_inner().unwrap_or_default();
    let summary: Vec<String> = KINDS
        .iter()
        .enumerate()
        .map(|(i, (name, _))| format!("{name}: {}", counts.get(&i).copied().unwrap_or(0)))
        .collect();
    eprintln!(
        "{CASES} ill-typed programs; per kind: {}",
        summary.join(", ")
    );
    assert_eq!(counts.values().sum::<usize>(), CASES as usize);
    for (i, (name, _)) in KINDS.iter().enumerate() {
        let n = counts.get(&i).copied().unwrap_or(0);
        assert!(
            n >= MIN_PER_KIND,
            "`{name}` exercised {n} times, want {MIN_PER_KIND}"
        );
    }
}
