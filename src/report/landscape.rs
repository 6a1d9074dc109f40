//! The tuning landscape: per shape bucket, prism.lock's choice against the
//! cost model's pick (always), and, where tune data exists, every timed
//! candidate as a point (model estimate against measured time, log-log),
//! the chosen one ringed, the model's pick squared, with Spearman's rank
//! correlation of the two.

use std::fmt::Write as _;

use super::svg::{LogAxis, cut, esc, px, sig3};
use super::tune_data::BucketTuning;

/// One bucket's row of the table.
#[derive(Clone, Debug, PartialEq)]
pub struct BucketRow {
    pub bucket: String,
    /// The instance a build runs.
    pub instance: String,
    /// `prism.lock (measured)`, `prism.lock (cost model)`, `cost model`.
    pub origin: String,
    /// Why the lock's entry was not used.
    pub problem: Option<String>,
    /// The lock's measured time of the instance, µs.
    pub micros: Option<f64>,
    /// The model's pick and its measured time (from the lock).
    pub model_instance: Option<String>,
    pub model_micros: Option<f64>,
    /// The bucket's tune data, if any.
    pub tuning: Option<BucketTuning>,
}

impl BucketRow {
    /// Whether the tune data chose what the build runs (`None`: no tune
    /// data, or it chose nothing).
    pub fn agrees(&self) -> Option<bool> {
        let c = self.tuning.as_ref()?.chosen()?;
        Some(c.instance == self.instance)
    }
}

/// The table of rows.
pub fn table(rows: &[BucketRow]) -> String {
    let mut s = String::from(
        "<table class=\"buckets\"><thead><tr><th>bucket</th><th>chosen instance</th><th>from</th><th class=\"num\">µs</th><th>model's pick</th><th class=\"num\">µs</th><th class=\"num\">speedup</th><th class=\"num\">timed</th><th class=\"num\">ρ</th><th>tune data</th></tr></thead><tbody>",
    );
    for r in rows {
        let speedup = match (r.micros, r.model_micros) {
            (Some(t), Some(m)) if t > 0.0 => format!("{:.2}×", m / t),
            _ => "–".into(),
        };
        let same = r.model_instance.as_deref() == Some(r.instance.as_str());
        let (timed, rho, agree) = match &r.tuning {
            Some(t) => (
                t.timed.len().to_string(),
                t.spearman().map_or("–".into(), |x| format!("{x:.2}")),
                match r.agrees() {
                    Some(true) => "<span class=\"ok\">agrees</span>".to_string(),
                    Some(false) => format!(
                        "<span class=\"bad\">chose {}</span>",
                        esc(&t.chosen().map_or(String::new(), |c| c.instance.clone()))
                    ),
                    None => "no correct instance".into(),
                },
            ),
            None => ("–".into(), "–".into(), "–".into()),
        };
        let problem = r
            .problem
            .as_ref()
            .map(|p| format!(" <span class=\"bad\" title=\"{}\">⚠</span>", esc(p)))
            .unwrap_or_default();
        let _ = write!(
            s,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}{problem}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{speedup}</td><td class=\"num\">{timed}</td><td class=\"num\">{rho}</td><td>{agree}</td></tr>",
            esc(&r.bucket),
            esc(&r.instance),
            esc(&r.origin),
            r.micros.map_or("–".into(), sig3),
            match &r.model_instance {
                Some(m) if same => "<span class=\"dim\">same</span>".to_string(),
                Some(m) => format!("<code>{}</code>", esc(m)),
                None => "–".into(),
            },
            r.model_micros.map_or("–".into(), sig3),
        );
    }
    s.push_str("</tbody></table>");
    s
}

/// Panel layout: (per row, width, height); smaller panels for many
/// buckets.
fn layout(n: usize) -> (usize, f64, f64) {
    if n > 12 {
        (6, 188.0, 150.0)
    } else {
        (4, 282.0, 196.0)
    }
}
const PL: f64 = 44.0;
const PR: f64 = 10.0;
const PT: f64 = 36.0;
const PB: f64 = 30.0;

/// Small multiples: one scatter per bucket with tune data (`rows` whose
/// `tuning` is set), each point a `cand` (failed ones `cand failed`, drawn
/// as crosses at the top).
pub fn svg(rows: &[&BucketRow]) -> String {
    let n = rows.len();
    let (per_row, pw, ph) = layout(n);
    let cols = n.clamp(1, per_row);
    let lines = n.div_ceil(per_row).max(1);
    let width = pw * cols as f64;
    let height = ph * lines as f64;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"landscape\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\" aria-label=\"tuning landscape\">",
        px(width),
        px(height),
        px(width),
        px(height)
    );
    for (i, r) in rows.iter().enumerate() {
        let Some(t) = &r.tuning else { continue };
        let ox = pw * (i % per_row) as f64;
        let oy = ph * (i / per_row) as f64;
        panel(&mut s, r, t, (ox, oy, pw, ph));
    }
    s.push_str("</svg>");
    s
}

