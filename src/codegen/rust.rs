//! The Rust module a downstream crate includes: safe launch wrappers over
//! cudarc for every workload of a prism.toml, emitted from the [`Spec`] and
//! each workload's [`WorkloadKernels`].
//!
//! The module is self-contained: the user crate depends on `cudarc` (0.19,
//! features `driver`, `nvrtc`, `f16`, a CUDA version and a linking mode) and
//! `half`, never on prism. Fatbins are embedded with `include_bytes!` from
//! absolute paths, so a built binary needs no file of the build tree.
//!
//! The file declares one module, `pub mod <name> { .. }`, holding:
//! - a small runtime shared by all workloads (error type, buffer traits,
//!   launch planning with checked arithmetic, the one `unsafe` launch),
//! - per workload a struct (`rms_norm` → `RmsNorm`) with `load`, a typed
//!   `launch` and `launch_dyn`, and a dims struct (`RmsNormDims`); a
//!   workload's variants (tuned instances, [`super::plan::Variant`]) are all
//!   loaded, and each launch runs the one its dims' bucket names in the
//!   dispatch table of the device's architecture,
//! - a dynamic entry point (`workloads()`, `load_dyn(ctx, name)` returning a
//!   `Box<dyn DynWorkload>`) for tools and test harnesses.
//!
//! Output is deterministic: the same inputs give byte-identical text.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;

use super::plan::{Variant, WorkloadKernels};
use crate::ir::{Arch, DType, DimExpr, DimValues, Spec, Workload, type_string};
use crate::ugraph::{GlobalTensor, TensorRole};

/// Where each workload's fatbin comes from.
#[derive(Clone, Debug)]
pub enum Fatbins {
    /// One absolute path per workload (in [`Spec::workloads`] order), embedded
    /// with `include_bytes!`.
    Embedded(Vec<PathBuf>),
    /// No kernels (a docs.rs build): `load` returns an error saying so.
    DocsStub,
}

/// How the crate that includes the module reaches the CUDA driver library:
/// which of cudarc's linking features it builds with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DriverLinking {
    /// cudarc's `dynamic-loading` (or its default, `fallback-dynamic-loading`):
    /// libcuda is opened at run time, so `context` and `load` first check
    /// that it can be and return `Error::DriverLibraryMissing` when it cannot
    /// (through cudarc's `is_culib_present`, which only exists then).
    #[default]
    Loaded,
    /// cudarc's `dynamic-linking` or `static-linking`, e.g. through
    /// candle-core's `cuda` feature, which turns on `dynamic-linking` (and
    /// cudarc refuses `dynamic-loading` beside it): the program is linked
    /// against libcuda and does not start without it, so there is nothing to
    /// check.
    Linked,
}

/// Choices of [`emit_with`] beyond the workloads and fatbins.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EmitOptions {
    /// See [`DriverLinking`].
    pub driver_linking: DriverLinking,
}

/// Why the module could not be emitted.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EmitError {
    /// The module name ([`Build::module_name`](crate::build::Build::module_name))
    /// is not a usable Rust identifier.
    #[error(
        "`{0}` is not a usable Rust module name\nhint: use a lowercase identifier that is not a Rust keyword, e.g. `prism_kernels`"
    )]
    ModuleName(String),
    /// Two workloads map to the same Rust type name (`rms_norm` and
    /// `RmsNorm` both become `RmsNorm`).
    #[error(
        "workloads `{first}` and `{second}` both become the Rust type `{ty}`\nhint: rename one of them in prism.toml"
    )]
    TypeCollision {
        /// The first workload.
        first: String,
        /// The second workload.
        second: String,
        /// The Rust type both become.
        ty: String,
    },
    /// A workload's Rust type name is one the generated module defines
    /// itself (`Error`, `WorkloadInfo`, ...).
    #[error(
        "workload `{workload}` becomes the Rust type `{ty}`, which the generated module already defines\nhint: rename the workload in prism.toml"
    )]
    ReservedType {
        /// The workload.
        workload: String,
        /// The Rust type it would become.
        ty: String,
    },
    /// A workload's name gives no Rust type name (no letter in it).
    #[error("workload `{workload}` has no Rust type name\nhint: use a name with a letter in it")]
    NoTypeName {
        /// The workload.
        workload: String,
    },
    /// Internal: the kernels do not match the workloads one to one.
    #[error(
        "internal error: expected kernels for {expected} workloads, got {got}\nhint: this is a bug in prism: please report it with the prism.toml"
    )]
    WorkloadCount {
        /// Workloads in the spec.
        expected: usize,
        /// Kernel sets given.
        got: usize,
    },
    /// Internal: the fatbin paths do not match the workloads one to one.
    #[error(
        "internal error: expected {expected} fatbin paths, got {got}\nhint: this is a bug in prism: please report it with the prism.toml"
    )]
    FatbinCount {
        /// Workloads in the spec.
        expected: usize,
        /// Fatbin paths given.
        got: usize,
    },
    /// A fatbin path cannot be written into an `include_bytes!`.
    #[error(
        "the fatbin path {0:?} is not valid UTF-8 or not absolute\nhint: build in a directory whose path is plain UTF-8"
    )]
    FatbinPath(PathBuf),
    /// The target has no architecture.
    #[error("no GPU architecture to build for\nhint: list one under [target] arch")]
    NoArch,
    /// The launch plan disagrees with the workload: a code generation bug.
    #[error(
        "internal error: the launch plan of workload `{workload}` is inconsistent: {message}\nhint: this is a bug in prism's code generation: please report it with the prism.toml"
    )]
    Plan {
        /// The workload.
        workload: String,
        /// What disagrees.
        message: String,
    },
}

/// Names the runtime part of the generated module defines in the type
/// namespace; workload types must not take them.
const RESERVED_TYPES: &[&str] = &[
    "Error",
    "DType",
    "DimValues",
    "DimInfo",
    "TensorInfo",
    "KernelInfo",
    "VariantInfo",
    "DispatchInfo",
    "BucketInfo",
    "WorkloadInfo",
    "TensorRef",
    "TensorMut",
    "DynWorkload",
    "Element",
    "InputBuffer",
    "OutputBuffer",
    "Arc",
    "CudaContext",
    "CudaFunction",
    "CudaSlice",
    "CudaStream",
    "CudaView",
    "CudaViewMut",
    "DevicePtr",
    "DevicePtrMut",
    "DeviceSlice",
    "DriverError",
    "SyncOnDrop",
    "Poly",
    "Slot",
    "Self",
    "CUdeviceptr",
    "f16",
    "bf16",
    // The standard prelude, which the module relies on.
    "Box",
    "Clone",
    "Copy",
    "Default",
    "Drop",
    "Eq",
    "Err",
    "Extend",
    "Fn",
    "FnMut",
    "FnOnce",
    "From",
    "FromIterator",
    "Into",
    "IntoIterator",
    "Iterator",
    "None",
    "Ok",
    "Option",
    "Ord",
    "PartialEq",
    "PartialOrd",
    "Result",
    "Send",
    "Sized",
    "Some",
    "String",
    "Sync",
    "ToOwned",
    "ToString",
    "TryFrom",
    "TryInto",
    "Unpin",
    "Vec",
];

/// Rust keywords (strict, reserved and edition-2024 `gen`).
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
    "pub", "ref", "return", "self", "Self", "static", "struct", "super", "trait", "true", "type",
    "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "try", "typeof", "unsized", "virtual", "yield",
];

fn is_identifier(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

/// Whether `name` can name the generated module.
pub fn is_module_name(name: &str) -> bool {
    is_identifier(name) && name != "_" && !KEYWORDS.contains(&name)
}

/// A prism name (letters, digits, `_`) as a Rust value identifier: keywords
/// become raw identifiers, and the few that cannot be raw get a `_` suffix.
pub fn value_ident(name: &str) -> String {
    match name {
        "self" | "Self" | "super" | "crate" | "_" => format!("{name}_"),
        n if KEYWORDS.contains(&n) => format!("r#{n}"),
        n => n.to_string(),
    }
}

/// `rms_norm` → `RmsNorm`; `None` when nothing is left (`_`) .
pub fn type_name(workload: &str) -> Option<String> {
    let mut out = String::new();
    for part in workload.split('_').filter(|p| !p.is_empty()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    match out.chars().next() {
        None => None,
        Some(c) if c.is_ascii_digit() => Some(format!("W{out}")),
        Some(_) => Some(out),
    }
}

/// Escape text for a doc comment (Markdown): no accidental links, HTML or
/// emphasis.
fn doc_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(
            ch,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|'
        ) {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// Text as inline code in a doc comment, or escaped plain text when it
/// cannot be one (a backquote or a line break in it).
fn code_span(s: &str) -> String {
    if s.is_empty() || s.contains(['`', '\n', '\r']) {
        doc_text(&s.replace(['\n', '\r'], " "))
    } else {
        format!("`{s}`")
    }
}

/// Dispatch buckets listed per architecture in a workload's documentation.
const DOC_BUCKETS: usize = 12;

/// A Rust string literal.
fn lit(s: &str) -> String {
    format!("{s:?}")
}

fn dtype_variant(d: DType) -> &'static str {
    match d {
        DType::F16 => "DType::F16",
        DType::BF16 => "DType::BF16",
        DType::F32 => "DType::F32",
    }
}

fn rust_elem(d: DType) -> &'static str {
    match d {
        DType::F16 => "f16",
        DType::BF16 => "bf16",
        DType::F32 => "f32",
    }
}

fn shape_text(shape: &[DimExpr]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", dims.join(", "))
}

/// Indented line writer.
struct Out {
    text: String,
    depth: usize,
}

impl Out {
    fn line(&mut self, s: &str) {
        if s.is_empty() {
            self.text.push('\n');
            return;
        }
        for _ in 0..self.depth {
            self.text.push_str("    ");
        }
        self.text.push_str(s);
        self.text.push('\n');
    }

    fn open(&mut self, s: &str) {
        self.line(s);
        self.depth += 1;
    }

    fn close(&mut self, s: &str) {
        self.depth = self.depth.saturating_sub(1);
        self.line(s);
    }

    fn doc(&mut self, s: &str) {
        for l in s.lines() {
            if l.is_empty() {
                self.line("///");
            } else {
                self.line(&format!("/// {l}"));
            }
        }
    }

    fn inner_doc(&mut self, s: &str) {
        for l in s.lines() {
            if l.is_empty() {
                self.line("//!");
            } else {
                self.line(&format!("//! {l}"));
            }
        }
    }

    /// Text already indented relative to the current depth.
    fn block(&mut self, text: &str) {
        for l in text.lines() {
            self.line(l);
        }
    }
}

/// One workload, checked against its plan and with every name resolved.
struct Prepared<'a> {
    workload: &'a Workload,
    kernels: &'a WorkloadKernels,
    ty: String,
    /// Dim names in kernel-parameter order, with their declarations.
    dims: Vec<(&'a str, &'a DimValues)>,
    /// Each input / output by argument position (the same in every variant;
    /// these are variant 0's).
    inputs: Vec<&'a GlobalTensor>,
    outputs: Vec<&'a GlobalTensor>,
    /// Every variant, in plan order.
    variants: Vec<PreparedVariant<'a>>,
}

/// One variant of a workload, checked.
struct PreparedVariant<'a> {
    variant: &'a Variant,
    /// Global tensor index of each intermediate, in tensor order.
    scratch: Vec<usize>,
    /// The buffer of every tensor of the variant.
    slots: Vec<Slot>,
}

/// Which buffer a global tensor is at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Input(usize),
    Output(usize),
    Scratch(usize),
}

impl Slot {
    fn literal(self) -> String {
        match self {
            Slot::Input(i) => format!("Slot::Input({i})"),
            Slot::Output(i) => format!("Slot::Output({i})"),
            Slot::Scratch(i) => format!("Slot::Scratch({i})"),
        }
    }
}

fn plan_error(w: &Workload, message: impl Into<String>) -> EmitError {
    EmitError::Plan {
        workload: w.name.clone(),
        message: message.into(),
    }
}

