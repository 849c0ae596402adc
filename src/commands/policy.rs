//! `imdsguard policy scp` and `policy declarative`: print the guardrail
//! policies of `crate::policy`, and what attaching them would break now by
//! the latest stored scan (stderr; `impact` in `--format json`). Offline.

use std::path::Path;

use serde::Serialize;

use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::policy::{Impact, SCP_MAX_CHARS, checked_scp};
use crate::printer::Printer;
use crate::report::ScanReport;

/// `--format json`: the policy and its impact.
#[derive(Serialize)]
struct PolicyDoc<'a> {
    schema: &'static str,
    kind: &'static str,
    policy: &'a serde_json::Value,
    /// `null` without a stored scan.
    impact: Option<&'a Impact>,
}

/// The latest stored scan, if there is a database with one.
fn latest(db: &Path) -> Option<ScanReport> {
    let store = crate::ops::views::open(db).ok()?;
    let id = store.latest_scan().ok()??;
    store.load_report(id).ok()
}

/// Prints the impact to stderr, then the policy (or the JSON document).
fn emit(
    printer: &Printer,
    policy: &serde_json::Value,
    impact: Option<&Impact>,
    json: bool,
) -> Result<ExitCode, Error> {
    match impact {
        None => printer.note(
            "no stored scan: run `imdsguard scan` to see what attaching this policy would break",
        ),
        Some(i) if i.is_empty() => printer.note(&format!(
            "by the latest scan ({}), attaching this policy breaks nothing that scan saw",
            i.scanned_at
        )),
        Some(i) => {
            printer.warn(&format!(
                "by the latest scan ({}), attaching this policy would affect {} launch path(s), {} instance(s) and {} region default(s):",
                i.scanned_at,
                i.launch_paths.len(),
                i.instances.len(),
                i.regions.len()
            ));
            for h in i.launch_paths.iter().chain(&i.instances).chain(&i.regions) {
                printer.warn(&format!(
                    "  {} {} {}: {}",
                    h.account_id, h.region, h.resource, h.why
                ));
            }
        }
    }
    let text = if json {
        serde_json::to_string_pretty(&PolicyDoc {
            schema: crate::output::json::SCHEMA,
            kind: "policy",
            policy,
            impact,
        })
    } else {
        serde_json::to_string_pretty(policy)
    }
    .expect("JSON serializes");
    printer.emit(|w, _| writeln!(w, "{text}"))?;
    Ok(ExitCode::Success)
}

pub fn scp(
    db: &Path,
    printer: &Printer,
    admin_role_arns: &[String],
    max_hop_limit: u8,
    deny_v1_credentials: bool,
    json: bool,
) -> Result<ExitCode, Error> {
    let doc = checked_scp(admin_role_arns, max_hop_limit, deny_v1_credentials).map_err(|len| {
        Error::Usage {
            message: format!(
                "the policy is {len} characters, over the SCP limit of {SCP_MAX_CHARS}"
            ),
            hint: "pass fewer --admin-role-arn values (wildcards help)".into(),
        }
    })?;
    if admin_role_arns.is_empty() {
        printer.warn(
            "without --admin-role-arn nobody (imdsguard included) can change instance metadata options under this policy",
        );
    }
    if deny_v1_credentials {
        printer.warn(
            "the policy denies role credentials delivered over IMDSv1: every instance with a role that still fetches them without a token breaks when it is attached (`imdsguard show roles` lists the roles of instances that allow IMDSv1; `in_use` > 0 means they would break)",
        );
    }
    let impact =
        latest(db).map(|scan| crate::policy::scp_impact(&scan, max_hop_limit, deny_v1_credentials));
    emit(printer, &doc, impact.as_ref(), json)
}

pub fn declarative(
    db: &Path,
    printer: &Printer,
    hop_limit: u8,
    exception_message: &str,
    json: bool,
) -> Result<ExitCode, Error> {
    printer.warn(
        "a declarative policy sets defaults for new launches: existing instances keep their options, and a launch that asks for IMDSv1 explicitly still gets it (`imdsguard policy scp` refuses those)",
    );
    let doc = crate::policy::declarative(hop_limit, exception_message);
    let impact = latest(db).map(|scan| crate::policy::declarative_impact(&scan));
    emit(printer, &doc, impact.as_ref(), json)
}
