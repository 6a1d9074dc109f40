//! Reading prism.toml: the `[target]` table and every `[workload.NAME]`,
//! with a located diagnostic for anything wrong.

use std::collections::BTreeMap;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::ast::Ident;
use super::dims::{a_type, parse_dim_values, parse_input_type};
use super::lower::{Lowerer, Value};
use super::parser::{parse_expr, parse_program};
use super::snippet::Snippet;
use crate::diagnostics::{Diagnostic, Span};
use crate::ir::{Arch, DType, DimBindings, DimDecl, DimValues, Spec, Target, Workload};

type Entry<'i> = (
    &'i Spanned<std::borrow::Cow<'i, str>>,
    &'i Spanned<DeValue<'i>>,
);

fn sp<T>(s: &Spanned<T>) -> Span {
    s.span().into()
}

fn unknown_key(key: &str, span: Span, place: &str, allowed: &[&str]) -> Diagnostic {
    Diagnostic::new(
        "unknown-key",
        span,
        format!("unknown key `{key}` in {place}"),
    )
    .label("unknown key")
    .hint(
        match allowed
            .iter()
            .map(|a| (strsim::levenshtein(key, a), *a))
            .filter(|(d, a)| *d <= 2 && *d < a.len())
            .min()
        {
            Some((_, a)) => format!("did you mean `{a}`? allowed keys: {}", allowed.join(", ")),
            None => format!("allowed keys: {}", allowed.join(", ")),
        },
    )
}

fn wrong_type(what: &str, expected: &str, v: &Spanned<DeValue<'_>>) -> Diagnostic {
    Diagnostic::new(
        "wrong-type",
        sp(v),
        format!("{what} must be {expected}, found {}", a_type(v.get_ref())),
    )
    .label(format!("expected {expected}"))
}

fn table<'a, 'i>(v: &'a Spanned<DeValue<'i>>, what: &str) -> Result<&'a DeTable<'i>, Diagnostic> {
    v.get_ref().as_table().ok_or_else(|| {
        wrong_type(what, "a table", v)
            .hint(format!("write {what} as a table: [{what}] or {{ ... }}"))
    })
}

fn string<'a>(v: &'a Spanned<DeValue<'_>>, what: &str, hint: &str) -> Result<&'a str, Diagnostic> {
    v.get_ref()
        .as_str()
        .ok_or_else(|| wrong_type(what, "a string", v).hint(hint.to_string()))
}

