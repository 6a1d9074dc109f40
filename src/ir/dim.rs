//! Symbolic dimension expressions.
//!
//! A dimension is a polynomial with integer coefficients over named symbolic
//! dims (`n`, `h*q`, `2*d + 1`). Polynomials have a canonical form, so two
//! dims are symbolically equal exactly when their representations are equal;
//! shape inference relies on that for broadcasting, matmul and reshape checks.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Serialize, Serializer};

/// A product of symbols, sorted, with repetition for powers (`["d", "d", "n"]`).
pub type Monomial = Vec<String>;

/// A polynomial over symbolic dims in canonical form: no zero coefficients.
///
/// Equal expressions have equal representations, so `==` is symbolic
/// equality:
///
/// ```
/// use prism::ir::{DimBindings, DimExpr};
///
/// let (h, q) = (DimExpr::symbol("h"), DimExpr::symbol("q"));
/// let hq = h.mul(&q);
/// assert_eq!(hq, q.mul(&h));
/// assert_eq!(hq.to_string(), "h*q");
///
/// let e = hq.add(&DimExpr::constant(2).mul(&h)); // h*q + 2*h
/// assert_eq!(e.to_string(), "h*q + 2*h");
/// assert_eq!(e.div_exact(&h).map(|x| x.to_string()), Some("q + 2".into()));
/// assert_eq!(h.div_exact(&DimExpr::constant(2)), None); // not a polynomial
///
/// let dims: DimBindings = [("h".to_string(), 8), ("q".to_string(), 128)].into();
/// assert_eq!(e.eval(&dims), Ok(1040));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DimExpr {
    terms: BTreeMap<Monomial, i64>,
}

/// Why a dim expression could not be evaluated for concrete dim values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DimEvalError {
    /// The dim (named) has no value.
    #[error("no value given for dim `{0}`")]
    Unbound(String),
    /// The value of the expression (shown) does not fit in an `i64`.
    #[error("dim expression `{0}` overflows a 64-bit integer")]
    Overflow(String),
}

impl DimExpr {
    /// The constant dim `c`.
    pub fn constant(c: i64) -> Self {
        let mut terms = BTreeMap::new();
        if c != 0 {
            terms.insert(Vec::new(), c);
        }
        DimExpr { terms }
    }

    /// The symbolic dim `name`.
    pub fn symbol(name: &str) -> Self {
        let mut terms = BTreeMap::new();
        terms.insert(vec![name.to_string()], 1);
        DimExpr { terms }
    }

    /// `Some(c)` when the expression has no symbols.
    pub fn as_constant(&self) -> Option<i64> {
        match self.terms.len() {
            0 => Some(0),
            1 => self.terms.get(&Vec::new()).copied(),
            _ => None,
        }
    }

    /// Whether this is the constant 1 (the only size that broadcasts).
    pub fn is_one(&self) -> bool {
        self.as_constant() == Some(1)
    }

    /// The canonical terms: monomial (sorted symbols) → coefficient.
    pub fn terms(&self) -> impl Iterator<Item = (&Monomial, i64)> {
        self.terms.iter().map(|(m, c)| (m, *c))
    }

    /// The expression as source code of a language with `*`, `+`, `-` and
    /// integer literals (C, Rust), each symbol rendered by `symbol`; e.g.
    /// `(2 * d * n + 1)` with `symbol = |s| s.to_string()`. Parenthesized
    /// unless it is a single literal or symbol.
    pub fn render(&self, symbol: impl Fn(&str) -> String) -> String {
        if self.terms.is_empty() {
            return "0".into();
        }
        let mut parts = Vec::new();
        for (m, c) in &self.terms {
            let mut factors: Vec<String> = Vec::new();
            if *c != 1 || m.is_empty() {
                factors.push(c.to_string());
            }
            factors.extend(m.iter().map(|s| symbol(s)));
            parts.push(factors.join(" * "));
        }
        let single = self.terms.len() == 1
            && self
                .terms
                .iter()
                .all(|(m, c)| m.len() + usize::from(*c != 1) <= 1);
        let joined = parts.join(" + ").replace("+ -", "- ");
        if single {
            joined
        } else {
            format!("({joined})")
        }
    }

    /// Symbols used, sorted and without repetition.
    pub fn symbols(&self) -> Vec<String> {
        let mut out: Vec<String> = self.terms.keys().flatten().cloned().collect();
        out.sort();
        out.dedup();
        out
    }

    /// `self + other` (coefficients saturate).
    pub fn add(&self, other: &DimExpr) -> DimExpr {
        let mut terms = self.terms.clone();
        for (m, c) in &other.terms {
            let e = terms.entry(m.clone()).or_insert(0);
            *e = e.saturating_add(*c);
            if *e == 0 {
                terms.remove(m);
            }
        }
        DimExpr { terms }
    }

    /// `-self` (coefficients saturate).
    pub fn neg(&self) -> DimExpr {
        DimExpr {
            terms: self
                .terms
                .iter()
                .map(|(m, c)| (m.clone(), c.saturating_neg()))
                .collect(),
        }
    }

    /// `self - other` (coefficients saturate).
    pub fn sub(&self, other: &DimExpr) -> DimExpr {
        self.add(&other.neg())
    }