fn prepare<'a>(w: &'a Workload, k: &'a WorkloadKernels) -> Result<Prepared<'a>, EmitError> {
    if k.workload != w.name {
        return Err(plan_error(
            w,
            format!("the plan is for workload `{}`", k.workload),
        ));
    }
    // Dims: the same set as the workload's, each once.
    let mut dims = Vec::new();
    for name in &k.dims {
        let decl = w
            .dim(name)
            .ok_or_else(|| plan_error(w, format!("unknown dim `{name}`")))?;
        if dims.iter().any(|(n, _)| n == name) {
            return Err(plan_error(w, format!("dim `{name}` listed twice")));
        }
        dims.push((decl.name.as_str(), &decl.values));
    }
    if let Some(missing) = w.dims.iter().find(|d| !k.dims.contains(&d.name)) {
        return Err(plan_error(
            w,
            format!("dim `{}` is not a kernel parameter", missing.name),
        ));
    }
    if k.variants.is_empty() {
        return Err(plan_error(w, "no variants"));
    }
    let several = k.variants.len() > 1;
    let mut variants: Vec<PreparedVariant<'a>> = Vec::with_capacity(k.variants.len());
    let mut first: Option<Arguments<'a>> = None;
    for (j, v) in k.variants.iter().enumerate() {
        // Messages name the variant when there is more than one.
        let err = |message: String| {
            if several {
                plan_error(w, format!("variant {j} (`{}`): {message}", v.label))
            } else {
                plan_error(w, message)
            }
        };
        // Each variant's inputs and outputs are checked against the
        // workload's, so they agree with each other.
        let (p, arguments) = prepare_variant(w, k, v, &err)?;
        if first.is_none() {
            first = Some(arguments);
        }
        variants.push(p);
    }
    let Some((inputs, outputs)) = first else {
        return Err(plan_error(w, "no variants"));
    };
    // Dispatch: known variants, one range per dim, each non-empty.
    for table in &k.dispatch {
        for (e, entry) in table.entries.iter().enumerate() {
            let at = format!("dispatch entry {e} of `{}`", table.arch);
            if entry.variant >= k.variants.len() {
                return Err(plan_error(
                    w,
                    format!(
                        "{at} names variant {}, but there are {}",
                        entry.variant,
                        k.variants.len()
                    ),
                ));
            }
            if entry.ranges.len() != k.dims.len() {
                return Err(plan_error(
                    w,
                    format!(
                        "{at} has {} ranges for {} dims",
                        entry.ranges.len(),
                        k.dims.len()
                    ),
                ));
            }
            for ((lo, hi), name) in entry.ranges.iter().zip(&k.dims) {
                if lo > hi {
                    return Err(plan_error(
                        w,
                        format!("{at} has the empty range {lo}..={hi} for dim `{name}`"),
                    ));
                }
            }
        }
    }
    let ty = type_name(&w.name).ok_or_else(|| EmitError::NoTypeName {
        workload: w.name.clone(),
    })?;
    Ok(Prepared {
        workload: w,
        kernels: k,
        ty,
        dims,
        inputs,
        outputs,
        variants,
    })
}

/// Inputs and outputs of one variant, by argument position.
type Arguments<'a> = (Vec<&'a GlobalTensor>, Vec<&'a GlobalTensor>);

/// Check one variant against the workload: its inputs and outputs exactly
/// as declared, valid kernels, every output and intermediate written.
fn prepare_variant<'a>(
    w: &Workload,
    k: &WorkloadKernels,
    v: &'a Variant,
    err: &dyn Fn(String) -> EmitError,
) -> Result<(PreparedVariant<'a>, Arguments<'a>), EmitError> {
    let known = |e: &DimExpr| e.symbols().into_iter().find(|s| !k.dims.contains(s));
    let mut inputs = vec![None; w.graph.inputs.len()];
    let mut outputs = vec![None; w.graph.outputs.len()];
    let mut scratch = Vec::new();
    let mut slots = Vec::with_capacity(v.tensors.len());
    for (t, g) in v.tensors.iter().enumerate() {
        if let Some(s) = g.shape.iter().find_map(known) {
            return Err(err(format!("tensor `{}` uses unknown dim `{s}`", g.name)));
        }
        match g.role {
            TensorRole::Input(i) => {
                let decl = w.graph.inputs.get(i).ok_or_else(|| {
                    err(format!(
                        "tensor `{}` is input {i}, which does not exist",
                        g.name
                    ))
                })?;
                if decl.name != g.name || decl.dtype != g.dtype || decl.shape != g.shape {
                    return Err(err(format!(
                        "input {i} is `{}: {}` in the plan but `{}: {}` in the workload",
                        g.name,
                        type_string(g.dtype, &g.shape),
                        decl.name,
                        type_string(decl.dtype, &decl.shape)
                    )));
                }
                if inputs[i].replace(t).is_some() {
                    return Err(err(format!("input {i} appears twice")));
                }
                slots.push(Slot::Input(i));
            }
            TensorRole::Output(i) => {
                let decl = w.graph.outputs.get(i).ok_or_else(|| {
                    err(format!(
                        "tensor `{}` is output {i}, which does not exist",
                        g.name
                    ))
                })?;
                let node = w.graph.node(decl.node);
                if decl.name != g.name || node.dtype != g.dtype || node.shape != g.shape {
                    return Err(err(format!(
                        "output {i} is `{}: {}` in the plan but `{}: {}` in the workload",
                        g.name,
                        type_string(g.dtype, &g.shape),
                        decl.name,
                        type_string(node.dtype, &node.shape)
                    )));
                }
                if outputs[i].replace(t).is_some() {
                    return Err(err(format!("output {i} appears twice")));
                }
                slots.push(Slot::Output(i));
            }
            TensorRole::Intermediate => {
                slots.push(Slot::Scratch(scratch.len()));
                scratch.push(t);
            }
        }
    }
    let inputs = inputs
        .into_iter()
        .enumerate()
        .map(|(i, t)| t.ok_or_else(|| err(format!("input {i} has no tensor"))))
        .collect::<Result<Vec<_>, _>>()?;
    let outputs = outputs
        .into_iter()
        .enumerate()
        .map(|(i, t)| t.ok_or_else(|| err(format!("output {i} has no tensor"))))
        .collect::<Result<Vec<_>, _>>()?;
    // Launches: valid symbols, tensors and grids; every output and
    // intermediate written by some kernel.
    if v.launches.is_empty() {
        return Err(err("no kernels".into()));
    }
    let mut used = BTreeSet::new();
    for l in &v.launches {
        if !is_identifier(&l.symbol) {
            return Err(err(format!("`{}` is not a C identifier", l.symbol)));
        }
        if !(1..=1024).contains(&l.threads) {
            return Err(err(format!(
                "kernel `{}` has {} threads per block",
                l.symbol, l.threads
            )));
        }
        for t in &l.tensors {
            if t.0 >= v.tensors.len() {
                return Err(err(format!(
                    "kernel `{}` uses tensor {} of {}",
                    l.symbol,
                    t.0,
                    v.tensors.len()
                )));
            }
            used.insert(t.0);
        }
        for f in l.grid.iter().flatten() {
            if let Some(s) = known(&f.extent) {
                return Err(err(format!(
                    "the grid of kernel `{}` uses unknown dim `{s}`",
                    l.symbol
                )));
            }
        }
        // A tensor map encodes one of the kernel's own pointer arguments.
        if let Some(m) = l
            .tensor_maps
            .iter()
            .find(|m| !l.tensors.contains(&m.tensor))
        {
            return Err(err(format!(
                "kernel `{}` has a tensor map of tensor {}, which is not one of its arguments",
                l.symbol, m.tensor.0
            )));
        }
    }
    if let Some(t) = outputs.iter().chain(&scratch).find(|t| !used.contains(*t)) {
        return Err(err(format!(
            "no kernel writes tensor `{}`",
            v.tensors[*t].name
        )));
    }
    let tensors = |ts: Vec<usize>| ts.into_iter().map(|t| &v.tensors[t]).collect();
    Ok((
        PreparedVariant {
            variant: v,
            scratch,
            slots,
        },
        (tensors(inputs), tensors(outputs)),
    ))
}

/// `Poly(&[(2, &[0, 1]), (1, &[])])`: terms of a dim expression, each a
/// coefficient and the indices of its symbols in the kernel dim order.
fn poly(e: &DimExpr, dims: &[(&str, &DimValues)]) -> String {
    let terms: Vec<String> = e
        .terms()
        .map(|(m, c)| {
            let idx: Vec<String> = m
                .iter()
                .map(|s| {
                    dims.iter()
                        .position(|(n, _)| n == s)
                        .unwrap_or(usize::MAX)
                        .to_string()
                })
                .collect();
            format!("({c}, &[{}])", idx.join(", "))
        })
        .collect();
    format!("Poly(&[{}])", terms.join(", "))
}

fn values_literal(v: &DimValues) -> String {
    match v {
        DimValues::Range { lo, hi } => format!("DimValues::Range {{ lo: {lo}, hi: {hi} }}"),
        DimValues::List(l) => {
            let items: Vec<String> = l.iter().map(|x| x.to_string()).collect();
            format!("DimValues::List(&[{}])", items.join(", "))
        }
    }
}

fn values_doc(v: &DimValues) -> String {
    match v {
        DimValues::Range { lo, hi } => format!("`{lo}..={hi}`"),
        DimValues::List(l) if l.len() == 1 => format!("`{}`", l[0]),
        DimValues::List(l) => {
            let items: Vec<String> = l.iter().map(|x| x.to_string()).collect();
            format!("one of `{}`", items.join(", "))
        }
    }
}

/// Emit the module for `spec` (its `target.archs` are the architectures the
/// fatbins were built for), with `kernels[i]` the plan of
/// `spec.workloads[i]`, for a crate whose cudarc loads the driver library at
/// run time ([`DriverLinking::Loaded`]).
pub fn emit(
    spec: &Spec,
    module: &str,
    kernels: &[WorkloadKernels],
    fatbins: &Fatbins,
) -> Result<String, EmitError> {
    emit_with(spec, module, kernels, fatbins, &EmitOptions::default())
}

