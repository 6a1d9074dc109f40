//! The roofline: every kernel's arithmetic intensity (tensor flops per
//! DRAM byte) against its achieved throughput, under the device's
//! bandwidth and tensor-core roofs; and, since kernels without tensor
//! flops have no place on that plot, a bandwidth view of every kernel
//! (bytes moved against bytes per second, under the bandwidth roof).
//!
//! Bytes and flops per kernel come from the cost model
//! ([`crate::tune::cost::estimate`]) at the bucket's tuning point. Times
//! are measured where tune data or prism.lock has the chosen instance's
//! time (a whole-variant time, split among its kernels in the model's
//! proportions, and labelled so), else the model's estimate. The roofs
//! are measured (`prism bench --json`: the copy bandwidth and the mma.sync
//! peak of its probes) or the hardware description's (labelled "spec").

use std::fmt::Write as _;
use std::path::Path;

use serde::Deserialize;

use super::ReportError;
use super::svg::{LogAxis, colour, esc, px, si, sig3};

/// The device's roofs.
#[derive(Clone, Debug, PartialEq)]
pub struct Roofs {
    pub bytes_per_s: f64,
    pub flops_per_s: f64,
    /// From `prism bench` probes (else the hardware description).
    pub measured: bool,
    /// Where they come from, for the page.
    pub label: String,
    /// The device they describe.
    pub device: String,
}

impl Roofs {
    /// Intensity where the roofs meet, flop/byte.
    pub fn ridge(&self) -> f64 {
        self.flops_per_s / self.bytes_per_s
    }
}

/// What the report reads of a `prism bench --json` report.
#[derive(Clone, Debug, Deserialize)]
pub struct BenchFile {
    pub device: String,
    pub arch: String,
    pub copy_bytes_per_s: f64,
    pub mma_flops_per_s: f64,
    #[serde(default)]
    pub launch_floor_us: Option<f64>,
    #[serde(default)]
    pub toml: Option<String>,
}

/// Read a `prism bench --json` report.
pub fn read_bench(path: &Path) -> Result<BenchFile, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReportError::ReadBench {
        path: path.to_path_buf(),
        source,
    })?;
    parse_bench(&text).map_err(|message| ReportError::MalformedBench {
        path: path.to_path_buf(),
        message,
    })
}

/// Parse a `prism bench --json` report; `Err` says what is wrong.
pub fn parse_bench(text: &str) -> Result<BenchFile, String> {
    let b: BenchFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
    for (name, v) in [
        ("copy_bytes_per_s", b.copy_bytes_per_s),
        ("mma_flops_per_s", b.mma_flops_per_s),
    ] {
        if !v.is_finite() || v <= 0.0 {
            return Err(format!("`{name}` is {v}, not a positive number"));
        }
    }
    Ok(b)
}

/// One kernel at one bucket's tuning point.
#[derive(Clone, Debug, PartialEq)]
pub struct RoofPoint {
    pub workload: String,
    /// Colour index.
    pub series: usize,
    pub bucket: String,
    pub kernel: String,
    pub bytes: u64,
    pub flops: u64,
    pub micros: f64,
    /// The time is a measurement (split in the model's proportions), else
    /// the model's estimate.
    pub measured: bool,
    /// Of the workload's representative bucket (the one drawn).
    pub representative: bool,
}

impl RoofPoint {
    pub fn intensity(&self) -> f64 {
        self.flops as f64 / (self.bytes.max(1)) as f64
    }
    pub fn flops_per_s(&self) -> f64 {
        self.flops as f64 / (self.micros * 1e-6)
    }
    pub fn bytes_per_s(&self) -> f64 {
        self.bytes as f64 / (self.micros * 1e-6)
    }

