//! The numeric half of the verifier: evaluate both sides with the reference
//! interpreter in f64 on seeded random inputs at small concrete dims, and
//! report a point where they differ. Cheap, and a real disproof; the
//! e-graph half gives proofs.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::ir::{DimBindings, DimDecl, DimExpr, DimValues, Graph, Op};
use crate::reference::{self, Comparison, Precision, Tensor, compare, shapes_at};

/// Relative L2 error above which two results differ. Reassociation in f64
/// stays orders of magnitude below it.
pub const REL_L2_THRESHOLD: f64 = 1e-6;

/// Largest tensor (elements) and total of all tensors a numeric check
/// evaluates at one point; points beyond are skipped.
const MAX_TENSOR: usize = 1 << 24;
const MAX_TOTAL: usize = 1 << 26;

/// A point where the two sides differ.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Counterexample {
    pub dims: DimBindings,
    pub seed: u64,
    pub comparison: Comparison,
}

impl Counterexample {
    /// `d=5 n=3` (by name).
    pub fn dims_string(&self) -> String {
        self.dims_string_in(&[])
    }

    /// `n=3 d=5`: the dims named in `order` first, in that order.
    pub fn dims_string_in(&self, order: &[&str]) -> String {
        let mut v: Vec<String> = order
            .iter()
            .filter_map(|k| self.dims.get(*k).map(|x| format!("{k}={x}")))
            .collect();
        v.extend(
            self.dims
                .iter()
                .filter(|(k, _)| !order.contains(&k.as_str()))
                .map(|(k, x)| format!("{k}={x}")),
        );
        v.join(" ")
    }
}

/// Everything a numeric check did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NumericCheck {
    /// (point, seed) pairs evaluated.
    pub evaluated: usize,
    /// The largest error seen.
    pub worst: Option<Comparison>,
    pub counterexample: Option<Counterexample>,
}