fn panel(s: &mut String, r: &BucketRow, t: &BucketTuning, frame: (f64, f64, f64, f64)) {
    let (ox, oy, pw, ph) = frame;
    let x0 = ox + PL;
    let x1 = ox + pw - PR;
    let y0 = oy + ph - PB;
    let y1 = oy + PT;
    let ok: Vec<(usize, f64, f64)> = t
        .timed
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.micros.map(|m| (i, c.model_micros, m)))
        .collect();
    let xs: Vec<f64> = t.timed.iter().map(|c| c.model_micros).collect();
    let ys: Vec<f64> = ok.iter().map(|p| p.2).collect();
    let x = LogAxis::padded(&xs, x0, x1, 0.08);
    let y = LogAxis::padded(&ys, y0, y1, 0.1);
    let rho = t
        .spearman()
        .map_or("ρ n/a".to_string(), |v| format!("ρ = {v:.2}"));
    let _ = write!(
        s,
        "<g class=\"panel\" data-bucket=\"{}\" data-timed=\"{}\"><rect class=\"pframe\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"4\"/><text class=\"ptitle\" x=\"{}\" y=\"{}\">{}</text><text class=\"psub\" x=\"{}\" y=\"{}\">{} · {} timed{}</text>",
        esc(&r.bucket),
        t.timed.len(),
        px(ox + 4.0),
        px(oy + 4.0),
        px(pw - 8.0),
        px(ph - 8.0),
        px(ox + 12.0),
        px(oy + 20.0),
        esc(&cut(&r.bucket, ((pw - 20.0) / 7.0) as usize)),
        px(ox + 12.0),
        px(oy + 32.0),
        rho,
        t.timed.len(),
        match r.agrees() {
            Some(false) => " · ≠ prism.lock",
            _ => "",
        }
    );
    let _ = write!(
        s,
        "<rect class=\"plot\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/>",
        px(x0),
        px(y1),
        px(x1 - x0),
        px(y0 - y1)
    );
    // Axis ends: the range's extremes.
    let lo_hi = |a: &LogAxis| (10f64.powf(a.lo), 10f64.powf(a.hi));
    let (xl, xh) = lo_hi(&x);
    let (yl, yh) = lo_hi(&y);
    let _ = write!(
        s,
        "<text class=\"ptick\" x=\"{}\" y=\"{}\">{}</text><text class=\"ptick\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><text class=\"ptick\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">model µs</text><text class=\"ptick\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><text class=\"ptick\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><text class=\"ptick\" transform=\"translate({},{}) rotate(-90)\" text-anchor=\"middle\">measured µs</text>",
        px(x0),
        px(y0 + 12.0),
        sig3(xl),
        px(x1),
        px(y0 + 12.0),
        sig3(xh),
        px((x0 + x1) / 2.0),
        px(y0 + 22.0),
        px(x0 - 3.0),
        px(y0),
        sig3(yl),
        px(x0 - 3.0),
        px(y1 + 8.0),
        sig3(yh),
        px(ox + 14.0),
        px((y0 + y1) / 2.0)
    );
    // Failed instances: crosses along the top.
    for (i, c) in t.timed.iter().enumerate() {
        if c.micros.is_some() {
            continue;
        }
        let cx = x.at(c.model_micros);
        let cy = y1 + 5.0;
        let _ = write!(
            s,
            "<g class=\"cand failed\" data-index=\"{i}\"><title>{}: failed ({})</title><path d=\"M{},{} l6,6 m0,-6 l-6,6\"/></g>",
            esc(&c.instance),
            esc(c.error.as_deref().unwrap_or("no time")),
            px(cx - 3.0),
            px(cy - 3.0)
        );
    }
    for (i, model, measured) in &ok {
        let c = &t.timed[*i];
        let (cx, cy) = (x.at(*model), y.at(*measured));
        let chosen = t.chosen == Some(*i);
        let pick = *i == 0;
        let class = match (chosen, pick) {
            (true, true) => "cand chosen model-pick",
            (true, false) => "cand chosen",
            (false, true) => "cand model-pick",
            (false, false) => "cand",
        };
        let _ = write!(
            s,
            "<g class=\"{class}\" data-index=\"{i}\"><title>{}: model {} µs, measured {} µs{}{}</title><circle cx=\"{}\" cy=\"{}\" r=\"3.2\"/>",
            esc(&c.instance),
            sig3(*model),
            sig3(*measured),
            if chosen { " (chosen)" } else { "" },
            if pick { " (the model's pick)" } else { "" },
            px(cx),
            px(cy)
        );
        if pick {
            let _ = write!(
                s,
                "<rect class=\"pickmark\" x=\"{}\" y=\"{}\" width=\"11\" height=\"11\"/>",
                px(cx - 5.5),
                px(cy - 5.5)
            );
        }
        if chosen {
            let _ = write!(
                s,
                "<circle class=\"ring\" cx=\"{}\" cy=\"{}\" r=\"7.5\"/>",
                px(cx),
                px(cy)
            );
        }
        s.push_str("</g>");
    }
    s.push_str("</g>");
}
