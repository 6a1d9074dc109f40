//! The checks the text fuzz targets run on every input. Shared with
//! `tests/fuzz_regressions.rs` (through `#[path]`), so a crash found by the
//! fuzzer replays there exactly. Depends on nothing but `prism` and `std`.

#![allow(dead_code)]

use prism::Report;
use prism::cli::check;
use prism::frontend;
use prism::frontend::parser::parse_program;
use prism::frontend::snippet::Snippet;
use prism::ir::{DimBindings, Graph, Op, Spec, Workload};
use prism::reference::{self, Precision, Tensor};

/// Largest tensor (elements) the fuzz targets hand to the reference
/// interpreter.
pub const MAX_ELEMENTS: usize = 4096;

/// Largest estimated work (multiply-adds and element visits) of one
/// evaluation, so that a long program of small matmuls cannot time out.
pub const MAX_WORK: usize = 1 << 21;

/// Name the fuzzed files go by in messages.
pub const FILE: &str = "fuzz.toml";

/// Target 1: a whole prism.toml. Parse it; render what the front end says
/// either way; evaluate every accepted workload at one small point.
pub fn check_toml(source: &str) {
    check_source(source);
}

/// Target 2: a program of the expression language, wrapped into a fixed
/// prism.toml. Also: when the program parses on its own, the printer
/// round-trips it.
pub fn check_expression(program: &str) {
    check_round_trip(program);
    check_source(&wrap_program(program));
}

/// Parse `source` as a prism.toml and check everything the front end returns.
pub fn check_source(source: &str) -> Option<Spec> {
    match frontend::parse(FILE, source) {
        Ok(spec) => {
            check_spec(&spec);
            Some(spec)
        }
        Err(report) => {
            check_report(source, &report);
            None
        }
    }
}

/// An accepted file: the check listing and JSON render; each workload is
/// evaluated at its first small point.
pub fn check_spec(spec: &Spec) {
    assert!(!spec.workloads.is_empty(), "a spec without workloads");
    let _ = check::render(spec);
    let _ = check::to_json(&check::report(spec));
    for w in &spec.workloads {
        assert!(
            !w.graph.outputs.is_empty(),
            "workload `{}` has no outputs",
            w.name
        );
        assert!(!w.points.is_empty(), "workload `{}` has no points", w.name);
        for p in &w.points {
            if let Err(e) = w.check_point(p) {
                panic!("workload `{}`: its own point {p:?} is invalid: {e}", w.name);
            }
        }
        eval_workload(w);
    }
}

/// A rejected file: every diagnostic is located inside the file on character
/// boundaries and has a hint (ARCHITECTURE.md's "no panics on user input"
/// invariant: a span, a stable code and a hint); rendering does not panic.
pub fn check_report(source: &str, report: &Report) {
    assert!(
        !report.diagnostics.is_empty(),
        "rejected without a diagnostic"
    );
    for d in &report.diagnostics {
        assert!(
            d.span.start <= d.span.end && d.span.end <= source.len(),
            "[{}] span {:?} outside the file of {} bytes",
            d.code,
            d.span,
            source.len()
        );
        assert!(
            source.is_char_boundary(d.span.start) && source.is_char_boundary(d.span.end),
            "[{}] span {:?} splits a character",
            d.code,
            d.span
        );
        assert!(!d.code.is_empty(), "a diagnostic without a code");
        assert!(
            d.hint.as_deref().is_some_and(|h| !h.trim().is_empty()),
            "[{}] {}: no hint",
            d.code,
            d.message
        );
    }
    let _ = report.render(false);
    let _ = report.render(true);
    let _ = report.located();
}

/// Printing a parsed program and parsing the text again gives the same tree,
/// and printing is a fixed point (what tests/parser_roundtrip.rs checks on
/// generated trees).
pub fn check_round_trip(program: &str) {
    let Ok(p) = parse_program(&Snippet::detached(program)) else {
        return;
    };
    let printed = p.to_string();
    let back = match parse_program(&Snippet::detached(&printed)) {
        Ok(b) => b,
        Err(d) => panic!(
            "{program:?} prints as {printed:?}, which does not parse: [{}] {}",
            d.code, d.message
        ),
    };
    assert_eq!(
        back.without_spans(),
        p.without_spans(),
        "{program:?} prints as {printed:?}, which parses differently"
    );
    assert_eq!(
        back.to_string(),
        printed,
        "printing {program:?} is not a fixed point"
    );
}

/// The inputs the expression target may use: name, type, dims.
pub const EXPRESSION_INPUTS: &[(&str, &str, &[&str])] = &[
    ("x", "f16[n, d]", &["n", "d"]),
    ("w", "f16[d, d]", &["d"]),
    ("y", "f16[b, n, d]", &["b", "n", "d"]),
    ("z", "f32[n, 1]", &["n"]),
];

