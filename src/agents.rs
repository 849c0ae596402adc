//! Which software made a call, from the `userAgent` CloudTrail records, and
//! whether it can use IMDSv2: the SDKs and tools that fetch role
//! credentials from instance metadata, each with the first version that
//! supports IMDSv2 (or stops trying IMDSv1 first).
//!
//! Versions of the AWS SDKs and CLI: Amazon EC2 User Guide, "Use a supported
//! AWS SDK" (<https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/use-a-supported-sdk-version-for-imdsv2.html>),
//! the minimum versions that support IMDSv2. AWS CLI v2 has supported it
//! since its first release (2.0.0, built on a botocore that has it). The
//! SSM agent tries IMDSv2 first from 3.0.431.0 (AWS Systems Manager agent
//! release notes, 3.0.431.0). Agents not listed get `unknown agent`: the
//! verdict never claims what the table does not know.

use std::cmp::Ordering;

use serde::Serialize;

/// A known SDK or tool and the first version that uses IMDSv2.
struct Known {
    /// The product token at the start of a `userAgent` word (`aws-cli`).
    token: &'static str,
    /// What people call it.
    name: &'static str,
    /// The first version that supports IMDSv2, dotted.
    first: &'static str,
    /// Only versions with this major number (`aws-sdk-java` 1.x vs 2.x).
    major: Option<u64>,
}

/// Most specific first: a user agent names several products (the CLI and
/// the botocore under it, an agent and the Go SDK it is built with); the
/// first listed here that the agent names is the one judged.
const KNOWN: &[Known] = &[
    Known {
        token: "amazon-ssm-agent",
        name: "SSM Agent",
        first: "3.0.431.0",
        major: None,
    },
    Known {
        token: "aws-cli",
        name: "AWS CLI",
        first: "1.16.289",
        major: Some(1),
    },
    Known {
        token: "aws-cli",
        name: "AWS CLI v2",
        first: "2.0.0",
        major: Some(2),
    },
    Known {
        token: "AWSPowerShell",
        name: "AWS Tools for PowerShell",
        first: "4.0.1.0",
        major: None,
    },
    Known {
        token: "aws-sdk-dotnet-coreclr",
        name: "AWS SDK for .NET",
        first: "3.3.634.1",
        major: None,
    },
    Known {
        token: "aws-sdk-dotnet-45",
        name: "AWS SDK for .NET",
        first: "3.3.634.1",
        major: None,
    },
    Known {
        token: "aws-sdk-cpp",
        name: "AWS SDK for C++",
        first: "1.7.229",
        major: None,
    },
    Known {
        token: "aws-sdk-go-v2",
        name: "AWS SDK for Go v2",
        first: "0.19.0",
        major: None,
    },
    Known {
        token: "aws-sdk-go",
        name: "AWS SDK for Go",
        first: "1.25.38",
        major: None,
    },
    Known {
        token: "aws-sdk-java",
        name: "AWS SDK for Java",
        first: "1.11.678",
        major: Some(1),
    },
    Known {
        token: "aws-sdk-java",
        name: "AWS SDK for Java 2.x",
        first: "2.10.21",
        major: Some(2),
    },
    Known {
        token: "aws-sdk-nodejs",
        name: "AWS SDK for JavaScript",
        first: "2.722.0",
        major: None,
    },
    // v3 of the JavaScript SDK has supported IMDSv2 since its first release.
    Known {
        token: "aws-sdk-js",
        name: "AWS SDK for JavaScript v3",
        first: "3.0.0",
        major: Some(3),
    },
    Known {
        token: "aws-sdk-php",
        name: "AWS SDK for PHP",
        first: "3.147.7",
        major: None,
    },
    Known {
        token: "Boto3",
        name: "Boto3",
        first: "1.12.6",
        major: None,
    },
    Known {
        token: "Botocore",
        name: "Botocore",
        first: "1.13.25",
        major: None,
    },
    Known {
        token: "aws-sdk-ruby3",
        name: "AWS SDK for Ruby",
        first: "3.79.0",
        major: None,
    },
    Known {
        token: "aws-sdk-ruby2",
        name: "AWS SDK for Ruby v2",
        first: "2.11.401",
        major: None,
    },
];

/// What a user agent says about IMDSv2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Agent {
    /// The SDK or tool, when known.
    pub tool: Option<String>,
    pub version: Option<String>,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Verdict {
    /// Older than the first version that uses IMDSv2: upgrade it.
    Upgrade { to: String },
    /// New enough: it fell back to IMDSv1 for another reason (a hop limit
    /// of 1 in a container, a proxy, IMDSv2 turned off in its settings).
    SupportsV2,
    /// Not in the table.
    Unknown,
}

impl Verdict {
    /// As stored: `upgrade`, `supports-v2`, `unknown`.
    pub fn kind(&self) -> &'static str {
        match self {
            Verdict::Upgrade { .. } => "upgrade",
            Verdict::SupportsV2 => "supports-v2",
            Verdict::Unknown => "unknown",
        }
    }

    /// One line for people: `upgrade AWS CLI to ≥ 1.16.289`.
    pub fn describe(&self, tool: Option<&str>) -> String {
        match (self, tool) {
            (Verdict::Upgrade { to }, Some(t)) => format!("upgrade {t} to ≥ {to}"),
            (Verdict::SupportsV2, Some(t)) => format!(
                "{t} supports IMDSv2: check why it fell back (hop limit 1 in a container, IMDSv2 disabled in its settings)"
            ),
            _ => "unknown agent".into(),
        }
    }
}

