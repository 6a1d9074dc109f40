//! The kernel-graph IR: a DAG of tensor operators whose dims are symbolic.
//!
//! Nodes are stored in topological order; an operator refers to its operands
//! by [`NodeId`]. [`GraphBuilder`] is the only way to add nodes: it infers
//! every shape and dtype, rejects ill-typed programs with a [`ShapeError`], and
//! hash-conses identical nodes so a subexpression written twice is computed
//! once.

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;

use super::dim::DimExpr;
use super::dtype::DType;
use super::op::{BinaryOp, ReduceOp, UnaryOp};
use super::scalar::ScalarExpr;

/// Index of a node in [`Graph::nodes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct NodeId(pub usize);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}", self.0)
    }
}

/// A primitive operator of a [`Node`], with its operands.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// The graph input with this index in [`Graph::inputs`].
    Input(usize),
    /// A rank-0 constant.
    Const(ScalarExpr),
    /// Elementwise.
    Unary(UnaryOp, NodeId),
    /// Elementwise with numpy broadcasting.
    Binary(BinaryOp, NodeId, NodeId),
    /// Batched matrix product `[.., m, k] x [.., k, n]`, batch dims broadcast.
    Matmul(NodeId, NodeId),
    /// A reduction over one axis.
    Reduce {
        /// Which reduction.
        op: ReduceOp,
        /// The operand.
        input: NodeId,
        /// The axis reduced (non-negative).
        axis: usize,
        /// Whether the axis stays, with extent 1.
        keepdim: bool,
    },
    /// Output dim `i` is input dim `perm[i]`.
    Permute(NodeId, Vec<usize>),
    /// Same elements in row-major order, new shape (the node's shape).
    Reshape(NodeId),
}

impl Op {
    /// The operand nodes, in order.
    pub fn operands(&self) -> Vec<NodeId> {
        match self {
            Op::Input(_) | Op::Const(_) => vec![],
            Op::Unary(_, a) | Op::Permute(a, _) | Op::Reshape(a) => vec![*a],
            Op::Reduce { input, .. } => vec![*input],
            Op::Binary(_, a, b) | Op::Matmul(a, b) => vec![*a, *b],
        }
    }
}

/// One operator of a [`Graph`] with its inferred type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Node {
    /// The operator and its operands.
    pub op: Op,
    /// The result's shape, symbolic.
    pub shape: Vec<DimExpr>,
    /// The result's element type.
    pub dtype: DType,
}

/// An input tensor of a [`Graph`], as declared in prism.toml's `inputs`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Input {
    /// Its name.
    pub name: String,
    /// Its element type.
    pub dtype: DType,
    /// Its shape, symbolic.
    pub shape: Vec<DimExpr>,
}

/// A named output of a [`Graph`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Output {
    /// Its name (`out` for a one-expression program).
    pub name: String,
    /// The node computing it.
    pub node: NodeId,
}

/// A tensor program: inputs, operator nodes in topological order, named outputs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Graph {
    /// The inputs, in declaration order (the launch argument order).
    pub inputs: Vec<Input>,
    /// Every node, operands before their users.
    pub nodes: Vec<Node>,
    /// The outputs, in program order.
    pub outputs: Vec<Output>,
}

impl Graph {
    /// The node `id`.
    ///
    /// # Panics
    ///
    /// When `id` is not a node of this graph.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0]
    }

    /// One line per node: `%4 = matmul(%2, %1)`.
    pub fn describe(&self, id: NodeId) -> String {
        let n = self.node(id);
        match &n.op {
            Op::Input(i) => format!("input {}", self.inputs[*i].name),
            Op::Const(c) => format!("const {c}"),
            Op::Unary(u, a) => format!("{u}({a})"),
            Op::Binary(b, x, y) => format!("{b}({x}, {y})"),
            Op::Matmul(a, b) => format!("matmul({a}, {b})"),
            Op::Reduce {
                op,
                input,
                axis,
                keepdim,
            } => {
                let kd = if *keepdim { ", keepdim" } else { "" };
                format!("{op}({input}, axis={axis}{kd})")
            }
            Op::Permute(a, p) => format!("permute({a}, {p:?})"),
            Op::Reshape(a) => format!("reshape({a})"),
        }
    }
}

/// A tensor type as prism.toml writes it: `f16[n, d]`.
///
/// ```
/// use prism::ir::{DType, DimExpr, type_string};
///
/// let shape = [DimExpr::symbol("n"), DimExpr::constant(4096)];
/// assert_eq!(type_string(DType::F16, &shape), "f16[n, 4096]");
/// ```
pub fn type_string(dtype: DType, shape: &[DimExpr]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("{dtype}[{}]", dims.join(", "))
}

