//! The chosen μGraph as a diagram: kernels as boxes in launch order (grid,
//! threads, for-loop, maps and block operators), global tensors as pills,
//! arrows for what each kernel reads and writes.
//!
//! Layout: columns left to right — the workload's inputs, then per kernel
//! its box and the tensors it writes. An arrow between neighbouring
//! columns is a curve; one that skips columns runs in a lane above the
//! boxes, so no arrow crosses a box.

use std::fmt::Write as _;

use super::svg::{arrow_marker, cut, esc, px, wrap};
use crate::codegen::Variant;
use crate::ir::DimBindings;
use crate::ugraph::validate::{BlockInfo, check_block, shape_string};
use crate::ugraph::{
    AccumKind, BlockGraph, BlockOp, GlobalTensor, KernelBody, KernelGraph, Predefined, TensorRole,
    TileMap,
};

/// What a tensor is to the workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Input,
    Output,
    Intermediate,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub name: String,
    /// `f16[n, d]`.
    pub ty: String,
    pub role: Role,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    pub name: String,
    /// `block kernel`, `combine`, `launch`.
    pub kind: String,
    /// `(label, text)`: `grid`, `block`, `loop`, `in`, `out`, `ops`.
    pub lines: Vec<(String, String)>,
    /// Indices into [`Diagram::tensors`].
    pub reads: Vec<usize>,
    pub writes: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Diagram {
    pub tensors: Vec<Tensor>,
    pub kernels: Vec<Kernel>,
}

impl Diagram {
    /// The diagram with the `<workload>_` prefix of generated kernel and
    /// tensor names dropped (they repeat the section's name).
    pub fn shortened(mut self, workload: &str) -> Diagram {
        let prefix = format!("{workload}_");
        let short = |s: &str| {
            let t = s.replace(&prefix, "");
            if t.is_empty() { s.to_string() } else { t }
        };
        for t in &mut self.tensors {
            if t.role == Role::Intermediate {
                t.name = short(&t.name);
            }
        }
        for k in &mut self.kernels {
            k.name = short(&k.name);
            for (_, text) in &mut k.lines {
                *text = short(text);
            }
        }
        self
    }
}

fn role(r: TensorRole) -> Role {
    match r {
        TensorRole::Input(_) => Role::Input,
        TensorRole::Output(_) => Role::Output,
        TensorRole::Intermediate => Role::Intermediate,
    }
}

fn tensors(ts: &[GlobalTensor]) -> Vec<Tensor> {
    ts.iter()
        .map(|t| Tensor {
            name: t.name.clone(),
            ty: crate::ir::type_string(t.dtype, &t.shape),
            role: role(t.role),
        })
        .collect()
}

const AXES: [&str; 3] = ["x", "y", "z"];

fn axis(g: usize) -> &'static str {
    AXES.get(g).copied().unwrap_or("?")
}

/// `x→n y→d for→k` of a tile map, with the view's dims.
fn map_text(m: &TileMap) -> String {
    let mut parts = Vec::new();
    for (g, entry) in m.imap.iter().enumerate() {
        match entry {
            None => parts.push(format!("{}→all", axis(g))),
            Some(axes) => {
                let dims: Vec<String> = axes
                    .iter()
                    .map(|a| m.view.get(*a).map_or("?".into(), |d| d.to_string()))
                    .collect();
                parts.push(format!("{}→{}", axis(g), dims.join("·")));
            }
        }
    }
    if let Some(f) = m.fmap {
        parts.push(format!(
            "for→{}",
            m.view.get(f).map_or("?".into(), |d| d.to_string())
        ));
    }
    if parts.is_empty() {
        "whole tensor".into()
    } else {
        parts.join(" ")
    }
}

fn op_name(op: &BlockOp) -> Option<String> {
    Some(match op {
        BlockOp::Input(_) | BlockOp::Const(_) => return None,
        BlockOp::Unary(u, _) => u.to_string(),
        BlockOp::Binary(b, _, _) => b.to_string(),
        BlockOp::Permute(..) => "permute".into(),
        BlockOp::Matmul(..) => "matmul".into(),
        BlockOp::Reduce { op, .. } => format!("{op}"),
        BlockOp::Accum { kind, .. } => match kind {
            AccumKind::Sum => "acc-sum".into(),
            AccumKind::Max => "acc-max".into(),
            AccumKind::RescaledSum { .. } => "acc-rescaled-sum".into(),
        },
        BlockOp::Running(_) => "running".into(),
    })
}