    /// `self * other` (coefficients saturate).
    pub fn mul(&self, other: &DimExpr) -> DimExpr {
        let mut out = DimExpr::default();
        for (ma, ca) in &self.terms {
            for (mb, cb) in &other.terms {
                let mut m: Monomial = ma.iter().chain(mb.iter()).cloned().collect();
                m.sort();
                let mut t = BTreeMap::new();
                t.insert(m, ca.saturating_mul(*cb));
                out = out.add(&DimExpr { terms: t });
            }
        }
        out
    }

    /// Exact division by a single-term divisor (`c`, `n`, `2*h`). `None` when
    /// the quotient is not a polynomial, e.g. `n / 2` or `(n + 1) / n`.
    pub fn div_exact(&self, divisor: &DimExpr) -> Option<DimExpr> {
        if divisor.terms.len() != 1 {
            return None;
        }
        let (dm, dc) = divisor.terms.iter().next()?;
        let mut out = BTreeMap::new();
        for (m, c) in &self.terms {
            if c.checked_rem(*dc)? != 0 {
                return None;
            }
            let mut rest = m.clone();
            for s in dm {
                let pos = rest.iter().position(|r| r == s)?;
                rest.remove(pos);
            }
            out.insert(rest, c.checked_div(*dc)?);
        }
        Some(DimExpr { terms: out })
    }

    /// Largest coefficient magnitude. Arithmetic saturates, so a caller that
    /// builds dims from user input checks this against a bound.
    pub fn max_abs_coefficient(&self) -> u64 {
        self.terms
            .values()
            .map(|c| c.unsigned_abs())
            .max()
            .unwrap_or(0)
    }

    /// The value for concrete dim bindings.
    pub fn eval(&self, dims: &BTreeMap<String, i64>) -> Result<i64, DimEvalError> {
        let overflow = || DimEvalError::Overflow(self.to_string());
        let mut total: i64 = 0;
        for (m, c) in &self.terms {
            let mut v = *c;
            for s in m {
                let x = *dims
                    .get(s)
                    .ok_or_else(|| DimEvalError::Unbound(s.clone()))?;
                v = v.checked_mul(x).ok_or_else(overflow)?;
            }
            total = total.checked_add(v).ok_or_else(overflow)?;
        }
        Ok(total)
    }
}

impl fmt::Display for DimExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.terms.is_empty() {
            return write!(f, "0");
        }
        // Highest degree first, constant last: `h*q + 2*n + 1`.
        let mut terms: Vec<(&Monomial, &i64)> = self.terms.iter().collect();
        terms.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(b.0)));
        for (i, (m, c)) in terms.iter().enumerate() {
            let c = **c;
            let mag = c.unsigned_abs();
            if i == 0 {
                if c < 0 {
                    write!(f, "-")?;
                }
            } else if c < 0 {
                write!(f, " - ")?;
            } else {
                write!(f, " + ")?;
            }
            let body = m.join("*");
            match (mag, body.is_empty()) {
                (_, true) => write!(f, "{mag}")?,
                (1, false) => write!(f, "{body}")?,
                (_, false) => write!(f, "{mag}*{body}")?,
            }
        }
        Ok(())
    }
}

impl Serialize for DimExpr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// Concrete values for every symbolic dim of a workload.
pub type DimBindings = BTreeMap<String, i64>;

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: &str) -> DimExpr {
        DimExpr::symbol(n)
    }

    #[test]
    fn products_are_canonical() {
        assert_eq!(s("h").mul(&s("q")), s("q").mul(&s("h")));
        assert_eq!(s("h").mul(&s("q")).to_string(), "h*q");
        let e = s("n").mul(&DimExpr::constant(2)).add(&DimExpr::constant(1));
        assert_eq!(e.to_string(), "2*n + 1");
        assert_eq!(s("n").sub(&s("n")), DimExpr::constant(0));
        assert_eq!(DimExpr::constant(1).sub(&s("n")).to_string(), "-n + 1");
    }

    #[test]
    fn exact_division() {
        let hq = s("h").mul(&s("q"));
        assert_eq!(hq.div_exact(&s("h")), Some(s("q")));
        assert_eq!(
            DimExpr::constant(32).div_exact(&DimExpr::constant(8)),
            Some(DimExpr::constant(4))
        );
        assert_eq!(s("n").div_exact(&DimExpr::constant(2)), None);
        assert_eq!(s("n").add(&DimExpr::constant(1)).div_exact(&s("n")), None);
        assert_eq!(
            DimExpr::constant(i64::MIN).div_exact(&DimExpr::constant(-1)),
            None
        );
    }

    #[test]
    fn evaluation() {
        let dims: DimBindings = [("h".to_string(), 8), ("q".to_string(), 128)].into();
        assert_eq!(s("h").mul(&s("q")).eval(&dims), Ok(1024));
        assert_eq!(s("x").eval(&dims), Err(DimEvalError::Unbound("x".into())));
        let big: DimBindings = [("h".to_string(), i64::MAX)].into();
        assert!(matches!(
            s("h").mul(&s("h")).eval(&big),
            Err(DimEvalError::Overflow(_))
        ));
    }
}