/// Values of the expression target's dims.
pub const EXPRESSION_DIMS: &[(&str, &str)] = &[("b", "2"), ("n", "\"1..=5\""), ("d", "[4, 8]")];

/// The fixed prism.toml around a fuzzed program. Only the inputs whose names
/// occur in the program as words are declared (an unused input or dim is an
/// error), `x` when none does; the program is a TOML literal string when it
/// can be one verbatim, else an escaped basic string, so the front end sees
/// exactly `program` after TOML decoding either way.
pub fn wrap_program(program: &str) -> String {
    let words = words(program);
    let mut used: Vec<&(&str, &str, &[&str])> = EXPRESSION_INPUTS
        .iter()
        .filter(|(name, _, _)| words.contains(name))
        .collect();
    if used.is_empty() {
        used.push(&EXPRESSION_INPUTS[0]);
    }
    let inputs: Vec<String> = used
        .iter()
        .map(|(n, t, _)| format!("{n} = \"{t}\""))
        .collect();
    let dims: Vec<String> = EXPRESSION_DIMS
        .iter()
        .filter(|(d, _)| used.iter().any(|(_, _, ds)| ds.contains(d)))
        .map(|(d, v)| format!("{d} = {v}"))
        .collect();
    format!(
        "[target]\narch = [\"sm_90a\"]\n\n[workload.e]\ninputs = {{ {} }}\nprogram = {}\ndims = {{ {} }}\n",
        inputs.join(", "),
        toml_string(program),
        dims.join(", ")
    )
}

/// Identifier-like words of `text` (what the lexer would take as names).
fn words(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect()
}

/// `text` as a TOML string value that decodes to exactly `text`.
pub fn toml_string(text: &str) -> String {
    let literal_ok = !text.contains('\'')
        && !text.starts_with('\n')
        && !text.starts_with("\r\n")
        && text
            .chars()
            .all(|c| c == '\t' || c == '\n' || !(c.is_control() || c == '\u{7f}'));
    if literal_ok {
        return format!("'''{text}'''");
    }
    let mut s = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\t' => s.push('\t'),
            c if c.is_control() || c == '\u{7f}' => s.push_str(&format!("\\u{:04X}", c as u32)),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// Evaluate `w` at its first point where every tensor is small, in f64 and in
/// the declared dtypes; outputs must have the shapes shape inference said.
pub fn eval_workload(w: &Workload) {
    for point in w.points.iter().take(8) {
        if let Some(shapes) = small_shapes(&w.graph, point) {
            let inputs = match reference::random_inputs(w, point, 1) {
                Ok(i) => i,
                Err(_) => return,
            };
            eval_checked(&w.graph, point, &inputs, &shapes);
            return;
        }
    }
}

/// The shapes of every node at `dims` when each has at most
/// [`MAX_ELEMENTS`] elements and the whole evaluation at most [`MAX_WORK`].
pub fn small_shapes(graph: &Graph, dims: &DimBindings) -> Option<Vec<Vec<usize>>> {
    let shapes = reference::shapes_at(graph, dims).ok()?;
    let elems = |s: &[usize]| s.iter().product::<usize>();
    let mut work = 0usize;
    for (node, shape) in graph.nodes.iter().zip(&shapes) {
        let n = elems(shape);
        if n > MAX_ELEMENTS {
            return None;
        }
        work += match &node.op {
            Op::Matmul(a, _) => n * shapes[a.0].last().copied().unwrap_or(1),
            Op::Reduce { input, .. } => elems(&shapes[input.0]),
            _ => n,
        };
        if work > MAX_WORK {
            return None;
        }
    }
    Some(shapes)
}

/// Run the interpreter both ways and check the outputs' shapes and lengths.
pub fn eval_checked(graph: &Graph, dims: &DimBindings, inputs: &[Tensor], shapes: &[Vec<usize>]) {
    for precision in [Precision::F64, Precision::Declared] {
        let outs = match reference::eval(graph, dims, inputs, precision) {
            Ok(o) => o,
            Err(e) => panic!("{precision:?} evaluation of a valid graph at {dims:?} failed: {e}"),
        };
        assert_eq!(outs.len(), graph.outputs.len(), "wrong number of outputs");
        for (o, t) in graph.outputs.iter().zip(&outs) {
            assert_eq!(
                t.shape, shapes[o.node.0],
                "output `{}` has the wrong shape",
                o.name
            );
            assert_eq!(
                t.data.len(),
                t.shape.iter().product::<usize>(),
                "output `{}` has {} elements for shape {:?}",
                o.name,
                t.data.len(),
                t.shape
            );
        }
    }
}
