//! Architecture overrides: `Build::arch(..)` and `CUDA_COMPUTE_CAP`.

use crate::diagnostics::Span;
use crate::frontend::config::parse_arch;
use crate::ir::Arch;

/// Parse one architecture as a user writes it for an override: `sm_90a`,
/// `sm_80`, or a compute capability `90`, `9.0`, `90a`, `8.6`, `120f`. A
/// bare 9.0 means `sm_90a` (Hopper's wgmma needs the arch-specific target);
/// any other bare capability X.Y means `sm_XY`.
///
/// ```
/// use prism::build::arch::parse_override;
///
/// assert_eq!(parse_override("90").unwrap().to_string(), "sm_90a");
/// assert_eq!(parse_override("8.6").unwrap().to_string(), "sm_86");
/// assert_eq!(parse_override("sm_80").unwrap().to_string(), "sm_80");
/// assert!(parse_override("70").is_err()); // older than CUDA 13 supports
/// ```
pub fn parse_override(text: &str) -> Result<Arch, String> {
    let t = text.trim();
    if t.starts_with("sm_") {
        return parse_arch(t, Span::default()).map_err(|d| match d.hint {
            Some(h) => format!("{}; {h}", d.message),
            None => d.message,
        });
    }
    let malformed = || {
        format!(
            "`{t}` is not a compute capability or architecture (write e.g. 90, 9.0, 8.6, 90a or sm_80)"
        )
    };
    let (number, suffix) = match t.strip_suffix('a') {
        Some(n) => (n, "a"),
        None => match t.strip_suffix('f') {
            Some(n) => (n, "f"),
            None => (t, ""),
        },
    };
    let capability: u32 = match number.split_once('.') {
        Some((major, minor)) => {
            let all_digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
            if !all_digits(major) || !all_digits(minor) || minor.len() != 1 {
                return Err(malformed());
            }
            let major: u32 = major.parse().map_err(|_| malformed())?;
            let minor: u32 = minor.parse().map_err(|_| malformed())?;
            major
                .checked_mul(10)
                .and_then(|m| m.checked_add(minor))
                .ok_or_else(malformed)?
        }
        None => {
            if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit()) {
                return Err(malformed());
            }
            number.parse().map_err(|_| malformed())?
        }
    };
    if !(Arch::MIN_CAPABILITY..=Arch::MAX_CAPABILITY).contains(&capability) {
        return Err(format!(
            "compute capability {}.{} is not supported by CUDA 13 (it builds for {}.{} through {}.{})",
            capability / 10,
            capability % 10,
            Arch::MIN_CAPABILITY / 10,
            Arch::MIN_CAPABILITY % 10,
            Arch::MAX_CAPABILITY / 10,
            Arch::MAX_CAPABILITY % 10,
        ));
    }
    let suffix = if suffix.is_empty() && capability == 90 {
        "a"
    } else {
        suffix
    };
    Ok(Arch {
        capability,
        suffix: suffix.to_string(),
    })
}

/// A comma-separated list of overrides (duplicates dropped, order kept), as
/// `CUDA_COMPUTE_CAP` holds them.
///
/// ```
/// let archs = prism::build::arch::parse_list("90,80,9.0").unwrap();
/// let names: Vec<String> = archs.iter().map(|a| a.to_string()).collect();
/// assert_eq!(names, ["sm_90a", "sm_80"]);
/// ```
pub fn parse_list(text: &str) -> Result<Vec<Arch>, String> {
    let mut out: Vec<Arch> = Vec::new();
    for part in text.split(',') {
        let a = parse_override(part)?;
        if !out.contains(&a) {
            out.push(a);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: &str) -> String {
        parse_override(t).map_or_else(|e| format!("error: {e}"), |a| a.to_string())
    }

    #[test]
    fn overrides() {
        assert_eq!(s("90"), "sm_90a");
        assert_eq!(s("9.0"), "sm_90a");
        assert_eq!(s("90a"), "sm_90a");
        assert_eq!(s("sm_90"), "sm_90");
        assert_eq!(s("80"), "sm_80");
        assert_eq!(s("8.6"), "sm_86");
        assert_eq!(s(" 89 "), "sm_89");
        assert_eq!(s("12.0f"), "sm_120f");
        assert_eq!(s("100"), "sm_100");
        assert!(s("70").starts_with("error: compute capability 7.0"));
        assert!(s("ninety").starts_with("error: `ninety`"));
        assert!(s("9.10").starts_with("error"));
        assert!(s("").starts_with("error"));
        assert!(s("sm_9x").starts_with("error"));
        let l = parse_list("80,90,80").map(|v| v.len());
        assert_eq!(l, Ok(2));
    }
}