/// [`emit`] with the choices of `options`.
pub fn emit_with(
    spec: &Spec,
    module: &str,
    kernels: &[WorkloadKernels],
    fatbins: &Fatbins,
    options: &EmitOptions,
) -> Result<String, EmitError> {
    if !is_module_name(module) {
        return Err(EmitError::ModuleName(module.to_string()));
    }
    if kernels.len() != spec.workloads.len() {
        return Err(EmitError::WorkloadCount {
            expected: spec.workloads.len(),
            got: kernels.len(),
        });
    }
    let archs = &spec.target.archs;
    let ptx = archs
        .iter()
        .max_by_key(|a| a.capability)
        .ok_or(EmitError::NoArch)?;
    let paths: Option<Vec<String>> = match fatbins {
        Fatbins::DocsStub => None,
        Fatbins::Embedded(p) => {
            if p.len() != spec.workloads.len() {
                return Err(EmitError::FatbinCount {
                    expected: spec.workloads.len(),
                    got: p.len(),
                });
            }
            Some(
                p.iter()
                    .map(|p| match p.to_str() {
                        Some(s) if p.is_absolute() => Ok(s.to_string()),
                        _ => Err(EmitError::FatbinPath(p.clone())),
                    })
                    .collect::<Result<_, _>>()?,
            )
        }
    };
    let mut prepared: Vec<Prepared<'_>> = Vec::new();
    for (w, k) in spec.workloads.iter().zip(kernels) {
        let p = prepare(w, k)?;
        for ty in [p.ty.clone(), format!("{}Dims", p.ty)] {
            if RESERVED_TYPES.contains(&ty.as_str()) {
                return Err(EmitError::ReservedType {
                    workload: w.name.clone(),
                    ty,
                });
            }
            for q in &prepared {
                if q.ty == ty || format!("{}Dims", q.ty) == ty {
                    return Err(EmitError::TypeCollision {
                        first: q.workload.name.clone(),
                        second: w.name.clone(),
                        ty,
                    });
                }
            }
        }
        prepared.push(p);
    }

    let mut o = Out {
        text: String::new(),
        depth: 0,
    };
    o.line(&format!(
        "// @generated by prism {} from {}. Do not edit: it is rewritten on every build.",
        env!("CARGO_PKG_VERSION"),
        spec.source_name
    ));
    o.line("");
    let arch_list: Vec<String> = archs.iter().map(Arch::to_string).collect();
    let ptx_name = format!("compute_{}{}", ptx.capability, ptx.suffix);
    let mut doc = format!(
        "Kernels generated by prism from `{}`.\n\n",
        doc_text(&spec.source_name)
    );
    if paths.is_none() {
        doc.push_str(
            "**Documentation build** (`DOCS_RS` was set): no kernels were compiled, and every\n\
             `load` returns [`Error::BuiltForDocs`].\n\n",
        );
    }
    let _ = writeln!(
        doc,
        "Compiled for {} (SASS) plus `{ptx_name}` PTX.\n",
        arch_list
            .iter()
            .map(|a| format!("`{a}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    doc.push_str("Workloads:\n");
    for p in &prepared {
        let _ = writeln!(doc, "- `{}`: [`{}`]", p.workload.name, p.ty);
    }
    doc.push_str(
        "\nCreate a context (e.g. with [`context`]), `load` a workload once and `launch` it as\n\
         often as needed; [`load_dyn`] and [`DynWorkload`] do the same by name.\n\n\
         A workload may have several tuned variants ([`WorkloadInfo::variants`]), each its own\n\
         kernels. The runtime picks one per launch: `load` takes the dispatch table\n\
         ([`WorkloadInfo::dispatch`]) of the newest architecture the device runs, and each\n\
         `launch` runs the variant of the first bucket holding its dims (variant 0 when none\n\
         does). `variant_for` and [`DynWorkload::variant_label`] tell which one a launch runs.",
    );
    o.line("#[allow(");
    o.line("    dead_code,");
    o.line("    non_snake_case,");
    o.line("    unused_qualifications,");
    o.line("    clippy::too_many_arguments,");
    o.line("    clippy::needless_lifetimes,");
    o.line("    clippy::redundant_static_lifetimes");
    o.line(")]");
    o.open(&format!("pub mod {module} {{"));
    o.inner_doc(&doc);
    o.line("");
    o.block(RUNTIME_HEADER);
    o.line("");
    // Architectures.
    o.doc("GPU architectures the kernels were compiled for, as SASS.");
    o.line(&format!(
        "pub const ARCHS: &[&str] = &[{}];",
        arch_list
            .iter()
            .map(|a| lit(a))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    o.doc("The virtual architecture whose PTX is embedded too (JIT-compiled by the driver).");
    o.line(&format!("pub const PTX_ARCH: &str = {};", lit(&ptx_name)));
    o.doc("Whether this module was built without kernels, for documentation only.");
    o.line(&format!("pub const DOCS_STUB: bool = {};", paths.is_none()));
    o.line("/// (capability × 10, suffix) of each SASS target.");
    o.line(&format!(
        "const SASS: &[(u32, &str)] = &[{}];",
        archs
            .iter()
            .map(|a| format!("({}, {})", a.capability, lit(&a.suffix)))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    o.line("/// (capability × 10, suffix) of the PTX target.");
    o.line(&format!(
        "const PTX: (u32, &str) = ({}, {});",
        ptx.capability,
        lit(&ptx.suffix)
    ));
    o.line("");
    // Dynamic entry points.
    o.doc("Every workload of this module, in prism.toml order.");
    o.open("pub const WORKLOADS: &[&WorkloadInfo] = &[");
    for p in &prepared {
        o.line(&format!("{}::INFO,", p.ty));
    }
    o.close("];");
    o.line("");
    o.doc("The names of the workloads, in prism.toml order.");
    o.open("pub const WORKLOAD_NAMES: &[&str] = &[");
    for p in &prepared {
        o.line(&format!("{},", lit(&p.workload.name)));
    }
    o.close("];");
    o.line("");
    o.doc("The names of the workloads, in prism.toml order.");
    o.open("pub fn workload_names() -> &'static [&'static str] {");
    o.line("WORKLOAD_NAMES");
    o.close("}");
    o.line("");
    o.doc("Every workload's description, dims, inputs, outputs and kernels.");
    o.open("pub fn workloads() -> &'static [&'static WorkloadInfo] {");
    o.line("WORKLOADS");
    o.close("}");
    o.line("");
    o.doc("The workload called `name`, if there is one.");
    o.open("pub fn info(name: &str) -> Option<&'static WorkloadInfo> {");
    o.line("WORKLOADS.iter().copied().find(|w| w.name == name)");
    o.close("}");
    o.line("");
    o.doc(
        "Load the workload called `name` into `ctx`, for [`DynWorkload::launch_dyn`].\n\n\
         # Errors\n\n\
         [`Error::UnknownWorkload`] for a name not in [`WORKLOAD_NAMES`], else as the\n\
         workload's own `load`.",
    );
    o.open("pub fn load_dyn(ctx: &Arc<CudaContext>, name: &str) -> Result<Box<dyn DynWorkload>, Error> {");
    o.open("match name {");
    for p in &prepared {
        o.line(&format!(
            "{} => Ok(Box::new({}::load(ctx)?)),",
            lit(&p.workload.name),
            p.ty
        ));
    }
    o.line("_ => Err(Error::UnknownWorkload { name: name.to_string() }),");
    o.close("}");
    o.close("}");
    o.line("");
    match options.driver_linking {
        DriverLinking::Loaded => o.block(RUNTIME),
        DriverLinking::Linked => {
            o.block(&RUNTIME.replacen(CHECK_DRIVER_LOADED, CHECK_DRIVER_LINKED, 1))
        }
    }
    for (i, p) in prepared.iter().enumerate() {
        o.line("");
        emit_workload(&mut o, p, paths.as_ref().map(|v| v[i].as_str()));
    }
    o.close("}");
    Ok(o.text)
}

fn emit_workload(o: &mut Out, p: &Prepared<'_>, fatbin: Option<&str>) {
    let w = p.workload;
    let k = p.kernels;
    let ty = &p.ty;
    let dims_ty = format!("{ty}Dims");
    let mut summary = String::new();
    let _ = writeln!(summary, "Dims (kernel parameter order):");
    for (n, v) in &p.dims {
        let _ = writeln!(summary, "- `{n}`: {}", values_doc(v));
    }
    let _ = writeln!(summary, "\nInputs:");
    for g in &p.inputs {
        let _ = writeln!(
            summary,
            "- `{}`: `{}`",
            g.name,
            type_string(g.dtype, &g.shape)
        );
    }
    let _ = writeln!(summary, "\nOutputs:");
    for g in &p.outputs {
        let _ = writeln!(
            summary,
            "- `{}`: `{}`",
            g.name,
            type_string(g.dtype, &g.shape)
        );
    }
    let kernels_doc = |v: &PreparedVariant<'_>| {
        let symbols: Vec<String> = v
            .variant
            .launches
            .iter()
            .map(|l| format!("`{}`", l.symbol))
            .collect();
        format!(
            "{}{}",
            symbols.join(", "),
            if v.scratch.is_empty() {
                String::new()
            } else {
                format!(
                    " (with {} intermediate tensor{} allocated per launch)",
                    v.scratch.len(),
                    if v.scratch.len() == 1 { "" } else { "s" }
                )
            }
        )
    };
    if let [only] = p.variants.as_slice() {
        let _ = writeln!(
            summary,
            "\nKernels, in launch order: {}.",
            kernels_doc(only)
        );
    } else {
        let _ = writeln!(
            summary,
            "\nVariants (tuned instances; each launch runs one, chosen by the dims' bucket in\n\
             the dispatch table of the device's architecture), with their kernels in launch order:"
        );
        for (j, v) in p.variants.iter().enumerate() {
            let _ = writeln!(
                summary,
                "{j}. {}: {}",
                code_span(&v.variant.label),
                kernels_doc(v)
            );
        }
    }
    if k.dispatch.is_empty() {
        if p.variants.len() > 1 {
            let _ = writeln!(summary, "\nNo dispatch table: every launch runs variant 0.");
        }
    } else {
        let _ = writeln!(
            summary,
            "\nDispatch (per architecture, the first bucket holding the dims wins; dims in none\n\
             run variant 0):"
        );
        for table in &k.dispatch {
            let buckets: Vec<String> = table
                .entries
                .iter()
                .take(DOC_BUCKETS)
                .map(|e| {
                    let ranges: Vec<String> = e
                        .ranges
                        .iter()
                        .zip(&p.dims)
                        .map(|((lo, hi), (n, _))| format!("`{n}` in `{lo}..={hi}`"))
                        .collect();
                    let ranges = if ranges.is_empty() {
                        "any dims".to_string()
                    } else {
                        ranges.join(", ")
                    };
                    format!("{ranges} → variant {}", e.variant)
                })
                .collect();
            let more = table.entries.len().saturating_sub(DOC_BUCKETS);
            let _ = writeln!(
                summary,
                "- {} (capability {}): {}{}",
                code_span(&table.arch),
                table.capability,
                if buckets.is_empty() {
                    "no buckets".to_string()
                } else {
                    buckets.join("; ")
                },
                if more > 0 {
                    format!("; and {more} more (see [`Self::INFO`])")
                } else {
                    String::new()
                }
            );
        }
    }

    // The dims struct.
    o.doc(&format!(
        "The dims of [`{ty}`] (workload `{}`): each must lie in its declared values.",
        w.name
    ));
    o.line("#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]");
    o.open(&format!("pub struct {dims_ty} {{"));
    for (n, v) in &p.dims {
        o.doc(&format!("`{n}`: {}.", values_doc(v)));
        o.line(&format!("pub {}: usize,", value_ident(n)));
    }
    o.close("}");
    o.line("");

    // The workload struct.
    let mut doc = format!("Workload `{}`", w.name);
    match &w.description {
        Some(d) if !d.trim().is_empty() => {
            let _ = write!(doc, ": {}", doc_text(d.trim()));
        }
        _ => {}
    }
    doc.push_str(".\n\n");
    doc.push_str(&summary);
    doc.push_str(
        "\nThe struct holds the loaded kernels; it is `Send + Sync`, so one load serves\nevery thread.",
    );
    o.doc(&doc);
    o.open(&format!("pub struct {ty} {{"));
    o.line("loaded: rt::Loaded,");
    o.close("}");
    o.line("");
    o.open(&format!("impl {ty} {{"));
    // INFO
    o.doc("Description, dims, tensors and kernels of this workload.");
    o.open("pub const INFO: &'static WorkloadInfo = &WorkloadInfo {");
    o.line(&format!("name: {},", lit(&w.name)));
    o.line(&format!("type_name: {},", lit(ty)));
    o.line(&format!(
        "description: {},",
        lit(w.description.as_deref().unwrap_or(""))
    ));
    o.open("dims: &[");
    for (n, v) in &p.dims {
        o.line(&format!(
            "DimInfo {{ name: {}, values: {} }},",
            lit(n),
            values_literal(v)
        ));
    }
    o.close("],");
    let tensor_info = |o: &mut Out, field: &str, ts: &[&GlobalTensor]| {
        if ts.is_empty() {
            o.line(&format!("{field}: &[],"));
            return;
        }
        o.open(&format!("{field}: &["));
        for g in ts {
            o.open("TensorInfo {");
            o.line(&format!("name: {},", lit(&g.name)));
            o.line(&format!("dtype: {},", dtype_variant(g.dtype)));
            o.line(&format!("shape: {},", lit(&shape_text(&g.shape))));
            let extents: Vec<String> = g.shape.iter().map(|e| poly(e, &p.dims)).collect();
            o.line(&format!("extents: &[{}],", extents.join(", ")));
            o.close("},");
        }
        o.close("],");
    };
    tensor_info(o, "inputs", &p.inputs);
    tensor_info(o, "outputs", &p.outputs);
    o.open("variants: &[");
    for v in &p.variants {
        o.open("VariantInfo {");
        o.line(&format!("label: {},", lit(&v.variant.label)));
        let scratch: Vec<&GlobalTensor> =
            v.scratch.iter().map(|&t| &v.variant.tensors[t]).collect();
        tensor_info(o, "intermediates", &scratch);
        o.open("kernels: &[");
        for l in &v.variant.launches {
            o.open("KernelInfo {");
            o.line(&format!("symbol: {},", lit(&l.symbol)));
            o.line(&format!("threads: {},", l.threads));
            o.line(&format!("shared_bytes: {},", l.shared_bytes));
            let axes: Vec<String> = l
                .grid
                .iter()
                .map(|factors| {
                    let f: Vec<String> = factors
                        .iter()
                        .map(|f| format!("({}, {})", poly(&f.extent, &p.dims), f.tile.max(1)))
                        .collect();
                    format!("&[{}]", f.join(", "))
                })
                .collect();
            o.line(&format!("grid: [{}],", axes.join(", ")));
            let slots: Vec<String> = l.tensors.iter().map(|t| v.slots[t.0].literal()).collect();
            o.line(&format!("args: &[{}],", slots.join(", ")));
            let split_k = l.split_k.as_ref().map_or_else(
                || "None".to_string(),
                |s| {
                    format!(
                        "Some(SplitK {{ splits: {}, workspace: {} }})",
                        s.splits,
                        poly(&s.workspace, &p.dims)
                    )
                },
            );
            o.line(&format!("split_k: {split_k},"));
            let maps: Vec<String> = l
                .tensor_maps
                .iter()
                .map(|m| {
                    // prepare_variant refused a map of a tensor the kernel does not take.
                    let arg = l.tensors.iter().position(|t| *t == m.tensor).unwrap_or_default();
                    format!(
                        "TensorMapInfo {{ arg: {arg}, dtype: DType::{:?}, rows: {}, cols: {}, box_rows: {}, box_cols: {} }}",
                        v.variant.tensors[m.tensor.0].dtype,
                        poly(&m.rows, &p.dims),
                        poly(&m.cols, &p.dims),
                        m.box_rows,
                        m.box_cols
                    )
                })
                .collect();
            o.line(&format!("tensor_maps: &[{}],", maps.join(", ")));
            o.close("},");
        }
        o.close("],");
        o.close("},");
    }
    o.close("],");
    if k.dispatch.is_empty() {
        o.line("dispatch: &[],");
    } else {
        o.open("dispatch: &[");
        for table in &k.dispatch {
            o.open("DispatchInfo {");
            o.line(&format!("arch: {},", lit(&table.arch)));
            o.line(&format!("capability: {},", table.capability));
            if table.entries.is_empty() {
                o.line("entries: &[],");
            } else {
                o.open("entries: &[");
                for e in &table.entries {
                    let ranges: Vec<String> = e
                        .ranges
                        .iter()
                        .map(|(lo, hi)| format!("({lo}, {hi})"))
                        .collect();
                    o.line(&format!(
                        "BucketInfo {{ ranges: &[{}], variant: {} }},",
                        ranges.join(", "),
                        e.variant
                    ));
                }
                o.close("],");
            }
            o.close("},");
        }
        o.close("],");
    }
    o.close("};");
    o.line("");
    match fatbin {
        Some(path) => {
            o.line(
                "/// The fatbin: SASS for every architecture in [`ARCHS`], PTX for [`PTX_ARCH`].",
            );
            o.line(&format!(
                "const FATBIN: Option<&'static [u8]> = Some(include_bytes!({}));",
                lit(path)
            ));
        }
        None => {
            o.line("/// No fatbin: this is a documentation build.");
            o.line("const FATBIN: Option<&'static [u8]> = None;");
        }
    }
    o.line("");

    // load
    o.doc(&format!(
        "Load the kernels of `{}` into `ctx`.\n\n\
         # Errors\n\n\
         [`Error::DriverLibraryMissing`] without a CUDA driver, [`Error::UnsupportedDevice`] when\n\
         the device's compute capability is not covered by [`ARCHS`] / [`PTX_ARCH`],\n\
         [`Error::SharedMemoryTooLarge`] when a kernel needs more shared memory than the device\n\
         has, [`Error::ModuleLoad`] or [`Error::Driver`] when the driver fails.",
        w.name
    ));
    o.open("pub fn load(ctx: &Arc<CudaContext>) -> Result<Self, Error> {");
    o.line("Ok(Self { loaded: rt::Loaded::new(Self::INFO, Self::FATBIN, ctx)? })");
    o.close("}");
    o.line("");

    // launch
    let mut taken: BTreeSet<String> = ["self", "stream", "dims"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut param = |name: &str| {
        let mut id = value_ident(name);
        while taken.contains(&id) {
            id.push('_');
        }
        taken.insert(id.clone());
        id
    };
    let in_params: Vec<String> = p.inputs.iter().map(|g| param(&g.name)).collect();
    let out_params: Vec<String> = p.outputs.iter().map(|g| param(&g.name)).collect();
    let fresh = |base: &str| {
        let mut id = base.to_string();
        while taken.contains(&id) {
            id.push('_');
        }
        id
    };
    let plan_var = fresh("plan");
    let args_var = fresh("args");
    let mut doc = format!(
        "Run `{}` on `stream`: its kernels are queued in order; the call does not wait for them.\n\n",
        w.name
    );
    doc.push_str("Arguments:\n");
    for (g, id) in p.inputs.iter().zip(&in_params) {
        let _ = writeln!(
            doc,
            "- `{id}`: input `{}`, `{}` (a [`CudaSlice`], [`CudaView`] or [`CudaViewMut`])",
            g.name,
            type_string(g.dtype, &g.shape)
        );
    }
    for (g, id) in p.outputs.iter().zip(&out_params) {
        let _ = writeln!(
            doc,
            "- `{id}`: output `{}`, `{}`, overwritten (a [`CudaSlice`] or [`CudaViewMut`])",
            g.name,
            type_string(g.dtype, &g.shape)
        );
    }
    let _ = writeln!(
        doc,
        "- `dims`: the dims, see [`{dims_ty}`]; every buffer must hold exactly the elements of its\n  shape at these dims."
    );
    doc.push_str(
        "\n# Errors\n\n\
         [`Error::DimOutOfRange`] for a dim outside its declared values, [`Error::LengthMismatch`]\n\
         for a buffer of the wrong length, [`Error::WrongContext`] for a stream or buffer of\n\
         another context, [`Error::SizeOverflow`] / [`Error::GridTooLarge`] for sizes CUDA cannot\n\
         launch, [`Error::Driver`] when allocating an intermediate or launching fails.",
    );
    o.doc(&doc);
    o.line("pub fn launch(");
    o.depth += 1;
    o.line("&self,");
    o.line("stream: &Arc<CudaStream>,");
    for (g, id) in p.inputs.iter().zip(&in_params) {
        o.line(&format!("{id}: &impl InputBuffer<{}>,", rust_elem(g.dtype)));
    }
    for (g, id) in p.outputs.iter().zip(&out_params) {
        o.line(&format!(
            "{id}: &mut impl OutputBuffer<{}>,",
            rust_elem(g.dtype)
        ));
    }
    o.line(&format!("dims: {dims_ty},"));
    o.depth -= 1;
    o.open(") -> Result<(), Error> {");
    let dim_fields: Vec<String> = p
        .dims
        .iter()
        .map(|(n, _)| format!("dims.{}", value_ident(n)))
        .collect();
    o.line(&format!(
        "let {plan_var} = rt::Plan::new(&self.loaded, stream, rt::dims_from_usize(Self::INFO, &[{}])?)?;",
        dim_fields.join(", ")
    ));
    o.open(&format!("let {args_var} = ["));
    for (i, id) in in_params.iter().enumerate() {
        o.line(&format!("{plan_var}.input({i}, {id})?,"));
    }
    for (i, id) in out_params.iter().enumerate() {
        o.line(&format!("{plan_var}.output({i}, {id})?,"));
    }
    o.close("];");
    o.line(&format!("{plan_var}.launch(&{args_var})"));
    o.close("}");
    o.line("");

    // launch_dyn
    o.doc(&format!(
        "[`Self::launch`] with tensors and dims given at run time: `inputs` in the order\n\
         {}, `outputs` in the order {}, `dims` by name ({}).\n\n\
         # Errors\n\n\
         As [`Self::launch`], plus [`Error::ArgumentCount`], [`Error::DTypeMismatch`],\n\
         [`Error::UnknownDim`], [`Error::DuplicateDim`] and [`Error::MissingDim`].",
        names_doc(p.inputs.iter().map(|g| g.name.as_str())),
        names_doc(p.outputs.iter().map(|g| g.name.as_str())),
        names_doc(p.dims.iter().map(|(n, _)| *n)),
    ));
    o.line("pub fn launch_dyn(");
    o.depth += 1;
    o.line("&self,");
    o.line("stream: &Arc<CudaStream>,");
    o.line("inputs: &[TensorRef<'_>],");
    o.line("outputs: &mut [TensorMut<'_>],");
    o.line("dims: &[(&str, i64)],");
    o.depth -= 1;
    o.open(") -> Result<(), Error> {");
    o.line("rt::launch_dyn(&self.loaded, stream, inputs, outputs, dims)");
    o.close("}");
    o.line("");

    // variants
    o.doc(
        "The label of the variant (tuned instance) that [`Self::launch`] runs at `dims` on this\n\
         device: the first bucket of [`Self::dispatch`] holding the dims, else variant 0. Dims\n\
         outside their declared values get a label too, but `launch` rejects them.",
    );
    o.open(&format!(
        "pub fn variant_for(&self, dims: {dims_ty}) -> &'static str {{"
    ));
    o.line("self.variant_info_for(dims).label");
    o.close("}");
    o.line("");
    o.doc("The variant that [`Self::launch`] runs at `dims` on this device, as [`Self::variant_for`].");
    o.open(&format!(
        "pub fn variant_info_for(&self, dims: {dims_ty}) -> &'static VariantInfo {{"
    ));
    o.line(&format!(
        "self.loaded.variant_usize(&[{}])",
        dim_fields.join(", ")
    ));
    o.close("}");
    o.line("");
    o.doc(
        "The dispatch table this device uses (chosen at load from its compute capability), or\n\
         `None` when the workload has none (one variant serves every launch).",
    );
    o.open("pub fn dispatch(&self) -> Option<&'static DispatchInfo> {");
    o.line("self.loaded.table");
    o.close("}");
    o.close("}");
    o.line("");
    o.open(&format!("impl DynWorkload for {ty} {{"));
    o.open("fn info(&self) -> &'static WorkloadInfo {");
    o.line("Self::INFO");
    o.close("}");
    o.line("");
    o.line("fn launch_dyn(");
    o.depth += 1;
    o.line("&self,");
    o.line("stream: &Arc<CudaStream>,");
    o.line("inputs: &[TensorRef<'_>],");
    o.line("outputs: &mut [TensorMut<'_>],");
    o.line("dims: &[(&str, i64)],");
    o.depth -= 1;
    o.open(") -> Result<(), Error> {");
    o.line("rt::launch_dyn(&self.loaded, stream, inputs, outputs, dims)");
    o.close("}");
    o.line("");
    o.open("fn variant_info(&self, dims: &[(&str, i64)]) -> Result<&'static VariantInfo, Error> {");
    o.line("rt::variant_dyn(&self.loaded, dims)");
    o.close("}");
    o.line("");
    o.open("fn dispatch(&self) -> Option<&'static DispatchInfo> {");
    o.line("self.loaded.table");
    o.close("}");
    o.close("}");
}

fn names_doc<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<String> = names.map(|n| format!("`{n}`")).collect();
    if v.is_empty() {
        "(none)".into()
    } else {
        v.join(", ")
    }
}

/// The variants of the generated module's `Error`, in declaration order
/// (docs/ERRORS.md names each).
pub const RUNTIME_ERROR_NAMES: &[&str] = &[
    "Driver",
    "ModuleLoad",
    "DriverLibraryMissing",
    "BuiltForDocs",
    "UnsupportedDevice",
    "UnknownWorkload",
    "DimOutOfRange",
    "UnknownDim",
    "DuplicateDim",
    "MissingDim",
    "ArgumentCount",
    "DTypeMismatch",
    "LengthMismatch",
    "WrongContext",
    "SizeOverflow",
    "EmptyTensor",
    "GridTooLarge",
    "EmptyGrid",
    "SharedMemoryTooLarge",
    "Unaligned",
];

/// The start of the module: imports.
const RUNTIME_HEADER: &str = r#"use std::fmt;
use std::sync::Arc;

pub use cudarc::driver::{CudaContext, CudaSlice, CudaStream, CudaView, CudaViewMut};
use cudarc::driver::{CudaFunction, DevicePtr, DevicePtrMut, DeviceSlice, DriverError, SyncOnDrop};
pub use half::{bf16, f16};"#;

/// `rt::check_driver` in [`RUNTIME`], as written there.
const CHECK_DRIVER_LOADED: &str = r#"    /// Fail instead of letting cudarc panic when libcuda is missing.
    pub(super) fn check_driver() -> Result<(), Error> {
        // SAFETY: only tries to open the driver library; it calls none of its functions.
        if unsafe { cudarc::driver::sys::is_culib_present() } {
            Ok(())
        } else {
            Err(Error::DriverLibraryMissing)
        }
    }
"#;

/// `rt::check_driver` for [`DriverLinking::Linked`].
const CHECK_DRIVER_LINKED: &str = r#"    /// Nothing to check: cudarc links the driver library (its `dynamic-linking` or
    /// `static-linking` feature), so the program does not start without it.
    pub(super) fn check_driver() -> Result<(), Error> {
        Ok(())
    }
"#;

/// The runtime every workload shares. Indented for the module body.
const RUNTIME: &str = r#"/// Create a context on GPU `ordinal`, checking first that the CUDA driver library can be
/// loaded (cudarc would panic on first use otherwise).
///
/// # Errors
///
/// [`Error::DriverLibraryMissing`] without a driver, [`Error::Driver`] when there is no such
/// device or the driver fails.
pub fn context(ordinal: usize) -> Result<Arc<CudaContext>, Error> {
    rt::check_driver()?;
    Ok(CudaContext::new(ordinal)?)
}

/// Whether this module's kernels run on a GPU of compute capability `major.minor`: SASS of
/// [`ARCHS`] or PTX of [`PTX_ARCH`] covers it. `load` fails with [`Error::UnsupportedDevice`]
/// exactly when this is false for the context's device.
pub fn supports_compute_capability(major: i32, minor: i32) -> bool {
    rt::runs_on(major, minor)
}

/// Why loading or launching a workload failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A CUDA driver call failed.
    Driver(DriverError),
    /// The driver could not load a workload's fatbin.
    ModuleLoad {
        /// The workload.
        workload: &'static str,
        /// What the driver said.
        source: DriverError,
    },
    /// The CUDA driver library (`libcuda.so.1`, `nvcuda.dll`) could not be loaded.
    DriverLibraryMissing,
    /// The crate was built with `DOCS_RS` set, so it holds no kernels.
    BuiltForDocs {
        /// The workload.
        workload: &'static str,
    },
    /// The device's compute capability is not covered by the built architectures.
    UnsupportedDevice {
        /// The workload.
        workload: &'static str,
        /// Compute capability of the device: major.
        major: i32,
        /// Compute capability of the device: minor.
        minor: i32,
    },
    /// [`load_dyn`]: no workload has this name.
    UnknownWorkload {
        /// The name asked for.
        name: String,
    },
    /// A dim is outside its declared values.
    DimOutOfRange {
        /// The workload.
        workload: &'static str,
        /// The dim.
        dim: &'static str,
        /// The value given.
        value: i128,
        /// The declared values, e.g. `1..=64` or `[1024, 2048]`.
        allowed: String,
    },
    /// `launch_dyn`: a dim the workload does not have.
    UnknownDim {
        /// The workload.
        workload: &'static str,
        /// The name given.
        dim: String,
    },
    /// `launch_dyn`: a dim given twice.
    DuplicateDim {
        /// The workload.
        workload: &'static str,
        /// The dim.
        dim: &'static str,
    },
    /// `launch_dyn`: a dim not given.
    MissingDim {
        /// The workload.
        workload: &'static str,
        /// The dim.
        dim: &'static str,
    },
    /// `launch_dyn`: the wrong number of inputs or outputs.
    ArgumentCount {
        /// The workload.
        workload: &'static str,
        /// `"inputs"` or `"outputs"`.
        kind: &'static str,
        /// How many the workload takes.
        expected: usize,
        /// How many were given.
        got: usize,
    },
    /// `launch_dyn`: a buffer of the wrong element type.
    DTypeMismatch {
        /// The workload.
        workload: &'static str,
        /// The input or output.
        argument: &'static str,
        /// Its declared element type.
        expected: DType,
        /// The element type given.
        got: DType,
    },
    /// A buffer does not hold exactly the elements of its shape at the dims given.
    LengthMismatch {
        /// The workload.
        workload: &'static str,
        /// The input or output.
        argument: &'static str,
        /// Its symbolic shape.
        shape: &'static str,
        /// Elements of the shape at the dims given.
        expected: usize,
        /// Elements of the buffer.
        got: usize,
    },
    /// The stream or a buffer belongs to another CUDA context than the one the workload
    /// was loaded in.
    WrongContext {
        /// The workload.
        workload: &'static str,
        /// `stream`, or the input or output.
        argument: &'static str,
    },
    /// A tensor's size at the dims given does not fit in memory addresses.
    SizeOverflow {
        /// The workload.
        workload: &'static str,
        /// The tensor.
        tensor: &'static str,
        /// Its symbolic shape.
        shape: &'static str,
    },
    /// A tensor's extent at the dims given is below 1.
    EmptyTensor {
        /// The workload.
        workload: &'static str,
        /// The tensor.
        tensor: &'static str,
        /// Its symbolic shape.
        shape: &'static str,
    },
    /// A kernel's grid at the dims given exceeds CUDA's limits.
    GridTooLarge {
        /// The workload.
        workload: &'static str,
        /// The kernel.
        kernel: &'static str,
        /// `x`, `y` or `z`.
        axis: &'static str,
        /// Blocks needed (saturated at `u64::MAX`).
        blocks: u64,
        /// CUDA's limit on this axis.
        limit: u64,
    },
    /// A kernel's grid at the dims given has no blocks.
    EmptyGrid {
        /// The workload.
        workload: &'static str,
        /// The kernel.
        kernel: &'static str,
        /// `x`, `y` or `z`.
        axis: &'static str,
    },
    /// A kernel needs more shared memory per block than the device offers.
    SharedMemoryTooLarge {
        /// The workload.
        workload: &'static str,
        /// The kernel.
        kernel: &'static str,
        /// Bytes the kernel needs (static plus dynamic).
        requested: u64,
        /// Bytes the device allows per block (opt-in maximum).
        available: u64,
    },
    /// A kernel copies a buffer by the Tensor Memory Accelerator, which needs it to start at
    /// a 16-byte boundary (or the driver refused its tensor map).
    Unaligned {
        /// The workload.
        workload: &'static str,
        /// The kernel.
        kernel: &'static str,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Driver(e) => write!(f, "CUDA driver error: {e}"),
            Error::ModuleLoad { workload, source } => write!(
                f,
                "cannot load the kernels of `{workload}`: {source}; they were compiled with \
                 CUDA 13.0, so the driver must support CUDA 13 (R580 or newer)"
            ),
            Error::DriverLibraryMissing => write!(
                f,
                "the CUDA driver library (libcuda.so.1 / nvcuda.dll) cannot be loaded: install \
                 the NVIDIA driver, or add the directory holding it to LD_LIBRARY_PATH"
            ),
            Error::BuiltForDocs { workload } => write!(
                f,
                "`{workload}` has no kernels: this crate was built for documentation (DOCS_RS \
                 was set); build it without DOCS_RS to run kernels"
            ),
            Error::UnsupportedDevice { workload, major, minor } => write!(
                f,
                "`{workload}` cannot run on this GPU (compute capability {major}.{minor}): the \
                 kernels were built for {} (SASS) and {PTX_ARCH} (PTX); add \"sm_{major}{minor}\" \
                 to `[target] arch` in prism.toml, or build with CUDA_COMPUTE_CAP={major}{minor}",
                ARCHS.join(", ")
            ),
            Error::UnknownWorkload { name } => write!(
                f,
                "no workload `{name}` in this module (it has: {})",
                WORKLOAD_NAMES.join(", ")
            ),
            Error::DimOutOfRange { workload, dim, value, allowed } => write!(
                f,
                "`{workload}`: dim `{dim}` = {value} is outside its declared values {allowed}; \
                 widen them in prism.toml to launch at this size"
            ),
            Error::UnknownDim { workload, dim } => write!(
                f,
                "`{workload}` has no dim `{dim}`; pass the dims its `WorkloadInfo::dims` names"
            ),
            Error::DuplicateDim { workload, dim } => {
                write!(f, "`{workload}`: dim `{dim}` is given twice; give each dim once")
            }
            Error::MissingDim { workload, dim } => write!(
                f,
                "`{workload}`: no value given for dim `{dim}`; give every dim its \
                 `WorkloadInfo::dims` names"
            ),
            Error::ArgumentCount { workload, kind, expected, got } => write!(
                f,
                "`{workload}` takes {expected} {kind}, got {got}; pass them in the order of its \
                 `WorkloadInfo`"
            ),
            Error::DTypeMismatch { workload, argument, expected, got } => write!(
                f,
                "`{workload}`: `{argument}` must be a buffer of {expected}, got {got}; convert \
                 the buffer, or declare the input's dtype in prism.toml"
            ),
            Error::LengthMismatch { workload, argument, shape, expected, got } => write!(
                f,
                "`{workload}`: `{argument}` has shape {shape}, which is {expected} elements at \
                 these dims, but the buffer holds {got}; pass a buffer or view of exactly \
                 {expected} elements, or the dims that match the buffer"
            ),
            Error::WrongContext { workload, argument } => write!(
                f,
                "`{workload}`: `{argument}` belongs to another CUDA context than the one the \
                 workload was loaded in; load the workload in the context that owns the stream \
                 and the buffers"
            ),
            Error::SizeOverflow { workload, tensor, shape } => write!(
                f,
                "`{workload}`: tensor `{tensor}` of shape {shape} is too large at these dims; \
                 launch at smaller dims"
            ),
            Error::EmptyTensor { workload, tensor, shape } => write!(
                f,
                "`{workload}`: tensor `{tensor}` of shape {shape} has an extent below 1 at \
                 these dims; launch at dims where every extent is at least 1"
            ),
            Error::GridTooLarge { workload, kernel, axis, blocks, limit } => write!(
                f,
                "`{workload}`: kernel `{kernel}` needs {blocks} blocks along {axis}, more than \
                 CUDA allows ({limit}); launch at smaller dims"
            ),
            Error::EmptyGrid { workload, kernel, axis } => write!(
                f,
                "`{workload}`: kernel `{kernel}` has no blocks along {axis} at these dims; if \
                 the dims are within their declared values this is a bug in prism: please \
                 report it with the prism.toml"
            ),
            Error::SharedMemoryTooLarge { workload, kernel, requested, available } => write!(
                f,
                "`{workload}`: kernel `{kernel}` needs {requested} bytes of shared memory per \
                 block, but this GPU allows {available}; build for this GPU's architecture"
            ),
            Error::Unaligned { workload, kernel } => write!(
                f,
                "`{workload}`: kernel `{kernel}` reads an input by TMA, which needs buffers that \
                 start at a 16-byte boundary; pass views that start at a multiple of 8 elements"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Driver(e) | Error::ModuleLoad { source: e, .. } => Some(e),
            _ => None,
        }
    }
}

impl From<DriverError> for Error {
    fn from(e: DriverError) -> Self {
        Error::Driver(e)
    }
}

/// Element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// IEEE half precision, [`struct@f16`].
    F16,
    /// bfloat16, [`bf16`].
    BF16,
    /// IEEE single precision, `f32`.
    F32,
}

impl DType {
    /// `f16`, `bf16` or `f32`.
    pub const fn name(self) -> &'static str {
        match self {
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::F32 => "f32",
        }
    }

    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            DType::F16 | DType::BF16 => 2,
            DType::F32 => 4,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The values a dim may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DimValues {
    /// Every integer in `lo..=hi`.
    Range {
        /// Smallest value.
        lo: i64,
        /// Largest value.
        hi: i64,
    },
    /// Exactly these values, ascending.
    List(&'static [i64]),
}

impl DimValues {
    /// Whether `v` is allowed.
    pub fn contains(&self, v: i64) -> bool {
        match self {
            DimValues::Range { lo, hi } => *lo <= v && v <= *hi,
            DimValues::List(l) => l.contains(&v),
        }
    }
}

impl fmt::Display for DimValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DimValues::Range { lo, hi } => write!(f, "{lo}..={hi}"),
            DimValues::List(l) => {
                f.write_str("[")?;
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
        }
    }
}

/// A symbolic dim of a workload.
#[derive(Clone, Copy, Debug)]
pub struct DimInfo {
    /// Its name in prism.toml.
    pub name: &'static str,
    /// The values it may take.
    pub values: DimValues,
}

/// A polynomial over the dims: (coefficient, indices of its symbols) per term.
#[derive(Clone, Copy, Debug)]
struct Poly(&'static [(i64, &'static [usize])]);

impl Poly {
    /// The value at `dims` (kernel dim order); `None` on overflow.
    fn eval(&self, dims: &[i64]) -> Option<i64> {
        let mut total: i64 = 0;
        for (coefficient, symbols) in self.0 {
            let mut term = *coefficient;
            for s in *symbols {
                term = term.checked_mul(*dims.get(*s)?)?;
            }
            total = total.checked_add(term)?;
        }
        Some(total)
    }
}

/// A tensor of a workload: row-major, contiguous.
#[derive(Clone, Copy, Debug)]
pub struct TensorInfo {
    /// Its name in prism.toml.
    pub name: &'static str,
    /// Element type.
    pub dtype: DType,
    /// Symbolic shape, e.g. `[n, d]`.
    pub shape: &'static str,
    extents: &'static [Poly],
}

impl TensorInfo {
    /// The shape at `dims` (values in [`WorkloadInfo::dims`] order); `None` when an extent
    /// overflows or is below 1.
    pub fn shape_at(&self, dims: &[i64]) -> Option<Vec<usize>> {
        self.extents
            .iter()
            .map(|e| e.eval(dims).filter(|v| *v >= 1).and_then(|v| usize::try_from(v).ok()))
            .collect()
    }

    /// Elements at `dims`; `None` on overflow or an extent below 1.
    pub fn len_at(&self, dims: &[i64]) -> Option<usize> {
        self.shape_at(dims)?.iter().try_fold(1usize, |a, d| a.checked_mul(*d))
    }
}

/// Which buffer a kernel parameter is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Input(usize),
    Output(usize),
    Scratch(usize),
}