fn block_lines(
    b: &BlockGraph,
    g: &KernelGraph,
    p: &DimBindings,
    info: Option<&BlockInfo>,
) -> Vec<(String, String)> {
    let mut lines = Vec::new();
    let grid: Vec<String> = b
        .grid
        .iter()
        .enumerate()
        .map(|(i, gd)| {
            let n = gd.extents.len();
            let parts: Vec<String> = gd
                .extents
                .iter()
                .enumerate()
                .map(|(j, e)| {
                    if j + 1 == n && gd.tile > 1 {
                        format!("{e}/{}", gd.tile)
                    } else {
                        e.to_string()
                    }
                })
                .collect();
            format!("{}: {}", axis(i), parts.join("·"))
        })
        .collect();
    let grid = if grid.is_empty() {
        "one block".to_string()
    } else {
        grid.join("  ")
    };
    lines.push(("grid".into(), format!("{grid}  = {} blocks", b.blocks(p))));
    let pr = &b.params;
    let mut block = format!("{} threads", pr.threads);
    if pr.stages > 1 {
        let _ = write!(block, ", {} stages", pr.stages);
    }
    if pr.warps_m * pr.warps_n * pr.warps_k > 1 {
        let _ = write!(block, ", warps {}×{}", pr.warps_m, pr.warps_n);
        if pr.warps_k > 1 {
            let _ = write!(block, "×{}k", pr.warps_k);
        }
    }
    if pr.split_k > 1 {
        let _ = write!(block, ", split-K ×{}", pr.split_k);
    }
    lines.push(("block".into(), block));
    match &b.forloop {
        Some(l) => {
            let iters = l
                .iterations(p)
                .map_or_else(|_| "?".to_string(), |n| n.to_string());
            let split = l
                .split
                .map(|g| format!(", split over {}", axis(g)))
                .unwrap_or_default();
            lines.push((
                "loop".into(),
                format!("{} in tiles of {} ({iters} iter.){split}", l.extent, l.tile),
            ));
        }
        None => lines.push(("loop".into(), "none".into())),
    }
    for m in &b.inputs {
        let t = g.tensor(m.tensor);
        lines.push(("in".into(), format!("{} {}", t.name, map_text(m))));
    }
    for o in &b.outputs {
        let t = g.tensor(o.map.tensor);
        let shape = info
            .and_then(|i| i.shapes.get(o.value.0))
            .map(|s| format!(" tile {}", shape_string(s)))
            .unwrap_or_default();
        lines.push((
            "out".into(),
            format!("{} {}{shape}", t.name, map_text(&o.map)),
        ));
    }
    let ops: Vec<String> = b.ops.iter().filter_map(op_name).collect();
    lines.push((
        "ops".into(),
        format!("{} ({} block ops)", ops.join(" "), b.ops.len()),
    ));
    lines
}

/// The diagram of a kernel graph, its grids counted at `p`.
pub fn from_graph(g: &KernelGraph, p: &DimBindings) -> Diagram {
    let kernels = g
        .kernels
        .iter()
        .map(|k| match &k.body {
            KernelBody::Block(b) => {
                let info = check_block(b, &g.tensors).ok();
                let mut reads: Vec<usize> = b.inputs.iter().map(|m| m.tensor.0).collect();
                reads.dedup();
                let writes: Vec<usize> = b.outputs.iter().map(|o| o.map.tensor.0).collect();
                Kernel {
                    name: k.name.clone(),
                    kind: "block kernel".into(),
                    lines: block_lines(b, g, p, info.as_ref()),
                    reads,
                    writes,
                }
            }
            KernelBody::Predefined(Predefined::SplitCombine { partials, output }) => Kernel {
                name: k.name.clone(),
                kind: "combine".into(),
                lines: vec![(
                    "sum".into(),
                    format!(
                        "{} = sum over splits of {}",
                        g.tensor(*output).name,
                        g.tensor(*partials).name
                    ),
                )],
                reads: vec![partials.0],
                writes: vec![output.0],
            },
        })
        .collect();
    Diagram {
        tensors: tensors(&g.tensors),
        kernels,
    }
}

