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

use egg::Id;

use crate::verify::lang::Red;
use crate::verify::{Data, Node, TensorEGraph};

/// Where and when a value is computed in a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// In every iteration. `Some(a)`: the value spans the loop-partitioned
    /// axis, `a` counted from the last axis (the value changes between
    /// iterations); `None`: loop-invariant.
    Loop(Option<u8>),
    /// A reduction over the loop axis of this iteration's tile: it is
    /// accumulated (`Sum`, or `Max`) and its readers see the total, after
    /// the loop.
    Partial(Red),
    /// Once, after the loop.
    Post,
}

impl State {
    /// What readers see: a partial result is read as its accumulated total.
    pub fn settled(self) -> State {
        match self {
            State::Partial(_) => State::Post,
            s => s,
        }
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

/// Whether a class holds a constant (a rank-0 value of the dims alone).
pub fn is_constant(d: &Data) -> bool {
    d.tensor()
        .is_some_and(|t| t.dtype.is_none() && t.shape.is_empty())
}

/// Every state each e-class can be computed in, with the least number of
/// block operators that achieves it (a tree count: a lower bound with
/// sharing), by a fixpoint over all e-nodes. Constants are one operator.
pub fn achievable(eg: &TensorEGraph, loops: &LoopMap) -> BTreeMap<(Id, State), u32> {
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
            for node in &eg[c].nodes {
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
    combinations(&options)
        .into_iter()
        .filter_map(|combo| {
            let states: Vec<State> = combo.iter().map(|(s, _)| *s).collect();
            let s = transition(node, data, &states, loops)?;
            let cost = 1 + combo
                .iter()
                .map(|(_, c)| *c)
                .fold(0u32, u32::saturating_add);
            Some((states, s, cost))
        })
        .collect()
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
        ]
        .into_iter()
        .collect()
    } else {
        [State::Loop(None)].into_iter().collect()
    }
}