/// A program that is not well typed. The front end attaches a source location.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ShapeError {
    /// The operands of a binary operator or matmul have different dtypes.
    #[error("dtype mismatch: {op} of {left} and {right}")]
    DtypeMismatch {
        /// The operator.
        op: String,
        /// The left operand's dtype.
        left: DType,
        /// The right operand's dtype.
        right: DType,
    },
    /// Two shapes do not broadcast: a dim pair is neither equal nor 1.
    #[error("shapes {left} and {right} do not broadcast: dim {left_dim} vs {right_dim}")]
    Broadcast {
        /// The left operand's type ([`type_string`]).
        left: String,
        /// The right operand's type.
        right: String,
        /// The left dim that does not match.
        left_dim: DimExpr,
        /// The right dim that does not match.
        right_dim: DimExpr,
    },
    /// A matmul operand has rank below 2.
    #[error("matmul needs operands of rank 2 or more, got {got}")]
    MatmulRank {
        /// The operand's type.
        got: String,
    },
    /// The contraction dims of a matmul differ.
    #[error("matmul contraction dims differ: {left} has k = {lk}, {right} has k = {rk}")]
    MatmulInner {
        /// The left operand's type.
        left: String,
        /// The right operand's type.
        right: String,
        /// The left operand's last dim.
        lk: DimExpr,
        /// The right operand's second-to-last dim.
        rk: DimExpr,
    },
    /// An axis outside `-rank..rank`.
    #[error("axis {axis} is out of range for a tensor of rank {rank}")]
    Axis {
        /// The axis given.
        axis: i64,
        /// The operand's rank.
        rank: usize,
    },
    /// A permutation that does not list every axis exactly once.
    #[error("permutation {perm:?} is not a permutation of 0..{rank}")]
    Permutation {
        /// The permutation given.
        perm: Vec<i64>,
        /// The operand's rank.
        rank: usize,
    },
    /// A reshape that changes the element count (symbolically).
    #[error("reshape cannot turn {from} ({from_n} elements) into [{to}] ({to_n} elements)")]
    Reshape {
        /// The operand's type.
        from: String,
        /// The new shape.
        to: String,
        /// The operand's element count.
        from_n: DimExpr,
        /// The new shape's element count.
        to_n: DimExpr,
    },
    /// A reduction of a rank-0 (scalar) operand.
    #[error("{op} needs a tensor, but its operand is rank 0")]
    RankZero {
        /// The operator.
        op: String,
    },
}

impl ShapeError {
    /// What the user can do about it.
    pub fn hint(&self) -> String {
        match self {
            ShapeError::DtypeMismatch { .. } => {
                "operands of one operator must share a dtype; declare the inputs with the same dtype".into()
            }
            ShapeError::Broadcast { .. } => {
                "dims broadcast when they are equal or one of them is the constant 1; check the input types or transpose an operand".into()
            }
            ShapeError::MatmulRank { .. } => {
                "reshape a vector into a matrix first, e.g. reshape(v, [1, k])".into()
            }
            ShapeError::MatmulInner { .. } => {
                "the last dim of the left operand must equal the second-to-last of the right; transpose one operand?".into()
            }
            ShapeError::Axis { rank, .. } => {
                format!("use an axis in -{rank}..{rank} (negative counts from the end)")
            }
            ShapeError::Permutation { rank, .. } => {
                format!("list every axis 0..{rank} exactly once")
            }
            ShapeError::Reshape { .. } => {
                "the product of the new dims must equal the product of the old ones, symbolically".into()
            }
            ShapeError::RankZero { .. } => "apply it to a tensor input or an expression over one".into(),
        }
    }
}

/// Builds a [`Graph`], inferring shapes and sharing identical nodes.
///
/// Every method that can build an ill-typed node returns a [`ShapeError`]
/// instead; node ids are only valid for the builder that returned them.
///
/// ```
/// use prism::ir::{DType, DimExpr, GraphBuilder, ReduceOp, ShapeError, UnaryOp};
///
/// let (n, d) = (DimExpr::symbol("n"), DimExpr::symbol("d"));
/// let mut b = GraphBuilder::new();
/// let x = b.input("x", DType::F16, vec![n.clone(), d.clone()]);
/// let w = b.input("w", DType::F16, vec![d.clone(), DimExpr::constant(64)]);
/// let y = b.matmul(x, w)?;
/// assert_eq!(b.shape(y), [n.clone(), DimExpr::constant(64)]);
/// let s = b.reduce(ReduceOp::Sum, y, -1, true)?;
/// let e = b.unary(UnaryOp::Exp, s);
/// assert_eq!(b.unary(UnaryOp::Exp, s), e); // hash-consed: built once
/// b.output("out", e);
///
/// // x @ x is ill-typed unless n = d: refused with a ShapeError.
/// assert!(matches!(b.matmul(x, x), Err(ShapeError::MatmulInner { .. })));
///
/// let g = b.finish();
/// assert_eq!(g.inputs.len(), 2);
/// assert_eq!(g.describe(g.outputs[0].node), "exp(%3)");
/// # Ok::<(), ShapeError>(())
/// ```
#[derive(Default)]
pub struct GraphBuilder {
    graph: Graph,
    memo: HashMap<Node, NodeId>,
}

