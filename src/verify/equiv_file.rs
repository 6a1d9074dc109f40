//! The file `prism equiv` reads:
//!
//! ```toml
//! inputs = { x = "f32[n, d]", w = "f32[d, e]" }
//! dims = { n = "1..=64", d = "1..=4096", e = "1..=4096" }
//! lhs = "rms_norm(x) @ w"
//! rhs = "(x @ w) * rsqrt(mean(square(x), -1, keepdim=true) + 1e-6)"
//! dtype = "f32"     # optional: the dtype of inputs written without one
//! ```
//!
//! It is checked by the front end itself: the keys are copied into a
//! prism.toml text with one workload whose program has the two outputs
//! `lhs = ...` and `rhs = ...`, and every diagnostic of that text is mapped
//! back to the place in FILE its span came from.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::lang::{ConvertError, Node, from_graph};
use super::numeric::single_output;
use crate::diagnostics::{Diagnostic, Report, Span};
use crate::frontend::snippet::Snippet;
use crate::ir::{Graph, NodeId, Workload, type_string};

/// Keys of an equivalence file.
pub const KEYS: &[&str] = &["inputs", "dims", "lhs", "rhs", "dtype"];

/// A parsed equivalence file: one workload whose graph has the outputs `lhs`
/// and `rhs` (in that order), of one type.
#[derive(Clone, Debug)]
pub struct EquivProblem {
    pub path: String,
    pub workload: Workload,
}

impl EquivProblem {
    fn output(&self, i: usize) -> Result<NodeId, ConvertError> {
        self.workload
            .graph
            .outputs
            .get(i)
            .map(|o| o.node)
            .ok_or_else(|| ConvertError::Malformed(format!("no output {i}")))
    }

    /// The graph with only the `lhs` output.
    pub fn lhs_graph(&self) -> Graph {
        single_output(&self.workload.graph, 0).unwrap_or_default()
    }

    /// The graph with only the `rhs` output.
    pub fn rhs_graph(&self) -> Graph {
        single_output(&self.workload.graph, 1).unwrap_or_default()
    }

    pub fn lhs_expr(&self) -> Result<egg::RecExpr<Node>, ConvertError> {
        from_graph(&self.workload.graph, self.output(0)?)
    }

    pub fn rhs_expr(&self) -> Result<egg::RecExpr<Node>, ConvertError> {
        from_graph(&self.workload.graph, self.output(1)?)
    }
}

/// How a range of the generated prism.toml maps back to FILE.
#[derive(Clone, Debug)]
enum SegMap {
    /// Copied verbatim from this offset.
    Linear(usize),
    /// Stands for this span as a whole.
    Whole(Span),
    /// The decoded text of the TOML string at this span.
    Text(Span, String),
}

#[derive(Clone, Debug)]
struct Seg {
    start: usize,
    end: usize,
    map: SegMap,
}

#[derive(Default)]
struct Synth {
    text: String,
    segs: Vec<Seg>,
}

impl Synth {
    fn plain(&mut self, s: &str) {
        self.text.push_str(s);
    }

    fn mapped(&mut self, s: &str, map: SegMap) {
        let start = self.text.len();
        self.text.push_str(s);
        self.segs.push(Seg {
            start,
            end: self.text.len(),
            map,
        });
    }

    /// The span in FILE of `span` of the generated text.
    fn map_back(&self, source: &str, span: Span, fallback: Span) -> Span {
        let Some(seg) = self
            .segs
            .iter()
            .find(|s| s.start <= span.start && span.start <= s.end)
        else {
            return fallback;
        };
        let end = span.end.clamp(span.start, seg.end);
        match &seg.map {
            SegMap::Linear(o) => Span::new(o + span.start - seg.start, o + end - seg.start),
            SegMap::Whole(s) => *s,
            SegMap::Text(value_span, text) => {
                let snip = Snippet::new(source, *value_span, text);
                let (a, b) = (span.start - seg.start, end - seg.start);
                if a <= text.len() && b <= text.len() {
                    snip.span(a, b)
                } else {
                    *value_span
                }
            }
        }
    }
}

