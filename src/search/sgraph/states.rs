//! Loop phases of values, as a function of the loop's map.
//!
//! A kernel of the enumerated space has at most one for-loop; the loop map
//! says which axis of each workload input it walks (`None`: the input is
//! loop-invariant). Given the loop map, every value of a candidate has a
//! [`State`], computed bottom-up by [`transition`] from its operator and
//! its operands' states. Operators whose operands cannot be combined (a
//! value read after the loop that changes every iteration, a matmul that
//! mixes the loop axis with others) have no state: no kernel computes them
//! that way. [`achievable`] runs the transition over a whole e-graph, so the
//! enumeration only ever picks e-nodes that lead to a valid kernel.

use std::collections::{BTreeMap, BTreeSet};

use egg::{Id, Language, RecExpr};

use crate::ir::BinaryOp;
use crate::verify::lang::{Red, Un};
use crate::verify::{Data, Node, TensorEGraph};

/// Where and when a value is computed in a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// In every iteration. `Some(a)`: the value spans the loop-partitioned
    /// axis, `a` counted from the last axis (the value changes between
    /// iterations); `None`: loop-invariant.
    Loop(Option<u8>),
    /// Online softmax, in every iteration: the *running* value of a
    /// maximum over the loop axis (it changes as the loop goes on).
    Running,
    /// `h - r`: a loop value minus the running maximum (axis as for
    /// `Loop`).
    Diff(Option<u8>),
    /// Shift-covariant: `exp` of a `Diff`, scaled, summed or multiplied by
    /// loop values: when the running maximum grows by `δ` the value scales
    /// by `exp(-δ)`, which a rescaled sum undoes.
    Cov(Option<u8>),
    /// A reduction over the loop axis of this iteration's tile: it is
    /// accumulated (`Sum`, or `Max`) and its readers see the total, after
    /// the loop.
    Partial(Red),
    /// A sum over the loop axis of a `Cov` value: accumulated with
    /// rescaling by the running maximum's change
    /// ([`crate::ugraph::AccumKind::RescaledSum`]); read after the loop.
    Rescaled,
    /// Once, after the loop.
    Post,
}

impl State {
    /// What readers see: a partial result is read as its accumulated total.
    pub fn settled(self) -> State {
        match self {
            State::Partial(_) | State::Rescaled => State::Post,
            s => s,
        }
    }

    /// Whether the value is accumulated over the loop.
    pub fn accumulates(self) -> bool {
        matches!(self, State::Partial(_) | State::Rescaled)
    }
}

/// Per workload input (by name), the axis the for-loop walks.
pub type LoopMap = BTreeMap<String, Option<usize>>;

/// The tensor children of `node` (attribute children dropped).
pub fn tensor_children(node: &Node) -> Vec<Id> {
    match node {
        Node::Unary(_, [a]) => vec![*a],
        Node::Binary(_, [a, b]) | Node::Matmul([a, b]) => vec![*a, *b],
        Node::Reduce(_, [_, x]) | Node::Permute([_, x]) | Node::Reshape([_, x]) => vec![*x],
        _ => vec![],
    }
}

fn rank(d: &Data) -> usize {
    d.tensor().map_or(0, |t| t.shape.len())
}

/// The state of `node` from its tensor children's states (in
/// [`tensor_children`] order), or `None` when no block computes it so.
/// `data` gives any child's e-class data (attributes, shapes).
pub fn transition<'a>(
    node: &Node,
    data: impl Fn(Id) -> &'a Data,
    states: &[State],
    loops: &LoopMap,
) -> Option<State> {
    // Online softmax: the lattice of `crate::ugraph::online` (running
    // maximum r, `h - r`, shift-covariant values), so only kernels whose
    // rescaled sums are exact are generated. Covariance is per row; the
    // built block is checked again ([`crate::ugraph::online::covariance`]).
    let online = |s: &State| matches!(s, State::Running | State::Diff(_) | State::Cov(_));
    if !states.iter().any(online) {
        return plain_transition(node, data, states, loops);
    }
    let plain = |s: &State| match s {
        State::Diff(a) | State::Cov(a) => State::Loop(*a),
        s => *s,
    };
    let data = &data;
    let cov = |states: &[State]| {
        let p: Vec<State> = states.iter().map(plain).collect();
        match plain_transition(node, data, &p, loops)? {
            State::Loop(a) => Some(State::Cov(a)),
            State::Partial(Red::Sum) => Some(State::Rescaled),
            _ => None,
        }
    };
    let is_cov = |s: &State| matches!(s, State::Cov(_));
    let is_loop = |s: &State| matches!(s, State::Loop(_));
    match (node, states) {
        (Node::Binary(BinaryOp::Sub, _), [h @ State::Loop(_), State::Running]) => {
            match plain_transition(node, data, &[*h, State::Loop(None)], loops)? {
                State::Loop(a) => Some(State::Diff(a)),
                _ => None,
            }
        }
        (Node::Unary(Un::Exp, _), [State::Diff(a)]) => Some(State::Cov(*a)),
        (Node::Unary(Un::Neg, _), [State::Cov(_)]) => cov(states),
        (Node::Binary(BinaryOp::Mul, _), [x, y])
            if (is_cov(x) && is_loop(y)) || (is_loop(x) && is_cov(y)) =>
        {
            cov(states)
        }
        (Node::Binary(BinaryOp::Div, _), [x, y]) if is_cov(x) && is_loop(y) => cov(states),
        (Node::Binary(BinaryOp::Add | BinaryOp::Sub, _), [x, y]) if is_cov(x) && is_cov(y) => {
            cov(states)
        }
        (Node::Matmul(_), [x, y]) if (is_cov(x) && is_loop(y)) || (is_loop(x) && is_cov(y)) => {
            cov(states)
        }
        (Node::Reduce(Red::Sum, _) | Node::Permute(_), [State::Cov(_)]) => cov(states),
        _ => None,
    }
}

