//! A validated prism.toml: the build target and its workloads. This is what
//! the front end hands to every later stage.

use std::fmt;

use serde::Serialize;

use super::dim::{DimBindings, DimExpr};
use super::dtype::DType;
use super::graph::Graph;
use super::scalar::ScalarExpr;

/// A GPU architecture nvcc can target, e.g. `sm_90a`.
///
/// `Display` writes nvcc's name; [`crate::build::arch::parse_override`]
/// parses one.
///
/// ```
/// use prism::ir::Arch;
///
/// let hopper = Arch { capability: 90, suffix: "a".into() };
/// assert_eq!(hopper.to_string(), "sm_90a");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Arch {
    /// Compute capability times ten: 90 for `sm_90a`.
    pub capability: u32,
    /// Architecture-specific suffix (`a` or `f`), or empty.
    pub suffix: String,
}

impl Arch {
    /// Oldest compute capability CUDA 13.0 can compile for (7.5).
    pub const MIN_CAPABILITY: u32 = 75;
    /// Newest compute capability CUDA 13.0 can compile for (12.1).
    pub const MAX_CAPABILITY: u32 = 121;

    /// Whether code built for this architecture has Hopper's warpgroup
    /// MMA (`wgmma`): `sm_90a` only (neither plain `sm_90` nor Blackwell's
    /// arch-specific targets).
    pub fn has_warpgroup_mma(&self) -> bool {
        self.capability == 90 && self.suffix == "a"
    }
}

impl Serialize for Arch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sm_{}{}", self.capability, self.suffix)
    }
}

/// What to build for: prism.toml's `[target]` table.
///
/// The default is `arch = ["sm_90a", "sm_80"]`, `dtype = "f16"`.
///
/// ```
/// let t = prism::ir::Target::default();
/// let archs: Vec<String> = t.archs.iter().map(|a| a.to_string()).collect();
/// assert_eq!(archs, ["sm_90a", "sm_80"]);
/// assert_eq!(t.hardware[0].hardware.sms, 132); // prism's sm_90a description (H100 SXM)
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Target {
    /// The architectures to compile for (SASS for each, PTX for the newest).
    pub archs: Vec<Arch>,
    /// The dtype of inputs declared without one (`"[n, d]"`).
    pub dtype: DType,
    /// One description per arch, in `archs` order
    /// ([`super::hardware::describe`]).
    pub hardware: Vec<super::hardware::TargetHardware>,
}

impl Target {
    /// A target for `archs` with prism's own hardware descriptions (the
    /// nearest older one for an architecture prism does not know; none
    /// when there is no older one either).
    pub fn with_archs(archs: Vec<Arch>, dtype: DType) -> Self {
        let hardware = archs
            .iter()
            .filter_map(|a| super::hardware::describe(a, None).ok())
            .collect();
        Target {
            archs,
            dtype,
            hardware,
        }
    }
}

impl Default for Target {
    fn default() -> Self {
        Target::with_archs(
            vec![
                Arch {
                    capability: 90,
                    suffix: "a".into(),
                },
                Arch {
                    capability: 80,
                    suffix: String::new(),
                },
            ],
            DType::F16,
        )
    }
}

/// The values a symbolic dim may take: prism.toml's `"1..=64"`, `"1..65"`,
/// `[1024, 4096]` or `8`.
///
/// ```
/// use prism::ir::DimValues;
///
/// let n = DimValues::Range { lo: 1, hi: 64 };
/// assert!(n.contains(7) && !n.contains(65));
/// assert_eq!((n.min(), n.max(), n.single()), (1, 64, None));
/// assert_eq!(n.to_string(), "1..=64");
///
/// let d = DimValues::List(vec![1024, 4096]);
/// assert!(d.contains(4096) && !d.contains(2048));
/// assert_eq!(d.to_string(), "[1024, 4096]");
/// assert_eq!(DimValues::List(vec![128]).single(), Some(128));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DimValues {
    /// Every integer in `lo..=hi`.
    Range {
        /// The smallest value.
        lo: i64,
        /// The largest value.
        hi: i64,
    },
    /// Exactly these values, ascending.
    List(Vec<i64>),
}

impl DimValues {
    /// The only value, when exactly one is declared (`[128]`, `"7..=7"`).
    pub fn single(&self) -> Option<i64> {
        match self {
            DimValues::Range { lo, hi } if lo == hi => Some(*lo),
            DimValues::List(l) if l.len() == 1 => l.first().copied(),
            _ => None,
        }
    }