/// A key of a TOML table with its value.
type Entry<'a, 'i> = (
    &'a Spanned<std::borrow::Cow<'i, str>>,
    &'a Spanned<DeValue<'i>>,
);

fn sp<T>(s: &Spanned<T>) -> Span {
    s.span().into()
}

/// A TOML basic string holding `s`.
fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn report(path: &str, source: &str, diagnostics: Vec<Diagnostic>) -> Report {
    Report {
        path: path.to_string(),
        source: source.to_string(),
        diagnostics,
    }
}

const EXAMPLE: &str = "inputs = { x = \"f32[n, d]\", w = \"f32[d, e]\" }\n\
    dims = { n = \"1..=64\", d = \"1..=4096\", e = \"1..=4096\" }\n\
    lhs = \"rms_norm(x) @ w\"\n\
    rhs = \"(x @ w) * rsqrt(mean(square(x), -1, keepdim=true) + 1e-6)\"";

/// Parse and check an equivalence file named `path` (for messages).
pub fn parse(path: &str, source: &str) -> Result<EquivProblem, Report> {
    let root = DeTable::parse(source).map_err(|e| {
        let span = e.span().map_or(Span::new(0, 0), Span::from);
        let msg = e.message().trim_end().to_string();
        report(
            path,
            source,
            vec![
                Diagnostic::new("toml-syntax", span, format!("TOML syntax error: {msg}"))
                    .label("here")
                    .hint("fix the TOML syntax; see https://toml.io for the format"),
            ],
        )
    })?;
    let mut errors = Vec::new();
    let mut found: [Option<Entry<'_, '_>>; 5] = [None; 5];
    for (k, v) in root.get_ref().iter() {
        match KEYS.iter().position(|key| *key == k.get_ref().as_ref()) {
            Some(i) => found[i] = Some((k, v)),
            None => {
                let name = k.get_ref().as_ref();
                let close = KEYS
                    .iter()
                    .map(|a| (strsim::levenshtein(name, a), *a))
                    .filter(|(d, a)| *d <= 2 && *d < a.len())
                    .min();
                let hint = match close {
                    Some((_, a)) => {
                        format!("did you mean `{a}`? allowed keys: {}", KEYS.join(", "))
                    }
                    None => format!("allowed keys: {}", KEYS.join(", ")),
                };
                errors.push(
                    Diagnostic::new(
                        "unknown-key",
                        sp(k),
                        format!("unknown key `{name}` in an equivalence file"),
                    )
                    .label("unknown key")
                    .hint(hint),
                );
            }
        }
    }
    for (i, key) in KEYS.iter().enumerate().take(4) {
        if found[i].is_none() {
            errors.push(
                Diagnostic::new(
                    "missing-key",
                    Span::new(0, 0),
                    format!("the equivalence file has no `{key}`"),
                )
                .label(format!("`{key}` missing"))
                .hint(format!("an equivalence file looks like:\n{EXAMPLE}")),
            );
        }
    }
    let [Some(inputs), Some(dims), Some(lhs), Some(rhs), dtype] = found else {
        return Err(report(path, source, errors));
    };
    let mut tables = Vec::new();
    for (k, v) in [inputs, dims] {
        match v.get_ref().as_table() {
            Some(t) if t.is_empty() => errors.push(
                Diagnostic::new("empty-table", sp(v), format!("`{}` is empty", k.get_ref()))
                    .label("empty")
                    .hint(format!("an equivalence file looks like:\n{EXAMPLE}")),
            ),
            Some(t) => tables.push(t),
            None => errors.push(
                Diagnostic::new(
                    "wrong-type",
                    sp(v),
                    format!(
                        "`{}` must be a table, found a {}",
                        k.get_ref(),
                        v.get_ref().type_str()
                    ),
                )
                .label("expected a table")
                .hint(format!("an equivalence file looks like:\n{EXAMPLE}")),
            ),
        }
    }
    let mut exprs = Vec::new();
    for (k, v) in [lhs, rhs] {
        match v.get_ref().as_str() {
            Some(s)
                if s.contains("'''")
                    || s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') =>
            {
                errors.push(
                    Diagnostic::new(
                        "bad-expression",
                        sp(v),
                        format!(
                            "`{}` contains characters an expression cannot have",
                            k.get_ref()
                        ),
                    )
                    .label("here")
                    .hint("write one expression of the program language, e.g. \"x @ w\""),
                )
            }
            Some(s) => exprs.push((sp(v), s.to_string())),
            None => errors.push(
                Diagnostic::new(
                    "wrong-type",
                    sp(v),
                    format!(
                        "`{}` must be a string, found a {}",
                        k.get_ref(),
                        v.get_ref().type_str()
                    ),
                )
                .label("expected a string")
                .hint("write the expression as a string, e.g. lhs = \"x @ w\""),
            ),
        }
    }
    if !errors.is_empty() {
        return Err(report(path, source, errors));
    }

    // The prism.toml text.
    let mut s = Synth::default();
    if let Some((_, v)) = dtype {
        s.plain("[target]\ndtype = ");
        s.mapped(
            source.get(sp(v).range()).unwrap_or("\"\""),
            SegMap::Linear(sp(v).start),
        );
        s.plain("\n");
    }
    s.plain("[workload.equiv]\nprogram = '''\n");
    for (name, (span, text)) in ["lhs", "rhs"].iter().zip(&exprs) {
        s.plain(name);
        s.plain(" = ");
        s.mapped(text, SegMap::Text(*span, text.clone()));
        s.plain("\n");
    }
    s.plain("'''\n");
    for (section, t) in ["inputs", "dims"].iter().zip(&tables) {
        s.plain(&format!("[workload.equiv.{section}]\n"));
        for (k, v) in t.iter() {
            s.mapped(&quoted(k.get_ref()), SegMap::Whole(sp(k)));
            s.plain(" = ");
            let vs = sp(v);
            s.mapped(
                source.get(vs.range()).unwrap_or("\"\""),
                SegMap::Linear(vs.start),
            );
            s.plain("\n");
        }
    }

    let fallback = sp(dims.0);
    let spec = crate::frontend::parse(path, &s.text).map_err(|rep| {
        let diagnostics = rep
            .diagnostics
            .into_iter()
            .map(|mut d| {
                d.span = s.map_back(source, d.span, fallback);
                d.message = d.message.replace("workload `equiv`", "the equivalence");
                d
            })
            .collect();
        report(path, source, diagnostics)
    })?;
    let Some(workload) = spec.workloads.into_iter().next() else {
        return Err(report(
            path,
            source,
            vec![Diagnostic::new(
                "internal",
                Span::new(0, 0),
                "no workload was built",
            )],
        ));
    };
    let g = &workload.graph;
    let names: Vec<&str> = g.outputs.iter().map(|o| o.name.as_str()).collect();
    if names != ["lhs", "rhs"] {
        return Err(report(
            path,
            source,
            vec![
                Diagnostic::new(
                    "bad-expression",
                    exprs[0].0,
                    "`lhs` and `rhs` must each be a single expression",
                )
                .label("here")
                .hint("write one expression per side, without `;` or `let`"),
            ],
        ));
    }
    let (l, r) = (g.node(g.outputs[0].node), g.node(g.outputs[1].node));
    if (l.dtype, &l.shape) != (r.dtype, &r.shape) {
        let (lt, rt) = (
            type_string(l.dtype, &l.shape),
            type_string(r.dtype, &r.shape),
        );
        return Err(report(
            path,
            source,
            vec![
                Diagnostic::new(
                    "type-mismatch",
                    exprs[1].0,
                    format!("lhs has type {lt} but rhs has type {rt}"),
                )
                .label(rt.to_string())
                .hint("both sides must have the same shape and dtype"),
            ],
        ));
    }
    Ok(EquivProblem {
        path: path.to_string(),
        workload,
    })
}
