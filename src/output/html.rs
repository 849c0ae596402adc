//! The HTML report: one self-contained page (inline CSS and SVG, no scripts,
//! nothing fetched) for people who will never run a CLI: headline figures,
//! enforcement per region, readiness, the fleet's daily IMDSv1 calls, who
//! owns what still allows v1, findings, and the instances to act on.
//! Every string from AWS is HTML-escaped.

use std::fmt::Write as _;
use std::io::Write;

use crate::ops::views::ReportData;
use crate::readiness::Readiness;
use crate::report::{FleetDay, RegionSummary};
use crate::rollout::effect::Effect;
use crate::store::query::HistoryRow;

/// Rows of the instance table; the rest are counted, not listed.
const MAX_ROWS: usize = 500;

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

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#1f2328;padding:0 1rem}\
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d0d7de;padding-bottom:.3rem}\
.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{border:1px solid #d0d7de;border-radius:8px;padding:.8rem 1.2rem;min-width:130px}\
.card b{display:block;font-size:1.6rem}table{border-collapse:collapse;width:100%;font-size:13px}\
th,td{border-bottom:1px solid #eaeef2;padding:4px 8px;text-align:left}th{background:#f6f8fa}td.n,th.n{text-align:right}\
svg{display:block;margin:.4rem 0 1.2rem}figure{margin:0}figcaption{font-weight:600;margin-top:1rem}\
.bad{color:#cf222e}.good{color:#1a7f37}.muted{color:#656d76}svg text{font:12px system-ui,sans-serif}";

const GREEN: &str = "#2da44e";
const GREY: &str = "#8c959f";
const RED: &str = "#cf222e";
const BLUE: &str = "#0969da";
const AMBER: &str = "#bf8700";

fn pct(p: Option<f64>) -> String {
    p.map(|p| format!("{p:.1}%")).unwrap_or_else(|| "–".into())
}

/// One bar of a stacked chart: its label and its parts (value, colour, name).
type Bar<'a> = (String, Vec<(u64, &'a str, &'a str)>);

/// Opens an SVG chart that screen readers announce by its title.
fn svg_open(svg: &mut String, id: &str, title: &str, width: f64, height: f64) {
    let _ = write!(
        svg,
        r#"<svg id="{id}" width="{width}" height="{height}" role="img" aria-labelledby="{id}-title"><title id="{id}-title">{}</title>"#,
        esc(title)
    );
}

/// Horizontal stacked bars, one per label.
fn stacked_bars(id: &str, title: &str, rows: &[Bar]) -> String {
    let width = 700.0;
    let label_w = 240.0;
    let h = 22.0;
    let total_h = rows.len() as f64 * (h + 8.0) + 30.0;
    let mut svg = String::new();
    // Screen readers announce an `role="img"` chart by its title only, so
    // the title carries the numbers the bars draw.
    let said: Vec<String> = rows
        .iter()
        .map(|(label, parts)| {
            let parts: Vec<String> = parts
                .iter()
                .map(|(v, _, name)| format!("{name} {v}"))
                .collect();
            format!("{label}: {}", parts.join(", "))
        })
        .collect();
    let title = format!("{title}. {}", said.join("; "));
    svg_open(&mut svg, id, &title, width + label_w + 20.0, total_h);
    for (i, (label, parts)) in rows.iter().enumerate() {
        let y = i as f64 * (h + 8.0);
        let sum: u64 = parts.iter().map(|p| p.0).sum();
        let _ = write!(svg, r#"<text x="0" y="{}">{}</text>"#, y + 15.0, esc(label));
        let mut x = label_w;
        for (v, colour, name) in parts {
            if sum == 0 || *v == 0 {
                continue;
            }
            let w = width * *v as f64 / sum as f64;
            let _ = write!(
                svg,
                r#"<rect x="{x:.1}" y="{y}" width="{w:.1}" height="{h}" fill="{colour}"><title>{}: {v}</title></rect>"#,
                esc(name)
            );
            x += w;
        }
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}">{sum}</text>"#,
            label_w + width + 4.0,
            y + 15.0
        );
    }
    if let Some((_, parts)) = rows.first() {
        let y = rows.len() as f64 * (h + 8.0) + 12.0;
        let mut x = label_w;
        for (_, colour, name) in parts {
            let _ = write!(
                svg,
                r#"<rect x="{x}" y="{}" width="10" height="10" fill="{colour}"/><text x="{}" y="{y}">{}</text>"#,
                y - 9.0,
                x + 14.0,
                esc(name)
            );
            x += 30.0 + 7.5 * name.len() as f64;
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Daily bars of answered (red) and refused (grey) IMDSv1 calls.
fn daily_chart(days: &[FleetDay]) -> String {
    let (w, h, pad) = (860.0, 180.0, 30.0);
    let max = days
        .iter()
        .map(|d| d.v1_calls.max(d.rejected_calls))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let n = days.len().max(1) as f64;
    let slot = (w - pad) / n;
    let mut svg = String::new();
    let answered: u64 = days.iter().map(|d| d.v1_calls).sum();
    let refused: u64 = days.iter().map(|d| d.rejected_calls).sum();
    let title = format!(
        "IMDSv1 calls per day, answered and refused: {answered} answered and {refused} refused over {} days, at most {} in a day",
        days.len(),
        max as u64
    );
    svg_open(&mut svg, "daily-calls", &title, w, h + 40.0);
    for (i, d) in days.iter().enumerate() {
        let x = pad + i as f64 * slot;
        for (j, (v, colour, name)) in [
            (d.v1_calls, RED, "v1 calls"),
            (d.rejected_calls, GREY, "refused"),
        ]
        .into_iter()
        .enumerate()
        {
            let bh = h * v as f64 / max;
            let _ = write!(
                svg,
                r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="{colour}"><title>{} {name}: {v}</title></rect>"#,
                x + j as f64 * slot * 0.4,
                h - bh,
                slot * 0.38,
                esc(&d.day)
            );
        }
        if i == 0 || i + 1 == days.len() || days.len() <= 14 {
            let _ = write!(
                svg,
                r#"<text x="{x:.1}" y="{}" class="muted">{}</text>"#,
                h + 16.0,
                esc(&d.day[5..])
            );
        }
    }
    let _ = write!(svg, r#"<text x="0" y="12">{}</text>"#, max as u64);
    svg.push_str("</svg>");
    svg
}

/// One series of the trend: its name, colour and one value per scan.
struct Series<'a> {
    name: &'a str,
    colour: &'a str,
    values: Vec<Option<f64>>,
}

/// The trend over stored scans: one point per scan, `max` at the top. Each
/// point carries its number three ways: a tooltip (`<title>`), a
/// `data-value` attribute (what the browser test reads) and a label.
fn trend_chart(id: &str, title: &str, scans: &[HistoryRow], series: &[Series], max: f64) -> String {
    let (w, h, left, top) = (860.0, 170.0, 50.0, 16.0);
    let n = scans.len();
    let step = if n > 1 {
        (w - left - 40.0) / (n - 1) as f64
    } else {
        0.0
    };
    let x = |i: usize| left + i as f64 * step;
    let max = max.max(1.0);
    let y = |v: f64| top + h - h * v / max;
    let mut svg = format!("<figure><figcaption>{}</figcaption>", esc(title));
    let said: Vec<String> = series
        .iter()
        .map(|s| {
            let points: Vec<String> = s
                .values
                .iter()
                .zip(scans)
                .filter_map(|(v, scan)| v.map(|v| format!("scan {} {}", scan.scan, fmt_num(v))))
                .collect();
            format!("{}: {}", s.name, points.join(", "))
        })
        .collect();
    svg_open(
        &mut svg,
        id,
        &format!("{title}. {}", said.join("; ")),
        w,
        h + top + 44.0,
    );
    let _ = write!(
        svg,
        r#"<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="{GREY}"/><text x="0" y="{}">{}</text><text x="0" y="{}">0</text>"#,
        top + h,
        w - 20.0,
        top + h,
        top + 4.0,
        max,
        top + h
    );
    for (i, scan) in scans.iter().enumerate() {
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{}" class="muted" text-anchor="middle">scan {}</text>"#,
            x(i),
            top + h + 16.0,
            scan.scan
        );
    }
    for (k, s) in series.iter().enumerate() {
        let points: Vec<String> = s
            .values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| format!("{:.1},{:.1}", x(i), y(v))))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>"#,
            points.join(" "),
            s.colour
        );
        for (i, v) in s.values.iter().enumerate() {
            let Some(v) = v else { continue };
            let label = fmt_num(*v);
            let _ = write!(
                svg,
                r#"<circle class="point" cx="{:.1}" cy="{:.1}" r="4" fill="{}" data-series="{}" data-scan="{}" data-value="{label}"><title>scan {} ({}): {} {label}</title></circle><text x="{:.1}" y="{:.1}" font-size="11">{label}</text>"#,
                x(i),
                y(*v),
                s.colour,
                esc(s.name),
                scans[i].scan,
                scans[i].scan,
                esc(&scans[i].finished_at),
                esc(s.name),
                x(i) + 6.0,
                y(*v) - 6.0 - 12.0 * k as f64
            );
        }
        let lx = left + 180.0 * k as f64;
        let _ = write!(
            svg,
            r#"<rect x="{lx}" y="{}" width="10" height="10" fill="{}"/><text x="{}" y="{}">{}</text>"#,
            top + h + 26.0,
            s.colour,
            lx + 14.0,
            top + h + 35.0,
            esc(s.name)
        );
    }
    svg.push_str("</svg></figure>");
    svg
}

/// A number as the charts label it: integers without decimals.
fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// The trend over stored scans: two charts and the table of their numbers.
fn trend(h: &mut String, scans: &[HistoryRow]) {
    h.push_str("<h2>Trend over stored scans</h2>");
    if scans.len() < 2 {
        h.push_str("<p class=\"muted\">One scan stored so far: the trend appears from the second scan on (run <code>imdsguard scan</code> again after changes).</p>");
        return;
    }
    let f = |v: Option<f64>| v;
    h.push_str(&trend_chart(
        "trend-percent",
        "% of instances enforced (HttpTokens required) and protected (required, or endpoint disabled), per scan",
        scans,
        &[
            Series {
                name: "% enforced",
                colour: GREEN,
                values: scans.iter().map(|s| f(s.percent_enforced)).collect(),
            },
            Series {
                name: "% protected",
                colour: BLUE,
                values: scans.iter().map(|s| f(s.percent_protected)).collect(),
            },
        ],
        100.0,
    ));
    let allowing: Vec<Option<f64>> = scans.iter().map(|s| Some(s.optional as f64)).collect();
    let calls: Vec<Option<f64>> = scans.iter().map(|s| s.v1_calls.map(|c| c as f64)).collect();
    let top = |v: &[Option<f64>]| v.iter().flatten().fold(0.0_f64, |a, b| a.max(*b));
    h.push_str(&trend_chart(
        "trend-allowing",
        "Instances that allow IMDSv1, per scan",
        scans,
        &[Series {
            name: "instances allowing IMDSv1",
            colour: RED,
            values: allowing.clone(),
        }],
        top(&allowing),
    ));
    if calls.iter().any(Option::is_some) {
        h.push_str(&trend_chart(
            "trend-calls",
            "IMDSv1 calls over each scan's usage window",
            scans,
            &[Series {
                name: "IMDSv1 calls",
                colour: AMBER,
                values: calls.clone(),
            }],
            top(&calls),
        ));
    }
    h.push_str("<table><tr><th>scan</th><th>finished</th><th class=n>instances</th><th class=n>% enforced</th><th class=n>% protected</th><th class=n>allow v1</th><th class=n>v1 calls</th></tr>");
    for s in scans {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
            s.scan,
            esc(&s.finished_at),
            s.instances,
            pct(s.percent_enforced),
            pct(s.percent_protected),
            s.optional,
            s.v1_calls.map_or_else(|| "–".to_owned(), |c| c.to_string())
        );
    }
    h.push_str("</table>");
}