/// Numeric dotted version comparison; non-numeric parts compare as 0.
fn compare(a: &str, b: &str) -> Ordering {
    let parts = |v: &str| -> Vec<u64> {
        v.split(['.', '-', '_'])
            .map(|p| {
                p.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
                    .parse()
                    .unwrap_or(0)
            })
            .collect()
    };
    let (a, b) = (parts(a), parts(b));
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (
            a.get(i).copied().unwrap_or(0),
            b.get(i).copied().unwrap_or(0),
        );
        match x.cmp(&y) {
            Ordering::Equal => continue,
            other => return other,
        }
    }
    Ordering::Equal
}

/// The `token/version` words of a user agent, in order.
fn products(user_agent: &str) -> impl Iterator<Item = (&str, &str)> {
    user_agent
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ';')
        .filter_map(|w| w.split_once('/'))
        .filter(|(_, v)| v.starts_with(|c: char| c.is_ascii_digit()))
}

/// Judges one user agent.
pub fn judge(user_agent: &str) -> Agent {
    let found: Vec<(&str, &str)> = products(user_agent).collect();
    for k in KNOWN {
        let Some((_, version)) = found.iter().find(|(t, v)| {
            t.eq_ignore_ascii_case(k.token)
                && k.major.is_none_or(|m| {
                    v.split('.').next().and_then(|x| x.parse::<u64>().ok()) == Some(m)
                })
        }) else {
            continue;
        };
        let verdict = if compare(version, k.first) == Ordering::Less {
            Verdict::Upgrade {
                to: k.first.to_owned(),
            }
        } else {
            Verdict::SupportsV2
        };
        return Agent {
            tool: Some(k.name.to_owned()),
            version: Some((*version).to_owned()),
            verdict,
        };
    }
    Agent {
        tool: None,
        version: None,
        verdict: Verdict::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(ua: &str) -> (Option<String>, Option<String>, Verdict) {
        let a = judge(ua);
        (a.tool, a.version, a.verdict)
    }

    #[test]
    fn old_cli_v1_must_be_upgraded() {
        let (tool, version, verdict) =
            v("aws-cli/1.16.100 Python/2.7.16 Linux/4.14 botocore/1.12.90");
        assert_eq!(tool.as_deref(), Some("AWS CLI"));
        assert_eq!(version.as_deref(), Some("1.16.100"));
        assert_eq!(
            verdict,
            Verdict::Upgrade {
                to: "1.16.289".into()
            }
        );
    }

    #[test]
    fn versions_compare_numerically_not_as_text() {
        // 1.16.1000 > 1.16.289, although "1000" < "289" as text.
        assert_eq!(v("aws-cli/1.16.1000 Python/3").2, Verdict::SupportsV2);
        assert_eq!(
            v("aws-cli/1.9.0 Python/3").2,
            Verdict::Upgrade {
                to: "1.16.289".into()
            }
        );
        assert_eq!(compare("3.0.431.0", "3.0.431"), Ordering::Equal);
    }

    #[test]
    fn major_versions_pick_their_own_line() {
        assert_eq!(
            v("aws-cli/2.0.5 Python/3.7").0.as_deref(),
            Some("AWS CLI v2")
        );
        assert_eq!(v("aws-cli/2.0.5 Python/3.7").2, Verdict::SupportsV2);
        let java2 = v("aws-sdk-java/2.10.0 Linux/5.4 OpenJDK_64-Bit_Server_VM/11");
        assert_eq!(java2.0.as_deref(), Some("AWS SDK for Java 2.x"));
        assert_eq!(
            java2.2,
            Verdict::Upgrade {
                to: "2.10.21".into()
            }
        );
        let java1 = v("aws-sdk-java/1.11.500 Linux/4.14 Java_HotSpot(TM)_64-Bit_Server_VM/25");
        assert_eq!(
            java1.2,
            Verdict::Upgrade {
                to: "1.11.678".into()
            }
        );
    }

    #[test]
    fn the_most_specific_product_is_judged() {
        // An old SSM agent built on a new enough Go SDK: the agent decides.
        let (tool, _, verdict) =
            v("aws-sdk-go/1.35.0 (go1.15; linux; amd64) amazon-ssm-agent/3.0.222.0");
        assert_eq!(tool.as_deref(), Some("SSM Agent"));
        assert_eq!(
            verdict,
            Verdict::Upgrade {
                to: "3.0.431.0".into()
            }
        );
        // The Go SDK v2 is not the Go SDK v1.
        assert_eq!(
            v("aws-sdk-go-v2/1.17.0 os/linux lang/go#1.19").0.as_deref(),
            Some("AWS SDK for Go v2")
        );
        assert_eq!(
            v("Boto3/1.9.201 Python/3.6.8 Linux/4.14 Botocore/1.12.201")
                .0
                .as_deref(),
            Some("Boto3")
        );
    }

    #[test]
    fn unknown_agents_say_so() {
        assert_eq!(v("curl/7.61.1").2, Verdict::Unknown);
        assert_eq!(v("").2, Verdict::Unknown);
        assert_eq!(v("[S3Console/0.4]").2, Verdict::Unknown);
        assert_eq!(judge("curl/7.61.1").verdict.describe(None), "unknown agent");
    }
}