    fn tooltip(&self, roofs: &Roofs) -> String {
        let roof = (self.bytes as f64 / roofs.bytes_per_s)
            .max(self.flops as f64 / roofs.flops_per_s)
            * 1e6;
        format!(
            "{} {} · {}: {} µs ({}), {}, {}, {} ({:.0}% of the bandwidth roof){}",
            self.workload,
            self.bucket,
            self.kernel,
            sig3(self.micros),
            if self.measured {
                "measured, split by the model's proportions"
            } else {
                "model estimate"
            },
            si(self.bytes as f64, "B"),
            si(self.flops as f64, "FLOP"),
            si(self.bytes_per_s(), "B/s"),
            100.0 * self.bytes_per_s() / roofs.bytes_per_s,
            if self.flops > 0 {
                format!(
                    ", {} ({:.0}% of the roofline time bound)",
                    si(self.flops_per_s(), "FLOP/s"),
                    100.0 * roof / self.micros
                )
            } else {
                String::new()
            }
        )
    }
}

const W: f64 = 560.0;
const H: f64 = 330.0;
const LEFT: f64 = 74.0;
const RIGHT: f64 = 18.0;
const TOP: f64 = 20.0;
const BOTTOM: f64 = 46.0;

fn axes(s: &mut String, x: &LogAxis, y: &LogAxis, xlabel: &str, ylabel: &str, xu: &str, yu: &str) {
    for t in x.ticks() {
        let px_ = x.at(t);
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\"/><text class=\"tick\" x=\"{0}\" y=\"{3}\" text-anchor=\"middle\">{4}</text>",
            px(px_),
            px(TOP),
            px(H - BOTTOM),
            px(H - BOTTOM + 15.0),
            esc(&si(t, xu))
        );
    }
    for t in y.ticks() {
        let py = y.at(t);
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\"/><text class=\"tick\" x=\"{3}\" y=\"{4}\" text-anchor=\"end\">{5}</text>",
            px(LEFT),
            px(py),
            px(W - RIGHT),
            px(LEFT - 6.0),
            px(py + 4.0),
            esc(&si(t, yu))
        );
    }
    let _ = write!(
        s,
        "<rect class=\"frame\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/><text class=\"axis\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text><text class=\"axis\" transform=\"translate({},{}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        px(LEFT),
        px(TOP),
        px(W - LEFT - RIGHT),
        px(H - TOP - BOTTOM),
        px((LEFT + W - RIGHT) / 2.0),
        px(H - 8.0),
        esc(xlabel),
        px(16.0),
        px((TOP + H - BOTTOM) / 2.0),
        esc(ylabel)
    );
}

fn point(s: &mut String, class: &str, p: &RoofPoint, x: f64, y: f64, roofs: &Roofs) {
    let r = if p.representative { 5.5 } else { 3.8 };
    let c = colour(p.series);
    let fill = if p.measured { c } else { "white" };
    let _ = write!(
        s,
        "<circle class=\"{class}{}\" data-workload=\"{}\" data-bucket=\"{}\" data-kernel=\"{}\" cx=\"{}\" cy=\"{}\" r=\"{r}\" fill=\"{fill}\" stroke=\"{c}\"><title>{}</title></circle>",
        if p.representative { " rep" } else { "" },
        esc(&p.workload),
        esc(&p.bucket),
        esc(&p.kernel),
        px(x),
        px(y),
        esc(&p.tooltip(roofs))
    );
}