/// One row per account, for scans of more than one.
fn per_account(h: &mut String, accounts: &[RegionSummary]) {
    if accounts.len() < 2 {
        return;
    }
    h.push_str("<h2>By account</h2><table><tr><th>account</th><th class=n>instances</th><th class=n>% enforced</th><th class=n>% protected</th><th class=n>allow v1</th><th class=n>in use</th><th class=n>ready</th><th>complete</th></tr>");
    for a in accounts {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td>{}</td></tr>",
            esc(&a.account_id),
            a.instances,
            pct(a.percent_enforced()),
            pct(a.percent_protected()),
            a.optional,
            a.count(Readiness::InUse),
            a.count(Readiness::Ready),
            if a.complete {
                "yes"
            } else {
                "<span class=\"bad\">no: a region failed</span>"
            }
        );
    }
    h.push_str("</table>");
}

/// The before/after proof of one run or rollout: the changed instances'
/// IMDSv1 calls per bucket (answered red, refused grey), the change marked
/// by a line.
fn effect_chart(n: usize, subject: &str, measured_at: &str, e: &Effect) -> String {
    let (w, h, left) = (860.0, 150.0, 40.0);
    let max = e
        .total
        .iter()
        .map(|b| b.v1_calls.max(b.rejected_calls))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let slot = (w - left) / e.total.len().max(1) as f64;
    let title = format!(
        "IMDSv1 calls of the {} instance(s) changed by {subject}, per {}: {} answered before the change, {} after, {} refused after (measured {measured_at})",
        e.instances.len(),
        if e.period == 3600 { "hour" } else { "day" },
        e.v1_calls_before,
        e.v1_calls_after,
        e.rejected_calls_after
    );
    let mut svg = format!(
        "<figure><figcaption>{} — {} before, {} after, {} refused after</figcaption>",
        esc(subject),
        e.v1_calls_before,
        e.v1_calls_after,
        e.rejected_calls_after
    );
    svg_open(&mut svg, &format!("effect-{n}"), &title, w, h + 30.0);
    let _ = write!(svg, r#"<text x="0" y="12">{}</text>"#, max as u64);
    for (i, b) in e.total.iter().enumerate() {
        let x = left + i as f64 * slot;
        for (j, (v, colour, name)) in [
            (b.v1_calls, RED, "v1 calls"),
            (b.rejected_calls, GREY, "refused"),
        ]
        .into_iter()
        .enumerate()
        {
            if v == 0 {
                continue;
            }
            let bh = h * v as f64 / max;
            let _ = write!(
                svg,
                r#"<rect class="bucket" x="{:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="{colour}" data-value="{v}"><title>{name}: {v}</title></rect>"#,
                x + j as f64 * slot * 0.45,
                h - bh,
                (slot * 0.42).max(1.0),
            );
        }
        if b.change {
            let _ = write!(
                svg,
                r#"<line class="change" x1="{x:.1}" y1="0" x2="{x:.1}" y2="{h}" stroke="{BLUE}" stroke-width="2"/><text x="{:.1}" y="{}" fill="{BLUE}">change</text>"#,
                x + 3.0,
                h + 14.0
            );
        }
    }
    svg.push_str("</svg></figure>");
    svg
}

/// Where new IMDSv1 instances come from (see `Sources::lines`).
fn sources_section(h: &mut String, s: &crate::sources::Sources) {
    let lines = s.lines();
    let _ = write!(
        h,
        "<h2>Sources of new IMDSv1 instances ({})</h2>",
        lines.len()
    );
    if lines.is_empty() {
        let _ = write!(h, "<p class=\"muted\">{}</p>", esc(s.none_note()));
        return;
    }
    let _ = write!(
        h,
        "<p class=\"muted\">{}</p>",
        esc(crate::sources::PRECEDENCE_NOTE)
    );
    h.push_str("<table><tr><th>kind</th><th>account</th><th>region</th><th>resource</th><th>decided by</th><th>next launch</th></tr>");
    for l in lines {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            l.kind,
            esc(&l.account_id),
            esc(&l.region),
            esc(&l.resource),
            l.decided_by,
            esc(&l.detail)
        );
    }
    h.push_str("</table>");
}