/// Symbolic dims a graph uses (shapes and constants), sorted.
pub fn graph_dims(g: &Graph) -> Vec<String> {
    let mut out = Vec::new();
    for n in &g.nodes {
        for d in &n.shape {
            out.extend(d.symbols());
        }
        if let Op::Const(s) = &n.op {
            s.dims(&mut out);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Small candidate values for one dim, preferring small values that do not
/// divide each other (3, 5, 2, 7, ...), within its declared values.
fn candidates(decl: Option<&DimValues>) -> Vec<i64> {
    const PREFERRED: [i64; 10] = [3, 5, 2, 7, 4, 6, 1, 9, 11, 8];
    match decl {
        None => PREFERRED.to_vec(),
        Some(DimValues::List(l)) => l.iter().take(4).copied().collect(),
        Some(v @ DimValues::Range { lo, hi }) => {
            let mut c: Vec<i64> = PREFERRED.into_iter().filter(|x| v.contains(*x)).collect();
            if c.is_empty() {
                c = (*lo..=*hi).take(3).collect();
            }
            c
        }
    }
}

/// Concrete points to test: a few assignments of small values to every dim
/// both graphs use, each valid for both graphs (every dim ≥ 1) and small
/// enough to evaluate quickly.
pub fn candidate_points(graphs: &[&Graph], decls: &[DimDecl]) -> Vec<DimBindings> {
    let mut names: Vec<String> = graphs.iter().flat_map(|g| graph_dims(g)).collect();
    names.sort();
    names.dedup();
    // Declared dims first, in declaration order (`n=3 d=5`).
    names.sort_by_key(|n| {
        decls
            .iter()
            .position(|d| &d.name == n)
            .unwrap_or(usize::MAX)
    });
    let cands: Vec<Vec<i64>> = names
        .iter()
        .map(|n| candidates(decls.iter().find(|d| &d.name == n).map(|d| &d.values)))
        .collect();
    let mut points: Vec<DimBindings> = Vec::new();
    for t in 0..4 {
        let mut p = DimBindings::new();
        for (i, (n, c)) in names.iter().zip(&cands).enumerate() {
            if c.is_empty() {
                return vec![];
            }
            p.insert(n.clone(), c[(i + t) % c.len()]);
        }
        if points.contains(&p) {
            continue;
        }
        let fits = graphs.iter().all(|g| match shapes_at(g, &p) {
            Ok(shapes) => {
                let sizes: Vec<usize> = shapes.iter().map(|s| s.iter().product()).collect();
                sizes.iter().all(|&s| s <= MAX_TENSOR) && sizes.iter().sum::<usize>() <= MAX_TOTAL
            }
            Err(_) => false,
        });
        if fits {
            points.push(p);
        }
    }
    points
}

fn name_seed(name: &str, seed: u64) -> u64 {
    // FNV-1a: stable across runs and platforms.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Standard normal inputs for every input of the graphs, by name (the same
/// name gets the same values in every graph).
pub fn random_inputs_by_name(
    graphs: &[&Graph],
    dims: &DimBindings,
    seed: u64,
) -> Result<BTreeMap<String, Tensor>, String> {
    let mut out: BTreeMap<String, Tensor> = BTreeMap::new();
    let mut types: BTreeMap<String, Vec<DimExpr>> = BTreeMap::new();
    for g in graphs {
        for i in &g.inputs {
            if let Some(s) = types.get(&i.name) {
                if s != &i.shape {
                    return Err(format!("input `{}` has two different shapes", i.name));
                }
                continue;
            }
            let shape = i
                .shape
                .iter()
                .map(|d| {
                    let v = d.eval(dims).map_err(|e| e.to_string())?;
                    usize::try_from(v)
                        .ok()
                        .filter(|&u| u >= 1)
                        .ok_or_else(|| format!("dim {d} = {v}"))
                })
                .collect::<Result<Vec<usize>, String>>()?;
            types.insert(i.name.clone(), i.shape.clone());
            out.insert(
                i.name.clone(),
                reference::random::normal(shape, 1.0, name_seed(&i.name, seed), |v| v),
            );
        }
    }
    Ok(out)
}

/// The first output of `g` at `dims`, in f64, with inputs bound by name.
pub fn eval_by_name(
    g: &Graph,
    dims: &DimBindings,
    inputs: &BTreeMap<String, Tensor>,
) -> Result<Tensor, String> {
    let args: Vec<Tensor> = g
        .inputs
        .iter()
        .map(|i| {
            inputs
                .get(&i.name)
                .cloned()
                .ok_or_else(|| format!("no value for input `{}`", i.name))
        })
        .collect::<Result<_, _>>()?;
    let mut outs = reference::eval(g, dims, &args, Precision::F64).map_err(|e| e.to_string())?;
    if outs.is_empty() {
        return Err("the graph has no output".into());
    }
    Ok(outs.swap_remove(0))
}

/// Compare the first outputs of `lhs` and `rhs` at every candidate point
/// (see [`candidate_points`]) for every seed.
pub fn numeric_check(
    lhs: &Graph,
    rhs: &Graph,
    dims: &[DimDecl],
    seeds: &[u64],
    threshold: f64,
) -> NumericCheck {
    let mut check = NumericCheck {
        evaluated: 0,
        worst: None,
        counterexample: None,
    };
    for p in candidate_points(&[lhs, rhs], dims) {
        for &seed in seeds {
            let Ok(inputs) = random_inputs_by_name(&[lhs, rhs], &p, seed) else {
                continue;
            };
            let (Ok(l), Ok(r)) = (
                eval_by_name(lhs, &p, &inputs),
                eval_by_name(rhs, &p, &inputs),
            ) else {
                continue;
            };
            check.evaluated += 1;
            let cmp = compare(&r, &l).unwrap_or(Comparison {
                rel_l2: f64::INFINITY,
                max_abs: f64::INFINITY,
                non_finite_mismatches: 0,
            });
            let worse = check.worst.as_ref().is_none_or(|w| {
                (cmp.non_finite_mismatches, cmp.rel_l2) > (w.non_finite_mismatches, w.rel_l2)
            });
            if worse {
                check.worst = Some(cmp.clone());
            }
            if !cmp.within(threshold) {
                check.counterexample = Some(Counterexample {
                    dims: p,
                    seed,
                    comparison: cmp,
                });
                return check;
            }
        }
    }
    check
}

/// A point where `lhs` and `rhs` (their first outputs) differ by more than
/// [`REL_L2_THRESHOLD`], if one is found. Dims are chosen small (within
/// `dims` where declared there) and non-dividing; points where a shape is
/// invalid are skipped.
pub fn counterexample(
    lhs: &Graph,
    rhs: &Graph,
    dims: &[DimDecl],
    seeds: &[u64],
) -> Option<Counterexample> {
    numeric_check(lhs, rhs, dims, seeds, REL_L2_THRESHOLD).counterexample
}

/// `g` with only its output `index` (same inputs and nodes).
pub fn single_output(g: &Graph, index: usize) -> Option<Graph> {
    let out = g.outputs.get(index)?.clone();
    Some(Graph {
        inputs: g.inputs.clone(),
        nodes: g.nodes.clone(),
        outputs: vec![out],
    })
}

/// Numpy broadcasting of concrete shapes.
fn broadcast_concrete(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    (0..rank)
        .map(|i| {
            let da = (i + a.len()).checked_sub(rank).map_or(1, |j| a[j]);
            let db = (i + b.len()).checked_sub(rank).map_or(1, |j| b[j]);
            match (da, db) {
                (x, y) if x == y => Some(x),
                (1, y) => Some(y),
                (x, 1) => Some(x),
                _ => None,
            }
        })
        .collect()
}

/// The value of one e-node of the verifier's language at `dims`, from the
/// values of its tensor children (`tensor`) and the data of its attribute
/// children (`data`); inputs by name. `Ok(None)` for attribute nodes. Used
/// to check e-graphs numerically node by node.
pub fn eval_node<'a>(
    node: &super::lang::Node,
    dims: &DimBindings,
    inputs: &'a BTreeMap<String, Tensor>,
    tensor: impl Fn(egg::Id) -> Option<&'a Tensor>,
    data: impl Fn(egg::Id) -> Option<&'a super::shape::Data>,
) -> Result<Option<Tensor>, String> {
    use super::lang::Node;
    use super::shape::Data;
    use crate::reference::kernels;
    let t = |id: egg::Id| tensor(id).ok_or_else(|| "operand has no value".to_string());
    Ok(Some(match node {
        Node::Num(_) | Node::Perm(_) | Node::Shape(_) => return Ok(None),
        Node::Input(i) => inputs
            .get(&i.name)
            .cloned()
            .ok_or_else(|| format!("no value for input `{}`", i.name))?,
        Node::Lit(l) => Tensor::scalar(l.value()),
        Node::Dim(d) => Tensor::scalar(d.eval(dims).map_err(|e| e.to_string())? as f64),
        Node::Unary(u, [a]) => {
            let u = *u;
            kernels::map(t(*a)?, move |x| u.apply(x))
        }
        Node::Binary(op, [x, y]) => {
            let (a, b) = (t(*x)?, t(*y)?);
            let out = broadcast_concrete(&a.shape, &b.shape).ok_or("shapes do not broadcast")?;
            let op = *op;
            kernels::zip(a, b, &out, move |p, q| op.apply(p, q))
        }
        Node::Matmul([x, y]) => {
            let (a, b) = (t(*x)?, t(*y)?);
            let (ra, rb) = (a.shape.len(), b.shape.len());
            if ra < 2 || rb < 2 || a.shape[ra - 1] != b.shape[rb - 2] {
                return Err("bad matmul shapes".into());
            }
            let mut out = broadcast_concrete(&a.shape[..ra - 2], &b.shape[..rb - 2])
                .ok_or("batch dims do not broadcast")?;
            out.push(a.shape[ra - 2]);
            out.push(b.shape[rb - 1]);
            kernels::matmul(a, b, &out, false)
        }
        Node::Reduce(r, [ax, x]) => {
            let Some(Data::Int(k)) = data(*ax) else {
                return Err("reduce without an axis".into());
            };
            let a = t(*x)?;
            let k = usize::try_from(*k)
                .ok()
                .filter(|&k| k < a.shape.len())
                .ok_or("axis out of range")?;
            kernels::reduce(a, r.ir(), k, true, false)
        }
        Node::Permute([p, x]) => {
            let Some(Data::Perm(perm)) = data(*p) else {
                return Err("permute without a permutation".into());
            };
            kernels::permute(t(*x)?, perm)
        }
        Node::Reshape([s, x]) => {
            let Some(Data::Shape(shape)) = data(*s) else {
                return Err("reshape without a shape".into());
            };
            let shape = shape
                .iter()
                .map(|d| {
                    d.eval(dims)
                        .map_err(|e| e.to_string())
                        .and_then(|v| usize::try_from(v).map_err(|e| e.to_string()))
                })
                .collect::<Result<Vec<usize>, String>>()?;
            let a = t(*x)?;
            Tensor::new(shape, a.data.clone()).ok_or("reshape changes the element count")?
        }
    }))
}
