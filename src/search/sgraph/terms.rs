//! Depth-first enumeration of the terms the saturated e-graph holds for
//! the program, one kernel's worth each.
//!
//! A *goal* is an e-class in a loop [`State`]. A term picks, for every goal
//! it reaches, one e-node of the class whose operands can be in states
//! that give the goal's state (so every operator of a term is found in the
//! target's e-graph, and every term is a valid kernel body for the loop
//! map), then the operands' goals in turn. Goals reached twice share their
//! choice: terms are DAGs. Each goal is decided once, at a fixed point of
//! the walk, with distinct alternatives, so every DAG is generated exactly
//! once; commuted operands (`a+b`, `b+a`: both are in a saturated e-graph)
//! are generated in one order only. Choices are tried cheapest first (the
//! operator count of [`super::states::achievable`]), so the first terms
//! are the smallest. The walk mutates one selection and undoes each step:
//! forking a search state costs nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use egg::{Id, Language, RecExpr};

use super::states::{LoopMap, State, is_constant, operand_fits, stable, tensor_children};
use crate::ir::BinaryOp;
use crate::verify::{Data, Node, TensorEGraph};

pub type Goal = (Id, State);

/// One node of a term: an e-node whose children index earlier term nodes.
#[derive(Clone, Debug, PartialEq)]
pub struct TermNode {
    pub node: Node,
    /// `None` for attributes (axes, permutations, shapes).
    pub state: Option<State>,
}

/// A candidate kernel body: nodes in topological order, one root per
/// workload output.
#[derive(Clone, Debug, PartialEq)]
pub struct Term {
    pub nodes: Vec<TermNode>,
    pub roots: Vec<usize>,
}

impl Term {
    /// The term as one expression of the verifier's language (every root
    /// is a node of it), e.g. for [`crate::verify::to_graph`].
    pub fn expr(&self) -> RecExpr<Node> {
        RecExpr::from(
            self.nodes
                .iter()
                .map(|n| n.node.clone())
                .collect::<Vec<_>>(),
        )
    }

    /// The s-expression of root `j` (for reports and tests).
    pub fn sexpr(&self, j: usize) -> String {
        fn go(t: &Term, i: usize, out: &mut String) {
            let n = &t.nodes[i].node;
            let kids = n.children();
            if kids.is_empty() {
                out.push_str(&n.op_name());
                return;
            }
            out.push('(');
            out.push_str(&n.op_name());
            for k in kids {
                out.push(' ');
                go(t, usize::from(*k), out);
            }
            out.push(')');
        }
        let mut s = String::new();
        if let Some(&r) = self.roots.get(j) {
            go(self, r, &mut s);
        }
        s
    }
}

/// Bounds of one walk.
#[derive(Clone, Copy, Debug)]
pub struct WalkLimits {
    /// Complete terms to produce.
    pub terms: usize,
    /// Choices to try (each step of the walk counts one).
    pub steps: usize,
    /// Distinct goals (block operators, roughly) in a term.
    pub ops: usize,
    /// For-loop accumulators (partial reductions) in a term: each holds a
    /// tile in registers or shared memory across the loop.
    pub accumulators: usize,
}

struct Choice {
    node: Node,
    kids: Vec<Goal>,
}

/// The walk over one loop map from one set of root goals.
pub struct Walk<'a> {
    eg: &'a TensorEGraph,
    loops: &'a LoopMap,
    best: &'a BTreeMap<Goal, u32>,
    constants: &'a BTreeMap<Id, RecExpr<Node>>,
    exp_args: &'a BTreeSet<Id>,
    limits: WalkLimits,
    choices: HashMap<Goal, std::rc::Rc<Vec<Choice>>>,
    steps: usize,
    /// Accumulators in the current selection.
    accumulators: usize,
    pub terms: Vec<Term>,
    pub pruned: BTreeMap<&'static str, usize>,
    pub stopped: bool,
}

