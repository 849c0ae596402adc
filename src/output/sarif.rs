//! SARIF 2.1.0 output: one rule per check in the findings registry, one
//! result per finding. Findings are about cloud resources, not files, so a
//! result is located twice: logically by the resource's ARN, and physically
//! by a stable pseudo-path `aws/ACCOUNT/REGION/RESOURCE-ID` that names no
//! file. GitHub code scanning requires the physical location (its
//! `artifactLocation.uri` and `region.startLine`) and tracks an alert
//! across runs by that path and `partialFingerprints.primaryLocationLineHash`,
//! which we compute because there is no file text to hash. Consumers such
//! as GitHub code scanning, Defect Dojo or any SARIF viewer take it as is;
//! the end-to-end tests validate it against the OASIS SARIF 2.1.0 schema.

use std::fmt::Write as _;
use std::io::Write;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::findings::{Finding, REGISTRY, Severity};

fn level(s: Severity) -> &'static str {
    match s {
        Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "note",
    }
}

/// GitHub ranks results by this CVSS-like number.
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
    }
}

/// The resource's own id: the last part of its ARN (`i-0abc…` for an instance).
fn resource_id(arn: &str) -> &str {
    arn.rsplit(['/', ':']).next().unwrap_or(arn)
}

/// One path segment of a valid URI reference whatever it holds: everything
/// but RFC 3986's unreserved characters is percent-encoded (GitHub decodes
/// the uri before use; a `/` or space in a value must not add a segment).
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `aws/ACCOUNT/REGION/RESOURCE-ID`: a relative path (GitHub reads relative
/// paths as relative to the repository root) that is the same for the same
/// resource in every run, so GitHub keeps one alert per resource and rule
/// instead of closing and reopening it. No such file exists.
fn pseudo_path(f: &Finding) -> String {
    ["aws", &f.account_id, &f.region, resource_id(&f.resource)]
        .map(segment)
        .join("/")
}

/// GitHub matches results across runs by `primaryLocationLineHash` only.
/// Its upload action fills that in from the text of the located line, which
/// a pseudo-path has not got, so we give it: the first 64 bits of SHA-256
/// over rule and ARN, in the action's `HASH:OCCURRENCE` form (a rule fires
/// at most once per resource, so the occurrence is always 1).
fn line_hash(f: &Finding) -> String {
    let digest = Sha256::digest(format!("{}\0{}", f.rule, f.resource));
    let mut out = String::with_capacity(18);
    for b in &digest[..8] {
        let _ = write!(out, "{b:02x}");
    }
    out.push_str(":1");
    out
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
                // -1 is SARIF's "no index" (null would break the schema).
                "ruleIndex": index(f.rule).map_or(-1, |i| i as i64),
                "level": level(f.severity),
                "message": { "text": f.message },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": pseudo_path(f) },
                        // The whole first line (SARIF's defaults for the
                        // columns and end line): GitHub wants a startLine,
                        // and the schema wants a region to have it or an
                        // offset.
                        "region": { "startLine": 1 },
                    },
                    "logicalLocations": [{
                        "fullyQualifiedName": f.resource,
                        "name": resource_id(&f.resource),
                        "kind": "resource",
                    }],
                }],
                "partialFingerprints": {
                    "primaryLocationLineHash": line_hash(f),
                    "imdsguard/v1": format!("{}:{}", f.rule, f.resource),
                },
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

    fn finding(account: &str, region: &str, id: &str) -> Finding {
        Finding {
            rule: "imdsv1-allowed",
            severity: Severity::High,
            title: "t",
            docs: "d",
            account_id: account.into(),
            region: region.into(),
            resource: format!("arn:aws:ec2:{region}:{account}:instance/{id}"),
            message: "m".into(),
            remediation: "x",
        }
    }

    #[test]
    fn rules_and_results_line_up() {
        let doc = document(&[finding("1", "r", "i-1")]);
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

    /// What GitHub code scanning needs of every result: a physical location
    /// (uri and startLine) and a line hash it can match across runs.
    #[test]
    fn results_carry_what_github_requires() {
        let doc = document(&[
            finding("111122223333", "us-east-1", "i-0abc"),
            finding("111122223333", "eu-west-1", "i-0abc"),
        ]);
        let results = doc["runs"][0]["results"].as_array().unwrap();
        let physical = &results[0]["locations"][0]["physicalLocation"];
        assert_eq!(
            physical["artifactLocation"]["uri"],
            "aws/111122223333/us-east-1/i-0abc"
        );
        assert_eq!(physical["region"]["startLine"], 1);
        let hashes: Vec<&str> = results
            .iter()
            .map(|r| {
                r["partialFingerprints"]["primaryLocationLineHash"]
                    .as_str()
                    .unwrap()
            })
            .collect();
        for h in &hashes {
            let (hex, occurrence) = h.split_once(':').unwrap();
            assert!(
                hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
                "{h}"
            );
            assert_eq!(occurrence, "1");
        }
        assert_ne!(hashes[0], hashes[1], "another region is another resource");
        // The same finding gets the same hash in every run.
        let again = document(&[finding("111122223333", "us-east-1", "i-0abc")]);
        assert_eq!(
            again["runs"][0]["results"][0]["partialFingerprints"]["primaryLocationLineHash"],
            hashes[0]
        );
    }

    #[test]
    fn pseudo_path_segments_are_percent_encoded() {
        let f = Finding {
            resource: "arn:aws:ec2:r:1:instance/a b%~._-Z9".into(),
            region: "r/..".into(),
            ..finding("1", "r", "x")
        };
        // Every value stays one segment: a `/` cannot add or climb one.
        assert_eq!(pseudo_path(&f), "aws/1/r%2F../a%20b%25~._-Z9");
    }

    /// GitHub's limits on rule metadata (name 255, descriptions 1024
    /// characters) and its required help text.
    #[test]
    fn rules_fit_github_limits() {
        let doc = document(&[]);
        for rule in doc["runs"][0]["tool"]["driver"]["rules"]
            .as_array()
            .unwrap()
        {
            let text = |p: &str| rule.pointer(p).and_then(Value::as_str).unwrap();
            assert!(text("/name").chars().count() <= 255);
            for p in ["/shortDescription/text", "/fullDescription/text"] {
                assert!((1..=1024).contains(&text(p).chars().count()), "{p}");
            }
            assert!(!text("/help/text").is_empty());
        }
    }
}