/// One kernel launch of a workload.
#[derive(Clone, Copy, Debug)]
pub struct KernelInfo {
    /// The `extern "C"` symbol in the fatbin.
    pub symbol: &'static str,
    /// Threads per block.
    pub threads: u32,
    /// Dynamic shared memory per block, in bytes.
    pub shared_bytes: u32,
    /// Per grid axis: factors `ceil(extent / tile)`.
    grid: [&'static [(Poly, u32)]; 3],
    /// The buffer of each pointer parameter.
    args: &'static [Slot],
    /// Split-K: the kernel then takes two more pointers after `args`, one zeroed
    /// `u32` counter per output tile (left zero by the kernel) and an `f32` workspace.
    split_k: Option<SplitK>,
    /// Tensor maps of a TMA main loop: the kernel then takes each (128 bytes, by value)
    /// after the split-K pointers.
    tensor_maps: &'static [TensorMapInfo],
}

/// A 2-D tensor map of a kernel's pointer parameter: the tensor as a row-major
/// `rows` × `cols` matrix, in boxes of `box_rows` × `box_cols` elements, in the swizzle as
/// wide as a box row (128 or 32 bytes).
#[derive(Clone, Copy, Debug)]
struct TensorMapInfo {
    /// The pointer parameter it maps (an index into `args`).
    arg: usize,
    dtype: DType,
    rows: Poly,
    cols: Poly,
    box_rows: u32,
    box_cols: u32,
}

/// A `CUtensorMap` as a kernel parameter (`prism::TensorMap`: 128 bytes, 64-byte aligned).
#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct TensorMapArg(cudarc::driver::sys::CUtensorMap);

// SAFETY: plain bytes with the layout and alignment of the kernel's `prism::TensorMap`.
unsafe impl cudarc::driver::DeviceRepr for TensorMapArg {}

impl TensorMapArg {
    /// The map of `info` over the buffer at `ptr` at `dims`; `None` where TMA cannot
    /// address it (a pointer or row stride not a multiple of 16 bytes, an extent out of
    /// range) or the driver refuses. The same rules as prism's `tune::tensor_map::encode`.
    fn encode(info: &TensorMapInfo, ptr: u64, dims: &[i64]) -> Option<Self> {
        use cudarc::driver::sys::{self, CUtensorMapDataType as D};
        let data_type = match info.dtype {
            DType::F16 => D::CU_TENSOR_MAP_DATA_TYPE_FLOAT16,
            DType::BF16 => D::CU_TENSOR_MAP_DATA_TYPE_BFLOAT16,
            DType::F32 => return None,
        };
        let rows = u64::try_from(info.rows.eval(dims)?).ok()?;
        let cols = u64::try_from(info.cols.eval(dims)?).ok()?;
        let stride = cols.checked_mul(2)?;
        let fits = |x: u64| (1..=u64::from(u32::MAX)).contains(&x);
        if !ptr.is_multiple_of(16) || !stride.is_multiple_of(16) || stride >= 1 << 40 || !fits(rows) || !fits(cols) {
            return None;
        }
        if !(1..=256).contains(&info.box_rows) {
            return None;
        }
        let swizzle = match u64::from(info.box_cols) * 2 {
            128 => sys::CUtensorMapSwizzle::CU_TENSOR_MAP_SWIZZLE_128B,
            32 => sys::CUtensorMapSwizzle::CU_TENSOR_MAP_SWIZZLE_32B,
            _ => return None,
        };
        let (global, strides) = ([cols, rows], [stride]);
        let (boxes, element_strides) = ([info.box_cols, info.box_rows], [1u32, 1]);
        let mut map = TensorMapArg(sys::CUtensorMap { opaque: [0; 16] });
        // SAFETY: every pointer argument points at a live local array of the rank's length
        // (2, and 1 stride); the driver only writes `map`.
        let r = unsafe {
            sys::cuTensorMapEncodeTiled(
                &mut map.0,
                data_type,
                2,
                ptr as *mut std::ffi::c_void,
                global.as_ptr(),
                strides.as_ptr(),
                boxes.as_ptr(),
                element_strides.as_ptr(),
                sys::CUtensorMapInterleave::CU_TENSOR_MAP_INTERLEAVE_NONE,
                swizzle,
                sys::CUtensorMapL2promotion::CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                sys::CUtensorMapFloatOOBfill::CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE,
            )
        };
        (r == sys::CUresult::CUDA_SUCCESS).then_some(map)
    }
}

/// The split-K plan of a kernel.
#[derive(Clone, Copy, Debug)]
struct SplitK {
    /// Blocks along z sharing each output tile's K range (at least 2).
    splits: u32,
    /// The workspace's `f32` elements.
    workspace: Poly,
}

/// Everything about one workload.
#[derive(Clone, Copy, Debug)]
pub struct WorkloadInfo {
    /// Its name in prism.toml.
    pub name: &'static str,
    /// The Rust type that runs it.
    pub type_name: &'static str,
    /// The description in prism.toml (may be empty).
    pub description: &'static str,
    /// Its dims, in the order kernels take them.
    pub dims: &'static [DimInfo],
    /// Inputs, in argument order.
    pub inputs: &'static [TensorInfo],
    /// Outputs, in argument order.
    pub outputs: &'static [TensorInfo],
    /// The tuned instances of the workload (at least one); each launch runs one.
    pub variants: &'static [VariantInfo],
    /// Per GPU architecture, which variant serves which dims. Empty: variant 0 always.
    pub dispatch: &'static [DispatchInfo],
}

/// One tuned instance of a workload: its kernels and the intermediates they share.
#[derive(Clone, Copy, Debug)]
pub struct VariantInfo {
    /// What it is, e.g. the tuned choice it was generated from.
    pub label: &'static str,
    /// Intermediate tensors, allocated for each launch.
    pub intermediates: &'static [TensorInfo],
    /// Kernels, in launch order.
    pub kernels: &'static [KernelInfo],
}

/// The dispatch table of one GPU architecture.
#[derive(Clone, Copy, Debug)]
pub struct DispatchInfo {
    /// The architecture, e.g. `sm_90a`.
    pub arch: &'static str,
    /// Its compute capability times ten, e.g. `90`.
    pub capability: u32,
    /// Boxes of dims and their variants; the first box holding the dims wins.
    pub entries: &'static [BucketInfo],
}

/// A box of dims served by one variant.
#[derive(Clone, Copy, Debug)]
pub struct BucketInfo {
    /// The inclusive range of each dim, in [`WorkloadInfo::dims`] order.
    pub ranges: &'static [(i64, i64)],
    /// Index into [`WorkloadInfo::variants`].
    pub variant: usize,
}

impl BucketInfo {
    /// Whether `dims` (in [`WorkloadInfo::dims`] order) lie in this box.
    pub fn contains(&self, dims: &[i64]) -> bool {
        self.ranges.len() == dims.len()
            && self.ranges.iter().zip(dims).all(|((lo, hi), v)| lo <= v && v <= hi)
    }

