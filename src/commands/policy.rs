//! `imdsguard policy scp` and `policy declarative`: print the guardrail
//! policies of `crate::policy`. Offline.

use crate::error::Error;
use crate::exit_codes::ExitCode;
use crate::policy::{SCP_MAX_CHARS, checked_scp};
use crate::printer::Printer;

pub fn scp(
    printer: &Printer,
    admin_role_arns: &[String],
    max_hop_limit: u8,
    deny_v1_credentials: bool,
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
    let text = serde_json::to_string_pretty(&doc).expect("JSON serializes");
    printer.emit(|w, _| writeln!(w, "{text}"))?;
    Ok(ExitCode::Success)
}

pub fn declarative(
    printer: &Printer,
    hop_limit: u8,
    exception_message: &str,
) -> Result<ExitCode, Error> {
    printer.warn(
        "a declarative policy sets defaults for new launches: existing instances keep their options, and a launch that asks for IMDSv1 explicitly still gets it (`imdsguard policy scp` refuses those)",
    );
    let text =
        serde_json::to_string_pretty(&crate::policy::declarative(hop_limit, exception_message))
            .expect("JSON serializes");
    printer.emit(|w, _| writeln!(w, "{text}"))?;
    Ok(ExitCode::Success)
}
