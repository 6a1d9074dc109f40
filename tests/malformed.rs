//! Malformed prism.toml files: every one must be rejected with a located
//! diagnostic (stable code, exact line and column, the offending text
//! underlined, a useful message and a hint), and none may panic.
//!
//! Each case starts from one minimal valid file and changes one thing. The
//! file's layout is fixed, so line numbers are predictable:
//!
//! ```text
//!  1 [target]
//!  2 arch = ["sm_90a"]
//!  3 dtype = "f16"
//!  4
//!  5 [workload.k]
//!  6 inputs = { x = "f16[n, d]", w = "f16[d, d]" }
//!  7 program = "matmul(x, w)"
//!  8 dims = { n = [8], d = [64] }
//!  9 (extra workload keys, one a line, then anything appended)
//! ```

use std::panic::{AssertUnwindSafe, catch_unwind};

use prism::diagnostics::LocatedDiagnostic;
use prism::frontend::parse;

const FILE: &str = "file.toml";

/// A prism.toml built from the minimal valid one.
#[derive(Clone)]
struct Toml {
    target: Vec<(&'static str, String)>,
    header: String,
    keys: Vec<(&'static str, String)>,
    tail: String,
}

/// The minimal valid file.
fn base() -> Toml {
    Toml {
        target: vec![
            ("arch", r#"["sm_90a"]"#.into()),
            ("dtype", r#""f16""#.into()),
        ],
        header: "[workload.k]".into(),
        keys: vec![
            ("inputs", r#"{ x = "f16[n, d]", w = "f16[d, d]" }"#.into()),
            ("program", r#""matmul(x, w)""#.into()),
            ("dims", "{ n = [8], d = [64] }".into()),
        ],
        tail: String::new(),
    }
}

fn put(list: &mut Vec<(&'static str, String)>, key: &'static str, value: &str) {
    match list.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value.to_string(),
        None => list.push((key, value.to_string())),
    }
}

/// Replace the line of `key` by `line` (which need not be `key = ...`).
fn put_line(list: &mut [(&'static str, String)], key: &'static str, line: &str) {
    let slot = list
        .iter_mut()
        .find(|(k, _)| *k == key)
        .unwrap_or_else(|| panic!("no line for key `{key}` in the template"));
    slot.0 = "";
    slot.1 = line.to_string();
}

impl Toml {
    /// Set a workload key (in place when present, else on a new line 9, 10, ...).
    fn set(mut self, key: &'static str, value: &str) -> Self {
        put(&mut self.keys, key, value);
        self
    }

    /// Set the program to a basic string holding `program` verbatim.
    fn program(self, program: &str) -> Self {
        self.set("program", &format!("\"{program}\""))
    }

    fn inputs(self, inputs: &str) -> Self {
        self.set("inputs", inputs)
    }

    fn dims(self, dims: &str) -> Self {
        self.set("dims", dims)
    }

    /// Replace a workload key's line by `line` (which need not be `key = ...`).
    fn line(mut self, key: &'static str, line: &str) -> Self {
        put_line(&mut self.keys, key, line);
        self
    }

    fn remove(mut self, key: &str) -> Self {
        self.keys.retain(|(k, _)| *k != key);
        self
    }

    fn target(mut self, key: &'static str, value: &str) -> Self {
        put(&mut self.target, key, value);
        self
    }

    fn target_line(mut self, key: &'static str, line: &str) -> Self {
        put_line(&mut self.target, key, line);
        self
    }

    fn header(mut self, header: &str) -> Self {
        self.header = header.into();
        self
    }

    /// Text after the workload's keys.
    fn tail(mut self, tail: &str) -> Self {
        self.tail = tail.into();
        self
    }

    fn text(&self) -> String {
        let line = |(k, v): &(&str, String)| {
            if k.is_empty() {
                format!("{v}\n")
            } else {
                format!("{k} = {v}\n")
            }
        };
        let mut s = String::from("[target]\n");
        self.target.iter().for_each(|e| s.push_str(&line(e)));
        s.push('\n');
        s.push_str(&self.header);
        s.push('\n');
        self.keys.iter().for_each(|e| s.push_str(&line(e)));
        s.push_str(&self.tail);
        s
    }
}

/// What one malformed file must produce.
struct Case {
    name: &'static str,
    source: String,
    code: &'static str,
    line: usize,
    column: usize,
    /// The underlined source text.
    text: &'static str,
    /// A fragment of the message.
    message: &'static str,
    /// A fragment of the hint, where it matters.
    hint: Option<&'static str>,
}

#[allow(clippy::too_many_arguments)]
fn case(
    name: &'static str,
    toml: Toml,
    code: &'static str,
    (line, column): (usize, usize),
    text: &'static str,
    message: &'static str,
) -> Case {
    raw(name, toml.text(), code, (line, column), text, message)
}

fn raw(
    name: &'static str,
    source: String,
    code: &'static str,
    (line, column): (usize, usize),
    text: &'static str,
    message: &'static str,
) -> Case {
    Case {
        name,
        source,
        code,
        line,
        column,
        text,
        message,
        hint: None,
    }
}

impl Case {
    fn hint(mut self, fragment: &'static str) -> Self {
        self.hint = Some(fragment);
        self
    }
}

fn cases() -> Vec<Case> {
    let b = base;
    vec![
        // ---------------------------------------------------------------- TOML
        case(
            "toml syntax error",
            b().inputs(r#"{ x = "f16[n, d]" w = "f16[d, d]" }"#),
            "toml-syntax",
            (6, 28),
            "",
            "TOML syntax error",
        ),
        case(
            "duplicate TOML key",
            b().set("description", "\"one\"")
                .tail("description = \"two\"\n"),
            "toml-syntax",
            (10, 1),
            "description",
            "duplicate key",
        ),
        case(
            "unknown top-level key",
            b().tail("\n[targte]\narch = [\"sm_90a\"]\n"),
            "unknown-key",
            (10, 2),
            "targte",
            "unknown key `targte` in prism.toml",
        )
        .hint("did you mean `target`? allowed keys: target, workload"),
        case(
            "unknown workload key",
            b().set("tolerence", "1e-2"),
            "unknown-key",
            (9, 1),
            "tolerence",
            "unknown key `tolerence` in [workload.k]",
        )
        .hint("did you mean `tolerance`?"),
        case(
            "unknown workload key, no close match",
            b().set("outputs", "[\"y\"]"),
            "unknown-key",
            (9, 1),
            "outputs",
            "unknown key `outputs` in [workload.k]",
        )
        .hint("allowed keys: description, inputs, program, dims, points, tolerance, init"),
        case(
            "unknown target key",
            b().target_line("arch", r#"archs = ["sm_90a"]"#),
            "unknown-key",
            (2, 1),
            "archs",
            "unknown key `archs` in [target]",
        )
        .hint("did you mean `arch`? allowed keys: arch, dtype"),
        raw(
            "workload that is not a table",
            "[workload]\nk = 3\n".into(),
            "wrong-type",
            (2, 5),
            "3",
            "workload.k must be a table, found an integer",
        ),
        case(
            "inputs that are not a table",
            b().inputs(r#""f16[n, d]""#),
            "wrong-type",
            (6, 10),
            r#""f16[n, d]""#,
            "inputs must be a table, found a string",
        ),
        // -------------------------------------------------------------- target
        case(
            "malformed arch",
            b().target("arch", r#"["sm90"]"#),
            "bad-arch",
            (2, 9),
            r#""sm90""#,
            "`sm90` is not a GPU architecture",
        )
        .hint("sm_90a"),
        case(
            "unsupported arch",
            b().target("arch", r#"["sm_90a", "sm_70"]"#),
            "unsupported-arch",
            (2, 19),
            r#""sm_70""#,
            "CUDA 13 cannot build for `sm_70`",
        )
        .hint("sm_75 through sm_121"),
        case(
            "arch suffix",
            b().target("arch", r#"["sm_90x"]"#),
            "bad-arch",
            (2, 9),
            r#""sm_90x""#,
            "`sm_90x` is not a GPU architecture",
        ),
        case(
            "empty arch list",
            b().target("arch", "[]"),
            "empty-arch",
            (2, 8),
            "[]",
            "no GPU architecture",
        ),
        case(
            "duplicate arch",
            b().target("arch", r#"["sm_90a", "sm_90a"]"#),
            "duplicate-arch",
            (2, 19),
            r#""sm_90a""#,
            "listed twice",
        ),
        case(
            "arch not a list",
            b().target("arch", r#""sm_90a""#),
            "wrong-type",
            (2, 8),
            r#""sm_90a""#,
            "arch must be a list of architectures, found a string",
        ),
        case(
            "unknown hardware field",
            b().target("hardware", "{ sm_90a = { smss = 100 } }"),
            "unknown-key",
            (4, 25),
            "smss",
            "unknown key `smss` in [target.hardware.sm_90a]",
        )
        .hint("did you mean `sms`?"),
        case(
            "hardware field of the wrong type",
            b().target("hardware", r#"{ sm_90a = { sms = "many" } }"#),
            "wrong-type",
            (4, 31),
            r#""many""#,
            "sms must be a positive number, found a string",
        ),
        case(
            "hardware rate not positive",
            b().target("hardware", "{ sm_90a = { dram_gbps = -1.0 } }"),
            "wrong-type",
            (4, 37),
            "-1.0",
            "dram_gbps must be a positive number, found a float",
        ),
        case(
            "hardware for an architecture not targeted",
            b().target("hardware", "{ sm_80 = { sms = 100 } }"),
            "unused-hardware",
            (4, 22),
            "{ sms = 100 }",
            "a hardware description for sm_80, which is not a target architecture",
        )
        .hint("add \"sm_80\" to arch"),
        case(
            "an architecture nothing describes",
            b().target("arch", r#"["sm_75"]"#),
            "bad-hardware",
            (2, 8),
            r#"["sm_75"]"#,
            "prism has no description of sm_75 or an older architecture",
        )
        .hint("[target.hardware.ARCH]"),
        case(
            "unknown dtype in [target]",
            b().target("dtype", r#""fp16""#),
            "unknown-dtype",
            (3, 9),
            r#""fp16""#,
            "unknown dtype `fp16`",
        )
        .hint("f16, bf16 or f32"),
        // -------------------------------------------------------------- inputs
        case(
            "unknown dtype in an input type",
            b().inputs(r#"{ x = "f64[n, d]", w = "f16[d, d]" }"#),
            "unknown-dtype",
            (6, 17),
            "f64",
            "unknown dtype `f64`",
        )
        .hint("f16, bf16 or f32"),
        case(
            "input type without brackets",
            b().inputs(r#"{ x = "f16", w = "f16[d, d]" }"#),
            "bad-type",
            (6, 17),
            "f16",
            "`f16` is not a tensor type",
        )
        .hint("f16[n, d]"),
        case(
            "input type with parentheses",
            b().inputs(r#"{ x = "f16(n, d)", w = "f16[d, d]" }"#),
            "bad-type",
            (6, 17),
            "f16(n, d)",
            "`f16(n, d)` is not a tensor type",
        ),
        case(
            "input type with an unclosed bracket",
            b().inputs(r#"{ x = "f16[n, d", w = "f16[d, d]" }"#),
            "unclosed-delimiter",
            (6, 20),
            "[",
            "never closed",
        )
        .hint("`]`"),
        case(
            "unbound dim in an input type",
            b().inputs(r#"{ x = "f16[n, k]", w = "f16[d, d]" }"#),
            "unbound-dim",
            (6, 24),
            "k",
            "dim `k` has no declared values",
        )
        .hint("k = [1024]"),
        case(
            "fractional dim in an input type",
            b().inputs(r#"{ x = "f16[n, 0.5]", w = "f16[d, d]" }"#),
            "bad-dim",
            (6, 24),
            "0.5",
            "whole number",
        ),
        case(
            "input named like a dim",
            b().inputs(r#"{ x = "f16[n, d]", n = "f16[d, d]" }"#),
            "duplicate-name",
            (6, 29),
            "n",
            "`n` is already a dim",
        ),
        case(
            "input with a reserved name",
            b().inputs(r#"{ x = "f16[n, d]", exp = "f16[d, d]" }"#),
            "reserved-name",
            (6, 29),
            "exp",
            "`exp` is a reserved name",
        ),
        case(
            "input name that is not an identifier",
            b().inputs(r#"{ x = "f16[n, d]", "2w" = "f16[d, d]" }"#),
            "bad-name",
            (6, 29),
            r#""2w""#,
            "`2w` is not a valid input name",
        ),
        case(
            "no inputs",
            b().inputs("{}"),
            "no-inputs",
            (6, 10),
            "{}",
            "workload `k` has no inputs",
        ),
        case(
            "unused input",
            b().program("exp(x)"),
            "unused-input",
            (6, 29),
            "w",
            "input `w` is not used by the program",
        ),
        // ------------------------------------------------------------- program
        case(
            "unknown op, with a suggestion",
            b().program("matmul(expp(x), w)"),
            "unknown-op",
            (7, 19),
            "expp",
            "unknown op `expp`",
        )
        .hint("did you mean `exp`?"),
        case(
            "too many arguments",
            b().program("matmul(x, w, x)"),
            "wrong-arity",
            (7, 25),
            "x",
            "`matmul` takes at most 2 arguments, got 3",
        )
        .hint("matmul(a, b)"),
        case(
            "too many arguments to a unary op",
            b().program("exp(x, w)"),
            "wrong-arity",
            (7, 19),
            "w",
            "`exp` takes at most 1 argument, got 2",
        ),
        case(
            "too few arguments",
            b().program("matmul(x) + w"),
            "wrong-arity",
            (7, 12),
            "matmul",
            "`matmul` needs 2 arguments, got 1",
        )
        .hint("matmul(a, b)"),
        case(
            "unknown keyword argument",
            b().program("matmul(softmax(x, axes=0), w)"),
            "unknown-argument",
            (7, 30),
            "axes",
            "`softmax` has no argument named `axes`",
        )
        .hint("softmax(x, axis)"),
        case(
            "duplicate argument",
            b().program("matmul(softmax(x, -1, axis=0), w)"),
            "duplicate-argument",
            (7, 34),
            "axis=0",
            "argument `axis` given twice",
        ),
        case(
            "positional argument after a keyword one",
            b().program("matmul(sum(axis=0, x, keepdim=true), w)"),
            "positional-after-keyword",
            (7, 31),
            "x",
            "positional argument after the keyword argument `axis`",
        ),
        case(
            "fractional axis",
            b().program("matmul(softmax(x, 0.5), w)"),
            "expected-integer",
            (7, 30),
            "0.5",
            "expected an integer, found `0.5`",
        ),
        case(
            "axis given by a dim",
            b().program("matmul(sum(x, n, keepdim=true), w)"),
            "expected-integer",
            (7, 26),
            "n",
            "expected an integer, found `n`",
        ),
        case(
            "axis out of range",
            b().program("matmul(softmax(x, 2), w)"),
            "bad-axis",
            (7, 30),
            "2",
            "axis 2 is out of range for a tensor of rank 2",
        )
        .hint("-2..2"),
        case(
            "second transpose axis out of range",
            b().program("transpose(x, 0, -3) @ w"),
            "bad-axis",
            (7, 28),
            "-3",
            "axis -3 is out of range",
        ),
        case(
            "non-boolean keepdim",
            b().program("matmul(sum(x, 0, keepdim=1), w)"),
            "expected-bool",
            (7, 37),
            "1",
            "expected true or false",
        ),
        case(
            "bad permutation",
            b().program("matmul(permute(x, [0, 0]), w)"),
            "bad-axis",
            (7, 30),
            "[0, 0]",
            "is not a permutation of 0..2",
        ),
        case(
            "permutation that is not a list",
            b().program("matmul(permute(x, 1), w)"),
            "expected-list",
            (7, 30),
            "1",
            "expected a list, found `1`",
        ),
        case(
            "reshape element-count mismatch",
            b().program("matmul(reshape(x, [n, 2*d]), w)"),
            "shape-mismatch",
            (7, 19),
            "reshape(x, [n, 2*d])",
            "reshape cannot turn f16[n, d]",
        ),
        case(
            "inexact dim division in reshape",
            b().program("reshape(x, [2*n, d/2]) @ w"),
            "inexact-dim",
            (7, 29),
            "d/2",
            "`d` is not divisible by `2`",
        ),
        case(
            "shape mismatch in add",
            b().program("x + w"),
            "shape-mismatch",
            (7, 12),
            "x + w",
            "do not broadcast: dim n vs d",
        ),
        case(
            "shape mismatch in add()",
            b().program("add(matmul(x, w), w)"),
            "shape-mismatch",
            (7, 12),
            "add(matmul(x, w), w)",
            "do not broadcast",
        ),
        case(
            "matmul inner dims differ",
            b().program("matmul(w, x)"),
            "shape-mismatch",
            (7, 12),
            "matmul(w, x)",
            "matmul contraction dims differ",
        )
        .hint("transpose"),
        case(
            "matmul of a rank-1 tensor",
            b().inputs(r#"{ x = "f16[n, d]", w = "f16[d]" }"#),
            "shape-mismatch",
            (7, 12),
            "matmul(x, w)",
            "matmul needs operands of rank 2 or more, got f16[d]",
        )
        .hint("reshape"),
        case(
            "matmul of a scalar",
            b().program("x @ 2 + w"),
            "shape-mismatch",
            (7, 16),
            "2",
            "matmul needs a tensor, but its operand is rank 0",
        ),
        case(
            "dtype mismatch",
            b().inputs(r#"{ x = "f16[n, d]", w = "f32[d, d]" }"#),
            "dtype-mismatch",
            (7, 12),
            "matmul(x, w)",
            "dtype mismatch: matmul of f16 and f32",
        ),
        case(
            "unknown name, with a suggestion",
            b().inputs(r#"{ x = "f16[n, d]", weight = "f16[d, d]" }"#)
                .program("matmul(x, wieght)"),
            "unknown-name",
            (7, 22),
            "wieght",
            "unknown name `wieght`",
        )
        .hint("did you mean `weight`?"),
        case(
            "function used as a name",
            b().program("matmul(x, w) * exp"),
            "unknown-name",
            (7, 27),
            "exp",
            "unknown name `exp`",
        )
        .hint("call it"),
        case(
            "let shadowing an input",
            b().program("let x = exp(x); out = x @ w"),
            "duplicate-name",
            (7, 16),
            "x",
            "`x` is defined twice",
        ),
        case(
            "output defined twice",
            b().program("out = x @ w; out = exp(x) @ w"),
            "duplicate-name",
            (7, 25),
            "out",
            "`out` is defined twice",
        ),
        case(
            "output named like an input",
            b().program("w = x @ w"),
            "duplicate-name",
            (7, 12),
            "w",
            "`w` is defined twice",
        ),
        case(
            "let with a reserved name",
            b().program("let exp = x @ w; out = exp"),
            "reserved-name",
            (7, 16),
            "exp",
            "`exp` is a reserved name",
        ),
        case(
            "let named like a dim",
            b().program("let d = x @ w; out = d"),
            "duplicate-name",
            (7, 16),
            "d",
            "`d` is already a dim",
        ),
        case(
            "empty program",
            b().program(""),
            "empty-program",
            (7, 11),
            r#""""#,
            "the program is empty",
        ),
        case(
            "program of only a comment",
            b().program("  # nothing yet"),
            "empty-program",
            (7, 11),
            "\"  # nothing yet\"",
            "the program is empty",
        ),
        case(
            "unnamed last statement",
            b().program("let h = exp(x); h @ w"),
            "unnamed-output",
            (7, 28),
            "h @ w",
            "needs a name",
        )
        .hint("`name = ...`"),
        case(
            "two unnamed statements",
            b().program("x @ w; exp(x)"),
            "unnamed-output",
            (7, 12),
            "x @ w",
            "a program with several statements needs names for its outputs",
        ),
        case(
            "unnamed statement before an output",
            b().program("exp(x); out = x @ w"),
            "unnamed-output",
            (7, 12),
            "exp(x)",
            "this expression's value is not used",
        ),
        case(
            "only let statements",
            b().program("let h = x @ w"),
            "no-output",
            (7, 16),
            "h",
            "the program has no output",
        )
        .hint("out = matmul(x, w)"),
        case(
            "scalar-only output",
            b().program("out = 2 * d; y = x @ w"),
            "scalar-output",
            (7, 18),
            "2 * d",
            "an output must be a tensor",
        ),
        case(
            "list as a value",
            b().program("x @ w + [1, 2]"),
            "unexpected-list",
            (7, 20),
            "[1, 2]",
            "a list is not a value",
        ),
        case(
            "scalar rms_norm eps given a tensor",
            b().program("rms_norm(x, eps=x) @ w"),
            "expected-scalar",
            (7, 28),
            "x",
            "`eps` must be a scalar",
        ),
        case(
            "unexpected character",
            b().program("matmul(x ^ 2, w)"),
            "unexpected-character",
            (7, 21),
            "^",
            "unexpected character `^`",
        )
        .hint("no power operator"),
        case(
            "unclosed parenthesis",
            b().program("matmul(x, w"),
            "unclosed-delimiter",
            (7, 18),
            "(",
            "this `(` is never closed",
        )
        .hint("`)`"),
        case(
            "unclosed grouping parenthesis",
            b().program("(x @ w"),
            "unclosed-delimiter",
            (7, 12),
            "(",
            "this `(` is never closed",
        ),
        case(
            "unclosed list",
            b().program("reshape(x, [n, d) @ w"),
            "unexpected-token",
            (7, 28),
            ")",
            "expected `,` or `]` in a list, found `)`",
        ),
        case(
            "missing operator",
            b().program("x w"),
            "unexpected-token",
            (7, 14),
            "w",
            "expected the end of the statement, found `w`",
        ),
        case(
            "dangling operator",
            b().program("x @ w +"),
            "unexpected-token",
            (7, 19),
            "",
            "expected an expression, found end of input",
        ),
        case(
            "let without a name",
            b().program("let = x @ w"),
            "unexpected-token",
            (7, 16),
            "=",
            "expected a name after `let`, found `=`",
        ),
        case(
            "infinite number",
            b().program("x @ w * 1e400"),
            "bad-number",
            (7, 20),
            "1e400",
            "`1e400` is too large",
        ),
        case(
            "integer too large",
            b().program("x @ w * 99999999999999999"),
            "bad-number",
            (7, 20),
            "99999999999999999",
            "integer literal is too large",
        ),
        case(
            "nesting too deep",
            b().program(&format!("{}x{} @ w", "(".repeat(300), ")".repeat(300))),
            "too-deep",
            (7, 112),
            "(",
            "nests too deeply",
        ),
        case(
            "operator chain too long",
            b().program(&format!("{}x @ w", "x + ".repeat(300))),
            "too-deep",
            (7, 410),
            "+",
            "nests too deeply",
        )
        .hint("split it with `let` lines"),
        case(
            "scalar let chain that doubles",
            b().program(
                "let a = d * d; let b = a * a; let c = b * b; let e = c * c; \
                 let f = e * e; let g = f * f; out = x @ w * g",
            ),
            "scalar-too-large",
            (7, 95),
            "f * f",
            "this scalar expression has over 100 operations",
        ),
        case(
            "long scalar let chain",
            b().line(
                "program",
                &format!(
                    "program = '''\nlet a0 = d\n{}out = x @ w * a9999\n'''",
                    (1..10_000)
                        .map(|i| format!("let a{i} = a{} + d\n", i - 1))
                        .collect::<String>()
                ),
            ),
            "scalar-too-large",
            (58, 11),
            "a49 + d",
            "this scalar expression has over 100 operations",
        ),
        case(
            "program that is not a string",
            b().set("program", "3"),
            "wrong-type",
            (7, 11),
            "3",
            "program must be a string, found an integer",
        ),
        // ---------------------------------------------------------------- dims
        case(
            "unused dim",
            b().dims("{ n = [8], d = [64], k = [4] }"),
            "unused-dim",
            (8, 29),
            "k",
            "dim `k` is not used",
        ),
        case(
            "empty dim list",
            b().dims("{ n = [8], d = [] }"),
            "empty-dim-values",
            (8, 23),
            "[]",
            "the list of dim values is empty",
        ),
        case(
            "duplicate dim value",
            b().dims("{ n = [8], d = [64, 32, 64] }"),
            "duplicate-dim-value",
            (8, 32),
            "64",
            "value 64 is listed twice",
        ),
        case(
            "inverted range",
            b().dims(r#"{ n = [8], d = "64..=1" }"#),
            "empty-range",
            (8, 24),
            "64..=1",
            "the range `64..=1` is empty",
        ),
        case(
            "empty half-open range",
            b().dims(r#"{ n = [8], d = "5..5" }"#),
            "empty-range",
            (8, 24),
            "5..5",
            "the range `5..5` is empty",
        ),
        case(
            "malformed range",
            b().dims(r#"{ n = [8], d = "1...64" }"#),
            "bad-range",
            (8, 24),
            "1...64",
            "`1...64` is not a range",
        )
        .hint("1..=64"),
        case(
            "range with a bad end",
            b().dims(r#"{ n = [8], d = "1..=lots" }"#),
            "bad-range",
            (8, 24),
            "1..=lots",
            "is not a range",
        ),
        case(
            "range reaching 0",
            b().dims(r#"{ n = [8], d = "0..=64" }"#),
            "bad-dim-value",
            (8, 24),
            "0..=64",
            "dim value 0 is out of range",
        ),
        case(
            "range ending at i64::MIN",
            b().dims(r#"{ n = [8], d = "1..-9223372036854775808" }"#),
            "empty-range",
            (8, 24),
            "1..-9223372036854775808",
            "is empty",
        ),
        case(
            "non-integer dim value in a list",
            b().dims("{ n = [8], d = [64.5] }"),
            "bad-dim-value",
            (8, 24),
            "64.5",
            "dim values must be integers",
        ),
        case(
            "non-integer dim value",
            b().dims("{ n = [8], d = 1.5 }"),
            "bad-dim-value",
            (8, 23),
            "1.5",
            "expected dim values, found a float",
        ),
        case(
            "dim value 0",
            b().dims("{ n = [0], d = [64] }"),
            "bad-dim-value",
            (8, 15),
            "0",
            "dim value 0 is out of range",
        )
        .hint("1..=2147483647"),
        case(
            "dim value too large",
            b().dims("{ n = 4294967296, d = [64] }"),
            "bad-dim-value",
            (8, 14),
            "4294967296",
            "dim value 4294967296 is out of range",
        ),
        case(
            "dim that is not positive at some point",
            b().inputs(r#"{ x = "f16[n, d - 64]", w = "f16[d - 64, d]" }"#),
            "nonpositive-dim",
            (5, 11),
            "k",
            "is 0 at point",
        ),
        // -------------------------------------------------------- missing keys
        case(
            "missing program",
            b().remove("program"),
            "missing-key",
            (5, 11),
            "k",
            "workload `k` has no `program`",
        ),
        case(
            "missing inputs",
            b().remove("inputs"),
            "missing-key",
            (5, 11),
            "k",
            "workload `k` has no `inputs`",
        ),
        case(
            "missing dims",
            b().remove("dims"),
            "missing-key",
            (5, 11),
            "k",
            "workload `k` has no `dims`",
        ),
        // ------------------------------------------- tolerance, points, init
        case(
            "tolerance above 1",
            b().set("tolerance", "2.0"),
            "bad-tolerance",
            (9, 13),
            "2.0",
            "tolerance must be a number in (0, 1)",
        ),
        case(
            "tolerance 0",
            b().set("tolerance", "0"),
            "bad-tolerance",
            (9, 13),
            "0",
            "tolerance must be a number in (0, 1)",
        ),
        case(
            "tolerance nan",
            b().set("tolerance", "nan"),
            "bad-tolerance",
            (9, 13),
            "nan",
            "tolerance must be a number in (0, 1)",
        ),
        case(
            "point outside the declared values",
            b().set("points", "[{ n = 9, d = 64 }]"),
            "point-out-of-range",
            (9, 17),
            "9",
            "n = 9 is outside its declared values",
        ),
        case(
            "incomplete point",
            b().set("points", "[{ n = 8 }]"),
            "incomplete-point",
            (9, 11),
            "{ n = 8 }",
            "this point gives no value for dim `d`",
        ),
        case(
            "point naming an unknown dim",
            b().set("points", "[{ n = 8, d = 64, k = 1 }]"),
            "unknown-dim",
            (9, 28),
            "k",
            "`k` is not a declared dim",
        ),
        case(
            "duplicate point",
            b().set("points", "[{ n = 8, d = 64 }, { d = 64, n = 8 }]"),
            "duplicate-point",
            (9, 30),
            "{ d = 64, n = 8 }",
            "this point is listed twice",
        ),
        case(
            "empty points",
            b().set("points", "[]"),
            "empty-points",
            (9, 10),
            "[]",
            "the list of points is empty",
        ),
        case(
            "point with a string value",
            b().set("points", r#"[{ n = "8", d = 64 }]"#),
            "wrong-type",
            (9, 17),
            r#""8""#,
            "a dim value must be an integer, found a string",
        ),
        case(
            "empty init",
            b().set("init", r#"{ w = "" }"#),
            "empty-expression",
            (9, 14),
            r#""""#,
            "expected an expression, found nothing",
        ),
        case(
            "init that is a boolean",
            b().set("init", "{ w = true }"),
            "wrong-type",
            (9, 14),
            "true",
            "an init value must be a number or a string, found a boolean",
        ),
        case(
            "init naming an unknown input",
            b().set("init", r#"{ y = "1" }"#),
            "unknown-input",
            (9, 10),
            "y",
            "`y` is not an input of `k`",
        ),
        case(
            "init that is a tensor",
            b().set("init", r#"{ w = "x" }"#),
            "expected-scalar",
            (9, 15),
            "x",
            "`init` must be a scalar",
        ),
        case(
            "init with an unknown function",
            b().set("init", r#"{ w = "1/sqroot(d)" }"#),
            "unknown-op",
            (9, 17),
            "sqroot",
            "unknown op `sqroot`",
        )
        .hint("did you mean `sqrt`?"),
        // ----------------------------------------------------- workload names
        case(
            "workload name that is not an identifier",
            b().header(r#"[workload."my-kernel"]"#),
            "bad-name",
            (5, 11),
            r#""my-kernel""#,
            "`my-kernel` is not a valid workload name",
        ),
        case(
            "dim name that is not an identifier",
            b().dims(r#"{ n = [8], d = [64], "2k" = [4] }"#),
            "bad-name",
            (8, 29),
            r#""2k""#,
            "`2k` is not a valid dim name",
        ),
        raw(
            "no workloads at all",
            "[target]\narch = [\"sm_90a\"]\n".into(),
            "no-workloads",
            (1, 1),
            "",
            "prism.toml declares no workloads",
        ),
        raw(
            "empty [workload] table",
            "[target]\narch = [\"sm_90a\"]\n\n[workload]\n".into(),
            "no-workloads",
            (4, 2),
            "workload",
            "prism.toml declares no workloads",
        ),
        // ------------------------------------------- where errors point inside strings
        case(
            "program with escapes",
            b().inputs(r#"{ x = "f16[n, d]", weight = "f16[d, d]" }"#)
                .program(r"let h = exp(x)\nout = h @ wieght"),
            "unknown-name",
            (7, 38),
            "wieght",
            "unknown name `wieght`",
        )
        .hint("did you mean `weight`?"),
        case(
            "program with a unicode escape",
            b().program(r"x @ w \u00d7 2"),
            "unexpected-character",
            (7, 18),
            r"\u00d7",
            "unexpected character `×`",
        ),
        case(
            "input type with escapes",
            b().inputs(r#"{ x = "\u0066\u0031\u0036[n,\tk]", w = "f16[d, d]" }"#),
            "unbound-dim",
            (6, 40),
            "k",
            "dim `k` has no declared values",
        ),
        case(
            "multi-line program, error on its third line",
            b().line(
                "program",
                "program = \"\"\"\nlet h = rms_norm(x)\nlet g = h @ w\nout = expp(g)\n\"\"\"",
            ),
            "unknown-op",
            (10, 7),
            "expp",
            "unknown op `expp`",
        )
        .hint("did you mean `exp`?"),
        case(
            "multi-line literal program, error on its third line",
            b().line(
                "program",
                "program = '''\nlet h = rms_norm(x)\n\nout = h @ w + \\\n'''",
            ),
            "unexpected-character",
            (10, 15),
            "\\",
            "unexpected character `\\`",
        ),
        case(
            "multi-line program with a line-ending backslash",
            b().line(
                "program",
                "program = \"\"\"\nlet h = rms_norm(x) \\\n    + x\nout = h @ ww\n\"\"\"",
            ),
            "unknown-name",
            (10, 11),
            "ww",
            "unknown name `ww`",
        ),
        case(
            "multi-line program with a call spanning lines",
            b().line(
                "program",
                "program = \"\"\"\nout = matmul(\n    x,\n    w,\n    x,\n)\n\"\"\"",
            ),
            "wrong-arity",
            (11, 5),
            "x",
            "`matmul` takes at most 2 arguments, got 3",
        ),
    ]
}

/// Check one case; `Err` says what is wrong.
fn check(c: &Case) -> Result<(), String> {
    let report = match parse(FILE, &c.source) {
        Ok(_) => return Err("parsed without error".into()),
        Err(r) => r,
    };
    let all: Vec<LocatedDiagnostic> = report.located();
    let [d] = all.as_slice() else {
        return Err(format!(
            "expected one diagnostic, got {}:\n{report}",
            all.len()
        ));
    };
    let mut problems = Vec::new();
    if d.code != c.code {
        problems.push(format!("code `{}`, expected `{}`", d.code, c.code));
    }
    if (d.line, d.column) != (c.line, c.column) {
        problems.push(format!(
            "at {}:{}, expected {}:{}",
            d.line, d.column, c.line, c.column
        ));
    }
    if d.text != c.text {
        problems.push(format!("underlines {:?}, expected {:?}", d.text, c.text));
    }
    if !d.message.contains(c.message) {
        problems.push(format!("message {:?} lacks {:?}", d.message, c.message));
    }
    match &d.hint {
        None => problems.push("no hint".into()),
        Some(h) if h.trim().is_empty() => problems.push("empty hint".into()),
        Some(h) => {
            if let Some(want) = c.hint
                && !h.contains(want)
            {
                problems.push(format!("hint {h:?} lacks {want:?}"));
            }
        }
    }
    if !report.diagnostics[0].label.is_empty() && report.diagnostics[0].label.trim().is_empty() {
        problems.push("blank label".into());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\n{report}", problems.join("; ")))
    }
}

#[test]
fn the_base_file_is_valid() {
    let spec = parse(FILE, &base().text()).unwrap_or_else(|r| panic!("{r}"));
    assert_eq!(spec.workloads.len(), 1);
    assert_eq!(spec.workloads[0].name, "k");
}

#[test]
fn there_are_enough_cases() {
    let cases = cases();
    assert!(cases.len() >= 30, "only {} cases", cases.len());
    let mut names: Vec<_> = cases.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names must be unique");
}

#[test]
fn every_malformed_file_gets_a_located_diagnostic() {
    let failures: Vec<String> = cases()
        .iter()
        .filter_map(|c| check(c).err().map(|e| format!("--- {}: {e}", c.name)))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases().len(),
        failures.join("\n")
    );
}

#[test]
fn no_malformed_file_panics() {
    for c in cases() {
        let result = catch_unwind(AssertUnwindSafe(|| {
            let r = parse(FILE, &c.source);
            // Rendering must not panic either.
            if let Err(report) = &r {
                let _ = report.render(false);
                let _ = report.render(true);
                let _ = report.located();
            }
            r.is_err()
        }));
        assert!(
            matches!(result, Ok(true)),
            "case `{}` panicked or parsed",
            c.name
        );
    }
}

/// Every truncation of a few malformed files: nothing panics, whatever is cut.
#[test]
fn no_prefix_of_a_file_panics() {
    let sources = [
        base().text(),
        base()
            .line(
                "program",
                "program = \"\"\"\nlet h = rms_norm(x, eps=1e-5)\nout = softmax(h @ w, -1)\n\"\"\"",
            )
            .set("points", "[{ n = 8, d = 64 }]")
            .set("init", r#"{ w = "1/sqrt(d)" }"#)
            .text(),
        base()
            .program(r"let h = exp(x)\nout = h @ w \u00d7 2")
            .text(),
    ];
    for source in &sources {
        for end in (0..=source.len()).filter(|&i| source.is_char_boundary(i)) {
            let prefix = &source[..end];
            let result = catch_unwind(AssertUnwindSafe(|| {
                if let Err(r) = parse(FILE, prefix) {
                    let _ = r.render(false);
                    let _ = r.located();
                }
            }));
            assert!(result.is_ok(), "panicked on prefix {prefix:?}");
        }
    }
}

#[test]
fn rendered_reports_show_file_line_column_underline_and_hint() {
    let renders = [
        (
            b_program("matmul(expp(x), w)"),
            "file.toml:7:19",
            "^^^^",
            "= hint: did you mean `exp`?",
        ),
        (
            base().target("arch", r#"["sm_70"]"#).text(),
            "file.toml:2:9",
            "^^^^^^^",
            "= hint: CUDA 13 supports",
        ),
        (
            base().dims(r#"{ n = [8], d = "64..=1" }"#).text(),
            "file.toml:8:24",
            "^^^^^^",
            "= hint:",
        ),
        (
            base()
                .line(
                    "program",
                    "program = \"\"\"\nlet h = rms_norm(x)\nlet g = h @ w\nout = expp(g)\n\"\"\"",
                )
                .text(),
            "file.toml:10:7",
            "^^^^",
            "= hint: did you mean `exp`?",
        ),
    ];
    for (source, location, underline, hint) in renders {
        let report = parse(FILE, &source).unwrap_err();
        let text = report.to_string();
        assert_eq!(text, report.render(false));
        assert!(
            text.contains(&format!("┌─ {location}")),
            "no {location} in\n{text}"
        );
        assert!(text.contains(underline), "no {underline} in\n{text}");
        assert!(text.contains(hint), "no {hint} in\n{text}");
        let code = report.diagnostics[0].code;
        assert!(
            text.contains(&format!("error[{code}]")),
            "no code in\n{text}"
        );
    }
}

fn b_program(program: &str) -> String {
    base().program(program).text()
}

#[test]
fn errors_are_collected_across_workloads() {
    let source = r#"[target]
arch = ["sm_90a"]

[workload.bad_op]
inputs = { x = "f16[n]" }
program = "expp(x)"
dims = { n = [8] }

[workload.no_dims]
inputs = { x = "f16[n]" }
program = "exp(x)"

[workload.fine]
inputs = { x = "f16[n]" }
program = "exp(x)"
dims = { n = [8] }

[workload.bad_range]
inputs = { x = "f16[n]" }
program = "exp(x)"
dims = { n = "9..=1" }
"#;
    let report = parse(FILE, source).unwrap_err();
    let got: Vec<(&str, usize, usize, String)> = report
        .located()
        .into_iter()
        .map(|d| (d.code, d.line, d.column, d.text))
        .collect();
    assert_eq!(
        got,
        vec![
            ("unknown-op", 6, 12, "expp".to_string()),
            ("missing-key", 9, 11, "no_dims".to_string()),
            ("empty-range", 21, 15, "9..=1".to_string()),
        ],
        "{report}"
    );
    let text = report.to_string();
    for loc in ["file.toml:6:12", "file.toml:9:11", "file.toml:21:15"] {
        assert!(text.contains(loc), "no {loc} in\n{text}");
    }
}

#[test]
fn a_bad_target_and_a_bad_workload_are_both_reported() {
    let source = base()
        .target("arch", r#"["sm90"]"#)
        .program("matmul(x, ww)")
        .text();
    let report = parse(FILE, &source).unwrap_err();
    let codes: Vec<&str> = report.diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(codes, ["bad-arch", "unknown-name"], "{report}");
}

#[test]
fn unknown_top_level_key_does_not_hide_workload_errors() {
    let source = base()
        .program("matmul(x, w, x)")
        .tail("\n[targte]\narch = [\"sm_90a\"]\n")
        .text();
    let report = parse(FILE, &source).unwrap_err();
    let codes: Vec<&str> = report.diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(codes, ["unknown-key", "wrong-arity"], "{report}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    /// Random edits of a valid file (deleting a range, inserting characters
    /// the grammars care about) never panic, and every diagnostic's span lies
    /// inside the file on character boundaries.
    #[test]
    fn edited_files_never_panic(
        at in 0usize..1000,
        delete in 0usize..6,
        insert in proptest::collection::vec(
            proptest::sample::select(vec![
                "(", ")", "[", "]", "{", "}", "\"", "'", "\\", "\n", "=", ",", ".", "..",
                "..=", "-", "+", "*", "/", "@", "#", "x", "n", "0", "1e9", "×", "let ", "\\u00e9",
            ]),
            0..4,
        ),
    ) {
        let source = base()
            .line(
                "program",
                "program = \"\"\"\nlet h = rms_norm(x, eps=1e-5)\nout = softmax(h @ w, -1)\n\"\"\"",
            )
            .set("points", "[{ n = 8, d = 64 }]")
            .set("init", r#"{ w = "1/sqrt(d)" }"#)
            .set("tolerance", "1e-2")
            .text();
        let mut at = at % (source.len() + 1);
        while !source.is_char_boundary(at) {
            at -= 1;
        }
        let mut end = (at + delete).min(source.len());
        while !source.is_char_boundary(end) {
            end += 1;
        }
        let edited = format!("{}{}{}", &source[..at], insert.concat(), &source[end..]);
        let result = catch_unwind(AssertUnwindSafe(|| parse(FILE, &edited)));
        proptest::prop_assert!(result.is_ok(), "panicked on {:?}", edited);
        if let Ok(Err(report)) = result {
            proptest::prop_assert!(!report.diagnostics.is_empty());
            for d in &report.diagnostics {
                proptest::prop_assert!(d.span.start <= d.span.end && d.span.end <= edited.len(),
                    "span {:?} outside the file in {:?}", d.span, edited);
                proptest::prop_assert!(edited.is_char_boundary(d.span.start)
                    && edited.is_char_boundary(d.span.end),
                    "span {:?} splits a character in {:?}", d.span, edited);
                proptest::prop_assert!(d.hint.is_some(), "no hint for {:?} in {:?}", d.code, edited);
            }
            let _ = report.render(false);
        }
    }
}

#[test]
fn init_must_be_a_positive_standard_deviation() {
    let src = "[workload.w]\ninputs = { x = \"f32[n]\" }\nprogram = \"exp(x)\"\ndims = { n = [4] }\ninit = { x = \"1 - n\" }\n";
    let rep = prism::frontend::parse("init.toml", src).expect_err("negative init");
    let loc = &rep.located()[0];
    assert_eq!((loc.code, loc.line, loc.column), ("bad-init", 5, 14));
    assert_eq!(loc.text, "\"1 - n\"");
    assert!(loc.hint.is_some());
}

#[test]
fn huge_dim_expressions_are_rejected_not_wrapped() {
    let src = "[workload.w]\ninputs = { x = \"f32[n]\" }\nprogram = \"reshape(x, [n * 9007199254740991 * 9007199254740991])\"\ndims = { n = [4] }\n";
    let rep = prism::frontend::parse("big.toml", src).expect_err("overflowing dim");
    assert_eq!(rep.diagnostics[0].code, "dim-overflow");
}