    /// The smallest dims inside this box that `dims` (the workload's
    /// [`WorkloadInfo::dims`]) declare, in that order: a launch that runs this bucket's
    /// variant when no earlier bucket holds it. `None` when a dim declares no value inside.
    pub fn smallest_point(&self, dims: &[DimInfo]) -> Option<Vec<i64>> {
        if self.ranges.len() != dims.len() {
            return None;
        }
        dims.iter()
            .zip(self.ranges)
            .map(|(d, &(lo, hi))| match d.values {
                DimValues::Range { lo: a, hi: b } => Some(lo.max(a)).filter(|v| *v <= hi.min(b)),
                DimValues::List(l) => l.iter().copied().find(|v| (lo..=hi).contains(v)),
            })
            .collect()
    }
}

impl DispatchInfo {
    /// The variant index for `dims` (in [`WorkloadInfo::dims`] order): the first entry
    /// holding them, else 0.
    pub fn variant_at(&self, dims: &[i64]) -> usize {
        self.entries.iter().find(|e| e.contains(dims)).map_or(0, |e| e.variant)
    }
}

impl WorkloadInfo {
    /// The most kernels one launch runs, over the variants.
    pub fn max_kernels(&self) -> usize {
        self.variants.iter().map(|v| v.kernels.len()).max().unwrap_or(0)
    }