fn is_identifier(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

fn check_identifier(name: &str, span: Span, what: &str) -> Result<(), Diagnostic> {
    if is_identifier(name) {
        return Ok(());
    }
    Err(Diagnostic::new(
        "bad-name",
        span,
        format!("`{name}` is not a valid {what} name"),
    )
    .label("invalid name")
    .hint("names start with a letter or `_` and contain only letters, digits and `_`"))
}

/// Parse a whole prism.toml. All problems found are returned together.
pub fn parse_spec(source_name: &str, source: &str) -> Result<Spec, Vec<Diagnostic>> {
    let root = DeTable::parse(source).map_err(|e| {
        let span = e.span().map_or(Span::new(0, 0), Span::from);
        let msg = e.message().trim_end().to_string();
        vec![
            Diagnostic::new("toml-syntax", span, format!("TOML syntax error: {msg}"))
                .label("here")
                .hint("fix the TOML syntax; see https://toml.io for the format"),
        ]
    })?;
    let mut errors = Vec::new();
    let mut target = Target::default();
    let mut workloads_value = None;
    for (k, v) in root.get_ref().iter() {
        match k.get_ref().as_ref() {
            "target" => match parse_target(v) {
                Ok(t) => target = t,
                Err(d) => errors.push(d),
            },
            "workload" => workloads_value = Some((k, v)),
            other => errors.push(unknown_key(
                other,
                sp(k),
                "prism.toml",
                &["target", "workload"],
            )),
        }
    }
    let mut workloads = Vec::new();
    match workloads_value {
        None => errors.push(
            Diagnostic::new(
                "no-workloads",
                Span::new(0, 0),
                "prism.toml declares no workloads",
            )
            .label("file starts here")
            .hint("add a [workload.NAME] table with inputs, program and dims"),
        ),
        Some((k, v)) => match table(v, "workload") {
            Err(d) => errors.push(d),
            Ok(t) if t.is_empty() => errors.push(
                Diagnostic::new("no-workloads", sp(k), "prism.toml declares no workloads")
                    .label("no [workload.NAME] tables")
                    .hint("add a [workload.NAME] table with inputs, program and dims"),
            ),
            Ok(t) => {
                for entry in t.iter() {
                    match parse_workload(source, entry, target.dtype) {
                        Ok(w) => workloads.push(w),
                        Err(d) => errors.push(d),
                    }
                }
            }
        },
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Spec {
        source_name: source_name.to_string(),
        target,
        workloads,
    })
}

/// `sm_90a`, `sm_80`, `sm_120f`.
pub fn parse_arch(text: &str, span: Span) -> Result<Arch, Diagnostic> {
    let malformed = || {
        Diagnostic::new(
            "bad-arch",
            span,
            format!("`{text}` is not a GPU architecture"),
        )
        .label("malformed")
        .hint("write architectures like \"sm_90a\" (H100/H200) or \"sm_80\" (A100)")
    };
    let rest = text.strip_prefix("sm_").ok_or_else(malformed)?;
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let suffix = &rest[digits.len()..];
    if digits.is_empty() || !(suffix.is_empty() || suffix == "a" || suffix == "f") {
        return Err(malformed());
    }
    let capability: u32 = digits.parse().map_err(|_| malformed())?;
    if !(Arch::MIN_CAPABILITY..=Arch::MAX_CAPABILITY).contains(&capability) {
        return Err(Diagnostic::new(
            "unsupported-arch",
            span,
            format!("CUDA 13 cannot build for `{text}`"),
        )
        .label("unsupported")
        .hint(format!(
            "CUDA 13 supports sm_{} through sm_{}",
            Arch::MIN_CAPABILITY,
            Arch::MAX_CAPABILITY
        )));
    }
    Ok(Arch {
        capability,
        suffix: suffix.to_string(),
    })
}

fn parse_dtype(v: &Spanned<DeValue<'_>>) -> Result<DType, Diagnostic> {
    let s = string(v, "dtype", "use f16, bf16 or f32")?;
    s.parse().map_err(|_| {
        Diagnostic::new("unknown-dtype", sp(v), format!("unknown dtype `{s}`"))
            .label("unknown dtype")
            .hint("use f16, bf16 or f32")
    })
}

fn parse_target(v: &Spanned<DeValue<'_>>) -> Result<Target, Diagnostic> {
    let mut t = Target::default();
    let mut hardware: Vec<(Arch, toml::Table, Span)> = Vec::new();
    let mut arch_span = sp(v);
    for (k, v) in table(v, "target")?.iter() {
        match k.get_ref().as_ref() {
            "arch" => {
                let items = v.get_ref().as_array().ok_or_else(|| {
                    wrong_type("arch", "a list of architectures", v)
                        .hint("write arch = [\"sm_90a\", \"sm_80\"]")
                })?;
                if items.is_empty() {
                    return Err(Diagnostic::new(
                        "empty-arch",
                        sp(v),
                        "no GPU architecture to build for",
                    )
                    .label("empty list")
                    .hint("list at least one, e.g. arch = [\"sm_90a\"]"));
                }
                let mut archs: Vec<Arch> = Vec::new();
                for item in items.iter() {
                    let s = string(
                        item,
                        "an architecture",
                        "write architectures as strings like \"sm_90a\"",
                    )?;
                    let a = parse_arch(s, sp(item))?;
                    if archs.contains(&a) {
                        return Err(Diagnostic::new(
                            "duplicate-arch",
                            sp(item),
                            format!("`{s}` is listed twice"),
                        )
                        .label("duplicate")
                        .hint("list each architecture once"));
                    }
                    archs.push(a);
                }
                t.archs = archs;
                arch_span = sp(v);
            }
            "dtype" => t.dtype = parse_dtype(v)?,
            "hardware" => hardware = parse_hardware(v)?,
            other => {
                return Err(unknown_key(
                    other,
                    sp(k),
                    "[target]",
                    &["arch", "dtype", "hardware"],
                ));
            }
        }
    }
    let mut resolved = Vec::new();
    for a in &t.archs {
        let fields = hardware.iter().find(|(h, _, _)| h == a);
        match crate::ir::hardware::describe(a, fields.map(|(_, f, _)| f)) {
            Ok(h) => resolved.push(h),
            Err(why) => {
                let span = fields.map_or(arch_span, |(_, _, s)| *s);
                return Err(Diagnostic::new("bad-hardware", span, why)
                    .label(format!("{a} undescribed"))
                    .hint("describe the GPU under [target.hardware.ARCH]; the README lists the fields"));
            }
        }
    }
    if let Some((a, _, span)) = hardware.iter().find(|(h, _, _)| !t.archs.contains(h)) {
        return Err(Diagnostic::new(
            "unused-hardware",
            *span,
            format!("a hardware description for {a}, which is not a target architecture"),
        )
        .label("not in `arch`")
        .hint(format!("add \"{a}\" to arch, or remove this table")));
    }
    t.hardware = resolved;
    Ok(t)
}

/// `[target.hardware.ARCH]` tables: known fields with values of their type.
fn parse_hardware(v: &Spanned<DeValue<'_>>) -> Result<Vec<(Arch, toml::Table, Span)>, Diagnostic> {
    use crate::ir::hardware::FIELDS;
    let mut out: Vec<(Arch, toml::Table, Span)> = Vec::new();
    for (k, desc) in table(v, "target.hardware")?.iter() {
        let arch = parse_arch(k.get_ref(), sp(k))?;
        let mut fields = toml::Table::new();
        for (f, x) in table(desc, &format!("target.hardware.{arch}"))?.iter() {
            let name = f.get_ref().as_ref();
            let example = match name {
                "name" => "\"NVIDIA H200\"",
                "dram_gbps" => "4800.0",
                "tensor_tflops" => "989.0",
                "launch_us" => "4.0",
                _ => "132",
            };
            let wrong_type = |what: &str, expected: &str, x: &Spanned<DeValue<'_>>| {
                wrong_type(what, expected, x).hint(format!("for example {what} = {example}"))
            };
            if !FIELDS.contains(&name) {
                return Err(unknown_key(
                    name,
                    sp(f),
                    &format!("[target.hardware.{arch}]"),
                    FIELDS,
                ));
            }
            let value = match (name, x.get_ref()) {
                ("name", DeValue::String(s)) => toml::Value::String(s.to_string()),
                ("dram_gbps" | "tensor_tflops" | "launch_us", DeValue::Float(n)) => n
                    .as_str()
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && *x > 0.0)
                    .map(toml::Value::Float)
                    .ok_or_else(|| wrong_type(name, "a positive number", x))?,
                (_, DeValue::Integer(i)) if name != "name" => {
                    let n = i64::from_str_radix(i.as_str(), i.radix())
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| wrong_type(name, "a positive number", x))?;
                    if matches!(name, "dram_gbps" | "tensor_tflops" | "launch_us") {
                        toml::Value::Float(n as f64)
                    } else {
                        toml::Value::Integer(n)
                    }
                }
                ("name", _) => return Err(wrong_type(name, "a string", x)),
                _ => return Err(wrong_type(name, "a positive number", x)),
            };
            fields.insert(name.to_string(), value);
        }
        out.push((arch, fields, sp(desc)));
    }
    Ok(out)
}

