//! What the next instance launched will get: the effective-settings resolver.
//!
//! EC2 decides each instance metadata option at launch, option by option,
//! from the first level that sets it. The order is documented in the Amazon
//! EC2 User Guide, "Configure the Instance Metadata Service options" →
//! "Order of precedence for instance metadata options"
//! (<https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-options.html#instance-metadata-options-order-of-precedence>),
//! highest first:
//!
//! 1. **Launch parameters**: `RunInstances`, or the launch template version
//!    (or legacy launch configuration) the launch uses.
//! 2. **Account settings**: the account-level default of the region
//!    (`GetInstanceMetadataDefaults`), which an Organizations declarative
//!    policy may manage (`ManagedBy=declarative-policy`).
//! 3. **AMI settings**: `ImdsSupport=v2.0` means tokens required and hop
//!    limit 2.
//! 4. **EC2's defaults**: tokens optional, hop limit 1, endpoint enabled.
//!
//! The account default outranks the AMI: the EC2 API reference for
//! `HttpTokens` says an AMI with `ImdsSupport=v2.0` gives `required` only
//! when the account default is `no-preference`, and `optional` when the
//! account default says "V1 or V2". On top, `HttpTokensEnforced=enabled`
//! makes EC2 refuse a launch whose resolved tokens are not `required`.
//!
//! Everything here is pure: the scan gathers the levels, this module
//! decides, and every output shows which level decided.

use serde::{Deserialize, Serialize};

use crate::aws::{ManagedBy, MetadataDefaults};
use crate::model::{HttpTokens, Toggle};

/// The options a launch path sets itself (a template version, a launch
/// configuration). `None`: left unset, so a lower level decides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchOptions {
    pub http_tokens: Option<HttpTokens>,
    pub hop_limit: Option<i32>,
    pub http_endpoint: Option<Toggle>,
}

/// What is known of the AMI a launch uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ami {
    /// `ImdsSupport=v2.0`.
    V2,
    /// Described, without `ImdsSupport`.
    Unset,
    /// Not described: no image id (e.g. an SSM parameter resolved at
    /// launch), an AMI this account cannot see, or the lookup failed.
    Unknown,
}

/// What is known of the region's account-level default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "state", content = "value")]
pub enum Account {
    Known(AccountDefault),
    /// `GetInstanceMetadataDefaults` failed or was not asked.
    Unknown,
}

/// The account-level default of one region, as far as launches care.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountDefault {
    pub http_tokens: Option<HttpTokens>,
    pub hop_limit: Option<i32>,
    pub http_endpoint: Option<Toggle>,
    pub enforced: bool,
    pub declarative_policy: bool,
}

impl From<&MetadataDefaults> for AccountDefault {
    fn from(d: &MetadataDefaults) -> Self {
        AccountDefault {
            http_tokens: d.http_tokens,
            // -1 is how EC2 spells "no preference" for the hop limit.
            hop_limit: d.hop_limit.filter(|h| *h > 0),
            http_endpoint: d.http_endpoint,
            enforced: d.http_tokens_enforced == Some(Toggle::Enabled),
            declarative_policy: d.managed_by == Some(ManagedBy::DeclarativePolicy),
        }
    }
}

/// The level that decided an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rung {
    /// The launch template version or launch configuration.
    Launch,
    /// The region's account default set by the account.
    AccountDefault,
    /// The region's account default set by a declarative policy.
    DeclarativePolicy,
    /// The AMI's `ImdsSupport=v2.0`.
    Ami,
    /// EC2's own default.
    Ec2Default,
}

impl Rung {
    pub fn as_str(self) -> &'static str {
        match self {
            Rung::Launch => "launch",
            Rung::AccountDefault => "account-default",
            Rung::DeclarativePolicy => "declarative-policy",
            Rung::Ami => "ami",
            Rung::Ec2Default => "ec2-default",
        }
    }
}

/// What the next launch gets, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effective {
    pub http_tokens: HttpTokens,
    pub hop_limit: i32,
    pub http_endpoint: Toggle,
    /// The level that decided `http_tokens`.
    pub decided_by: Rung,
    /// EC2 refuses the launch: the account enforces IMDSv2
    /// (`HttpTokensEnforced=enabled`) and the tokens resolve to optional.
    pub refused: bool,
    /// False when a level the answer depends on is unknown (the AMI or the
    /// account default could not be read): the answer is then the best
    /// guess and says so.
    pub certain: bool,
    /// Every level, in order: "optional: from launch template lt-1 v3; AMI
    /// has no ImdsSupport; account default unset".
    pub explanation: String,
}