    /// The dispatch table a device of compute capability `capability` (major × 10 + minor)
    /// uses: the one of the newest architecture not newer than the device, else the oldest;
    /// `None` without tables.
    pub fn dispatch_for(&self, capability: u32) -> Option<&'static DispatchInfo> {
        let tables = self.dispatch;
        let mut best: Option<&'static DispatchInfo> = None;
        for t in tables.iter().filter(|t| t.capability <= capability) {
            if best.is_none_or(|b| t.capability > b.capability) {
                best = Some(t);
            }
        }
        best.or_else(|| tables.iter().min_by_key(|t| t.capability))
    }

    /// The variant a launch at `dims` (in [`WorkloadInfo::dims`] order) runs with the
    /// dispatch table `table` (see [`WorkloadInfo::dispatch_for`]).
    pub fn variant_at(&self, table: Option<&DispatchInfo>, dims: &[i64]) -> &'static VariantInfo {
        &self.variants[self.variant_index(table, dims)]
    }

    /// The index into [`WorkloadInfo::variants`] of [`WorkloadInfo::variant_at`]: the table's
    /// choice, or 0 without a table or for an index out of range.
    fn variant_index(&self, table: Option<&DispatchInfo>, dims: &[i64]) -> usize {
        let i = table.map_or(0, |t| t.variant_at(dims));
        if i < self.variants.len() { i } else { 0 }
    }

    /// Dim values given by name, in [`WorkloadInfo::dims`] order.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownDim`], [`Error::DuplicateDim`] or [`Error::MissingDim`].
    pub fn dim_values(&self, dims: &[(&str, i64)]) -> Result<Vec<i64>, Error> {
        let mut values: Vec<Option<i64>> = vec![None; self.dims.len()];
        for (name, v) in dims {
            let i = self.dims.iter().position(|d| d.name == *name).ok_or_else(|| {
                Error::UnknownDim { workload: self.name, dim: (*name).to_string() }
            })?;
            if values[i].replace(*v).is_some() {
                return Err(Error::DuplicateDim { workload: self.name, dim: self.dims[i].name });
            }
        }
        values
            .iter()
            .zip(self.dims)
            .map(|(v, d)| v.ok_or(Error::MissingDim { workload: self.name, dim: d.name }))
            .collect()
    }

    /// Checks dims given in [`WorkloadInfo::dims`] order: as many as the workload has, each in
    /// its declared values.
    ///
    /// # Errors
    ///
    /// [`Error::ArgumentCount`] (kind `"dims"`) or [`Error::DimOutOfRange`].
    pub fn check_dims(&self, dims: &[i64]) -> Result<(), Error> {
        if dims.len() != self.dims.len() {
            return Err(Error::ArgumentCount {
                workload: self.name,
                kind: "dims",
                expected: self.dims.len(),
                got: dims.len(),
            });
        }
        for (v, d) in dims.iter().zip(self.dims) {
            if !d.values.contains(*v) {
                return Err(Error::DimOutOfRange {
                    workload: self.name,
                    dim: d.name,
                    value: i128::from(*v),
                    allowed: d.values.to_string(),
                });
            }
        }
        Ok(())
    }

    /// Elements of `t` at `dims`, checked: every extent at least 1, the byte size within
    /// `isize::MAX`.
    fn checked_len(&self, t: &TensorInfo, dims: &[i64]) -> Result<usize, Error> {
        let overflow = || Error::SizeOverflow { workload: self.name, tensor: t.name, shape: t.shape };
        let mut len: usize = 1;
        for e in t.extents {
            let v = e.eval(dims).ok_or_else(overflow)?;
            if v < 1 {
                return Err(Error::EmptyTensor { workload: self.name, tensor: t.name, shape: t.shape });
            }
            len = usize::try_from(v).ok().and_then(|v| len.checked_mul(v)).ok_or_else(overflow)?;
        }
        match len.checked_mul(t.dtype.size()) {
            Some(bytes) if bytes <= isize::MAX as usize => Ok(len),
            _ => Err(overflow()),
        }
    }

    /// What a launch at `dims` (in [`WorkloadInfo::dims`] order) with the dispatch table
    /// `table` needs: the checks and sizes `launch` computes before touching the GPU, so they
    /// can be inspected (or tested) without one. `launch` uses the table `load` chose
    /// ([`WorkloadInfo::dispatch_for`] of the device).
    ///
    /// # Errors
    ///
    /// As [`WorkloadInfo::check_dims`], then [`Error::SizeOverflow`] / [`Error::EmptyTensor`]
    /// for a tensor (or split-K workspace) too large or empty at these dims, and
    /// [`Error::GridTooLarge`] / [`Error::EmptyGrid`] for a grid CUDA cannot launch.
    pub fn launch_sizes(&self, table: Option<&DispatchInfo>, dims: &[i64]) -> Result<LaunchSizes, Error> {
        self.check_dims(dims)?;
        let lens = |ts: &[TensorInfo]| -> Result<Vec<usize>, Error> {
            ts.iter().map(|t| self.checked_len(t, dims)).collect()
        };
        let inputs = lens(self.inputs)?;
        let outputs = lens(self.outputs)?;
        let variant = self.variant_index(table, dims);
        let v = &self.variants[variant];
        let intermediates = lens(v.intermediates)?;
        let mut scratch_bytes: usize = 0;
        for (len, t) in intermediates.iter().zip(v.intermediates) {
            // Each fits in isize::MAX bytes (checked_len); their sum saturates.
            scratch_bytes = scratch_bytes.saturating_add(len * t.dtype.size());
        }
        let mut grids = Vec::with_capacity(v.kernels.len());
        let mut workspaces = Vec::with_capacity(v.kernels.len());
        let mut counters = 0usize;
        for k in v.kernels {
            let mut g = [1u32; 3];
            for (axis, factors) in k.grid.iter().enumerate() {
                let name = ["x", "y", "z"][axis];
                let limit: u64 = if axis == 0 { (1 << 31) - 1 } else { 65535 };
                let mut blocks: u64 = 1;
                for (extent, tile) in *factors {
                    let e = extent.eval(dims).ok_or(Error::GridTooLarge {
                        workload: self.name,
                        kernel: k.symbol,
                        axis: name,
                        blocks: u64::MAX,
                        limit,
                    })?;
                    if e < 1 {
                        return Err(Error::EmptyGrid { workload: self.name, kernel: k.symbol, axis: name });
                    }
                    let tile = u64::from((*tile).max(1));
                    blocks = blocks.saturating_mul((e as u64).div_ceil(tile));
                }
                if blocks > limit {
                    return Err(Error::GridTooLarge { workload: self.name, kernel: k.symbol, axis: name, blocks, limit });
                }
                // blocks <= limit < 2^31, so it fits.
                g[axis] = blocks as u32;
            }
            grids.push((g[0], g[1], g[2]));
            workspaces.push(match &k.split_k {
                Some(split) => {
                    let overflow = || Error::SizeOverflow { workload: self.name, tensor: "split-K workspace", shape: k.symbol };
                    let elems = split.workspace.eval(dims).ok_or_else(overflow)?;
                    let elems = usize::try_from(elems.max(1)).map_err(|_| overflow())?;
                    let bytes = match elems.checked_mul(4) {
                        Some(bytes) if bytes <= isize::MAX as usize => bytes,
                        _ => return Err(overflow()),
                    };
                    scratch_bytes = scratch_bytes.saturating_add(bytes);
                    // The grid's blocks fit in u32 per axis; their product in u128.
                    let blocks = u128::from(g[0]) * u128::from(g[1]) * u128::from(g[2]);
                    let tiles = usize::try_from(blocks / u128::from(split.splits.max(1))).map_err(|_| overflow())?;
                    counters = counters.max(tiles.max(1));
                    elems
                }
                None => 0,
            });
        }
        Ok(LaunchSizes { variant, inputs, outputs, intermediates, grids, workspaces, counters, scratch_bytes })
    }
}

