//! Element types of tensors.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// Element type of a tensor in device memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// IEEE 754 half precision (`f16` in prism.toml).
    F16,
    /// bfloat16 (`bf16`).
    BF16,
    /// IEEE 754 single precision (`f32`).
    F32,
}

impl DType {
    /// Every dtype.
    pub const ALL: [DType; 3] = [DType::F16, DType::BF16, DType::F32];

    /// The name in prism.toml: `f16`, `bf16`, `f32` (also `Display`; `FromStr`
    /// parses it back).
    ///
    /// ```
    /// use prism::ir::DType;
    ///
    /// assert_eq!(DType::BF16.name(), "bf16");
    /// assert_eq!("f32".parse::<DType>(), Ok(DType::F32));
    /// assert_eq!(DType::F16.size(), 2);
    /// assert_eq!(DType::F16.round(1.0 / 3.0), 0.333251953125);
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::F32 => "f32",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F16 | DType::BF16 => 2,
            DType::F32 => 4,
        }
    }

    /// Round an exact value to the nearest value of this type (ties to even).
    pub fn round(self, v: f64) -> f64 {
        match self {
            DType::F16 => half::f16::from_f64(v).to_f64(),
            DType::BF16 => half::bf16::from_f64(v).to_f64(),
            DType::F32 => v as f32 as f64,
        }
    }

    /// Default relative-error tolerance (L2 norm) of a kernel in this type
    /// against the f64 reference.
    pub fn default_tolerance(self) -> f64 {
        match self {
            DType::F16 => 1e-2,
            DType::BF16 => 2e-2,
            DType::F32 => 1e-4,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DType {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        DType::ALL.into_iter().find(|d| d.name() == s).ok_or(())
    }
}