impl<'a> Walk<'a> {
    pub fn new(
        eg: &'a TensorEGraph,
        loops: &'a LoopMap,
        best: &'a BTreeMap<Goal, u32>,
        constants: &'a BTreeMap<Id, RecExpr<Node>>,
        exp_args: &'a BTreeSet<Id>,
        limits: WalkLimits,
    ) -> Self {
        Walk {
            eg,
            loops,
            best,
            constants,
            exp_args,
            limits,
            choices: HashMap::new(),
            steps: 0,
            accumulators: 0,
            terms: Vec::new(),
            pruned: BTreeMap::new(),
            stopped: false,
        }
    }

    fn prune(&mut self, why: &'static str, n: usize) {
        if n > 0 {
            *self.pruned.entry(why).or_default() += n;
        }
    }

    fn constant(&self, c: Id) -> bool {
        is_constant(&self.eg[c].data)
    }

    /// The alternatives of a goal, cheapest first.
    fn choices_of(&mut self, g: Goal) -> std::rc::Rc<Vec<Choice>> {
        if let Some(c) = self.choices.get(&g) {
            return c.clone();
        }
        let (class, want) = g;
        let eg = self.eg;
        let data = |id: Id| &eg[id].data;
        let mut found: Vec<(u32, usize, Choice)> = Vec::new();
        let (mut phase, mut symmetric, mut unstable) = (0, 0, 0);
        for (i, node) in eg[class].nodes.iter().enumerate() {
            if !stable(eg, node, self.exp_args) {
                unstable += 1;
                continue;
            }
            if let Node::Binary(op @ (BinaryOp::Add | BinaryOp::Mul), [a, b]) = node
                && a > b
                && eg[class].nodes.contains(&Node::Binary(*op, [*b, *a]))
            {
                symmetric += 1;
                continue;
            }
            let kids = tensor_children(node);
            let before = found.len();
            for (states, s, cost) in operand_fits(eg, node, self.best, self.loops, &data) {
                if s == want {
                    let goals = kids
                        .iter()
                        .zip(&states)
                        .map(|(k, s)| (eg.find(*k), *s))
                        .collect();
                    found.push((
                        cost,
                        i,
                        Choice {
                            node: node.clone(),
                            kids: goals,
                        },
                    ));
                }
            }
            if found.len() == before {
                phase += 1;
            }
        }
        self.prune("symmetric (commuted operands)", symmetric);
        self.prune(
            "numerical safety (exp of what the program does not exponentiate)",
            unstable,
        );
        self.prune("loop phase (no operand states fit)", phase);
        found.sort_by_key(|(cost, i, _)| (*cost, *i));
        let out = std::rc::Rc::new(found.into_iter().map(|(_, _, c)| c).collect::<Vec<_>>());
        self.choices.insert(g, out.clone());
        out
    }

    fn done(&self) -> bool {
        self.terms.len() >= self.limits.terms || self.steps >= self.limits.steps
    }

    /// Whether some goal in `from` reaches `target` through the selection.
    fn reaches(
        &self,
        sel: &BTreeMap<Goal, (std::rc::Rc<Vec<Choice>>, usize)>,
        from: &[Goal],
        target: Goal,
    ) -> bool {
        let mut stack: Vec<Goal> = from.to_vec();
        let mut seen: Vec<Goal> = Vec::new();
        while let Some(g) = stack.pop() {
            if g == target {
                return true;
            }
            if seen.contains(&g) {
                continue;
            }
            seen.push(g);
            if let Some((cs, i)) = sel.get(&g) {
                stack.extend(cs[*i].kids.iter().copied());
            }
        }
        false
    }

    /// Enumerate from `roots` (one goal per output).
    pub fn run(&mut self, roots: &[Goal]) {
        let mut sel = BTreeMap::new();
        let mut pending: Vec<Goal> = roots.iter().rev().copied().collect();
        self.dfs(&mut sel, &mut pending, roots);
        if self.done() {
            self.stopped = true;
        }
    }