/// What one launch needs at given dims: computed by [`WorkloadInfo::launch_sizes`], checked,
/// without a GPU.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LaunchSizes {
    /// The variant that runs (index into [`WorkloadInfo::variants`]).
    pub variant: usize,
    /// Elements each input must hold, in argument order.
    pub inputs: Vec<usize>,
    /// Elements each output must hold, in argument order.
    pub outputs: Vec<usize>,
    /// Elements of each intermediate the launch allocates ([`VariantInfo::intermediates`]).
    pub intermediates: Vec<usize>,
    /// The grid `(x, y, z)` of each kernel, in launch order.
    pub grids: Vec<(u32, u32, u32)>,
    /// The `f32` elements of each kernel's split-K workspace (0 without split-K).
    pub workspaces: Vec<usize>,
    /// The `u32` split-K tile counters the launch needs (0 without split-K). They are
    /// allocated once per stream and reused, not per launch.
    pub counters: usize,
    /// Device bytes the launch allocates beyond its inputs and outputs: the intermediates
    /// and the split-K workspaces, freed (stream-ordered) when the launch's kernels are done.
    pub scratch_bytes: usize,
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::f16 {}
    impl Sealed for super::bf16 {}
    impl Sealed for f32 {}
    impl<T> Sealed for super::CudaSlice<T> {}
    impl<T> Sealed for super::CudaView<'_, T> {}
    impl<T> Sealed for super::CudaViewMut<'_, T> {}
}

/// The element types kernels take: [`struct@f16`], [`bf16`] and `f32`.
pub trait Element: sealed::Sealed + Copy + 'static {
    /// The corresponding [`DType`].
    const DTYPE: DType;
}

impl Element for f16 {
    const DTYPE: DType = DType::F16;
}

impl Element for bf16 {
    const DTYPE: DType = DType::BF16;
}

impl Element for f32 {
    const DTYPE: DType = DType::F32;
}

/// A device buffer a kernel reads: [`CudaSlice`], [`CudaView`] or [`CudaViewMut`].
///
/// Sealed: the launch relies on the length and pointer these types report.
pub trait InputBuffer<T: Element>: sealed::Sealed {
    /// Number of elements.
    fn buffer_len(&self) -> usize;
    /// The context the buffer belongs to.
    fn buffer_context(&self) -> &Arc<CudaContext>;
    /// The device address, after making `stream` wait for earlier writes; dropping the
    /// guard records this read.
    fn buffer_ptr<'a>(&'a self, stream: &'a CudaStream) -> (u64, SyncOnDrop<'a>);
}

/// A device buffer a kernel writes: [`CudaSlice`] or [`CudaViewMut`].
///
/// Sealed: the launch relies on the length and pointer these types report.
pub trait OutputBuffer<T: Element>: sealed::Sealed {
    /// Number of elements.
    fn buffer_len(&self) -> usize;
    /// The context the buffer belongs to.
    fn buffer_context(&self) -> &Arc<CudaContext>;
    /// The device address, after making `stream` wait for earlier reads and writes;
    /// dropping the guard records this write.
    fn buffer_ptr_mut<'a>(&'a mut self, stream: &'a CudaStream) -> (u64, SyncOnDrop<'a>);
}

/// The buffer impls: every cudarc buffer type delegates to the same cudarc
/// traits.
macro_rules! buffer_impls {
    (@common) => {
        fn buffer_len(&self) -> usize {
            DeviceSlice::len(self)
        }
        fn buffer_context(&self) -> &Arc<CudaContext> {
            DeviceSlice::stream(self).context()
        }
    };
    (input: $($ty:ty),+) => {
        $(impl<T: Element> InputBuffer<T> for $ty {
            buffer_impls!(@common);
            fn buffer_ptr<'a>(&'a self, stream: &'a CudaStream) -> (u64, SyncOnDrop<'a>) {
                DevicePtr::device_ptr(self, stream)
            }
        })+
    };
    (output: $($ty:ty),+) => {
        $(impl<T: Element> OutputBuffer<T> for $ty {
            buffer_impls!(@common);
            fn buffer_ptr_mut<'a>(&'a mut self, stream: &'a CudaStream) -> (u64, SyncOnDrop<'a>) {
                DevicePtrMut::device_ptr_mut(self, stream)
            }
        })+
    };
}
buffer_impls!(input: CudaSlice<T>, CudaView<'_, T>, CudaViewMut<'_, T>);
buffer_impls!(output: CudaSlice<T>, CudaViewMut<'_, T>);

/// An input of [`DynWorkload::launch_dyn`]: a buffer of one element type.
pub enum TensorRef<'a> {
    /// `f16` elements.
    F16(&'a dyn InputBuffer<f16>),
    /// `bf16` elements.
    BF16(&'a dyn InputBuffer<bf16>),
    /// `f32` elements.
    F32(&'a dyn InputBuffer<f32>),
}

impl TensorRef<'_> {
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            TensorRef::F16(_) => DType::F16,
            TensorRef::BF16(_) => DType::BF16,
            TensorRef::F32(_) => DType::F32,
        }
    }
}

/// An output of [`DynWorkload::launch_dyn`]: a buffer of one element type.
pub enum TensorMut<'a> {
    /// `f16` elements.
    F16(&'a mut dyn OutputBuffer<f16>),
    /// `bf16` elements.
    BF16(&'a mut dyn OutputBuffer<bf16>),
    /// `f32` elements.
    F32(&'a mut dyn OutputBuffer<f32>),
}

impl TensorMut<'_> {
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            TensorMut::F16(_) => DType::F16,
            TensorMut::BF16(_) => DType::BF16,
            TensorMut::F32(_) => DType::F32,
        }
    }
}

/// A loaded workload, used without knowing which one at compile time.
pub trait DynWorkload: Send + Sync {
    /// Its description, dims, tensors and kernels.
    fn info(&self) -> &'static WorkloadInfo;

    /// Queue the workload's kernels on `stream`: `inputs` and `outputs` in
    /// [`WorkloadInfo::inputs`] / [`WorkloadInfo::outputs`] order, `dims` by name.
    ///
    /// # Errors
    ///
    /// Any [`Error`] about arguments, sizes or the driver.
    fn launch_dyn(
        &self,
        stream: &Arc<CudaStream>,
        inputs: &[TensorRef<'_>],
        outputs: &mut [TensorMut<'_>],
        dims: &[(&str, i64)],
    ) -> Result<(), Error>;

    /// The variant (tuned instance) that [`DynWorkload::launch_dyn`] runs at `dims` on this
    /// device.
    ///
    /// # Errors
    ///
    /// As the dims of [`DynWorkload::launch_dyn`]: [`Error::UnknownDim`],
    /// [`Error::DuplicateDim`], [`Error::MissingDim`] or [`Error::DimOutOfRange`].
    fn variant_info(&self, dims: &[(&str, i64)]) -> Result<&'static VariantInfo, Error>;

    /// The label of [`DynWorkload::variant_info`].
    ///
    /// # Errors
    ///
    /// As [`DynWorkload::variant_info`].
    fn variant_label(&self, dims: &[(&str, i64)]) -> Result<&'static str, Error> {
        Ok(self.variant_info(dims)?.label)
    }

    /// The dispatch table this device uses, `None` when the workload has none.
    fn dispatch(&self) -> Option<&'static DispatchInfo>;
}

/// Loading, checking and launching: the one place with `unsafe`.
mod rt {
    use super::*;

    /// Default dynamic shared memory limit per block without opting in.
    const SHARED_DEFAULT: u64 = 48 * 1024;

    /// Blocks per thread block cluster `function` was compiled for (1
    /// without clusters, or when the driver cannot say).
    fn cluster_blocks(function: &cudarc::driver::CudaFunction) -> i32 {
        use cudarc::driver::sys::CUfunction_attribute as A;
        [
            A::CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH,
            A::CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_HEIGHT,
            A::CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_DEPTH,
        ]
        .into_iter()
        .map(|a| function.get_attribute(a).unwrap_or(0).max(1))
        .product()
    }

    /// Fail instead of letting cudarc panic when libcuda is missing.
    pub(super) fn check_driver() -> Result<(), Error> {
        // SAFETY: only tries to open the driver library; it calls none of its functions.
        if unsafe { cudarc::driver::sys::is_culib_present() } {
            Ok(())
        } else {
            Err(Error::DriverLibraryMissing)
        }
    }

    /// Whether compute capability `major.minor` runs the fatbin: SASS for `sm_XY` runs on
    /// X.Y' with Y' >= Y, for `sm_XYf` likewise (same family), for `sm_XYa` on X.Y only;
    /// PTX for `compute_XY` runs on every capability >= X.Y, `compute_XYa` on X.Y only,
    /// `compute_XYf` within the family.
    pub(super) fn runs_on(major: i32, minor: i32) -> bool {
        let (Ok(major), Ok(minor)) = (u32::try_from(major), u32::try_from(minor)) else {
            return false;
        };
        let Some(cc) = major.checked_mul(10).and_then(|m| m.checked_add(minor)) else {
            return false;
        };
        let same_family = |cap: u32| cap / 10 == major && cap % 10 <= minor;
        let sass = SASS
            .iter()
            .any(|&(cap, suffix)| if suffix == "a" { cap == cc } else { same_family(cap) });
        let ptx = match PTX {
            (cap, "a") => cap == cc,
            (cap, "f") => same_family(cap),
            (cap, _) => cc >= cap,
        };
        sass || ptx
    }

    /// The kernels of one workload, loaded into one context.
    pub(super) struct Loaded {
        pub(super) info: &'static WorkloadInfo,
        ctx: Arc<CudaContext>,
        /// The functions of each variant, in launch order.
        functions: Vec<Vec<CudaFunction>>,
        /// The dispatch table of the device's architecture.
        pub(super) table: Option<&'static DispatchInfo>,
        /// Split-K tile counters per stream (keyed by the raw stream handle):
        /// zeroed once, left zero by every kernel. Launches on one stream run in
        /// order, so they never share counters concurrently; the lock is held
        /// while a launch enqueues its kernels, so a buffer is never replaced
        /// under a pending enqueue.
        counters: std::sync::Mutex<Vec<(usize, CudaSlice<u32>)>>,
    }

    impl Loaded {
        pub(super) fn new(
            info: &'static WorkloadInfo,
            fatbin: Option<&'static [u8]>,
            ctx: &Arc<CudaContext>,
        ) -> Result<Self, Error> {
            let Some(fatbin) = fatbin else {
                return Err(Error::BuiltForDocs { workload: info.name });
            };
            check_driver()?;
            let (major, minor) = ctx.compute_capability()?;
            if !runs_on(major, minor) {
                return Err(Error::UnsupportedDevice { workload: info.name, major, minor });
            }
            let module = ctx
                .load_module(cudarc::nvrtc::Ptx::from_binary(fatbin.to_vec()))
                .map_err(|source| Error::ModuleLoad { workload: info.name, source })?;
            // runs_on accepted the capability, so both parts are small and non-negative.
            let capability = u32::try_from(major)
                .unwrap_or(0)
                .saturating_mul(10)
                .saturating_add(u32::try_from(minor).unwrap_or(0));
            let table = info.dispatch_for(capability);
            let mut functions = Vec::with_capacity(info.variants.len());
            for (j, variant) in info.variants.iter().enumerate() {
                // Only the variants this device dispatches to are launched: their shared
                // memory is checked (and the limit raised) here.
                let reachable = j == 0 || table.is_some_and(|t| t.entries.iter().any(|e| e.variant == j));
                let mut loaded = Vec::with_capacity(variant.kernels.len());
                for k in variant.kernels {
                    let function = module.load_function(k.symbol)?;
                    // Thread block clusters of more than 8 blocks (prism's
                    // cluster combines, up to 16 splits) are non-portable.
                    // (Asked only of variants this device can dispatch to.)
                    if reachable && cluster_blocks(&function) > 8 {
                        ctx.bind_to_thread()?;
                        function.set_attribute(
                            cudarc::driver::sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED,
                            1,
                        )?;
                    }
                    if reachable && k.shared_bytes > 0 {
                        let static_bytes = u64::try_from(function.shared_size_bytes()?).unwrap_or(0);
                        let requested = static_bytes + u64::from(k.shared_bytes);
                        let optin = ctx.attribute(
                            cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
                        )?;
                        let available = u64::try_from(optin).unwrap_or(0).max(SHARED_DEFAULT);
                        if requested > available {
                            return Err(Error::SharedMemoryTooLarge {
                                workload: info.name,
                                kernel: k.symbol,
                                requested,
                                available,
                            });
                        }
                        if requested > SHARED_DEFAULT {
                            ctx.bind_to_thread()?;
                            function.set_attribute(
                                cudarc::driver::sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                i32::try_from(k.shared_bytes).unwrap_or(i32::MAX),
                            )?;
                        }
                    }
                    loaded.push(function);
                }
                functions.push(loaded);
            }
            Ok(Loaded { info, ctx: ctx.clone(), functions, table, counters: std::sync::Mutex::new(Vec::new()) })
        }

