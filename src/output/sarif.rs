//! SARIF 2.1.0 output: one rule per check in the findings registry, one
//! result per finding, located by the resource's ARN (a logical location:
//! cloud resources have no file). Consumers such as GitHub code scanning,
//! Defect Dojo or any SARIF viewer take it as is.

use std::io::Write;

use serde_json::{Value, json};

use crate::findings::{Finding, REGISTRY, Severity};

fn level(s: Severity) -> &'static str {
    match s {
        Severity::High => "error",
        Severity::Medium => "warning",
    }
}

/// GitHub ranks results by this CVSS-like number.
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::High => "8.0",
        Severity::Medium => "5.5",
    }
}

pub fn document(findings: &[Finding]) -> Value {
    let rules: Vec<Value> = REGISTRY
        .iter()
        .map(|c| {
            let r = c.rule();
            json!({
                "id": r.id,
                "name": r.title,
                "shortDescription": { "text": r.title },
                "fullDescription": { "text": r.description },
                "help": { "text": r.remediation, "markdown": format!("{}\n\nSee `{}`.", r.remediation, r.docs) },
                "defaultConfiguration": { "level": level(r.default_severity) },
                "properties": {
                    "tags": ["security", "aws", "imds"],
                    "security-severity": security_severity(r.default_severity),
                    "references": r.references,
                },
            })
        })
        .collect();
    let index = |id: &str| REGISTRY.iter().position(|c| c.rule().id == id);
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            json!({
                "ruleId": f.rule,
                "ruleIndex": index(f.rule),
                "level": level(f.severity),
                "message": { "text": f.message },
                "locations": [{
                    "logicalLocations": [{
                        "fullyQualifiedName": f.resource,
                        "name": f.resource.rsplit('/').next().unwrap_or(&f.resource),
                        "kind": "resource",
                    }],
                }],
                "partialFingerprints": { "imdsguard/v1": format!("{}:{}", f.rule, f.resource) },
                "properties": {
                    "severity": f.severity.as_str(),
                    "security-severity": security_severity(f.severity),
                    "account_id": f.account_id,
                    "region": f.region,
                },
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "imdsguard",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
        }],
    })
}

pub fn render(findings: &[Finding], out: &mut dyn Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &document(findings))?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_and_results_line_up() {
        let f = Finding {
            rule: "imdsv1-allowed",
            severity: Severity::High,
            title: "t",
            docs: "d",
            account_id: "1".into(),
            region: "r".into(),
            resource: "arn:aws:ec2:r:1:instance/i-1".into(),
            message: "m".into(),
            remediation: "x",
        };
        let doc = document(&[f]);
        let run = &doc["runs"][0];
        assert_eq!(doc["version"], "2.1.0");
        assert_eq!(
            run["tool"]["driver"]["rules"].as_array().unwrap().len(),
            REGISTRY.len()
        );
        let result = &run["results"][0];
        let idx = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(run["tool"]["driver"]["rules"][idx]["id"], "imdsv1-allowed");
        assert_eq!(result["level"], "error");
        assert_eq!(result["locations"][0]["logicalLocations"][0]["name"], "i-1");
    }
}
