//! Hardware descriptions: the limits and rates of a GPU architecture, as
//! data (in the spirit of Axon's hardware descriptions).
//!
//! prism ships one description per architecture it knows (sm_80, sm_86,
//! sm_89, sm_90a: `hardware.toml` next to this file, nominal datasheet
//! figures of a representative part). A prism.toml overrides any field, or
//! describes an architecture prism does not know, under
//! `[target.hardware.ARCH]`; an architecture with neither takes the
//! description of the nearest older one it knows, marked as such. The
//! instantiation and the cost model read these; when a GPU is present the
//! tuner measures instead of trusting them.

use serde::{Deserialize, Serialize};

use super::workload::Arch;

/// The description of one architecture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hardware {
    /// A representative part, for reports.
    pub name: String,
    /// Streaming multiprocessors.
    pub sms: u32,
    /// Threads per block, at most.
    pub max_threads_per_block: u32,
    /// Resident threads per SM, at most.
    pub max_threads_per_sm: u32,
    /// 32-bit registers per SM.
    pub regs_per_sm: u32,
    /// Static shared memory per block (what kernels without an opt-in get).
    pub smem_per_block: u32,
    /// Shared memory per block with the dynamic opt-in.
    pub smem_per_block_optin: u32,
    /// Shared memory per SM, bytes.
    pub smem_per_sm: u32,
    /// L2 cache, bytes.
    pub l2_bytes: u64,
    /// DRAM bandwidth, GB/s.
    pub dram_gbps: f64,
    /// Dense f16/bf16 tensor-core throughput with f32 accumulation, TFLOP/s.
    pub tensor_tflops: f64,
    /// Time of one kernel launch on a stream, µs.
    pub launch_us: f64,
}

/// Where a target's description came from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum HardwareSource {
    /// prism's table.
    BuiltIn,
    /// prism's table with fields from prism.toml.
    Overridden,
    /// prism.toml alone (an architecture prism does not know).
    Declared,
    /// The nearest older architecture prism knows (named).
    Nearest(String),
}

/// A target architecture with its description.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TargetHardware {
    /// The architecture.
    pub arch: Arch,
    /// Its description.
    pub hardware: Hardware,
    /// Where the description came from.
    pub source: HardwareSource,
}

const TABLE: &str = include_str!("hardware.toml");

/// Field names, for prism.toml diagnostics.
pub const FIELDS: &[&str] = &[
    "name",
    "sms",
    "max_threads_per_block",
    "max_threads_per_sm",
    "regs_per_sm",
    "smem_per_block",
    "smem_per_block_optin",
    "smem_per_sm",
    "l2_bytes",
    "dram_gbps",
    "tensor_tflops",
    "launch_us",
];

/// prism's table, by architecture name (`sm_90a`), sorted.
pub fn built_in() -> Vec<(String, Hardware)> {
    // The table is part of the crate and tested: it always parses.
    let table: std::collections::BTreeMap<String, Hardware> =
        toml::from_str(TABLE).unwrap_or_default();
    table.into_iter().collect()
}

fn capability_of(name: &str) -> Option<u32> {
    name.strip_prefix("sm_")?
        .trim_end_matches(['a', 'f'])
        .parse()
        .ok()
}

/// The description of `arch`: prism.toml's fields (`fields`, a TOML table
/// already checked against [`FIELDS`]) over prism's own, or over the
/// nearest older architecture prism knows. `Err` says what is missing when
/// there is neither.
///
/// ```
/// use prism::ir::Arch;
/// use prism::ir::hardware::{HardwareSource, describe};
///
/// let sm_87 = Arch { capability: 87, suffix: String::new() };
/// let t = describe(&sm_87, None).unwrap();
/// assert_eq!(t.source, HardwareSource::Nearest("sm_86".into()));
///
/// let mut fields = toml::Table::new();
/// fields.insert("dram_gbps".into(), toml::Value::Float(4800.0));
/// let sm_90a = Arch { capability: 90, suffix: "a".into() };
/// let t = describe(&sm_90a, Some(&fields)).unwrap();
/// assert_eq!((t.hardware.dram_gbps, t.source), (4800.0, HardwareSource::Overridden));
/// ```
pub fn describe(arch: &Arch, fields: Option<&toml::Table>) -> Result<TargetHardware, String> {
    let table = built_in();
    let name = arch.to_string();
    let exact = table
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, h)| h.clone());
    let nearest = || {
        table
            .iter()
            .filter(|(n, _)| capability_of(n).is_some_and(|c| c <= arch.capability))
            .max_by_key(|(n, _)| capability_of(n))
            .cloned()
    };
    let (base, source) = match (&exact, fields) {
        (Some(h), None) => (h.clone(), HardwareSource::BuiltIn),
        (Some(h), Some(_)) => (h.clone(), HardwareSource::Overridden),
        (None, Some(f)) if FIELDS.iter().all(|k| f.contains_key(*k)) => {
            let h: Hardware = f
                .clone()
                .try_into()
                .map_err(|e: toml::de::Error| e.message().to_string())?;
            return Ok(TargetHardware {
                arch: arch.clone(),
                hardware: h,
                source: HardwareSource::Declared,
            });
        }
        (None, _) => match nearest() {
            Some((n, h)) => {
                let src = if fields.is_some() {
                    HardwareSource::Overridden
                } else {
                    HardwareSource::Nearest(n)
                };
                (h, src)
            }
            None => {
                return Err(format!(
                    "prism has no description of {name} or an older architecture: give every field under [target.hardware.{name}] ({})",
                    FIELDS.join(", ")
                ));
            }
        },
    };
    let hardware = match fields {
        None => base,
        Some(f) => {
            let mut merged = toml::Table::try_from(&base).map_err(|e| e.to_string())?;
            for (k, v) in f {
                merged.insert(k.clone(), v.clone());
            }
            merged
                .try_into()
                .map_err(|e: toml::de::Error| e.message().to_string())?
        }
    };
    Ok(TargetHardware {
        arch: arch.clone(),
        hardware,
        source,
    })
}