impl Effective {
    /// The next instance would answer IMDSv1.
    pub fn allows_v1(&self) -> bool {
        !self.refused
            && self.http_tokens == HttpTokens::Optional
            && self.http_endpoint == Toggle::Enabled
    }
}

/// Resolves one launch. `launch_name` names the launch level for the
/// explanation ("launch template lt-0ab v3", "launch configuration web").
pub fn resolve(
    launch: &LaunchOptions,
    launch_name: &str,
    ami: Ami,
    account: &Account,
) -> Effective {
    let known = match account {
        Account::Known(d) => Some(d),
        Account::Unknown => None,
    };
    let account_rung = if known.is_some_and(|d| d.declarative_policy) {
        Rung::DeclarativePolicy
    } else {
        Rung::AccountDefault
    };

    // Tokens: launch, then account, then AMI, then EC2.
    let (http_tokens, decided_by) = if let Some(t) = launch.http_tokens {
        (t, Rung::Launch)
    } else if let Some(t) = known.and_then(|d| d.http_tokens) {
        (t, account_rung)
    } else if ami == Ami::V2 {
        (HttpTokens::Required, Rung::Ami)
    } else {
        (HttpTokens::Optional, Rung::Ec2Default)
    };
    let hop_limit = launch
        .hop_limit
        .or_else(|| known.and_then(|d| d.hop_limit))
        .or((ami == Ami::V2).then_some(2))
        .unwrap_or(1);
    let http_endpoint = launch
        .http_endpoint
        .or_else(|| known.and_then(|d| d.http_endpoint))
        .unwrap_or(Toggle::Enabled);
    let refused = known.is_some_and(|d| d.enforced) && http_tokens != HttpTokens::Required;

    // Certain when every level above the deciding one is known, and the
    // deciding one is not a fallback past an unknown.
    let certain = match decided_by {
        Rung::Launch => true,
        Rung::AccountDefault | Rung::DeclarativePolicy => true,
        Rung::Ami => known.is_some(),
        Rung::Ec2Default => known.is_some() && ami != Ami::Unknown,
    };

    let mut parts = Vec::with_capacity(3);
    parts.push(match launch.http_tokens {
        Some(t) => format!("{} sets {}", launch_name, t.as_str()),
        None => format!("{launch_name} leaves tokens unset"),
    });
    parts.push(match known {
        None => "account default unknown".to_owned(),
        Some(d) => {
            let who = if d.declarative_policy {
                "account default (declarative policy)"
            } else {
                "account default"
            };
            let enforced = if d.enforced { ", enforced" } else { "" };
            match d.http_tokens {
                Some(t) => format!("{who} {}{enforced}", t.as_str()),
                None => format!("{who} unset{enforced}"),
            }
        }
    });
    parts.push(
        match ami {
            Ami::V2 => "AMI has ImdsSupport=v2.0",
            Ami::Unset => "AMI has no ImdsSupport",
            Ami::Unknown => "AMI unknown",
        }
        .to_owned(),
    );
    let outcome = if refused {
        "launch refused".to_owned()
    } else if http_endpoint == Toggle::Disabled {
        "endpoint disabled".to_owned()
    } else {
        http_tokens.as_str().to_owned()
    };
    let decided = match decided_by {
        Rung::Launch => format!("from {launch_name}"),
        Rung::AccountDefault => "from the account default".to_owned(),
        Rung::DeclarativePolicy => "from the declarative policy".to_owned(),
        Rung::Ami => "from the AMI".to_owned(),
        Rung::Ec2Default => "EC2's default".to_owned(),
    };
    let guess = if certain { "" } else { " (best guess)" };
    Effective {
        http_tokens,
        hop_limit,
        http_endpoint,
        decided_by,
        refused,
        certain,
        explanation: format!("{outcome}{guess}: {decided}; {}", parts.join("; ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use HttpTokens::{Optional, Required};

    fn launch(tokens: Option<HttpTokens>) -> LaunchOptions {
        LaunchOptions {
            http_tokens: tokens,
            ..Default::default()
        }
    }

    fn account(tokens: Option<HttpTokens>) -> Account {
        Account::Known(AccountDefault {
            http_tokens: tokens,
            ..Default::default()
        })
    }

    fn r(l: Option<HttpTokens>, ami: Ami, a: &Account) -> Effective {
        resolve(&launch(l), "launch template lt-1 v3", ami, a)
    }

    #[test]
    fn rung_1_the_launch_wins_over_everything() {
        for ami in [Ami::V2, Ami::Unset, Ami::Unknown] {
            for a in [account(Some(Required)), account(None), Account::Unknown] {
                let e = r(Some(Optional), ami, &a);
                assert_eq!((e.http_tokens, e.decided_by), (Optional, Rung::Launch));
                assert!(e.certain);
                let e = r(Some(Required), ami, &a);
                assert_eq!((e.http_tokens, e.decided_by), (Required, Rung::Launch));
            }
        }
    }

    #[test]
    fn rung_2_the_account_default_outranks_the_ami() {
        let e = r(None, Ami::V2, &account(Some(Optional)));
        assert_eq!(
            (e.http_tokens, e.decided_by),
            (Optional, Rung::AccountDefault)
        );
        let e = r(None, Ami::Unset, &account(Some(Required)));
        assert_eq!(
            (e.http_tokens, e.decided_by),
            (Required, Rung::AccountDefault)
        );
        assert!(!e.allows_v1());
    }

    #[test]
    fn rung_2_a_declarative_policy_is_named_as_such() {
        let a = Account::Known(AccountDefault {
            http_tokens: Some(Required),
            declarative_policy: true,
            ..Default::default()
        });
        let e = r(None, Ami::Unset, &a);
        assert_eq!(e.decided_by, Rung::DeclarativePolicy);
        assert!(
            e.explanation.contains("declarative policy"),
            "{}",
            e.explanation
        );
    }

    #[test]
    fn rung_3_the_ami_decides_when_the_account_has_no_preference() {
        let e = r(None, Ami::V2, &account(None));
        assert_eq!(
            (e.http_tokens, e.decided_by, e.hop_limit),
            (Required, Rung::Ami, 2)
        );
        assert!(e.certain);
        // With the account default unknown, the AMI's answer is a guess.
        let e = r(None, Ami::V2, &Account::Unknown);
        assert_eq!(e.http_tokens, Required);
        assert!(!e.certain);
    }

    #[test]
    fn rung_4_ec2s_default_allows_v1() {
        let e = r(None, Ami::Unset, &account(None));
        assert_eq!(
            (e.http_tokens, e.decided_by, e.hop_limit),
            (Optional, Rung::Ec2Default, 1)
        );
        assert!(e.allows_v1() && e.certain);
        assert_eq!(
            e.explanation,
            "optional: EC2's default; launch template lt-1 v3 leaves tokens unset; \
             account default unset; AMI has no ImdsSupport"
        );
        assert!(!r(None, Ami::Unknown, &account(None)).certain);
    }

    #[test]
    fn enforcement_refuses_a_launch_that_resolves_to_optional() {
        let enforced = Account::Known(AccountDefault {
            http_tokens: Some(Required),
            enforced: true,
            ..Default::default()
        });
        let e = r(Some(Optional), Ami::Unset, &enforced);
        assert!(e.refused && !e.allows_v1());
        assert!(
            e.explanation.starts_with("launch refused"),
            "{}",
            e.explanation
        );
        let e = r(None, Ami::Unset, &enforced);
        assert!(!e.refused, "unset tokens take the enforced account default");
        assert_eq!(e.http_tokens, Required);
    }

    #[test]
    fn each_option_resolves_on_its_own() {
        // The template sets the hop limit only; tokens come from the AMI.
        let l = LaunchOptions {
            hop_limit: Some(3),
            ..Default::default()
        };
        let e = resolve(&l, "t", Ami::V2, &account(None));
        assert_eq!((e.http_tokens, e.hop_limit), (Required, 3));
        let a = Account::Known(AccountDefault {
            hop_limit: Some(4),
            http_endpoint: Some(Toggle::Disabled),
            ..Default::default()
        });
        let e = resolve(&LaunchOptions::default(), "t", Ami::V2, &a);
        assert_eq!((e.hop_limit, e.http_endpoint), (4, Toggle::Disabled));
        assert!(!e.allows_v1(), "a disabled endpoint serves no v1");
    }

    #[test]
    fn no_preference_hop_limit_reads_as_unset() {
        let d = MetadataDefaults {
            hop_limit: Some(-1),
            ..Default::default()
        };
        assert_eq!(AccountDefault::from(&d).hop_limit, None);
    }
}