        /// The variant a launch at `dims` given as `usize` runs.
        pub(super) fn variant_usize(&self, dims: &[usize]) -> &'static VariantInfo {
            let dims: Vec<i64> = dims.iter().map(|v| i64::try_from(*v).unwrap_or(i64::MAX)).collect();
            self.info.variant_at(self.table, &dims)
        }
    }

    /// Dims given as `usize`, in kernel order.
    pub(super) fn dims_from_usize(info: &'static WorkloadInfo, dims: &[usize]) -> Result<Vec<i64>, Error> {
        dims.iter()
            .zip(info.dims)
            .map(|(v, d)| {
                i64::try_from(*v).map_err(|_| Error::DimOutOfRange {
                    workload: info.name,
                    dim: d.name,
                    value: *v as i128,
                    allowed: d.values.to_string(),
                })
            })
            .collect()
    }

    /// [`DynWorkload::variant_info`] for any workload.
    pub(super) fn variant_dyn(loaded: &Loaded, dims: &[(&str, i64)]) -> Result<&'static VariantInfo, Error> {
        let info = loaded.info;
        let values = info.dim_values(dims)?;
        info.check_dims(&values)?;
        Ok(info.variant_at(loaded.table, &values))
    }

    /// A checked launch: dims validated, every size and grid computed.
    pub(super) struct Plan<'a> {
        loaded: &'a Loaded,
        stream: &'a Arc<CudaStream>,
        dims: Vec<i64>,
        sizes: LaunchSizes,
    }

    /// A buffer checked for one argument position, with its device address.
    pub(super) struct Bound<'a> {
        slot: Slot,
        ptr: u64,
        _guard: SyncOnDrop<'a>,
    }

    impl<'a> Plan<'a> {
        pub(super) fn new(loaded: &'a Loaded, stream: &'a Arc<CudaStream>, dims: Vec<i64>) -> Result<Self, Error> {
            let info = loaded.info;
            let sizes = info.launch_sizes(loaded.table, &dims)?;
            if **stream.context() != *loaded.ctx {
                return Err(Error::WrongContext { workload: info.name, argument: "stream" });
            }
            Ok(Plan { loaded, stream, dims, sizes })
        }

        fn check(&self, t: &TensorInfo, expected: usize, len: usize, ctx: &CudaContext) -> Result<(), Error> {
            let workload = self.loaded.info.name;
            if *ctx != *self.loaded.ctx {
                return Err(Error::WrongContext { workload, argument: t.name });
            }
            if len != expected {
                return Err(Error::LengthMismatch { workload, argument: t.name, shape: t.shape, expected, got: len });
            }
            Ok(())
        }

        /// Check `buffer` as input `i` and take its address.
        pub(super) fn input<'b, T: Element, B: InputBuffer<T> + ?Sized>(&self, i: usize, buffer: &'b B) -> Result<Bound<'b>, Error>
        where
            'a: 'b,
        {
            let info = self.loaded.info;
            let t = info.inputs.get(i).ok_or(Error::ArgumentCount {
                workload: info.name,
                kind: "inputs",
                expected: info.inputs.len(),
                got: i + 1,
            })?;
            if T::DTYPE != t.dtype {
                return Err(Error::DTypeMismatch { workload: info.name, argument: t.name, expected: t.dtype, got: T::DTYPE });
            }
            self.check(t, self.sizes.inputs[i], buffer.buffer_len(), buffer.buffer_context())?;
            let (ptr, guard) = buffer.buffer_ptr(self.stream);
            Ok(Bound { slot: Slot::Input(i), ptr, _guard: guard })
        }

        /// Check `buffer` as output `i` and take its address.
        pub(super) fn output<'b, T: Element, B: OutputBuffer<T> + ?Sized>(&self, i: usize, buffer: &'b mut B) -> Result<Bound<'b>, Error>
        where
            'a: 'b,
        {
            let info = self.loaded.info;
            let t = info.outputs.get(i).ok_or(Error::ArgumentCount {
                workload: info.name,
                kind: "outputs",
                expected: info.outputs.len(),
                got: i + 1,
            })?;
            if T::DTYPE != t.dtype {
                return Err(Error::DTypeMismatch { workload: info.name, argument: t.name, expected: t.dtype, got: T::DTYPE });
            }
            self.check(t, self.sizes.outputs[i], buffer.buffer_len(), buffer.buffer_context())?;
            let (ptr, guard) = buffer.buffer_ptr_mut(self.stream);
            Ok(Bound { slot: Slot::Output(i), ptr, _guard: guard })
        }

        /// Queue every kernel. `args` are the inputs then the outputs, each bound by
        /// [`Plan::input`] / [`Plan::output`]; the caller drops them after this returns, which
        /// records the kernels' reads and writes on the buffers.
        pub(super) fn launch(&self, args: &[Bound<'_>]) -> Result<(), Error> {
            let info = self.loaded.info;
            let n_in = info.inputs.len();
            let n_out = info.outputs.len();
            let in_order = args.len() == n_in + n_out
                && args.iter().enumerate().all(|(k, a)| {
                    a.slot == if k < n_in { Slot::Input(k) } else { Slot::Output(k - n_in) }
                });
            if !in_order {
                return Err(Error::ArgumentCount {
                    workload: info.name,
                    kind: "inputs and outputs",
                    expected: n_in + n_out,
                    got: args.len(),
                });
            }
            let variant = &info.variants[self.sizes.variant];
            // Intermediates: fresh, uninitialized, exactly as large as their shapes.
            let mut scratch: Vec<CudaSlice<u8>> = Vec::with_capacity(self.sizes.intermediates.len());
            for (len, t) in self.sizes.intermediates.iter().zip(variant.intermediates) {
                let bytes = len * t.dtype.size(); // checked in `WorkloadInfo::launch_sizes`
                // SAFETY: the memory is left uninitialized. Only the kernels below touch it, and
                // each kernel that reads an intermediate runs after the kernel that writes it
                // (the launch plan's contract); it is never read on the host.
                scratch.push(unsafe { self.stream.alloc::<u8>(bytes) }?);
            }
            let scratch_ptrs: Vec<u64> = scratch
                .iter()
                .map(|s| {
                    let (ptr, _record) = DevicePtr::device_ptr(s, self.stream);
                    ptr
                })
                .collect();
            // Split-K: this stream's counters (grown, zeroed, when a kernel needs more; held
            // locked until every kernel is queued) and a fresh workspace per kernel.
            let needed = self.sizes.counters;
            let mut counters_lock = None;
            let mut counters_ptr = 0u64;
            if needed > 0 {
                let mut all = self.loaded.counters.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let key = self.stream.cu_stream() as usize;
                let at = match all.iter().position(|(k, c)| *k == key && c.len() >= needed) {
                    Some(at) => at,
                    None => {
                        all.retain(|(k, _)| *k != key);
                        all.push((key, self.stream.alloc_zeros::<u32>(needed)?));
                        all.len() - 1
                    }
                };
                counters_ptr = {
                    let (ptr, _record) = DevicePtr::device_ptr(&all[at].1, self.stream);
                    ptr
                };
                counters_lock = Some(all);
            }
            let mut workspaces: Vec<Option<CudaSlice<f32>>> = Vec::with_capacity(self.sizes.workspaces.len());
            for &elems in &self.sizes.workspaces {
                workspaces.push(if elems > 0 {
                    // SAFETY: uninitialized; every split of a tile writes its part before the
                    // tile's last block reads it (the kernel's contract), never read on the host.
                    Some(unsafe { self.stream.alloc::<f32>(elems) }?)
                } else {
                    None
                });
            }
            let functions = &self.loaded.functions[self.sizes.variant];
            for (((k, function), grid), workspace) in
                variant.kernels.iter().zip(functions).zip(&self.sizes.grids).zip(&workspaces)
            {
                let mut ptrs: Vec<u64> = k
                    .args
                    .iter()
                    .map(|slot| match *slot {
                        Slot::Input(i) => args[i].ptr,
                        Slot::Output(i) => args[n_in + i].ptr,
                        Slot::Scratch(i) => scratch_ptrs[i],
                    })
                    .collect();
                // TMA: the maps of this launch's buffers.
                let mut maps: Vec<TensorMapArg> = Vec::with_capacity(k.tensor_maps.len());
                for m in k.tensor_maps {
                    let map = ptrs.get(m.arg).and_then(|&p| TensorMapArg::encode(m, p, &self.dims));
                    maps.push(map.ok_or(Error::Unaligned { workload: info.name, kernel: k.symbol })?);
                }
                if let Some(w) = workspace {
                    let (ptr, _record) = DevicePtr::device_ptr(w, self.stream);
                    ptrs.push(counters_ptr);
                    ptrs.push(ptr);
                }
                let mut launch = self.stream.launch_builder(function);
                for p in &ptrs {
                    cudarc::driver::PushKernelArg::arg(&mut launch, p);
                }
                for m in &maps {
                    cudarc::driver::PushKernelArg::arg(&mut launch, m);
                }
                for d in &self.dims {
                    cudarc::driver::PushKernelArg::arg(&mut launch, d);
                }
                let cfg = cudarc::driver::LaunchConfig {
                    grid_dim: *grid,
                    block_dim: (k.threads, 1, 1),
                    shared_mem_bytes: k.shared_bytes,
                };
                // SAFETY: the parameters match the kernel's signature, which prism generated:
                // one device pointer per entry of `k.args` (in that order), the split-K counters
                // (at least one zeroed u32 per output tile, this stream's) and workspace when
                // `k.split_k` is set, the tensor maps of those pointers (`k.tensor_maps`), then
                // every dim as an i64, in `info.dims` order. Every pointer is a live allocation of this
                // context (checked by `Plan::input`/`Plan::output`, or allocated above) holding
                // exactly the elements of its tensor's shape at `self.dims` (lengths checked
                // with overflow-checked arithmetic), with the declared element type (the
                // `Element` bound or `TensorRef` variant, checked against `DType`). The dims
                // lie in their declared values, for which the kernels index only inside those
                // shapes, over the grid computed from the same dims. Outputs are borrowed
                // mutably, so no other argument aliases them; intermediates are fresh. The
                // buffer traits are sealed, so lengths and pointers come from cudarc. cudarc
                // orders the kernels after earlier work on the buffers (events waited for in
                // `buffer_ptr`), and the arguments' guards, dropped by the caller after this
                // returns, record the kernels' reads and writes. Freeing the intermediates
                // is stream-ordered after the kernels.
                unsafe { launch.launch(cfg) }?;
            }
            drop(scratch);
            drop(workspaces);
            drop(counters_lock);
            Ok(())
        }
    }

    /// [`DynWorkload::launch_dyn`] for any workload.
    pub(super) fn launch_dyn(
        loaded: &Loaded,
        stream: &Arc<CudaStream>,
        inputs: &[TensorRef<'_>],
        outputs: &mut [TensorMut<'_>],
        dims: &[(&str, i64)],
    ) -> Result<(), Error> {
        let info = loaded.info;
        let plan = Plan::new(loaded, stream, info.dim_values(dims)?)?;
        if inputs.len() != info.inputs.len() {
            return Err(Error::ArgumentCount {
                workload: info.name,
                kind: "inputs",
                expected: info.inputs.len(),
                got: inputs.len(),
            });
        }
        if outputs.len() != info.outputs.len() {
            return Err(Error::ArgumentCount {
                workload: info.name,
                kind: "outputs",
                expected: info.outputs.len(),
                got: outputs.len(),
            });
        }
        let mut args = Vec::with_capacity(inputs.len() + outputs.len());
        for (i, t) in inputs.iter().enumerate() {
            args.push(match t {
                TensorRef::F16(b) => plan.input(i, *b)?,
                TensorRef::BF16(b) => plan.input(i, *b)?,
                TensorRef::F32(b) => plan.input(i, *b)?,
            });
        }
        for (i, t) in outputs.iter_mut().enumerate() {
            args.push(match t {
                TensorMut::F16(b) => plan.output(i, &mut **b)?,
                TensorMut::BF16(b) => plan.output(i, &mut **b)?,
                TensorMut::F32(b) => plan.output(i, &mut **b)?,
            });
        }
        plan.launch(&args)
    }
}"#;

#[cfg(test)]
mod tests {
    use super::{RUNTIME, RUNTIME_ERROR_NAMES};

    /// `RUNTIME_ERROR_NAMES` lists exactly the variants of the runtime's `Error`.
    #[test]
    fn runtime_error_names_match_the_enum() {
        let start = RUNTIME.find("pub enum Error {").expect("the enum");
        let end = start + RUNTIME[start..].find("\n}").expect("its end");
        let variants: Vec<&str> = RUNTIME[start..end]
            .lines()
            .filter_map(|l| {
                let t = l.strip_prefix("    ")?;
                let name = t.split(|c: char| !c.is_ascii_alphanumeric()).next()?;
                (!t.starts_with(' ') && name.starts_with(|c: char| c.is_ascii_uppercase()))
                    .then_some(name)
            })
            .collect();
        assert_eq!(variants, RUNTIME_ERROR_NAMES);
    }
}
