//! `imdsguard policy scp`: a service control policy that keeps IMDSv1 from
//! coming back: no instance launches without `HttpTokens=required`, no hop
//! limit above the maximum, no `ModifyInstanceMetadataOptions` or defaults
//! changes except by the administrators' role, and no use of credentials
//! delivered over IMDSv1 (`ec2:RoleDelivery` < 2.0). Offline: prints JSON.

use serde_json::{Value, json};

use crate::cli::PolicyArgs;
use crate::commands::emit;
use crate::error::Error;
use crate::exit_codes::ExitCode;

/// AWS's limit on the size of a service control policy.
const SCP_MAX_CHARS: usize = 5120;

pub fn scp(admin_role_arns: &[String], max_hop_limit: u8, deny_v1_credentials: bool) -> Value {
    let mut statements = vec![
        json!({
            "Sid": "RequireImdsV2OnLaunch",
            "Effect": "Deny",
            "Action": "ec2:RunInstances",
            "Resource": "arn:*:ec2:*:*:instance/*",
            "Condition": { "StringNotEquals": { "ec2:MetadataHttpTokens": "required" } }
        }),
        json!({
            "Sid": "MaxImdsHopLimit",
            "Effect": "Deny",
            "Action": "ec2:RunInstances",
            "Resource": "arn:*:ec2:*:*:instance/*",
            "Condition": { "NumericGreaterThan": { "ec2:MetadataHttpPutResponseHopLimit": max_hop_limit.to_string() } }
        }),
    ];
    let mut protect = json!({
        "Sid": "OnlyAdminsChangeImds",
        "Effect": "Deny",
        "Action": ["ec2:ModifyInstanceMetadataOptions", "ec2:ModifyInstanceMetadataDefaults"],
        "Resource": "*"
    });
    if !admin_role_arns.is_empty() {
        protect["Condition"] = json!({ "StringNotLike": { "aws:PrincipalARN": admin_role_arns } });
    }
    statements.push(protect);
    if deny_v1_credentials {
        statements.push(json!({
            "Sid": "DenyCredentialsFromImdsV1",
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": { "NumericLessThan": { "ec2:RoleDelivery": "2.0" } }
        }));
    }
    json!({ "Version": "2012-10-17", "Statement": statements })
}

pub fn run(global: &crate::settings::Global, args: &PolicyArgs) -> Result<ExitCode, Error> {
    for arn in &args.admin_role_arn {
        let ok = arn.starts_with("arn:") && arn.contains(":iam::") && arn.contains(":role/");
        if !ok {
            return Err(Error::Usage {
                message: format!("--admin-role-arn `{arn}` is not an IAM role ARN"),
                hint: "e.g. arn:aws:iam::*:role/imds-admins (wildcards allowed)".into(),
            });
        }
    }
    if !(1..=64).contains(&args.max_hop_limit) {
        return Err(Error::Usage {
            message: format!("--max-hop-limit {} is out of range", args.max_hop_limit),
            hint: "EC2 accepts 1 to 64; 2 is enough for containers".into(),
        });
    }
    let doc = scp(
        &args.admin_role_arn,
        args.max_hop_limit,
        !args.allow_v1_credentials,
    );
    let text = serde_json::to_string_pretty(&doc).expect("JSON serializes");
    let compact = serde_json::to_string(&doc).expect("JSON serializes");
    if compact.len() > SCP_MAX_CHARS {
        return Err(Error::Usage {
            message: format!(
                "the policy is {} characters, over the SCP limit of {SCP_MAX_CHARS}",
                compact.len()
            ),
            hint: "pass fewer --admin-role-arn values (wildcards help)".into(),
        });
    }
    if args.admin_role_arn.is_empty() {
        crate::commands::warn(
            global.stderr_style,
            global.verbosity,
            "without --admin-role-arn nobody (imdsguard included) can change instance metadata options under this policy",
        );
    }
    emit(global.out.as_deref(), |w| writeln!(w, "{text}"))?;
    Ok(ExitCode::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements() {
        let doc = scp(&["arn:aws:iam::*:role/imds-admins".into()], 2, true);
        let s = doc["Statement"].as_array().unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(
            s[0]["Condition"]["StringNotEquals"]["ec2:MetadataHttpTokens"],
            "required"
        );
        assert_eq!(
            s[1]["Condition"]["NumericGreaterThan"]["ec2:MetadataHttpPutResponseHopLimit"],
            "2"
        );
        assert_eq!(
            s[2]["Condition"]["StringNotLike"]["aws:PrincipalARN"][0],
            "arn:aws:iam::*:role/imds-admins"
        );
        assert_eq!(
            s[3]["Condition"]["NumericLessThan"]["ec2:RoleDelivery"],
            "2.0"
        );
        assert_eq!(scp(&[], 3, false)["Statement"].as_array().unwrap().len(), 3);
    }
}