impl GraphBuilder {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// The graph so far.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The shape of node `id`.
    pub fn shape(&self, id: NodeId) -> &[DimExpr] {
        &self.graph.nodes[id.0].shape
    }

    /// The dtype of node `id`.
    pub fn dtype(&self, id: NodeId) -> DType {
        self.graph.nodes[id.0].dtype
    }

    fn push(&mut self, node: Node) -> NodeId {
        if let Some(id) = self.memo.get(&node) {
            return *id;
        }
        let id = NodeId(self.graph.nodes.len());
        self.memo.insert(node.clone(), id);
        self.graph.nodes.push(node);
        id
    }

    fn type_of(&self, id: NodeId) -> String {
        type_string(self.dtype(id), self.shape(id))
    }

    /// A new input (the next in [`Graph::inputs`]) and its node.
    pub fn input(&mut self, name: &str, dtype: DType, shape: Vec<DimExpr>) -> NodeId {
        let index = self.graph.inputs.len();
        self.graph.inputs.push(Input {
            name: name.to_string(),
            dtype,
            shape: shape.clone(),
        });
        self.push(Node {
            op: Op::Input(index),
            shape,
            dtype,
        })
    }

    /// A rank-0 constant.
    pub fn constant(&mut self, value: ScalarExpr, dtype: DType) -> NodeId {
        self.push(Node {
            op: Op::Const(value),
            shape: vec![],
            dtype,
        })
    }

    /// `op(a)`, elementwise (always well typed).
    pub fn unary(&mut self, op: UnaryOp, a: NodeId) -> NodeId {
        let (shape, dtype) = (self.shape(a).to_vec(), self.dtype(a));
        self.push(Node {
            op: Op::Unary(op, a),
            shape,
            dtype,
        })
    }

    fn same_dtype(&self, op: &str, a: NodeId, b: NodeId) -> Result<DType, ShapeError> {
        let (l, r) = (self.dtype(a), self.dtype(b));
        if l != r {
            return Err(ShapeError::DtypeMismatch {
                op: op.to_string(),
                left: l,
                right: r,
            });
        }
        Ok(l)
    }

    /// Numpy broadcasting of two shapes, aligned at the last dim.
    fn broadcast(
        &self,
        a: NodeId,
        b: NodeId,
        sa: &[DimExpr],
        sb: &[DimExpr],
    ) -> Result<Vec<DimExpr>, ShapeError> {
        let rank = sa.len().max(sb.len());
        let one = DimExpr::constant(1);
        let mut out = Vec::with_capacity(rank);
        for i in 0..rank {
            let da = if i + sa.len() >= rank {
                &sa[i + sa.len() - rank]
            } else {
                &one
            };
            let db = if i + sb.len() >= rank {
                &sb[i + sb.len() - rank]
            } else {
                &one
            };
            let d = if da == db || db.is_one() {
                da.clone()
            } else if da.is_one() {
                db.clone()
            } else {
                return Err(ShapeError::Broadcast {
                    left: self.type_of(a),
                    right: self.type_of(b),
                    left_dim: da.clone(),
                    right_dim: db.clone(),
                });
            };
            out.push(d);
        }
        Ok(out)
    }

    /// `op(a, b)`, elementwise with numpy broadcasting; the dtypes must
    /// agree.
    pub fn binary(&mut self, op: BinaryOp, a: NodeId, b: NodeId) -> Result<NodeId, ShapeError> {
        let dtype = self.same_dtype(op.name(), a, b)?;
        let shape = self.broadcast(a, b, self.shape(a), self.shape(b))?;
        Ok(self.push(Node {
            op: Op::Binary(op, a, b),
            shape,
            dtype,
        }))
    }