/// The running maximum: a `max` over the loop axis of a plain loop value,
/// read inside the loop. `Some` when `node` with its children in `states`
/// can be one (it also settles to `Partial(Max)`).
pub fn running_max<'a>(
    node: &Node,
    data: impl Fn(Id) -> &'a Data,
    states: &[State],
    loops: &LoopMap,
) -> Option<State> {
    match (node, plain_transition(node, data, states, loops)?) {
        (Node::Reduce(Red::Max, _), State::Partial(Red::Max)) => Some(State::Running),
        _ => None,
    }
}

fn plain_transition<'a>(
    node: &Node,
    data: impl Fn(Id) -> &'a Data,
    states: &[State],
    loops: &LoopMap,
) -> Option<State> {
    let s = |i: usize| states.get(i).copied().map(State::settled);
    match node {
        Node::Input(leaf) => {
            let axis = loops.get(&leaf.name).copied().flatten();
            match axis {
                Some(a) => {
                    let from_end = leaf.shape.len().checked_sub(1 + a)?;
                    Some(State::Loop(Some(u8::try_from(from_end).ok()?)))
                }
                None => Some(State::Loop(None)),
            }
        }
        Node::Lit(_) | Node::Dim(_) => Some(State::Loop(None)),
        Node::Num(_) | Node::Perm(_) | Node::Shape(_) => None,
        Node::Unary(..) => s(0),
        Node::Binary(..) => match (s(0)?, s(1)?) {
            (State::Post, State::Post)
            | (State::Post, State::Loop(None))
            | (State::Loop(None), State::Post) => Some(State::Post),
            (State::Loop(a), State::Loop(b)) => match (a, b) {
                (Some(x), Some(y)) if x != y => None,
                _ => Some(State::Loop(a.or(b))),
            },
            _ => None,
        },
        Node::Matmul(_) => match (s(0)?, s(1)?) {
            (State::Post, State::Post)
            | (State::Post, State::Loop(None))
            | (State::Loop(None), State::Post) => Some(State::Post),
            (State::Loop(Some(0)), State::Loop(Some(1))) => Some(State::Partial(Red::Sum)),
            (State::Loop(None), State::Loop(None)) => Some(State::Loop(None)),
            (State::Loop(None), State::Loop(Some(0))) => Some(State::Loop(Some(0))),
            (State::Loop(Some(1)), State::Loop(None)) => Some(State::Loop(Some(1))),
            _ => None,
        },
        Node::Reduce(red, [axis, x]) => {
            let Data::Int(axis) = data(*axis) else {
                return None;
            };
            let r = rank(data(*x));
            let from_end = r.checked_sub(1 + usize::try_from(*axis).ok()?)?;
            match s(0)? {
                State::Loop(Some(l)) if usize::from(l) == from_end => Some(State::Partial(*red)),
                other => Some(other),
            }
        }
        Node::Permute([perm, _]) => {
            let Data::Perm(perm) = data(*perm) else {
                return None;
            };
            match s(0)? {
                State::Loop(Some(l)) => {
                    let r = perm.len();
                    let old = r.checked_sub(1 + usize::from(l))?;
                    let new = perm.iter().position(|&p| p == old)?;
                    Some(State::Loop(Some(u8::try_from(r - 1 - new).ok()?)))
                }
                other => Some(other),
            }
        }
        // A reshape is a free view of an input, or of an output; the loop
        // axis never goes through one.
        Node::Reshape(_) => match s(0)? {
            State::Loop(Some(_)) => None,
            other => Some(other),
        },
    }
}

/// The e-classes the program itself exponentiates. Rewrites such as
/// `exp(a - b) = exp(a) / exp(b)` are exact but overflow in floating
/// point (softmax subtracts the row maximum for that reason), so a
/// candidate may only exponentiate these classes ([`stable`]).
pub fn exp_args(eg: &TensorEGraph, exprs: &[&RecExpr<Node>]) -> BTreeSet<Id> {
    let mut out = BTreeSet::new();
    for e in exprs {
        let mut ids: Vec<Option<Id>> = Vec::with_capacity(e.as_ref().len());
        for n in e.as_ref() {
            let mapped = n
                .children()
                .iter()
                .map(|c| ids[usize::from(*c)])
                .collect::<Option<Vec<Id>>>();
            let id = mapped.and_then(|kids| {
                let mut it = kids.into_iter();
                eg.lookup(n.clone().map_children(|_| it.next().unwrap_or(Id::from(0))))
            });
            if let (Node::Unary(Un::Exp, [a]), Some(_)) = (n, id)
                && let Some(a) = ids[usize::from(*a)]
            {
                out.insert(eg.find(a));
            }
            ids.push(id);
        }
    }
    out
}