pub fn render(data: &ReportData, out: &mut dyn Write) -> std::io::Result<()> {
    let report = &data.usage.report;
    let (fleet, owners, findings) = (&data.usage.fleet, &data.owners, &data.findings);
    let total = report.total();
    let mut h = String::new();
    let title = format!("imdsguard report: scan {}", report.id.unwrap_or(0));
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>",
        esc(&title)
    );
    let accounts: std::collections::BTreeSet<&str> = report
        .regions
        .iter()
        .map(|r| r.account_id.as_str())
        .collect();
    let _ = write!(
        h,
        "<h1>{}</h1><p class=\"muted\">{} · {} account(s) · {} region(s){}</p>",
        esc(&title),
        esc(&report.finished_at),
        accounts.len(),
        report.regions.len(),
        report
            .usage_days
            .map(|d| format!(" · IMDSv1 use over {d} days"))
            .unwrap_or_default()
    );
    let _ = write!(
        h,
        "<div class=\"cards\"><div class=\"card\"><b>{}</b>instances</div><div class=\"card\"><b>{}</b>IMDSv2 enforced</div>\
         <div class=\"card\"><b>{}</b>protected</div><div class=\"card\"><b class=\"bad\">{}</b>allow IMDSv1</div>\
         <div class=\"card\"><b class=\"good\">{}</b>ready to enforce</div><div class=\"card\"><b class=\"bad\">{}</b>still use IMDSv1</div></div>",
        total.instances,
        pct(total.percent_enforced()),
        pct(total.percent_protected()),
        total.optional,
        total.count(Readiness::Ready),
        total.count(Readiness::InUse)
    );
    if !report.failures.is_empty() {
        let _ = write!(
            h,
            "<p class=\"bad\">Incomplete: {} account/region(s) failed; their figures are missing.</p>",
            report.failures.len()
        );
    }

    per_account(&mut h, &data.accounts);
    trend(&mut h, &data.trend);

    h.push_str("<h2>Enforcement by region</h2>");
    let rows: Vec<Bar> = report
        .regions
        .iter()
        .map(|r| {
            (
                if accounts.len() > 1 {
                    format!("{} {}", r.account_id, r.region)
                } else {
                    r.region.clone()
                },
                vec![
                    (r.required, GREEN, "required"),
                    (r.disabled, GREY, "disabled"),
                    (r.optional, RED, "optional"),
                ],
            )
        })
        .collect();
    h.push_str(&stacked_bars(
        "by-region",
        "Instances per region by HttpTokens: required, disabled, optional",
        &rows,
    ));

    h.push_str("<h2>Readiness</h2>");
    let colours = [
        "#2da44e", "#bf8700", "#8c959f", "#54aeff", "#cf222e", "#d0d7de",
    ];
    let parts: Vec<(u64, &str, &str)> = Readiness::ALL
        .iter()
        .zip(total.verdicts)
        .zip(colours)
        .map(|((r, n), c)| (n, c, r.as_str()))
        .collect();
    h.push_str(&stacked_bars(
        "readiness",
        "Instances by readiness verdict",
        &[("all instances".to_owned(), parts)],
    ));

    if report.usage_days.is_some() && !fleet.is_empty() {
        h.push_str("<h2>IMDSv1 calls per day (whole fleet)</h2><p class=\"muted\">Red: answered v1 calls (MetadataNoToken). Grey: refused after enforcement (MetadataNoTokenRejected).</p>");
        h.push_str(&daily_chart(fleet));
    }

    if !data.effects.is_empty() {
        h.push_str("<h2>Effect of changes</h2><p class=\"muted\">The changed instances' IMDSv1 calls around their change, as last measured by <code>imdsguard runs RUN --effect</code> or <code>imdsguard rollout status ID --effect</code>. Red: answered v1 calls. Grey: refused after enforcement.</p>");
        for (n, (subject, at, e)) in data.effects.iter().enumerate() {
            h.push_str(&effect_chart(n, subject, at, e));
        }
    }

    h.push_str("<h2>Owners of instances that allow IMDSv1</h2>");
    if owners.is_empty() {
        h.push_str("<p class=\"good\">No instance allows IMDSv1.</p>");
    } else {
        h.push_str("<table><tr><th>owner</th><th class=n>allow v1</th><th class=n>in use</th><th class=n>ready</th><th class=n>unknown</th><th class=n>v1 calls</th><th>roles</th></tr>");
        for r in owners {
            let owner = match &r.owner {
                Some(o) => esc(o),
                None => "<span class=\"muted\">(no owner tag)</span>".to_owned(),
            };
            let t = &r.tally;
            let _ = write!(
                h,
                "<tr><td>{owner}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td>{}</td></tr>",
                t.allowing_v1,
                t.in_use,
                t.ready,
                t.unknown,
                t.v1_calls,
                esc(&r.roles)
            );
        }
        h.push_str("</table>");
    }

    h.push_str("<h2>Findings</h2>");
    if findings.is_empty() {
        h.push_str("<p class=\"good\">None.</p>");
    } else {
        let mut by_rule: std::collections::BTreeMap<(&str, &str, &str), usize> = Default::default();
        for f in findings {
            *by_rule
                .entry((f.rule, f.title, f.severity.as_str()))
                .or_default() += 1;
        }
        h.push_str(
            "<table><tr><th>rule</th><th>title</th><th>severity</th><th class=n>resources</th></tr>",
        );
        for ((rule, title, sev), n) in by_rule {
            let _ = write!(
                h,
                "<tr><td>{rule}</td><td>{}</td><td>{sev}</td><td class=n>{n}</td></tr>",
                esc(title)
            );
        }
        h.push_str("</table>");
    }

    sources_section(&mut h, &report.sources);

    let v1: Vec<_> = report.allowing_v1().collect();
    let _ = write!(h, "<h2>Instances that allow IMDSv1 ({})</h2>", v1.len());
    if !v1.is_empty() {
        let callers = data.usage.callers.as_ref();
        h.push_str("<table><tr><th>account</th><th>region</th><th>instance</th><th>name</th><th>role</th><th>owner</th><th>readiness</th><th>reason</th>");
        if callers.is_some() {
            h.push_str("<th>v1 callers (CloudTrail)</th>");
        }
        h.push_str("</tr>");
        for r in v1.iter().take(MAX_ROWS) {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
                esc(&r.account_id),
                esc(&r.region),
                esc(&r.instance.instance_id),
                esc(r.instance.name().unwrap_or("")),
                esc(r.role_name.as_deref().unwrap_or("")),
                esc(r.owner.as_deref().unwrap_or("")),
                r.readiness.as_str(),
                esc(&r.reason)
            );
            if let Some(c) = crate::output::usage::callers_of(callers, r) {
                let _ = write!(h, "<td>{}</td>", esc(&c));
            }
            h.push_str("</tr>");
        }
        h.push_str("</table>");
        if v1.len() > MAX_ROWS {
            let _ = write!(
                h,
                "<p class=\"muted\">{} more not listed: `imdsguard show instances --format csv` has them all.</p>",
                v1.len() - MAX_ROWS
            );
        }
    }
    let _ = write!(
        h,
        "<p class=\"muted\">Generated by imdsguard {}.</p></body></html>",
        env!("CARGO_PKG_VERSION")
    );
    out.write_all(h.as_bytes())?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ScanReport;

    fn page(report: ScanReport, trend: Vec<HistoryRow>) -> String {
        let data = ReportData {
            accounts: report.by_account(),
            usage: crate::ops::views::UsageView {
                callers: None,
                report,
                days: Vec::new(),
                fleet: Vec::new(),
            },
            owners: Vec::new(),
            findings: Vec::new(),
            trend,
            effects: Vec::new(),
        };
        let mut out = Vec::new();
        render(&data, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn scan(scan: i64, instances: i64, required: i64, v1_calls: Option<i64>) -> HistoryRow {
        HistoryRow {
            scan,
            finished_at: format!("2026-11-0{scan}T00:00:00Z"),
            accounts: 1,
            regions: 1,
            instances,
            required,
            optional: instances - required,
            disabled: 0,
            percent_enforced: Some((required * 1000 / instances) as f64 / 10.0),
            percent_protected: Some((required * 1000 / instances) as f64 / 10.0),
            usage_days: v1_calls.map(|_| 14),
            v1_calls,
            complete: true,
        }
    }

    #[test]
    fn the_trend_draws_one_point_per_scan_with_its_number() {
        let trend = vec![scan(1, 4, 1, Some(90)), scan(2, 4, 3, Some(12))];
        let html = page(ScanReport::default(), trend);
        assert!(html.contains(r#"data-series="% enforced" data-scan="1" data-value="25""#));
        assert!(html.contains(r#"data-series="% enforced" data-scan="2" data-value="75""#));
        assert!(
            html.contains(
                r#"data-series="instances allowing IMDSv1" data-scan="1" data-value="3""#
            )
        );
        assert!(html.contains(r#"data-series="IMDSv1 calls" data-scan="2" data-value="12""#));
        assert!(html.contains(r#"aria-labelledby="trend-percent-title""#));
    }

    #[test]
    fn one_scan_has_no_trend_chart_and_says_why() {
        let html = page(ScanReport::default(), vec![scan(1, 4, 1, None)]);
        assert!(!html.contains("trend-percent"));
        assert!(html.contains("from the second scan on"));
    }

    #[test]
    fn accounts_get_a_table_only_when_there_are_several() {
        let region = |account: &str| crate::report::RegionSummary {
            account_id: account.into(),
            region: "us-east-1".into(),
            instances: 2,
            required: 1,
            optional: 1,
            complete: true,
            ..Default::default()
        };
        let one = ScanReport {
            regions: vec![region("111111111111")],
            ..Default::default()
        };
        assert!(!page(one, Vec::new()).contains("By account"));
        let two = ScanReport {
            regions: vec![region("111111111111"), region("222222222222")],
            ..Default::default()
        };
        let html = page(two, Vec::new());
        assert!(html.contains("<h2>By account</h2>"));
        assert!(html.contains("<td>222222222222</td><td class=n>2</td><td class=n>50.0%</td>"));
    }

    #[test]
    fn escapes_everything_from_aws() {
        assert_eq!(
            esc("<script>\"x\" & 'y'</script>"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn renders_a_tag_value_safely() {
        let mut r = crate::report::test_support::record(
            1,
            crate::model::HttpTokens::Optional,
            Readiness::Unknown,
        );
        r.owner = Some("<img src=x onerror=alert(1)>".into());
        let report = ScanReport {
            id: Some(3),
            instances: vec![r],
            ..Default::default()
        };
        let html = page(report, Vec::new());
        assert!(!html.contains("<img src=x"));
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(html.contains("Instances that allow IMDSv1 (1)"));
    }
}
