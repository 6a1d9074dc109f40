//! A readable form of a μGraph: tensors, then per kernel its grid, loop,
//! maps, launch parameters and block operators with their tile shapes and
//! phases. `prism explain` prints it.

use std::fmt::Write;

use super::types::*;
use super::validate::{Phase, check_block, shape_string};

fn map_string(m: &TileMap, grid: &[GridDim]) -> String {
    let mut parts = Vec::new();
    for (g, entry) in m.imap.iter().enumerate() {
        let axis = ["x", "y", "z"].get(g).copied().unwrap_or("?");
        match entry {
            None => parts.push(format!("{axis}→replicated")),
            Some(axes) => {
                let a: Vec<String> = axes.iter().map(|a| a.to_string()).collect();
                let _ = grid;
                parts.push(format!("{axis}→{}", a.join("·")));
            }
        }
    }
    let mut s = format!("view [{}]", join_dims(&m.view));
    if !parts.is_empty() {
        let _ = write!(s, "  imap {{{}}}", parts.join(", "));
    }
    if let Some(f) = m.fmap {
        let _ = write!(s, "  fmap {f}");
    }
    s
}

fn join_dims(d: &[crate::ir::DimExpr]) -> String {
    d.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn op_string(op: &BlockOp) -> String {
    match op {
        BlockOp::Input(i) => format!("input {i}"),
        BlockOp::Const(c) => format!("const {c}"),
        BlockOp::Unary(u, a) => format!("{u}(%{})", a.0),
        BlockOp::Binary(b, x, y) => format!("{b}(%{}, %{})", x.0, y.0),
        BlockOp::Permute(a, p) => format!("permute(%{}, {p:?})", a.0),
        BlockOp::Matmul(a, b) => format!("matmul(%{}, %{})", a.0, b.0),
        BlockOp::Reduce {
            op,
            input,
            axis,
            count,
        } => match count {
            Some(c) => format!("{op}(%{}, axis={axis}, count={c})", input.0),
            None => format!("{op}(%{}, axis={axis})", input.0),
        },
        BlockOp::Accum { kind, input } => match kind {
            AccumKind::Sum => format!("accum_sum(%{})", input.0),
            AccumKind::Max => format!("accum_max(%{})", input.0),
            AccumKind::RescaledSum { max } => {
                format!("accum_rescaled_sum(%{}, max=%{})", input.0, max.0)
            }
        },
        BlockOp::Running(a) => format!("running(%{})", a.0),
    }
}

/// The whole kernel graph, one line per tensor, kernel header, map and op.
pub fn describe(graph: &KernelGraph) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "(tile shapes: `n/16` is a tile of 16 along n, clipped at the edge; `1` a single index)\n"
    );
    let _ = writeln!(s, "tensors");
    for (i, t) in graph.tensors.iter().enumerate() {
        let role = match t.role {
            TensorRole::Input(j) => format!("input {j}"),
            TensorRole::Output(j) => format!("output {j}"),
            TensorRole::Intermediate => "intermediate".into(),
        };
        let ty = crate::ir::type_string(t.dtype, &t.shape);
        let _ = writeln!(s, "  T{i:<3} {:<12} {ty:<28} {role}", t.name);
    }
    for k in &graph.kernels {
        let _ = writeln!(s);
        match &k.body {
            KernelBody::Predefined(Predefined::SplitCombine { partials, output }) => {
                let _ = writeln!(
                    s,
                    "kernel {}  (predefined) T{} = sum over splits of T{}",
                    k.name, output.0, partials.0
                );
            }
            KernelBody::Block(b) => describe_block(&mut s, &k.name, b, graph),
        }
    }
    s
}

fn describe_block(s: &mut String, name: &str, b: &BlockGraph, graph: &KernelGraph) {
    let p = &b.params;
    let _ = writeln!(
        s,
        "kernel {name}  {} threads, {} stage(s), warps {}×{}{}{}",
        p.threads,
        p.stages,
        p.warps_m,
        p.warps_n,
        if p.warps_k > 1 {
            format!("×{} (k)", p.warps_k)
        } else {
            String::new()
        },
        if p.split_k > 1 {
            format!(", split-K across {} blocks", p.split_k)
        } else {
            String::new()
        }
    );
    let grid: Vec<String> = b
        .grid
        .iter()
        .enumerate()
        .map(|(g, gd)| {
            let axis = ["x", "y", "z"].get(g).copied().unwrap_or("?");
            format!("{axis}: [{}] tile {}", join_dims(&gd.extents), gd.tile)
        })
        .collect();
    let grid = if grid.is_empty() {
        "one block".to_string()
    } else {
        grid.join("   ")
    };
    let _ = writeln!(s, "  grid   {grid}");
    if let Some(l) = &b.forloop {
        let split = match l.split {
            Some(g) => format!(
                ", split over grid {}",
                ["x", "y", "z"].get(g).copied().unwrap_or("?")
            ),
            None => String::new(),
        };
        let _ = writeln!(
            s,
            "  loop   over {} in tiles of {}{split}",
            l.extent, l.tile
        );
    }
    for (i, m) in b.inputs.iter().enumerate() {
        let t = graph.tensor(m.tensor);
        let _ = writeln!(
            s,
            "  in {i}   T{} {}  {}",
            m.tensor.0,
            t.name,
            map_string(m, &b.grid)
        );
    }
    let info = check_block(b, &graph.tensors).ok();
    for (i, op) in b.ops.iter().enumerate() {
        let (shape, phase) = match &info {
            Some(info) => (
                shape_string(&info.shapes[i]),
                match info.phases[i] {
                    Phase::Loop if b.forloop.is_some() => "in loop",
                    Phase::Loop => "",
                    Phase::Post => "after loop",
                },
            ),
            None => ("(invalid)".into(), ""),
        };
        let _ = writeln!(s, "  %{i:<3} = {:<40} {shape:<24} {phase}", op_string(op));
    }
    for o in &b.outputs {
        let t = graph.tensor(o.map.tensor);
        let _ = writeln!(
            s,
            "  out    %{} → T{} {}  {}",
            o.value.0,
            o.map.tensor.0,
            t.name,
            map_string(&o.map, &b.grid)
        );
    }
}
