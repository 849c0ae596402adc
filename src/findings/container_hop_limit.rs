//! `container-hop-limit`: a container host enforces IMDSv2 with hop limit 1.
//! The token PUT from a container crosses one more hop and never comes back,
//! so containers lose metadata and role credentials.

use super::{Check, Finding, Rule, Severity};
use crate::model::{HttpTokens, Posture};
use crate::report::InstanceRecord;

static RULE: Rule = Rule {
    id: "container-hop-limit",
    title: "Container host requires IMDSv2 with hop limit 1",
    description: "Containers reach IMDS through one more network hop than the host. With IMDSv2 required \
                  and HttpPutResponseHopLimit 1, their token requests are dropped.",
    remediation: "Set the hop limit to 2: `imdsguard plan --action require-v2 --hop-limit auto`.",
    docs: "docs/findings.md#container-hop-limit",
    references: &[],
    default_severity: Severity::Medium,
};

pub struct ContainerHopLimit;

impl Check for ContainerHopLimit {
    fn rule(&self) -> &'static Rule {
        &RULE
    }

    fn instance(&self, r: &InstanceRecord) -> Option<Finding> {
        let m = &r.instance.metadata;
        let enforced =
            m.posture() == Posture::Required && m.http_tokens == Some(HttpTokens::Required);
        (r.container_host && enforced && m.hop_limit.is_some_and(|h| h < 2)).then(|| {
            Finding::for_instance(
                &RULE,
                r,
                Severity::Medium,
                format!(
                    "{} is a container host ({}) requiring IMDSv2 with hop limit {}",
                    r.instance.instance_id,
                    r.container_reason.as_deref().unwrap_or("detected"),
                    m.hop_limit.unwrap_or(1)
                ),
            )
        })
    }
}
