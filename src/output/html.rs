//! The HTML report: one self-contained page (inline CSS and SVG, no scripts,
//! nothing fetched) for people who will never run a CLI: headline figures,
//! enforcement per region, readiness, the fleet's daily IMDSv1 calls, who
//! owns what still allows v1, findings, and the instances to act on.
//! Every string from AWS is HTML-escaped.

use std::fmt::Write as _;
use std::io::Write;

use crate::findings::Finding;
use crate::groups::OwnerRow;
use crate::readiness::Readiness;
use crate::report::{FleetDay, ScanReport};

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
th,td{border-bottom:1px solid #eaeef2;padding:4px 8px;text-align:left}th{background:#f6f8fa}td.n{text-align:right}\
.bad{color:#cf222e}.good{color:#1a7f37}.muted{color:#656d76}svg text{font:12px system-ui,sans-serif}";

const GREEN: &str = "#2da44e";
const GREY: &str = "#8c959f";
const RED: &str = "#cf222e";

fn pct(p: Option<f64>) -> String {
    p.map(|p| format!("{p:.1}%")).unwrap_or_else(|| "–".into())
}

/// One bar of a stacked chart: its label and its parts (value, colour, name).
type Bar<'a> = (String, Vec<(u64, &'a str, &'a str)>);

/// Horizontal stacked bars, one per label.
fn stacked_bars(rows: &[Bar]) -> String {
    let width = 700.0;
    let label_w = 240.0;
    let h = 22.0;
    let total_h = rows.len() as f64 * (h + 8.0) + 30.0;
    let mut svg = format!(
        r#"<svg width="{}" height="{total_h}" role="img">"#,
        width + label_w + 20.0
    );
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
    let mut svg = format!(r#"<svg width="{w}" height="{}" role="img">"#, h + 40.0);
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

pub fn render(
    report: &ScanReport,
    fleet: &[FleetDay],
    owners: &[OwnerRow],
    findings: &[Finding],
    out: &mut dyn Write,
) -> std::io::Result<()> {
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
    let count =
        |v: Readiness| total.verdicts[Readiness::ALL.iter().position(|r| *r == v).expect("listed")];
    let _ = write!(
        h,
        "<div class=\"cards\"><div class=\"card\"><b>{}</b>instances</div><div class=\"card\"><b>{}</b>IMDSv2 enforced</div>\
         <div class=\"card\"><b>{}</b>protected</div><div class=\"card\"><b class=\"bad\">{}</b>allow IMDSv1</div>\
         <div class=\"card\"><b class=\"good\">{}</b>ready to enforce</div><div class=\"card\"><b class=\"bad\">{}</b>still use IMDSv1</div></div>",
        total.instances,
        pct(total.percent_enforced()),
        pct(total.percent_protected()),
        total.optional,
        count(Readiness::Ready),
        count(Readiness::InUse)
    );
    if !report.failures.is_empty() {
        let _ = write!(
            h,
            "<p class=\"bad\">Incomplete: {} account/region(s) failed; their figures are missing.</p>",
            report.failures.len()
        );
    }

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
    h.push_str(&stacked_bars(&rows));

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
    h.push_str(&stacked_bars(&[("all instances".to_owned(), parts)]));

    if report.usage_days.is_some() && !fleet.is_empty() {
        h.push_str("<h2>IMDSv1 calls per day (whole fleet)</h2><p class=\"muted\">Red: answered v1 calls (MetadataNoToken). Grey: refused after enforcement (MetadataNoTokenRejected).</p>");
        h.push_str(&daily_chart(fleet));
    }

    h.push_str("<h2>Owners of instances that allow IMDSv1</h2>");
    if owners.is_empty() {
        h.push_str("<p class=\"good\">No instance allows IMDSv1.</p>");
    } else {
        h.push_str("<table><tr><th>owner</th><th>allow v1</th><th>in use</th><th>ready</th><th>unknown</th><th>v1 calls</th><th>roles</th></tr>");
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
            "<table><tr><th>rule</th><th>title</th><th>severity</th><th>instances</th></tr>",
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

    let v1: Vec<_> = report.allowing_v1().collect();
    let _ = write!(h, "<h2>Instances that allow IMDSv1 ({})</h2>", v1.len());
    if !v1.is_empty() {
        h.push_str("<table><tr><th>account</th><th>region</th><th>instance</th><th>name</th><th>role</th><th>owner</th><th>readiness</th><th>reason</th></tr>");
        for r in v1.iter().take(MAX_ROWS) {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&r.account_id),
                esc(&r.region),
                esc(&r.instance.instance_id),
                esc(r.instance.name().unwrap_or("")),
                esc(r.role_name.as_deref().unwrap_or("")),
                esc(r.owner.as_deref().unwrap_or("")),
                r.readiness.as_str(),
                esc(&r.reason)
            );
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
        let mut out = Vec::new();
        render(&report, &[], &[], &[], &mut out).unwrap();
        let html = String::from_utf8(out).unwrap();
        assert!(!html.contains("<img src=x"));
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(html.contains("Instances that allow IMDSv1 (1)"));
    }
}