const WORKLOAD_KEYS: &[&str] = &[
    "description",
    "inputs",
    "program",
    "dims",
    "points",
    "tolerance",
    "init",
];

fn parse_workload(
    source: &str,
    (key, value): Entry<'_>,
    default_dtype: DType,
) -> Result<Workload, Diagnostic> {
    let name = key.get_ref().as_ref();
    let name_span = sp(key);
    check_identifier(name, name_span, "workload")?;
    let t = table(value, &format!("workload.{name}"))?;
    for (k, _) in t.iter() {
        if !WORKLOAD_KEYS.contains(&k.get_ref().as_ref()) {
            return Err(unknown_key(
                k.get_ref(),
                sp(k),
                &format!("[workload.{name}]"),
                WORKLOAD_KEYS,
            ));
        }
    }
    let get = |k: &str| t.get(k);
    let missing = |k: &str, hint: &str| {
        Diagnostic::new(
            "missing-key",
            name_span,
            format!("workload `{name}` has no `{k}`"),
        )
        .label(format!("`{k}` missing"))
        .hint(hint.to_string())
    };

    // dims first: input types and the program refer to them.
    let dims_v = get("dims").ok_or_else(|| {
        missing(
            "dims",
            "give every symbolic dim its values: dims = { n = \"1..=64\", d = [4096] }",
        )
    })?;
    let mut dims = Vec::new();
    let mut dim_spans = BTreeMap::new();
    for (k, v) in table(dims_v, "dims")?.iter() {
        let dn = k.get_ref().as_ref();
        check_identifier(dn, sp(k), "dim")?;
        let values = parse_dim_values(source, v.get_ref(), sp(v))?;
        dim_spans.insert(dn.to_string(), sp(k));
        dims.push(DimDecl {
            name: dn.to_string(),
            values,
        });
    }
    let declared = |n: &str| dim_spans.contains_key(n);
    let mut lower = Lowerer::new(&declared);
    let mut dims_used: Vec<(String, Span)> = Vec::new();

    let inputs_v = get("inputs").ok_or_else(|| {
        missing(
            "inputs",
            "declare typed inputs: inputs = { x = \"f16[n, d]\" }",
        )
    })?;
    let mut input_names = Vec::new();
    for (k, v) in table(inputs_v, "inputs")?.iter() {
        let iname = Ident {
            name: k.get_ref().to_string(),
            span: sp(k),
        };
        check_identifier(&iname.name, iname.span, "input")?;
        let text = string(v, "an input type", "write a type like \"f16[n, d]\"")?;
        let ty = parse_input_type(&Snippet::new(source, sp(v), text), default_dtype, &declared)?;
        dims_used.extend(ty.dims_used);
        let id = lower.builder.input(&iname.name, ty.dtype, ty.shape);
        lower.define(&iname, Value::Tensor(id))?;
        input_names.push(iname);
    }
    if input_names.is_empty() {
        return Err(Diagnostic::new(
            "no-inputs",
            sp(inputs_v),
            format!("workload `{name}` has no inputs"),
        )
        .label("empty")
        .hint("declare at least one input, e.g. x = \"f16[n, d]\""));
    }

    let program_v = get("program").ok_or_else(|| {
        missing(
            "program",
            "write the computation: program = \"matmul(rms_norm(x), w)\"",
        )
    })?;
    let text = string(program_v, "program", "write the program as a string")?;
    let prog = parse_program(&Snippet::new(source, sp(program_v), text))?;
    let outputs = lower.program(&prog)?;
    for (oname, id) in &outputs {
        lower.builder.output(oname, *id);
    }
    if let Some(unused) = lower.unused_inputs(&input_names).first() {
        return Err(Diagnostic::new(
            "unused-input",
            unused.span,
            format!("input `{}` is not used by the program", unused.name),
        )
        .label("unused")
        .hint("remove the input or use it in the program"));
    }

    let description = match get("description") {
        Some(v) => Some(string(v, "description", "write the description as a string")?.to_string()),
        None => None,
    };
    let tolerance = match get("tolerance") {
        None => outputs
            .iter()
            .map(|(_, id)| lower.builder.dtype(*id).default_tolerance())
            .fold(0.0, f64::max),
        Some(v) => {
            let t = match v.get_ref() {
                DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
                DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                    .ok()
                    .map(|x| x as f64),
                _ => None,
            };
            match t {
                Some(t) if t.is_finite() && t > 0.0 && t < 1.0 => t,
                _ => {
                    return Err(Diagnostic::new(
                        "bad-tolerance",
                        sp(v),
                        "tolerance must be a number in (0, 1)",
                    )
                    .label("invalid tolerance")
                    .hint("it is the largest allowed relative L2 error, e.g. tolerance = 1e-2"));
                }
            }
        }
    };

    let mut init = vec![None; input_names.len()];
    let mut init_spans = Vec::new();
    if let Some(v) = get("init") {
        for (k, iv) in table(v, "init")?.iter() {
            let Some(idx) = input_names
                .iter()
                .position(|i| i.name == k.get_ref().as_ref())
            else {
                return Err(Diagnostic::new(
                    "unknown-input",
                    sp(k),
                    format!("`{}` is not an input of `{name}`", k.get_ref()),
                )
                .label("not an input")
                .hint(
                    "init gives the standard deviation of an input's random values, by input name",
                ));
            };
            let text = match iv.get_ref() {
                DeValue::String(s) => s.to_string(),
                DeValue::Float(f) => f.as_str().to_string(),
                DeValue::Integer(i) => i.as_str().to_string(),
                _ => {
                    return Err(wrong_type("an init value", "a number or a string", iv)
                        .hint("write e.g. w = \"1/sqrt(d)\""));
                }
            };
            let e = parse_expr(&Snippet::new(source, sp(iv), &text))?;
            init[idx] = Some(lower.scalar(&e, "init")?);
            init_spans.push((idx, sp(iv)));
        }
    }
    dims_used.append(&mut lower.dims_used);
    for d in &dims {
        if !dims_used.iter().any(|(u, _)| u == &d.name) {
            let span = dim_spans[&d.name];
            return Err(Diagnostic::new(
                "unused-dim",
                span,
                format!("dim `{}` is not used", d.name),
            )
            .label("unused")
            .hint("remove it, or use it in an input type"));
        }
    }

    let graph = lower.builder.finish();
    let points = match get("points") {
        Some(v) => parse_points(v, &dims)?,
        None => default_points(&dims),
    };
    let w = Workload {
        name: name.to_string(),
        description,
        graph,
        dims,
        points,
        tolerance,
        init,
    };
    check_positive_dims(&w, get("points").map_or(name_span, sp))?;
    check_init(&w, &init_spans)?;
    Ok(w)
}