/// Whether a candidate may use `node`: not an exponential of something
/// the program does not exponentiate (see [`exp_args`]).
pub fn stable(eg: &TensorEGraph, node: &Node, exp_args: &BTreeSet<Id>) -> bool {
    match node {
        Node::Unary(Un::Exp, [a]) => exp_args.contains(&eg.find(*a)),
        _ => true,
    }
}

/// Whether a class holds a constant (a rank-0 value of the dims alone).
pub fn is_constant(d: &Data) -> bool {
    d.tensor()
        .is_some_and(|t| t.dtype.is_none() && t.shape.is_empty())
}

/// Every state each e-class can be computed in, with the least number of
/// block operators that achieves it (a tree count: a lower bound with
/// sharing), by a fixpoint over all e-nodes. Constants are one operator.
/// Only [`stable`] e-nodes count.
pub fn achievable(
    eg: &TensorEGraph,
    loops: &LoopMap,
    exp_args: &BTreeSet<Id>,
) -> BTreeMap<(Id, State), u32> {
    let mut best: BTreeMap<(Id, State), u32> = BTreeMap::new();
    let mut classes: Vec<Id> = eg.classes().map(|c| c.id).collect();
    classes.sort();
    for &c in &classes {
        if is_constant(&eg[c].data) {
            best.insert((c, State::Loop(None)), 1);
        }
    }
    let data = |id: Id| &eg[id].data;
    loop {
        let mut changed = false;
        for &c in &classes {
            if is_constant(&eg[c].data) {
                continue;
            }
            for node in eg[c].nodes.iter().filter(|n| stable(eg, n, exp_args)) {
                for (state, cost) in node_states(eg, node, &best, loops, &data) {
                    let slot = best.entry((c, state)).or_insert(u32::MAX);
                    if cost < *slot {
                        *slot = cost;
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            return best;
        }
    }
}

/// Every way `node` can be computed from its tensor children in their
/// achievable states: the children's states, the resulting state and the
/// cost (1 + the children's cheapest costs), in combination order.
pub fn operand_fits<'a>(
    eg: &TensorEGraph,
    node: &Node,
    best: &BTreeMap<(Id, State), u32>,
    loops: &LoopMap,
    data: &impl Fn(Id) -> &'a Data,
) -> Vec<(Vec<State>, State, u32)> {
    let options: Vec<Vec<(State, u32)>> = tensor_children(node)
        .iter()
        .map(|k| {
            let k = eg.find(*k);
            best.range((k, State::Loop(None))..=(k, State::Post))
                .map(|((_, s), c)| (*s, *c))
                .collect()
        })
        .collect();
    let mut out = Vec::new();
    for combo in combinations(&options) {
        let states: Vec<State> = combo.iter().map(|(s, _)| *s).collect();
        let cost = 1 + combo
            .iter()
            .map(|(_, c)| *c)
            .fold(0u32, u32::saturating_add);
        if let Some(s) = transition(node, data, &states, loops) {
            out.push((states.clone(), s, cost));
        }
        // The running maximum costs an accumulator and its running read.
        if let Some(s) = running_max(node, data, &states, loops) {
            out.push((states, s, cost.saturating_add(2)));
        }
    }
    out
}

/// The states `node` can have with its children in any of their current
/// states, with the cheapest cost of each.
fn node_states<'a>(
    eg: &TensorEGraph,
    node: &Node,
    best: &BTreeMap<(Id, State), u32>,
    loops: &LoopMap,
    data: &impl Fn(Id) -> &'a Data,
) -> Vec<(State, u32)> {
    let mut out: BTreeMap<State, u32> = BTreeMap::new();
    for (_, s, cost) in operand_fits(eg, node, best, loops, data) {
        let slot = out.entry(s).or_insert(u32::MAX);
        *slot = (*slot).min(cost);
    }
    out.into_iter().collect()
}

/// The cartesian product of `options` (one empty combination for none).
pub fn combinations<T: Copy>(options: &[Vec<T>]) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = vec![vec![]];
    for o in options {
        let mut next = Vec::with_capacity(out.len() * o.len());
        for prefix in &out {
            for x in o {
                let mut p = prefix.clone();
                p.push(*x);
                next.push(p);
            }
        }
        out = next;
    }
    out
}

/// The states a class is read in when it is a kernel output: settled
/// after the loop when there is one, loop values (run once) otherwise.
pub fn output_states(has_loop: bool) -> BTreeSet<State> {
    if has_loop {
        [
            State::Post,
            State::Partial(Red::Sum),
            State::Partial(Red::Max),
            State::Rescaled,
        ]
        .into_iter()
        .collect()
    } else {
        [State::Loop(None)].into_iter().collect()
    }
}
