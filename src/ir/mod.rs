//! The tensor-program IR: symbolic dims, dtypes, operators, graphs and the
//! validated workload set the front end produces.
//!
//! A [`Spec`] (one prism.toml) holds the [`Target`] (architectures, default
//! dtype, hardware descriptions) and its [`Workload`]s. A workload is a
//! [`Graph`] of primitive operators ([`Op`]) over symbolic dims
//! ([`DimExpr`]), with each dim's declared values ([`DimValues`]), shape
//! points, a tolerance and input initializations. Graphs are built only
//! through [`GraphBuilder`], which infers and checks every shape and dtype.

pub mod dim;
pub mod dtype;
pub mod graph;
pub mod hardware;
pub mod op;
pub mod scalar;
pub mod workload;

pub use dim::{DimBindings, DimEvalError, DimExpr};
pub use dtype::DType;
pub use graph::{Graph, GraphBuilder, Input, Node, NodeId, Op, Output, ShapeError, type_string};
pub use op::{BinaryOp, ReduceOp, UnaryOp};
pub use scalar::ScalarExpr;
pub use workload::{Arch, DimDecl, DimValues, Spec, Target, Workload};