fn parse_points(
    v: &Spanned<DeValue<'_>>,
    dims: &[DimDecl],
) -> Result<Vec<DimBindings>, Diagnostic> {
    let example = "points = [{ n = 8, d = 1024 }, { n = 16, d = 4096 }]";
    let items = v.get_ref().as_array().ok_or_else(|| {
        wrong_type("points", "a list of tables", v).hint(format!("write {example}"))
    })?;
    if items.is_empty() {
        return Err(
            Diagnostic::new("empty-points", sp(v), "the list of points is empty")
                .label("empty")
                .hint("list at least one point, or remove `points` to use the ranges' corners"),
        );
    }
    let mut out = Vec::new();
    for item in items.iter() {
        let t = table(item, "a point").map_err(|d| d.hint(format!("write {example}")))?;
        let mut b = DimBindings::new();
        for (k, val) in t.iter() {
            let dn = k.get_ref().as_ref();
            let Some(decl) = dims.iter().find(|d| d.name == dn) else {
                return Err(Diagnostic::new(
                    "unknown-dim",
                    sp(k),
                    format!("`{dn}` is not a declared dim"),
                )
                .label("unknown dim")
                .hint("a point gives a value to every declared dim"));
            };
            let x = val
                .get_ref()
                .as_integer()
                .and_then(|i| i64::from_str_radix(i.as_str(), i.radix()).ok())
                .ok_or_else(|| {
                    wrong_type("a dim value", "an integer", val).hint(format!("write {example}"))
                })?;
            if !decl.values.contains(x) {
                return Err(Diagnostic::new(
                    "point-out-of-range",
                    sp(val),
                    format!("{dn} = {x} is outside its declared values {}", decl.values),
                )
                .label("not a declared value")
                .hint("points must use the values declared under dims"));
            }
            b.insert(dn.to_string(), x);
        }
        if let Some(d) = dims.iter().find(|d| !b.contains_key(&d.name)) {
            return Err(Diagnostic::new(
                "incomplete-point",
                sp(item),
                format!("this point gives no value for dim `{}`", d.name),
            )
            .label("incomplete")
            .hint("a point gives a value to every declared dim"));
        }
        if out.contains(&b) {
            return Err(
                Diagnostic::new("duplicate-point", sp(item), "this point is listed twice")
                    .label("duplicate")
                    .hint("list each point once"),
            );
        }
        out.push(b);
    }
    Ok(out)
}