    /// The batched matrix product `[.., m, k] x [.., k, n]`, batch dims
    /// broadcast.
    pub fn matmul(&mut self, a: NodeId, b: NodeId) -> Result<NodeId, ShapeError> {
        let dtype = self.same_dtype("matmul", a, b)?;
        let (sa, sb) = (self.shape(a), self.shape(b));
        for (id, s) in [(a, sa), (b, sb)] {
            if s.len() < 2 {
                return Err(ShapeError::MatmulRank {
                    got: self.type_of(id),
                });
            }
        }
        let (ra, rb) = (sa.len(), sb.len());
        if sa[ra - 1] != sb[rb - 2] {
            return Err(ShapeError::MatmulInner {
                left: self.type_of(a),
                right: self.type_of(b),
                lk: sa[ra - 1].clone(),
                rk: sb[rb - 2].clone(),
            });
        }
        let mut shape = self.broadcast(a, b, &sa[..ra - 2], &sb[..rb - 2])?;
        shape.push(sa[ra - 2].clone());
        shape.push(sb[rb - 1].clone());
        Ok(self.push(Node {
            op: Op::Matmul(a, b),
            shape,
            dtype,
        }))
    }

    /// Resolve a possibly negative axis against a rank.
    pub fn axis(axis: i64, rank: usize) -> Result<usize, ShapeError> {
        let r = rank as i64;
        if axis >= r || axis < -r {
            return Err(ShapeError::Axis { axis, rank });
        }
        Ok(if axis < 0 {
            (axis + r) as usize
        } else {
            axis as usize
        })
    }

    /// Reduce `a` over `axis` (negative counts from the end); with
    /// `keepdim` the axis stays with extent 1.
    pub fn reduce(
        &mut self,
        op: ReduceOp,
        a: NodeId,
        axis: i64,
        keepdim: bool,
    ) -> Result<NodeId, ShapeError> {
        let rank = self.shape(a).len();
        if rank == 0 {
            return Err(ShapeError::RankZero {
                op: op.name().into(),
            });
        }
        let axis = Self::axis(axis, rank)?;
        let mut shape = self.shape(a).to_vec();
        if keepdim {
            shape[axis] = DimExpr::constant(1);
        } else {
            shape.remove(axis);
        }
        let dtype = self.dtype(a);
        Ok(self.push(Node {
            op: Op::Reduce {
                op,
                input: a,
                axis,
                keepdim,
            },
            shape,
            dtype,
        }))
    }

    /// Reorder the axes of `a`: output axis `i` is input axis `perm[i]`
    /// (negative counts from the end). The identity returns `a` itself.
    pub fn permute(&mut self, a: NodeId, perm: &[i64]) -> Result<NodeId, ShapeError> {
        let rank = self.shape(a).len();
        let bad = || ShapeError::Permutation {
            perm: perm.to_vec(),
            rank,
        };
        if perm.len() != rank {
            return Err(bad());
        }
        let mut resolved = Vec::with_capacity(rank);
        for &p in perm {
            let ax = Self::axis(p, rank).map_err(|_| bad())?;
            if resolved.contains(&ax) {
                return Err(bad());
            }
            resolved.push(ax);
        }
        if resolved.iter().enumerate().all(|(i, &p)| i == p) {
            return Ok(a);
        }
        let shape = resolved.iter().map(|&p| self.shape(a)[p].clone()).collect();
        let dtype = self.dtype(a);
        Ok(self.push(Node {
            op: Op::Permute(a, resolved),
            shape,
            dtype,
        }))
    }

    /// Swap two axes.
    pub fn transpose(&mut self, a: NodeId, x: i64, y: i64) -> Result<NodeId, ShapeError> {
        let rank = self.shape(a).len();
        let (x, y) = (Self::axis(x, rank)?, Self::axis(y, rank)?);
        let mut perm: Vec<i64> = (0..rank as i64).collect();
        perm.swap(x, y);
        self.permute(a, &perm)
    }

    /// The elements of `a` in row-major order, in a new shape with the same
    /// element count (symbolically). The same shape returns `a` itself.
    pub fn reshape(&mut self, a: NodeId, shape: Vec<DimExpr>) -> Result<NodeId, ShapeError> {
        let count = |s: &[DimExpr]| s.iter().fold(DimExpr::constant(1), |acc, d| acc.mul(d));
        let (from_n, to_n) = (count(self.shape(a)), count(&shape));
        if from_n != to_n {
            let to: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            return Err(ShapeError::Reshape {
                from: self.type_of(a),
                to: to.join(", "),
                from_n,
                to_n,
            });
        }
        if shape == self.shape(a) {
            return Ok(a);
        }
        let dtype = self.dtype(a);
        Ok(self.push(Node {
            op: Op::Reshape(a),
            shape,
            dtype,
        }))
    }

    /// Name `node` as an output.
    pub fn output(&mut self, name: &str, node: NodeId) {
        self.graph.outputs.push(Output {
            name: name.to_string(),
            node,
        });
    }

    /// The graph built.
    pub fn finish(self) -> Graph {
        self.graph
    }
}
