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

use serde::Serialize;
use serde_json::{Value, json};

use crate::launch::{Effective, Rung};
use crate::model::HttpTokens;
use crate::readiness::Readiness;
use crate::report::ScanReport;

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

/// What attaching a policy would break now, by the latest stored scan.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Impact {
    pub scan_id: Option<i64>,
    pub scanned_at: String,
    /// Launch templates and Auto Scaling groups whose next launch the
    /// policy denies or changes.
    pub launch_paths: Vec<Hit>,
    /// Running instances that would break.
    pub instances: Vec<Hit>,
    /// Regions whose account default the policy overrides.
    pub regions: Vec<Hit>,
}

/// One thing a policy breaks, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub account_id: String,
    pub region: String,
    pub resource: String,
    pub why: String,
}

impl Impact {
    pub fn is_empty(&self) -> bool {
        self.launch_paths.is_empty() && self.instances.is_empty() && self.regions.is_empty()
    }
}

fn hit(account_id: &str, region: &str, resource: String, why: String) -> Hit {
    Hit {
        account_id: account_id.to_owned(),
        region: region.to_owned(),
        resource,
        why,
    }
}

/// The launch paths of a scan with what their next launch gets: every
/// template's `$Default` and `$Latest`, every group's next launch.
fn paths(scan: &ScanReport) -> Vec<(&str, &str, String, &Effective)> {
    let s = &scan.sources;
    let mut out = Vec::new();
    for t in &s.templates {
        out.push((
            t.account_id.as_str(),
            t.region.as_str(),
            format!(
                "launch template {} ($Default v{})",
                t.template_id, t.default_version
            ),
            &t.default_next,
        ));
        if t.latest_version != t.default_version {
            out.push((
                t.account_id.as_str(),
                t.region.as_str(),
                format!(
                    "launch template {} ($Latest v{})",
                    t.template_id, t.latest_version
                ),
                &t.latest_next,
            ));
        }
    }
    for g in &s.groups {
        if let Some(next) = &g.next {
            out.push((
                g.account_id.as_str(),
                g.region.as_str(),
                format!("Auto Scaling group {}", g.name),
                next,
            ));
        }
    }
    out
}

fn head(scan: &ScanReport) -> Impact {
    Impact {
        scan_id: scan.id,
        scanned_at: scan.started_at.clone(),
        ..Default::default()
    }
}

/// What the SCP breaks: launches that do not ask for `HttpTokens=required`
/// themselves (the condition key is the launch request's, so a template
/// that leaves tokens to the account default is denied too), hop limits
/// above the maximum, and, with `deny_v1_credentials`, instances whose role
/// credentials are still fetched over IMDSv1.
pub fn scp_impact(scan: &ScanReport, max_hop_limit: u8, deny_v1_credentials: bool) -> Impact {
    let mut out = head(scan);
    for (account, region, resource, next) in paths(scan) {
        let asks_required =
            next.decided_by == Rung::Launch && next.http_tokens == HttpTokens::Required;
        if !asks_required {
            out.launch_paths.push(hit(
                account,
                region,
                resource.clone(),
                format!(
                    "launches would be denied: it does not set HttpTokens=required itself ({})",
                    next.explanation
                ),
            ));
        } else if next.decided_by == Rung::Launch && next.hop_limit > i32::from(max_hop_limit) {
            out.launch_paths.push(hit(
                account,
                region,
                resource,
                format!(
                    "launches would be denied: hop limit {} is above {max_hop_limit}",
                    next.hop_limit
                ),
            ));
        }
    }
    if deny_v1_credentials {
        for r in &scan.instances {
            if let (Readiness::InUse, Some(role)) = (r.readiness, &r.role_name) {
                out.instances.push(hit(
                    &r.account_id,
                    &r.region,
                    r.instance.instance_id.clone(),
                    format!("calls IMDSv1 and has role {role}: its credentials would stop working"),
                ));
            }
        }
    }
    out
}

/// What the declarative policy changes: regions whose own default it
/// overrides, launch paths whose new instances it makes require IMDSv2
/// (they resolved to optional only through the account default or EC2's),
/// and the instances using IMDSv1 that those paths launched (their
/// software would break on new instances).
pub fn declarative_impact(scan: &ScanReport) -> Impact {
    let mut out = head(scan);
    for d in &scan.sources.defaults {
        if d.defaults.http_tokens == Some(HttpTokens::Optional) {
            out.regions.push(hit(
                &d.account_id,
                &d.region,
                "account default".into(),
                "sets HttpTokens=optional; the policy replaces it with required".into(),
            ));
        }
    }
    let mut changed_groups = Vec::new();
    let mut changed_templates = Vec::new();
    for (account, region, resource, next) in paths(scan) {
        let follows_default = matches!(
            next.decided_by,
            Rung::AccountDefault | Rung::Ec2Default | Rung::Ami
        );
        if follows_default && next.allows_v1() {
            out.launch_paths.push(hit(
                account,
                region,
                resource.clone(),
                format!(
                    "new instances would require IMDSv2 (today: {})",
                    next.explanation
                ),
            ));
            if let Some(name) = resource.strip_prefix("Auto Scaling group ") {
                changed_groups.push(name.to_owned());
            } else if let Some(id) = resource
                .strip_prefix("launch template ")
                .and_then(|r| r.split(' ').next())
            {
                changed_templates.push(id.to_owned());
            }
        }
    }
    for r in &scan.instances {
        if r.readiness != Readiness::InUse {
            continue;
        }
        let from_group = r
            .asg_name
            .as_ref()
            .is_some_and(|g| changed_groups.contains(g));
        let from_template = r
            .launch_template
            .as_ref()
            .is_some_and(|lt| changed_templates.iter().any(|t| lt.starts_with(t.as_str())));
        if from_group || from_template {
            out.instances.push(hit(
                &r.account_id,
                &r.region,
                r.instance.instance_id.clone(),
                "uses IMDSv1; its replacements from the same launch path would refuse it".into(),
            ));
        }
    }
    out
}