/// Without declared points: every listed value, and for a range its ends and
/// their geometric middle; all combinations.
pub fn default_points(dims: &[DimDecl]) -> Vec<DimBindings> {
    let mut out = vec![DimBindings::new()];
    for d in dims {
        let values: Vec<i64> = match &d.values {
            DimValues::List(l) => l.clone(),
            DimValues::Range { lo, hi } => {
                let mid = ((*lo as f64) * (*hi as f64)).sqrt().round() as i64;
                let mut v = vec![*lo, mid.clamp(*lo, *hi), *hi];
                v.dedup();
                v
            }
        };
        out = out
            .into_iter()
            .flat_map(|b| {
                values.iter().map(move |x| {
                    let mut b = b.clone();
                    b.insert(d.name.clone(), *x);
                    b
                })
            })
            .collect();
    }
    out
}

/// Every init value must be a positive, finite standard deviation at every point.
fn check_init(w: &Workload, spans: &[(usize, Span)]) -> Result<(), Diagnostic> {
    for &(idx, span) in spans {
        let Some(expr) = &w.init[idx] else { continue };
        for p in &w.points {
            let v = expr.eval(p).unwrap_or(f64::NAN);
            if !(v.is_finite() && v > 0.0) {
                return Err(Diagnostic::new(
                    "bad-init",
                    span,
                    format!("init of `{}` is {v} at point {p:?}", w.graph.inputs[idx].name),
                )
                .label("not a positive standard deviation")
                .hint("init is the standard deviation of the input's random values: a positive number such as 1/sqrt(d)"));
            }
        }
    }
    Ok(())
}

/// Every tensor must have dims ≥ 1 at every point, and sizes must fit in 64 bits.
fn check_positive_dims(w: &Workload, span: Span) -> Result<(), Diagnostic> {
    for p in &w.points {
        for n in &w.graph.nodes {
            for d in &n.shape {
                match d.eval(p) {
                    Ok(v) if v >= 1 => {}
                    Ok(v) => {
                        return Err(Diagnostic::new(
                            "nonpositive-dim",
                            span,
                            format!("dim `{d}` is {v} at point {p:?}"),
                        )
                        .label("at this point")
                        .hint("every tensor dim must be at least 1 for all declared values"));
                    }
                    Err(e) => {
                        return Err(Diagnostic::new("dim-overflow", span, e.to_string())
                            .label("at this point")
                            .hint("use smaller dim values"));
                    }
                }
            }
        }
    }
    Ok(())
}
