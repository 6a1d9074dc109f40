//! Small helpers for hand-written HTML and SVG: escaping, number
//! formatting (fixed precision, so output is byte-stable), log-scale axes
//! and a colour palette.

use std::fmt::Write as _;

/// `s` with `& < > " '` escaped: safe in text and in quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An id fragment from `s`: ASCII letters, digits, `-` and `_` kept, every
/// other character as `-xx` (its code point in hex), so distinct names
/// give distinct ids.
pub fn id(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        } else {
            let _ = write!(out, "-{:x}", u32::from(c));
        }
    }
    out
}

/// A coordinate: one decimal, no `-0.0`.
pub fn px(x: f64) -> String {
    let x = if x.is_finite() { x } else { 0.0 };
    let s = format!("{x:.1}");
    if s == "-0.0" { "0.0".into() } else { s }
}

/// A duration in µs with three significant digits (`8.96`, `19.8`, `1987`).
pub fn micros(x: f64) -> String {
    sig3(x)
}

/// Three significant digits, no exponent for the ranges a report shows.
pub fn sig3(x: f64) -> String {
    if !x.is_finite() {
        return "–".into();
    }
    let a = x.abs();
    if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else if a >= 0.01 {
        format!("{x:.3}")
    } else if a == 0.0 {
        "0".into()
    } else {
        format!("{x:.2e}")
    }
}

/// `x` with an SI prefix and `unit`: `4.23 TB/s`, `621 TFLOP/s`, `33.8 MB`.
pub fn si(x: f64, unit: &str) -> String {
    const PREFIXES: [(f64, &str); 6] = [
        (1e15, "P"),
        (1e12, "T"),
        (1e9, "G"),
        (1e6, "M"),
        (1e3, "k"),
        (1.0, ""),
    ];
    if !x.is_finite() || x == 0.0 {
        return format!("0 {unit}");
    }
    for (scale, p) in PREFIXES {
        if x.abs() >= scale {
            return format!("{} {p}{unit}", sig3(x / scale));
        }
    }
    format!("{} {unit}", sig3(x))
}

/// A count with thousands separators (`12,345`).
pub fn count(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A log10 axis mapping `[10^lo, 10^hi]` onto pixels `[a, b]` (`b < a`
/// for a y axis growing upwards).
#[derive(Clone, Copy, Debug)]
pub struct LogAxis {
    pub lo: f64,
    pub hi: f64,
    pub a: f64,
    pub b: f64,
}

impl LogAxis {
    /// The axis over whole decades covering `values` (positive, finite
    /// ones; `[1, 10]` without any), at least `min_decades` wide.
    pub fn covering(values: &[f64], a: f64, b: f64, min_decades: f64) -> LogAxis {
        let logs: Vec<f64> = values
            .iter()
            .filter(|v| v.is_finite() && **v > 0.0)
            .map(|v| v.log10())
            .collect();
        let (mut lo, mut hi) = if logs.is_empty() {
            (0.0, 1.0)
        } else {
            (
                logs.iter().copied().fold(f64::INFINITY, f64::min).floor(),
                logs.iter()
                    .copied()
                    .fold(f64::NEG_INFINITY, f64::max)
                    .ceil(),
            )
        };
        if hi <= lo {
            hi = lo + 1.0;
        }
        while hi - lo < min_decades {
            lo -= 0.5;
            hi += 0.5;
        }
        LogAxis {
            lo: lo.floor(),
            hi: hi.ceil(),
            a,
            b,
        }
    }

    /// The axis over `[lo, hi]` (log10 values) exactly, padded by `pad`
    /// of its width on each side (for scatter plots of a narrow range).
    pub fn padded(values: &[f64], a: f64, b: f64, pad: f64) -> LogAxis {
        let logs: Vec<f64> = values
            .iter()
            .filter(|v| v.is_finite() && **v > 0.0)
            .map(|v| v.log10())
            .collect();
        let (lo, hi) = if logs.is_empty() {
            (0.0, 1.0)
        } else {
            (
                logs.iter().copied().fold(f64::INFINITY, f64::min),
                logs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            )
        };
        let width = (hi - lo).max(0.05);
        LogAxis {
            lo: lo - width * pad,
            hi: hi + width * pad,
            a,
            b,
        }
    }

    /// Pixel of `v` (clamped to the axis).
    pub fn at(&self, v: f64) -> f64 {
        let l = if v.is_finite() && v > 0.0 {
            v.log10()
        } else {
            self.lo
        };
        let t = ((l - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0);
        self.a + t * (self.b - self.a)
    }

    /// Tick values: the powers of ten inside the axis, and 2× and 5× of
    /// each when the axis spans fewer than two decades.
    pub fn ticks(&self) -> Vec<f64> {
        let mut out = Vec::new();
        let span = self.hi - self.lo;
        let first = self.lo.floor() as i32;
        let last = self.hi.ceil() as i32;
        for e in first..=last {
            let base = 10f64.powi(e);
            let steps: &[f64] = if span < 2.0 { &[1.0, 2.0, 5.0] } else { &[1.0] };
            for s in steps {
                let v = base * s;
                let l = v.log10();
                if l >= self.lo - 1e-9 && l <= self.hi + 1e-9 {
                    out.push(v);
                }
            }
        }
        out
    }
}

/// Colours for series (workloads), readable on white.
pub const PALETTE: [&str; 10] = [
    "#4269d0", "#efb118", "#ff725c", "#6cc5b0", "#3ca951", "#ff8ab7", "#a463f2", "#97bbf5",
    "#9c6b4e", "#9498a0",
];

/// The palette colour of series `i`.
pub fn colour(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// An arrowhead marker definition with id `id` and colour `fill`.
pub fn arrow_marker(id: &str, fill: &str) -> String {
    format!(
        "<marker id=\"{id}\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"{fill}\"/></marker>"
    )
}

/// `text` cut into lines of at most `width` characters at spaces (a word
/// longer than `width` stands on a line of its own, cut).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let word: String = if word.chars().count() > width {
            let mut w: String = word.chars().take(width.saturating_sub(1)).collect();
            w.push('…');
            w
        } else {
            word.to_string()
        };
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// `s` cut to `n` characters (with `…` when cut).
pub fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<script>\"a\" & 'b'</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn ids_are_distinct_and_safe() {
        assert_eq!(id("rms_norm"), "rms_norm");
        assert_ne!(id("a b"), id("a.b"));
        assert!(
            id("<x>")
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(sig3(8.96), "8.96");
        assert_eq!(sig3(19.84), "19.8");
        assert_eq!(sig3(1987.2), "1987");
        assert_eq!(si(4.2257e12, "B/s"), "4.23 TB/s");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(px(-0.01), "0.0");
    }

    #[test]
    fn log_axis_maps_decades() {
        let a = LogAxis::covering(&[3.0, 700.0], 0.0, 300.0, 1.0);
        assert_eq!((a.lo, a.hi), (0.0, 3.0));
        assert!((a.at(10.0) - 100.0).abs() < 1e-9);
        assert_eq!(a.ticks(), vec![1.0, 10.0, 100.0, 1000.0]);
    }

    #[test]
    fn wraps_at_spaces() {
        assert_eq!(wrap("aa bb cc", 5), vec!["aa bb", "cc"]);
        assert_eq!(wrap("abcdefgh", 4), vec!["abc…"]);
    }
}
