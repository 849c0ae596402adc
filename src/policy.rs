//! Guardrail policies that keep IMDSv1 from coming back.
//!
//! * A service control policy: no instance launches without
//!   `HttpTokens=required`, no hop limit above the maximum, no
//!   `ModifyInstanceMetadataOptions` or defaults change except by the
//!   administrators' role, and (optionally) no use of credentials delivered
//!   over IMDSv1 (`ec2:RoleDelivery` < 2.0).
//! * An EC2 declarative policy (AWS Organizations, "Declarative policy
//!   syntax and examples" → "Instance Metadata Defaults"): the account-level
//!   IMDS defaults of every account and region in scope, which accounts can
//!   no longer change (`ManagedBy=declarative-policy`). It sets defaults; it
//!   does not refuse a launch that asks for IMDSv1 explicitly.

use serde_json::{Value, json};

/// AWS's limit on the size of a service control policy.
pub const SCP_MAX_CHARS: usize = 5120;

/// The SCP document.
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

/// The EC2 declarative policy that makes IMDSv2 the default everywhere in
/// scope: `http_tokens` required, the hop limit given (as a string, as the
/// documented schema writes it), the endpoint and tags left to other
/// defaults (`no_preference`), and the message a refused change shows.
pub fn declarative(hop_limit: u8, exception_message: &str) -> Value {
    json!({
        "ec2_attributes": {
            "instance_metadata_defaults": {
                "http_tokens": { "@@assign": "required" },
                "http_put_response_hop_limit": { "@@assign": hop_limit.to_string() },
                "http_endpoint": { "@@assign": "no_preference" },
                "instance_metadata_tags": { "@@assign": "no_preference" }
            },
            "exception_message": { "@@assign": exception_message }
        }
    })
}

/// The policy, refused if it is over AWS's size limit for an SCP.
pub fn checked_scp(
    admin_role_arns: &[String],
    max_hop_limit: u8,
    deny_v1_credentials: bool,
) -> Result<Value, usize> {
    let doc = scp(admin_role_arns, max_hop_limit, deny_v1_credentials);
    let compact = serde_json::to_string(&doc).expect("JSON serializes");
    if compact.len() > SCP_MAX_CHARS {
        return Err(compact.len());
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_declarative_policy_sets_imdsv2_defaults_with_a_message() {
        let doc = declarative(2, "ask the platform team");
        let d = &doc["ec2_attributes"]["instance_metadata_defaults"];
        assert_eq!(d["http_tokens"]["@@assign"], "required");
        assert_eq!(d["http_put_response_hop_limit"]["@@assign"], "2");
        assert_eq!(d["http_endpoint"]["@@assign"], "no_preference");
        assert_eq!(
            doc["ec2_attributes"]["exception_message"]["@@assign"],
            "ask the platform team"
        );
        assert_eq!(doc.as_object().unwrap().len(), 1, "ec2_attributes only");
    }

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