/// The coarser diagram of a launch plan (no block graph: what a custom
/// code generator or a docs build leaves): grids and threads only; an
/// intermediate counts as written by the first launch that names it.
pub fn from_variant(v: &Variant, p: &DimBindings) -> Diagram {
    let ts = tensors(&v.tensors);
    let mut seen = vec![false; ts.len()];
    let kernels = v
        .launches
        .iter()
        .map(|l| {
            let mut reads = Vec::new();
            let mut writes = Vec::new();
            for t in &l.tensors {
                let Some(x) = ts.get(t.0) else { continue };
                let written = match x.role {
                    Role::Input => false,
                    Role::Output => true,
                    Role::Intermediate => !seen[t.0],
                };
                seen[t.0] = true;
                if written {
                    writes.push(t.0);
                } else {
                    reads.push(t.0);
                }
            }
            let grid: Vec<String> = l
                .grid
                .iter()
                .enumerate()
                .filter(|(_, f)| !f.is_empty())
                .map(|(i, fs)| {
                    let parts: Vec<String> = fs
                        .iter()
                        .map(|f| {
                            if f.tile > 1 {
                                format!("{}/{}", f.extent, f.tile)
                            } else {
                                f.extent.to_string()
                            }
                        })
                        .collect();
                    format!("{}: {}", axis(i), parts.join("·"))
                })
                .collect();
            let blocks: u64 = l
                .grid
                .iter()
                .flatten()
                .map(|f| {
                    (f.extent.eval(p).unwrap_or(1).max(1) as u64).div_ceil(u64::from(f.tile.max(1)))
                })
                .product();
            let mut lines = vec![
                (
                    "grid".to_string(),
                    format!(
                        "{}  = {blocks} blocks",
                        if grid.is_empty() {
                            "one block".to_string()
                        } else {
                            grid.join("  ")
                        }
                    ),
                ),
                (
                    "block".to_string(),
                    format!("{} threads, {} B shared", l.threads, l.shared_bytes),
                ),
            ];
            if let Some(s) = &l.split_k {
                lines.push(("split".into(), format!("split-K ×{}", s.splits)));
            }
            Kernel {
                name: l.symbol.clone(),
                kind: "launch".into(),
                lines,
                reads,
                writes,
            }
        })
        .collect();
    Diagram {
        tensors: ts,
        kernels,
    }
}

const PILL_W: f64 = 136.0;
const PILL_H: f64 = 36.0;
const PILL_GAP: f64 = 12.0;
const BOX_W: f64 = 292.0;
const HEAD: f64 = 26.0;
const LINE: f64 = 15.0;
const GAP: f64 = 36.0;
const LANE: f64 = 11.0;
/// Characters per line in a box (11 px monospace).
const CHARS: usize = 42;

struct Column {
    x: f64,
    width: f64,
    height: f64,
    /// Kernel index, or tensors.
    kernel: Option<usize>,
    tensors: Vec<usize>,
}