    /// Whether `v` is one of the values.
    pub fn contains(&self, v: i64) -> bool {
        match self {
            DimValues::Range { lo, hi } => (*lo..=*hi).contains(&v),
            DimValues::List(l) => l.contains(&v),
        }
    }

    /// The smallest value.
    pub fn min(&self) -> i64 {
        match self {
            DimValues::Range { lo, .. } => *lo,
            DimValues::List(l) => l[0],
        }
    }

    /// The largest value.
    pub fn max(&self) -> i64 {
        match self {
            DimValues::Range { hi, .. } => *hi,
            DimValues::List(l) => l[l.len() - 1],
        }
    }
}

impl fmt::Display for DimValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DimValues::Range { lo, hi } => write!(f, "{lo}..={hi}"),
            DimValues::List(l) => {
                let v: Vec<String> = l.iter().map(|x| x.to_string()).collect();
                write!(f, "[{}]", v.join(", "))
            }
        }
    }
}

/// One symbolic dim of a workload, with its declared values.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DimDecl {
    /// The dim's name (`n`).
    pub name: String,
    /// The values it may take.
    pub values: DimValues,
}

/// One declared tensor program with its shape ranges.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    /// The name in prism.toml (`[workload.NAME]`).
    pub name: String,
    /// prism.toml's `description`, if given.
    pub description: Option<String>,
    /// The program: inputs in declaration order (the launch argument order),
    /// operators, named outputs.
    pub graph: Graph,
    /// In first-use order.
    pub dims: Vec<DimDecl>,
    /// Shape points to evaluate and benchmark (declared, or the corners and
    /// middle of the ranges when none are declared).
    pub points: Vec<DimBindings>,
    /// Maximum relative L2 error of a kernel against the f64 reference.
    pub tolerance: f64,
    /// Standard deviation of each input's random values (by input index);
    /// `None` means 1.
    pub init: Vec<Option<ScalarExpr>>,
}

impl Workload {
    /// The declared dim `name`.
    pub fn dim(&self, name: &str) -> Option<&DimDecl> {
        self.dims.iter().find(|d| d.name == name)
    }

    /// Dims declared with exactly one value, bound to it.
    pub fn fixed_dims(&self) -> DimBindings {
        self.dims
            .iter()
            .filter_map(|d| d.values.single().map(|v| (d.name.clone(), v)))
            .collect()
    }

    /// Every dim at its largest declared value.
    pub fn max_point(&self) -> DimBindings {
        self.dims
            .iter()
            .map(|d| (d.name.clone(), d.values.max()))
            .collect()
    }

    /// The declared points, or the largest one when none are declared.
    pub fn points_or_max(&self) -> Vec<DimBindings> {
        if self.points.is_empty() {
            vec![self.max_point()]
        } else {
            self.points.clone()
        }
    }

    /// The value of `e` when every dim it uses has one declared value.
    pub fn fixed_value(&self, e: &DimExpr) -> Option<i64> {
        e.eval(&self.fixed_dims()).ok()
    }

    /// Whether `dims` binds every declared dim to an allowed value (and
    /// nothing else); `Err` says what is wrong.
    pub fn check_point(&self, dims: &DimBindings) -> Result<(), String> {
        for d in &self.dims {
            match dims.get(&d.name) {
                None => return Err(format!("no value for dim `{}`", d.name)),
                Some(v) if !d.values.contains(*v) => {
                    return Err(format!(
                        "{} = {v} is outside its declared values {}",
                        d.name, d.values
                    ));
                }
                Some(_) => {}
            }
        }
        if let Some(extra) = dims.keys().find(|k| self.dim(k).is_none()) {
            return Err(format!(
                "`{extra}` is not a dim of workload `{}`",
                self.name
            ));
        }
        Ok(())
    }
}

/// A whole prism.toml.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    /// Where it came from, for messages (`prism.toml`, `<embedded prism.toml>`).
    pub source_name: String,
    /// `[target]`.
    pub target: Target,
    /// Every `[workload.NAME]`, in file order.
    pub workloads: Vec<Workload>,
}

impl Spec {
    /// The workload `name`.
    pub fn workload(&self, name: &str) -> Option<&Workload> {
        self.workloads.iter().find(|w| w.name == name)
    }
}