    fn dfs(
        &mut self,
        sel: &mut BTreeMap<Goal, (std::rc::Rc<Vec<Choice>>, usize)>,
        pending: &mut Vec<Goal>,
        roots: &[Goal],
    ) {
        if self.done() {
            return;
        }
        let Some(g) = pending.pop() else {
            let t = self.emit(sel, roots);
            self.terms.push(t);
            return;
        };
        if sel.contains_key(&g) || self.constant(g.0) {
            self.dfs(sel, pending, roots);
            pending.push(g);
            return;
        }
        let choices = self.choices_of(g);
        let accumulates = g.1.accumulates();
        if accumulates && self.accumulators >= self.limits.accumulators {
            self.prune("accumulator limit", choices.len());
            pending.push(g);
            return;
        }
        self.accumulators += usize::from(accumulates);
        for i in 0..choices.len() {
            self.steps += 1;
            if sel.len() >= self.limits.ops {
                self.prune("operator limit", choices.len() - i);
                break;
            }
            if self.reaches(sel, &choices[i].kids, g) {
                self.prune("cycle", 1);
                continue;
            }
            sel.insert(g, (choices.clone(), i));
            let n = pending.len();
            for k in choices[i].kids.iter().rev() {
                if !sel.contains_key(k) {
                    pending.push(*k);
                }
            }
            self.dfs(sel, pending, roots);
            pending.truncate(n);
            sel.remove(&g);
            if self.done() {
                break;
            }
        }
        self.accumulators -= usize::from(accumulates);
        pending.push(g);
    }

    /// The selected DAG as a term.
    fn emit(
        &self,
        sel: &BTreeMap<Goal, (std::rc::Rc<Vec<Choice>>, usize)>,
        roots: &[Goal],
    ) -> Term {
        let mut t = Term {
            nodes: Vec::new(),
            roots: Vec::new(),
        };
        let mut memo: HashMap<Goal, usize> = HashMap::new();
        let mut attrs: HashMap<Id, usize> = HashMap::new();
        for &r in roots {
            let i = self.emit_goal(sel, r, &mut t, &mut memo, &mut attrs);
            t.roots.push(i);
        }
        t
    }

    fn emit_goal(
        &self,
        sel: &BTreeMap<Goal, (std::rc::Rc<Vec<Choice>>, usize)>,
        g: Goal,
        t: &mut Term,
        memo: &mut HashMap<Goal, usize>,
        attrs: &mut HashMap<Id, usize>,
    ) -> usize {
        if let Some(&i) = memo.get(&g) {
            return i;
        }
        let i = if let Some(expr) = self.constants.get(&g.0) {
            // A constant: its smallest term, as loop-invariant leaves.
            let base = t.nodes.len();
            for n in expr.as_ref() {
                let n = n.clone().map_children(|c| Id::from(base + usize::from(c)));
                t.nodes.push(TermNode {
                    node: n,
                    state: Some(State::Loop(None)),
                });
            }
            t.nodes.len() - 1
        } else {
            let (cs, k) = &sel[&g];
            let choice = &cs[*k];
            let mut kids = choice.kids.iter();
            let mut mapped: Vec<Id> = Vec::new();
            for c in choice.node.children() {
                let idx = match &self.eg[*c].data {
                    Data::Int(_) | Data::Perm(_) | Data::Shape(_) => {
                        let c = self.eg.find(*c);
                        match attrs.get(&c) {
                            Some(&a) => a,
                            None => {
                                t.nodes.push(TermNode {
                                    node: self.eg[c].nodes[0].clone(),
                                    state: None,
                                });
                                attrs.insert(c, t.nodes.len() - 1);
                                t.nodes.len() - 1
                            }
                        }
                    }
                    _ => match kids.next() {
                        Some(kg) => self.emit_goal(sel, *kg, t, memo, attrs),
                        None => 0,
                    },
                };
                mapped.push(Id::from(idx));
            }
            let mut it = mapped.into_iter();
            let node = choice
                .node
                .clone()
                .map_children(|_| it.next().unwrap_or(Id::from(0)));
            t.nodes.push(TermNode {
                node,
                state: Some(g.1),
            });
            t.nodes.len() - 1
        };
        memo.insert(g, i);
        i
    }
}