/// The roofline of the points with tensor flops.
pub fn roofline_svg(points: &[RoofPoint], roofs: &Roofs) -> String {
    let with: Vec<&RoofPoint> = points.iter().filter(|p| p.flops > 0).collect();
    let ridge = roofs.ridge();
    let mut xs: Vec<f64> = with.iter().map(|p| p.intensity()).collect();
    xs.push(ridge * 4.0);
    xs.push(ridge / 100.0);
    let mut ys: Vec<f64> = with.iter().map(|p| p.flops_per_s()).collect();
    ys.push(roofs.flops_per_s * 2.0);
    ys.push(roofs.flops_per_s / 1e4);
    let x = LogAxis::covering(&xs, LEFT, W - RIGHT, 2.0);
    let y = LogAxis::covering(&ys, H - BOTTOM, TOP, 2.0);
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"roofline\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"roofline\">"
    );
    axes(
        &mut s,
        &x,
        &y,
        "arithmetic intensity (tensor FLOP per DRAM byte)",
        "achieved FLOP/s",
        "",
        "",
    );
    // The roofs: bandwidth × intensity up to the ridge, then the peak.
    let x_lo = 10f64.powf(x.lo);
    let x_hi = 10f64.powf(x.hi);
    let y_lo = 10f64.powf(y.lo);
    let start = if roofs.bytes_per_s * x_lo < y_lo {
        y_lo / roofs.bytes_per_s
    } else {
        x_lo
    };
    let (ax, ay) = (x.at(start), y.at(roofs.bytes_per_s * start));
    let (bx, by) = (x.at(ridge), y.at(roofs.flops_per_s));
    let angle = (by - ay).atan2(bx - ax).to_degrees();
    let (lx, ly) = (ax + 0.12 * (bx - ax), ay + 0.12 * (by - ay) - 6.0);
    let _ = write!(
        s,
        "<polyline class=\"roof\" points=\"{},{} {},{} {},{}\"/><text class=\"rooflabel\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{} peak</text><text class=\"rooflabel\" transform=\"translate({},{}) rotate({:.1})\">{}</text>",
        px(ax),
        px(ay),
        px(bx),
        px(by),
        px(x.at(x_hi)),
        px(by),
        px(W - RIGHT - 4.0),
        px(by - 6.0),
        esc(&si(roofs.flops_per_s, "FLOP/s")),
        px(lx),
        px(ly),
        angle,
        esc(&si(roofs.bytes_per_s, "B/s"))
    );
    for p in &with {
        point(
            &mut s,
            "rp",
            p,
            x.at(p.intensity()),
            y.at(p.flops_per_s()),
            roofs,
        );
    }
    if with.is_empty() {
        let _ = write!(
            s,
            "<text class=\"empty\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">no kernel with tensor-core flops</text>",
            px((LEFT + W) / 2.0),
            px((TOP + H) / 2.0)
        );
    }
    s.push_str("</svg>");
    s
}

/// Every point by bytes moved and achieved bandwidth, under the bandwidth
/// roof.
pub fn bandwidth_svg(points: &[RoofPoint], roofs: &Roofs) -> String {
    let mut xs: Vec<f64> = points.iter().map(|p| p.bytes as f64).collect();
    if xs.is_empty() {
        xs.push(1e6);
    }
    let mut ys: Vec<f64> = points.iter().map(|p| p.bytes_per_s()).collect();
    ys.push(roofs.bytes_per_s * 1.5);
    ys.push(roofs.bytes_per_s / 100.0);
    let x = LogAxis::covering(&xs, LEFT, W - RIGHT, 2.0);
    let y = LogAxis::covering(&ys, H - BOTTOM, TOP, 2.0);
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"bandwidth\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"achieved bandwidth\">"
    );
    axes(
        &mut s,
        &x,
        &y,
        "DRAM bytes moved (model)",
        "achieved bytes/s",
        "B",
        "",
    );
    let ry = y.at(roofs.bytes_per_s);
    let _ = write!(
        s,
        "<line class=\"roof\" x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\"/><text class=\"rooflabel\" x=\"{3}\" y=\"{4}\" text-anchor=\"end\">{5}</text>",
        px(LEFT),
        px(ry),
        px(W - RIGHT),
        px(W - RIGHT - 4.0),
        px(ry - 6.0),
        esc(&si(roofs.bytes_per_s, "B/s"))
    );
    for p in points {
        point(
            &mut s,
            "bp",
            p,
            x.at(p.bytes as f64),
            y.at(p.bytes_per_s()),
            roofs,
        );
    }
    s.push_str("</svg>");
    s
}

/// A legend of series names (`(name, series)`).
pub fn legend(series: &[(String, usize)]) -> String {
    let mut s = String::from("<div class=\"legend\">");
    for (name, i) in series {
        let _ = write!(
            s,
            "<span><i style=\"background:{}\"></i>{}</span>",
            colour(*i),
            esc(name)
        );
    }
    s.push_str("<span><i class=\"hollow\"></i>model estimate</span><span><i class=\"solid\"></i>measured</span></div>");
    s
}
