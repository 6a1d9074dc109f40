//! The page: a header (prism.toml, device, arch), a table of contents, an
//! overview (a table and the roofline of every workload's drawn kernels),
//! then a section per workload. Inline CSS and SVG only; a
//! Content-Security-Policy forbids loading anything.

use std::fmt::Write as _;

use super::funnel::Funnel;
use super::svg::{count, esc, id, si, sig3};
use super::{Report, Section, landscape, roofline};

const CSS: &str = r#"
:root { --ink:#1d2330; --muted:#6b7280; --line:#e5e7eb; --accent:#4269d0; --bg:#f4f6fa; --card:#fff; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 12.5px; }
header.top { background: linear-gradient(120deg, #1f2a44, #2d3f6b); color:#fff; padding: 22px 32px 18px; }
header.top h1 { margin:0 0 4px; font-size: 24px; font-weight: 650; letter-spacing: .2px; }
header.top h1 span { color:#aab8e0; font-weight: 400; }
.chips { display:flex; flex-wrap:wrap; gap:8px; margin-top:10px; }
.chip { background: rgba(255,255,255,.12); border:1px solid rgba(255,255,255,.18); border-radius: 999px; padding: 3px 11px; font-size: 12.5px; }
.chip b { color:#cfe0ff; font-weight:600; margin-right:4px; }
main { max-width: 1240px; margin: 0 auto; padding: 18px 24px 40px; }
.card { background: var(--card); border:1px solid var(--line); border-radius: 10px; padding: 18px 22px; margin: 0 0 18px; box-shadow: 0 1px 2px rgba(16,24,40,.05); }
h2 { margin: 0 0 6px; font-size: 20px; }
h2 a.anchor { color: inherit; text-decoration: none; }
h3 { margin: 18px 0 8px; font-size: 15px; color:#243256; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
p.note, .note { color: var(--muted); font-size: 12.5px; margin: 4px 0 8px; }
nav.toc ol { margin: 6px 0 0; padding-left: 20px; columns: 3; }
nav.toc li { margin: 2px 0; }
a { color: var(--accent); }
table { border-collapse: collapse; width: 100%; font-size: 12.5px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
table.buckets td:nth-child(-n+2), table.buckets td:nth-child(5), table.overview td { white-space: nowrap; }
table.overview td:last-child, table.overview td:nth-child(3) { white-space: normal; }
th { background:#f8fafc; color:#374151; font-weight: 600; position: sticky; top: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) td { background: #fbfcfe; }
.scroll { overflow-x: auto; }
.tablewrap { max-height: 460px; overflow: auto; border:1px solid var(--line); border-radius: 6px; }
.ok { color:#15803d; font-weight: 600; }
.bad { color:#b91c1c; font-weight: 600; }
.dim { color: var(--muted); }
.notes { background:#fff8e6; border:1px solid #f5d68a; border-radius: 8px; padding: 10px 16px; margin: 0 0 18px; }
.notes li { margin: 3px 0; }
.pair { display:flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
.pair > div { flex: 0 0 auto; }
.funnelbox { display:flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
.funnelbox table { width: auto; }
.funnelbox > div:last-child { flex: 1 1 320px; min-width: 300px; }
table.candidates td:nth-child(-n+5) { white-space: nowrap; }
.desc { font-size: 14.5px; margin: 2px 0 8px; }
.wlhead { display:flex; justify-content: space-between; align-items: baseline; gap: 12px; }
nav.sub a { margin-left: 14px; font-size: 12.5px; text-decoration: none; }
.meta { display:flex; flex-wrap: wrap; gap: 6px 18px; font-size: 12.5px; color:#374151; margin: 4px 0 6px; }
.meta b { color: var(--muted); font-weight: 500; }
details summary { cursor: pointer; color: var(--accent); font-size: 12.5px; }
pre.program { background:#f8fafc; border:1px solid var(--line); border-radius: 6px; padding: 8px 10px; overflow-x: auto; margin: 6px 0; }
.legend { display:flex; flex-wrap: wrap; gap: 4px 14px; font-size: 12px; margin: 6px 0 0; }
.legend i { display:inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 5px; vertical-align: -1px; }
.legend i.hollow { border: 1.5px solid #4b5563; background: #fff; }
.legend i.solid { background: #4b5563; }
footer { color: var(--muted); font-size: 12px; text-align: center; padding: 8px 0 24px; }
svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; fill: var(--ink); }
svg .kline, svg .ttype { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace; white-space: pre; }
.diagram .kbox { fill:#fff; stroke:#2b3a55; stroke-width:1.2; }
.diagram .khead { fill:#2b3a55; }
.diagram .kname { fill:#fff; font-size:12.5px; font-weight:600; }
.diagram .kkind { fill:#c9d3ea; font-size:11px; }
.diagram .kline { font-size:11px; fill:#1d2330; }
.diagram .klabel { fill:#8a6d00; font-weight:600; }
.diagram .tensor rect { stroke-width:1.3; }
.diagram .tensor.input rect { fill:#e8efff; stroke:#4269d0; }
.diagram .tensor.output rect { fill:#fff3d6; stroke:#d99a00; }
.diagram .tensor.intermediate rect { fill:#eef0f3; stroke:#8a8fa0; }
.diagram .tname { font-size:12px; font-weight:600; }
.diagram .ttype { font-size:10.5px; fill:#4b5563; }
.diagram .edge { fill:none; stroke:#555; stroke-width:1.3; }
.diagram .edge.lane { stroke:#8a8fa0; stroke-dasharray:4 3; }
.funnel .flabel { font-size:12px; }
.funnel .fcount { font-size:12px; font-weight:600; }
.funnel .main rect { fill:#4269d0; }
.funnel .pruned rect { fill:#ff725c; }
.funnel .added rect { fill:#3ca951; }
.funnel .pruned .flabel { fill:#9f2d1f; }
.funnel .added .flabel { fill:#1f6b30; }
.roofline .grid, .bandwidth .grid { stroke:#eef0f4; }
.roofline .frame, .bandwidth .frame { fill:none; stroke:#9ca3af; }
.roofline .tick, .bandwidth .tick { font-size:10.5px; fill:#6b7280; }
.roofline .axis, .bandwidth .axis { font-size:11.5px; fill:#374151; }
.roof { fill:none; stroke:#111827; stroke-width:2; }
.rooflabel { font-size:11px; fill:#111827; font-weight:600; }
.roofline circle, .bandwidth circle { stroke-width:1.6; fill-opacity:.85; }
.roofline circle.rep, .bandwidth circle.rep { stroke:#111827; stroke-width:1.8; }
.empty { fill:#9ca3af; font-size:13px; }
.landscape .pframe { fill:#fff; stroke:#e5e7eb; }
.landscape .plot { fill:#fafbfc; stroke:#d1d5db; }
.landscape .ptitle { font-size:12px; font-weight:600; }
.landscape .psub { font-size:10.5px; fill:#6b7280; }
.landscape .ptick { font-size:9.5px; fill:#6b7280; }
.landscape .cand circle { fill:#4269d0; fill-opacity:.7; }
.landscape .cand.failed path { stroke:#dc2626; stroke-width:1.6; }
.landscape .ring { fill:none; stroke:#ff725c; stroke-width:2.2; fill-opacity:1; }
.landscape .pickmark { fill:none; stroke:#111827; stroke-width:1.2; }
"#;

/// The whole page.
pub fn page(r: &Report) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n<title>prism report: {}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        esc(&r.title)
    );
    header(&mut s, r);
    s.push_str("<main>\n");
    if !r.notes.is_empty() {
        s.push_str("<div class=\"notes\" id=\"notes\"><b>Notes</b><ul>");
        for n in &r.notes {
            let _ = write!(s, "<li>{}</li>", esc(n));
        }
        s.push_str("</ul></div>\n");
    }
    overview(&mut s, r);
    for (i, w) in r.workloads.iter().enumerate() {
        section(&mut s, r, i, w);
    }
    let _ = write!(
        s,
        "</main>\n<footer>made by prism {} from {}. Every build writes this page; <code>prism report</code> writes it on demand (with <code>--tune</code> and <code>--bench</code> files).</footer>\n</body>\n</html>\n",
        esc(&r.prism),
        esc(&r.title)
    );
    s
}

fn header(s: &mut String, r: &Report) {
    let _ = write!(
        s,
        "<header class=\"top\"><h1>prism report <span>· {}</span></h1><div class=\"chips\"><span class=\"chip\"><b>device</b>{}</span><span class=\"chip\"><b>arch</b>{}</span><span class=\"chip\"><b>targets</b>{}</span><span class=\"chip\"><b>nvcc</b>{}</span><span class=\"chip\"><b>prism</b>{}</span><span class=\"chip\"><b>workloads</b>{}</span></div></header>",
        esc(&r.title),
        esc(&r.device),
        esc(&r.arch),
        esc(&r.archs.join(", ")),
        esc(r.nvcc.as_deref().unwrap_or("–")),
        esc(&r.prism),
        r.workloads.len()
    );
    s.push('\n');
}

fn anchor(name: &str) -> String {
    format!("wl-{}", id(name))
}

fn overview(s: &mut String, r: &Report) {
    s.push_str("<section class=\"card\" id=\"overview\"><h2>Overview</h2>");
    s.push_str("<ul class=\"note\">");
    for src in &r.sources {
        let _ = write!(s, "<li>{}</li>", esc(src));
    }
    s.push_str("</ul>");
    s.push_str("<nav class=\"toc\"><b>Contents</b><ol>");
    for w in &r.workloads {
        let _ = write!(
            s,
            "<li><a href=\"#{}\">{}</a></li>",
            anchor(&w.name),
            esc(&w.name)
        );
    }
    s.push_str("</ol></nav>");
    s.push_str("<h3>Workloads</h3><div class=\"scroll\"><table class=\"overview\"><thead><tr><th>workload</th><th>bucket drawn</th><th>instance</th><th class=\"num\">kernels</th><th class=\"num\">µs</th><th class=\"num\">buckets</th><th class=\"num\">measured</th><th class=\"num\">mean ρ</th><th class=\"num\">agrees</th><th>search (valid → verified → chosen)</th></tr></thead><tbody>");
    for w in &r.workloads {
        let row = w.row();
        let micros: f64 = w
            .roofline
            .iter()
            .filter(|p| p.representative)
            .map(|p| p.micros)
            .sum();
        let measured_rep = w.roofline.iter().any(|p| p.representative && p.measured);
        let rhos: Vec<f64> = w
            .rows
            .iter()
            .filter_map(|r| r.tuning.as_ref().and_then(|t| t.spearman()))
            .collect();
        let (agree, compared) = w.agreement();
        let measured = w
            .rows
            .iter()
            .filter(|r| r.origin.contains("measured"))
            .count();
        let search = match &w.funnel {
            Ok(f) => format!(
                "{} → {} → {}",
                f.enumeration
                    .as_ref()
                    .map_or_else(|_| "–".into(), |e| count(e.valid)),
                f.verified(),
                f.chosen
                    .and_then(|i| f.candidates.get(i))
                    .map_or_else(|| "none".into(), |c| esc(&c.label))
            ),
            Err(_) => "<span class=\"dim\">not recorded</span>".into(),
        };
        let _ = write!(
            s,
            "<tr><td><a href=\"#{}\">{}</a></td><td>{}</td><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{measured}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{search}</td></tr>",
            anchor(&w.name),
            esc(&w.name),
            esc(&w.bucket),
            esc(w
                .instance
                .as_deref()
                .or(row.map(|r| r.instance.as_str()))
                .unwrap_or("–")),
            w.diagram.as_ref().map_or(0, |d| d.kernels.len()),
            if micros > 0.0 {
                format!(
                    "{}{}",
                    sig3(micros),
                    if measured_rep { "" } else { " (model)" }
                )
            } else {
                "–".into()
            },
            w.rows.len(),
            if rhos.is_empty() {
                "–".into()
            } else {
                format!("{:.2}", rhos.iter().sum::<f64>() / rhos.len() as f64)
            },
            if compared == 0 {
                "–".into()
            } else {
                format!("{agree} / {compared}")
            },
        );
    }
    s.push_str("</tbody></table></div>");
    let (agree, compared) = r.agreement();
    if compared > 0 {
        let _ = write!(
            s,
            "<p class=\"note\">Tune data chose the instance the build runs in {agree} of {compared} buckets ({}).</p>",
            esc(&r.arch)
        );
    }
    // Every workload's drawn kernels on one roofline.
    let points: Vec<roofline::RoofPoint> = r
        .workloads
        .iter()
        .flat_map(|w| w.roofline.iter().filter(|p| p.representative).cloned())
        .map(|mut p| {
            p.representative = false;
            p
        })
        .collect();
    let series: Vec<(String, usize)> = r
        .workloads
        .iter()
        .enumerate()
        .filter(|(_, w)| !w.roofline.is_empty())
        .map(|(i, w)| (w.name.clone(), i))
        .collect();
    let _ = write!(
        s,
        "<h3>Roofline: every workload's drawn kernels ({})</h3><p class=\"note\">Roofs: {}. Time per kernel: the chosen instance's measured time split in the cost model's proportions (filled), else the model's estimate (hollow); bytes and flops are the cost model's at the bucket's tuning point.</p><div class=\"pair\"><div>{}</div><div>{}</div></div>{}",
        esc(&r.arch),
        esc(&r.roofs.label),
        roofline::roofline_svg(&points, &r.roofs),
        roofline::bandwidth_svg(&points, &r.roofs),
        roofline::legend(&series)
    );
    s.push_str("</section>\n");
}

fn funnel_html(s: &mut String, f: &Funnel) {
    let _ = write!(
        s,
        "<p class=\"note\">Costs compared at {}. Bar widths are logarithmic; red bars are taken out, green ones join.</p><div class=\"funnelbox\"><div>{}</div><div>",
        esc(&f.point),
        super::funnel::svg(f)
    );
    match &f.enumeration {
        Ok(e) => {
            let _ = write!(
                s,
                "<p class=\"note\">e-graph: {} nodes, {} classes; {} kernel-cut sets tried{}.</p>",
                count(e.egraph_nodes),
                count(e.egraph_classes),
                count(e.cut_sets),
                if e.walks_at_bound > 0 {
                    format!("; {} walks stopped at their bound", e.walks_at_bound)
                } else {
                    String::new()
                }
            );
            if !e.walk_pruned.is_empty() {
                s.push_str("<table class=\"walk\"><thead><tr><th>choices pruned while walking terms</th><th class=\"num\">count</th></tr></thead><tbody>");
                for (why, n) in &e.walk_pruned {
                    let _ = write!(
                        s,
                        "<tr><td>{}</td><td class=\"num\">{}</td></tr>",
                        esc(why),
                        count(*n)
                    );
                }
                s.push_str("</tbody></table>");
            }
        }
        Err(e) => {
            let _ = write!(s, "<p class=\"bad\">the enumeration failed: {}</p>", esc(e));
        }
    }
    s.push_str("</div></div>");
    s.push_str("<div class=\"scroll\"><table class=\"candidates\"><thead><tr><th></th><th>candidate</th><th class=\"num\">kernels</th><th class=\"num\">bytes</th><th class=\"num\">est. µs</th><th>proof (e-graph)</th><th>cross-check (numeric)</th></tr></thead><tbody>");
    for (i, c) in f.candidates.iter().enumerate() {
        let mark = if f.chosen == Some(i) { "→" } else { "" };
        let check = |ok: bool, d: &str| {
            format!(
                "<span class=\"{}\">{}</span>",
                if ok { "ok" } else { "bad" },
                esc(d)
            )
        };
        let _ = write!(
            s,
            "<tr><td class=\"ok\">{mark}</td><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.label),
            c.kernels,
            c.bytes.map_or("–".into(), |b| si(b as f64, "B")),
            esc(c.estimate.as_deref().unwrap_or("–")),
            check(c.proof.ok, &c.proof.detail),
            check(c.cross_check.ok, &c.cross_check.detail)
        );
    }
    s.push_str("</tbody></table></div>");
}

fn section(s: &mut String, r: &Report, wi: usize, w: &Section) {
    let a = anchor(&w.name);
    let _ = write!(
        s,
        "<section class=\"card workload\" id=\"{a}\" data-workload=\"{}\"><div class=\"wlhead\"><h2><a class=\"anchor\" href=\"#{a}\">{}</a></h2><nav class=\"sub\"><a href=\"#{a}-graph\">μGraph</a><a href=\"#{a}-funnel\">funnel</a><a href=\"#{a}-tuning\">tuning</a><a href=\"#{a}-roofline\">roofline</a><a href=\"#overview\">top ↑</a></nav></div>",
        esc(&w.name),
        esc(&w.name)
    );
    if let Some(d) = &w.description {
        let _ = write!(s, "<p class=\"desc\">{}</p>", esc(d));
    }
    let ins: Vec<String> = w
        .inputs
        .iter()
        .map(|(n, t)| format!("<code>{}: {}</code>", esc(n), esc(t)))
        .collect();
    let outs: Vec<String> = w
        .outputs
        .iter()
        .map(|(n, t)| format!("<code>{}: {}</code>", esc(n), esc(t)))
        .collect();
    let _ = write!(
        s,
        "<div class=\"meta\"><span><b>inputs</b> {}</span><span><b>outputs</b> {}</span><span><b>dims</b> {}</span></div><details><summary>program ({} operators)</summary><pre class=\"program\">{}</pre></details>",
        ins.join(", "),
        outs.join(", "),
        esc(&w.dims.join(", ")),
        w.ops.len(),
        esc(&w.ops.join("\n"))
    );
    for n in &w.notes {
        let _ = write!(s, "<p class=\"bad\">{}</p>", esc(n));
    }
    // The diagram.
    let _ = write!(
        s,
        "<h3 id=\"{a}-graph\">Chosen μGraph</h3><p class=\"note\">{}</p>",
        esc(&w.diagram_note)
    );
    match &w.diagram {
        Some(d) => {
            let _ = write!(
                s,
                "<div class=\"scroll\">{}</div>",
                super::diagram::svg(d, &format!("{wi}"))
            );
        }
        None => s.push_str("<p class=\"dim\">no diagram</p>"),
    }
    // The funnel.
    let _ = write!(s, "<h3 id=\"{a}-funnel\">Search funnel</h3>");
    match &w.funnel {
        Ok(f) => funnel_html(s, f),
        Err(why) => {
            let _ = write!(s, "<p class=\"note\">{}</p>", esc(why));
        }
    }
    // Tuning.
    let _ = write!(
        s,
        "<h3 id=\"{a}-tuning\">Tuning ({}, {} buckets)</h3><p class=\"note\">Per shape bucket the instance the build runs, prism.lock's time of it, the cost model's first choice and its time; with tune data, how many instances were timed, Spearman's ρ of model and measured times, and whether the tune data's choice is the build's.</p><div class=\"tablewrap\">{}</div>",
        esc(&r.arch),
        w.rows.len(),
        landscape::table(&w.rows)
    );
    let tuned: Vec<&landscape::BucketRow> = w.rows.iter().filter(|r| r.tuning.is_some()).collect();
    if tuned.is_empty() {
        s.push_str("<p class=\"note\">No tune data for this workload: the landscape needs <code>prism tune</code>'s prism.tune.json next to prism.toml, or <code>prism report --tune FILE</code>.</p>");
    } else {
        let _ = write!(
            s,
            "<p class=\"note\">Every timed candidate: the cost model's estimate (x) against the measured time (y), log-log; ringed: chosen; squared: the model's pick; crosses on top: rejected by the GPU check.</p><div class=\"scroll\">{}</div>",
            landscape::svg(&tuned)
        );
    }
    for (arch, rows) in &w.other_archs {
        let _ = write!(
            s,
            "<details><summary>{} ({} buckets)</summary><div class=\"tablewrap\">{}</div></details>",
            esc(arch),
            rows.len(),
            landscape::table(rows)
        );
    }
    // The roofline.
    if w.roofline.is_empty() {
        let _ = write!(
            s,
            "<h3 id=\"{a}-roofline\">Roofline</h3><p class=\"note\">No μGraph to estimate: no roofline.</p>"
        );
    } else {
        let measured = w.roofline.iter().filter(|p| p.measured).count();
        let _ = write!(
            s,
            "<h3 id=\"{a}-roofline\">Roofline ({} kernels over {} buckets)</h3><p class=\"note\">Every kernel of every bucket's instance at the bucket's tuning point; outlined large: the bucket drawn above. {} of {} times measured (the instance's time split in the cost model's proportions), the rest the model's estimate. Roofs: {}.</p><div class=\"pair\"><div>{}</div><div>{}</div></div>",
            w.roofline.len(),
            w.rows.len(),
            measured,
            w.roofline.len(),
            esc(&r.roofs.label),
            roofline::roofline_svg(&w.roofline, &r.roofs),
            roofline::bandwidth_svg(&w.roofline, &r.roofs)
        );
    }
    s.push_str("</section>\n");
}