/// The diagram as SVG; `uid` makes its marker ids unique in the page.
pub fn svg(d: &Diagram, uid: &str) -> String {
    // Wrapped lines per kernel.
    let boxes: Vec<Vec<(String, String)>> = d
        .kernels
        .iter()
        .map(|k| {
            let mut out = Vec::new();
            for (label, text) in &k.lines {
                for (i, l) in wrap(text, CHARS - 6).into_iter().enumerate() {
                    out.push((if i == 0 { label.clone() } else { String::new() }, l));
                }
            }
            out
        })
        .collect();
    let box_h = |k: usize| HEAD + 8.0 + LINE * boxes[k].len() as f64;
    // Columns: inputs, then per kernel its box and the tensors it writes
    // first.
    let mut column_of = vec![usize::MAX; d.tensors.len()];
    let mut columns: Vec<Column> = Vec::new();
    let inputs: Vec<usize> = (0..d.tensors.len())
        .filter(|&t| d.tensors[t].role == Role::Input)
        .collect();
    let stack = |n: usize| n as f64 * PILL_H + n.saturating_sub(1) as f64 * PILL_GAP;
    let mut x = 8.0;
    if !inputs.is_empty() {
        for &t in &inputs {
            column_of[t] = 0;
        }
        columns.push(Column {
            x,
            width: PILL_W,
            height: stack(inputs.len()),
            kernel: None,
            tensors: inputs,
        });
        x += PILL_W + GAP;
    }
    let mut kernel_col = Vec::new();
    for (k, kernel) in d.kernels.iter().enumerate() {
        kernel_col.push(columns.len());
        columns.push(Column {
            x,
            width: BOX_W,
            height: box_h(k),
            kernel: Some(k),
            tensors: Vec::new(),
        });
        x += BOX_W + GAP;
        let written: Vec<usize> = kernel
            .writes
            .iter()
            .copied()
            .filter(|&t| t < column_of.len() && column_of[t] == usize::MAX)
            .collect();
        if !written.is_empty() {
            for &t in &written {
                column_of[t] = columns.len();
            }
            columns.push(Column {
                x,
                width: PILL_W,
                height: stack(written.len()),
                kernel: None,
                tensors: written,
            });
            x += PILL_W + GAP;
        }
    }
    let width = x - GAP + 8.0;
    // Arrows that skip columns get lanes above the content.
    let mut lanes = 0usize;
    let mut lane_of: Vec<Vec<Option<usize>>> = Vec::new();
    for (k, kernel) in d.kernels.iter().enumerate() {
        let mut v = Vec::new();
        for &t in &kernel.reads {
            let tc = column_of.get(t).copied().unwrap_or(usize::MAX);
            if tc != usize::MAX && tc + 1 != kernel_col[k] {
                v.push(Some(lanes));
                lanes += 1;
            } else {
                v.push(None);
            }
        }
        lane_of.push(v);
    }
    let top = 12.0 + LANE * lanes as f64 + if lanes > 0 { 10.0 } else { 0.0 };
    let content = columns.iter().map(|c| c.height).fold(0.0, f64::max);
    let height = top + content + 14.0;
    let mid = top + content / 2.0;
    // Positions.
    let mut pill_at = vec![(0.0, 0.0); d.tensors.len()];
    let mut box_at = vec![(0.0, 0.0); d.kernels.len()];
    for c in &columns {
        let y0 = mid - c.height / 2.0;
        match c.kernel {
            Some(k) => box_at[k] = (c.x, y0),
            None => {
                for (i, &t) in c.tensors.iter().enumerate() {
                    pill_at[t] = (c.x, y0 + i as f64 * (PILL_H + PILL_GAP));
                }
            }
        }
        let _ = c.width;
    }
    let marker = format!("arrow-{uid}");
    let lane_marker = format!("arrowl-{uid}");
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"diagram\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\" aria-label=\"kernel graph\"><defs>{}{}</defs>",
        px(width),
        px(height),
        px(width),
        px(height),
        arrow_marker(&marker, "#555"),
        arrow_marker(&lane_marker, "#8a8fa0")
    );
    // Arrows first (under the boxes).
    for (k, kernel) in d.kernels.iter().enumerate() {
        let (bx, by) = box_at[k];
        let bh = box_h(k);
        let adjacent: Vec<usize> = kernel
            .reads
            .iter()
            .enumerate()
            .filter(|(i, _)| lane_of[k][*i].is_none())
            .map(|(_, t)| *t)
            .collect();
        for (i, &t) in adjacent.iter().enumerate() {
            if t >= pill_at.len() || column_of[t] == usize::MAX {
                continue;
            }
            let (px0, py0) = pill_at[t];
            let (x1, y1) = (px0 + PILL_W, py0 + PILL_H / 2.0);
            let spread = ((bh - HEAD - 12.0) / adjacent.len().max(1) as f64).min(22.0);
            let y2 = by
                + HEAD
                + 10.0
                + spread * (i as f64 + 0.5)
                + ((bh - HEAD - 12.0) - spread * adjacent.len() as f64) / 2.0;
            let x2 = bx;
            let _ = write!(
                s,
                "<path class=\"edge read\" d=\"M{},{} C{},{} {},{} {},{}\" marker-end=\"url(#{marker})\"/>",
                px(x1),
                px(y1),
                px(x1 + GAP / 2.0),
                px(y1),
                px(x2 - GAP / 2.0),
                px(y2),
                px(x2 - 1.0),
                px(y2)
            );
        }
        let mut entry = 0usize;
        for (i, &t) in kernel.reads.iter().enumerate() {
            let Some(lane) = lane_of[k][i] else { continue };
            if t >= pill_at.len() {
                continue;
            }
            let (px0, py0) = pill_at[t];
            let ly = 10.0 + LANE * lane as f64;
            // Out of the pill's right side, up through the gap beside its
            // column, along the lane, down into the box's top.
            let x0 = px0 + PILL_W;
            let y0 = py0 + PILL_H / 2.0;
            let x1 = x0 + 6.0 + 5.0 * (lane % 5) as f64;
            let x2 = bx + 24.0 + 18.0 * entry as f64;
            entry += 1;
            let _ = write!(
                s,
                "<path class=\"edge lane\" d=\"M{},{} H{} V{} H{} V{}\" marker-end=\"url(#{lane_marker})\"/>",
                px(x0),
                px(y0),
                px(x1),
                px(ly),
                px(x2),
                px(by - 1.0)
            );
        }
        for (i, &t) in kernel.writes.iter().enumerate() {
            if t >= pill_at.len() || column_of[t] == usize::MAX {
                continue;
            }
            let (px0, py0) = pill_at[t];
            let n = kernel.writes.len() as f64;
            let y1 = by + HEAD + (bh - HEAD) * (i as f64 + 1.0) / (n + 1.0);
            let (x2, y2) = (px0, py0 + PILL_H / 2.0);
            let x1 = bx + BOX_W;
            let _ = write!(
                s,
                "<path class=\"edge write\" d=\"M{},{} C{},{} {},{} {},{}\" marker-end=\"url(#{marker})\"/>",
                px(x1),
                px(y1),
                px(x1 + GAP / 2.0),
                px(y1),
                px(x2 - GAP / 2.0),
                px(y2),
                px(x2 - 1.0),
                px(y2)
            );
        }
    }
    // Tensors.
    for (t, tensor) in d.tensors.iter().enumerate() {
        if column_of[t] == usize::MAX {
            continue;
        }
        let (x, y) = pill_at[t];
        let class = match tensor.role {
            Role::Input => "input",
            Role::Output => "output",
            Role::Intermediate => "intermediate",
        };
        let _ = write!(
            s,
            "<g class=\"tensor {class}\"><title>{} : {}</title><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"10\"/><text class=\"tname\" x=\"{}\" y=\"{}\">{}</text><text class=\"ttype\" x=\"{}\" y=\"{}\">{}</text></g>",
            esc(&tensor.name),
            esc(&tensor.ty),
            px(x),
            px(y),
            px(PILL_W),
            px(PILL_H),
            px(x + 10.0),
            px(y + 15.0),
            esc(&cut(&tensor.name, 16)),
            px(x + 10.0),
            px(y + 29.0),
            esc(&cut(&tensor.ty, 19))
        );
    }
    // Kernel boxes.
    for (k, kernel) in d.kernels.iter().enumerate() {
        let (x, y) = box_at[k];
        let h = box_h(k);
        let _ = write!(
            s,
            "<g class=\"kernel\" data-kernel=\"{}\"><rect class=\"kbox\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"6\"/><path class=\"khead\" d=\"M{},{} h{} a6,6 0 0 1 6,6 v{} h-{} v-{} a6,6 0 0 1 6,-6 z\"/><text class=\"kname\" x=\"{}\" y=\"{}\">{}. {}</text><text class=\"kkind\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            esc(&kernel.name),
            px(x),
            px(y),
            px(BOX_W),
            px(h),
            px(x + 6.0),
            px(y),
            px(BOX_W - 12.0),
            px(HEAD - 6.0),
            px(BOX_W),
            px(HEAD - 6.0),
            px(x + 10.0),
            px(y + 17.0),
            k + 1,
            esc(&cut(&kernel.name, 34 - kernel.kind.chars().count())),
            px(x + BOX_W - 10.0),
            px(y + 17.0),
            esc(&kernel.kind)
        );
        for (i, (label, text)) in boxes[k].iter().enumerate() {
            let ly = y + HEAD + 16.0 + LINE * i as f64;
            let _ = write!(
                s,
                "<text class=\"kline\" x=\"{}\" y=\"{}\"><tspan class=\"klabel\">{:<5}</tspan> {}</text>",
                px(x + 10.0),
                px(ly),
                esc(label),
                esc(text)
            );
        }
        s.push_str("</g>");
    }
    s.push_str("</svg>");
    s
}
