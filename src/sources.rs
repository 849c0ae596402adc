//! Sources of new IMDSv1 instances: launch templates, Auto Scaling groups,
//! the account default of each region, and the AMIs behind instances that
//! still allow v1. What a scan found about them, with what the next launch
//! from each will get (see `launch::resolve`) and which level decided.
//!
//! Pure: the scan engine gathers each region's listings into a
//! [`RegionInput`]; [`assess`] turns it into rows; the store saves them, the
//! findings and the reports read them.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::aws::{
    AutoScalingGroup, CreatedTemplate, DefaultsTarget, GroupLaunchSpec, GroupTarget,
    LaunchConfiguration, MetadataDefaults, TemplateRef, TemplateTarget, TemplateVersion,
};
use crate::launch::{self, Account, Ami, Effective, LaunchOptions};
use crate::model::HttpTokens;
use crate::model::Instance;

/// One region's listings, as the scan engine gathered them. `None`: the
/// listing failed (the failure is reported by the engine) or was not made.
#[derive(Debug, Default)]
pub struct RegionInput {
    /// `$Default` and `$Latest` of every template, plus the versions groups
    /// pin to.
    pub versions: Option<Vec<TemplateVersion>>,
    pub groups: Option<Vec<AutoScalingGroup>>,
    pub configurations: Vec<LaunchConfiguration>,
    pub defaults: Option<MetadataDefaults>,
    /// AMI id → `ImdsSupport=v2.0`, for the AMIs that could be described.
    pub images: Option<HashMap<String, bool>>,
}

/// One launch template: what its default and latest versions launch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateSource {
    pub account_id: String,
    pub region: String,
    pub template_id: String,
    pub name: Option<String>,
    pub default_version: i64,
    pub latest_version: i64,
    /// What the default version sets itself.
    pub default_options: LaunchOptions,
    pub image_id: Option<String>,
    pub default_next: Effective,
    pub latest_next: Effective,
}

impl TemplateSource {
    /// Its default or its latest version launches instances that allow v1
    /// (Security Hub EC2.170 checks both).
    pub fn allows_v1(&self) -> bool {
        self.default_next.allows_v1() || self.latest_next.allows_v1()
    }

    pub fn arn(&self) -> String {
        format!(
            "arn:{}:ec2:{}:{}:launch-template/{}",
            crate::aws::partition(&self.region),
            self.region,
            self.account_id,
            self.template_id
        )
    }
}

/// Which version of its template a group launches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "pin", content = "version")]
pub enum VersionPin {
    Default,
    Latest,
    Fixed(i64),
}

impl VersionPin {
    fn parse(version: Option<&str>) -> Option<VersionPin> {
        match version {
            None | Some("$Default") => Some(VersionPin::Default),
            Some("$Latest") => Some(VersionPin::Latest),
            Some(n) => n.parse().ok().map(VersionPin::Fixed),
        }
    }

    /// As the Auto Scaling API spells it.
    pub fn as_api(&self) -> String {
        match self {
            VersionPin::Default => "$Default".into(),
            VersionPin::Latest => "$Latest".into(),
            VersionPin::Fixed(n) => n.to_string(),
        }
    }
}

/// How a group launches, resolved against the region's templates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum GroupLaunch {
    Template {
        template_id: String,
        pin: VersionPin,
        /// The version number the pin resolves to, when known.
        version: Option<i64>,
        /// A mixed instances policy: how many overrides name a template.
        mixed_overrides: Option<usize>,
    },
    Configuration {
        name: String,
    },
    /// Neither a template nor a configuration we could find.
    Unknown {
        detail: String,
    },
}

/// One Auto Scaling group and what its next launch gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSource {
    pub account_id: String,
    pub region: String,
    pub name: String,
    pub arn: Option<String>,
    pub launch: GroupLaunch,
    /// `None` when the launch data could not be found.
    pub next: Option<Effective>,
    pub instances: u64,
    /// Its instances that allow IMDSv1 now: what an instance refresh replaces.
    pub instances_allowing_v1: u64,
}

impl GroupSource {
    pub fn allows_v1(&self) -> bool {
        self.next.as_ref().is_some_and(Effective::allows_v1)
    }

    /// The ARN AWS gave, or one built from the name.
    pub fn arn(&self) -> String {
        self.arn.clone().unwrap_or_else(|| {
            format!(
                "arn:{}:autoscaling:{}:{}:autoScalingGroup:*:autoScalingGroupName/{}",
                crate::aws::partition(&self.region),
                self.region,
                self.account_id,
                self.name
            )
        })
    }
}

/// One region's account-level default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultsSource {
    pub account_id: String,
    pub region: String,
    pub defaults: MetadataDefaults,
}

impl DefaultsSource {
    pub fn requires_v2(&self) -> bool {
        self.defaults.http_tokens == Some(HttpTokens::Required)
    }

    /// Not a real ARN (defaults have none): a stable resource name in ARN form.
    pub fn arn(&self) -> String {
        format!(
            "arn:{}:ec2:{}:{}:instance-metadata-defaults",
            crate::aws::partition(&self.region),
            self.region,
            self.account_id
        )
    }
}

/// An AMI without `ImdsSupport=v2.0` behind instances that allow v1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSource {
    pub account_id: String,
    pub region: String,
    pub image_id: String,
    pub instances_allowing_v1: u64,
}

impl ImageSource {
    pub fn arn(&self) -> String {
        format!(
            "arn:{}:ec2:{}::image/{}",
            crate::aws::partition(&self.region),
            self.region,
            self.image_id
        )
    }
}

/// How the reports explain the "decided by" column.
pub const PRECEDENCE_NOTE: &str = "What the next launch gets, decided as EC2 does: the launch \
     template or configuration, then the region's account default, then the AMI's ImdsSupport, \
     then EC2's default.";

/// One source that brings IMDSv1 back, as the reports list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLine {
    pub kind: &'static str,
    pub account_id: String,
    pub region: String,
    pub resource: String,
    pub decided_by: &'static str,
    pub detail: String,
}

/// Every source a scan found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sources {
    pub templates: Vec<TemplateSource>,
    pub groups: Vec<GroupSource>,
    pub defaults: Vec<DefaultsSource>,
    pub images: Vec<ImageSource>,
}

impl Sources {
    /// The sources that bring IMDSv1 back: templates and groups whose next
    /// launch allows it (with the level that decided), region defaults that
    /// do not require IMDSv2, AMIs without `ImdsSupport=v2.0` behind
    /// instances that allow it.
    pub fn lines(&self) -> Vec<SourceLine> {
        let mut out = Vec::new();
        for t in self.templates.iter().filter(|t| t.allows_v1()) {
            let next = if t.default_next.allows_v1() {
                &t.default_next
            } else {
                &t.latest_next
            };
            out.push(SourceLine {
                kind: "launch template",
                account_id: t.account_id.clone(),
                region: t.region.clone(),
                resource: match &t.name {
                    Some(n) => format!("{} ({n})", t.template_id),
                    None => t.template_id.clone(),
                },
                decided_by: next.decided_by.as_str(),
                detail: next.explanation.clone(),
            });
        }
        for g in self.groups.iter() {
            let Some(next) = g.next.as_ref().filter(|n| n.allows_v1()) else {
                continue;
            };
            out.push(SourceLine {
                kind: "Auto Scaling group",
                account_id: g.account_id.clone(),
                region: g.region.clone(),
                resource: g.name.clone(),
                decided_by: next.decided_by.as_str(),
                detail: format!(
                    "{} ({} of {} instances allow IMDSv1 now)",
                    next.explanation, g.instances_allowing_v1, g.instances
                ),
            });
        }
        for d in self.defaults.iter().filter(|d| !d.requires_v2()) {
            let policy = d.defaults.managed_by == Some(crate::aws::ManagedBy::DeclarativePolicy);
            out.push(SourceLine {
                kind: "account default",
                account_id: d.account_id.clone(),
                region: d.region.clone(),
                resource: "instance metadata defaults".into(),
                decided_by: if policy {
                    "declarative-policy"
                } else {
                    "account-default"
                },
                detail: format!(
                    "HttpTokens={}",
                    d.defaults
                        .http_tokens
                        .map_or("no preference", |t| t.as_str())
                ),
            });
        }
        for i in &self.images {
            out.push(SourceLine {
                kind: "AMI",
                account_id: i.account_id.clone(),
                region: i.region.clone(),
                resource: i.image_id.clone(),
                decided_by: "ami",
                detail: format!(
                    "no ImdsSupport=v2.0; {} running instance(s) allow IMDSv1",
                    i.instances_allowing_v1
                ),
            });
        }
        out
    }

    /// What the reports say when no source brings IMDSv1 back.
    pub fn none_note(&self) -> &'static str {
        if self.templates.is_empty() && self.groups.is_empty() && self.defaults.is_empty() {
            "Not read by this scan (--no-sources, or a scan made before imdsguard read them)."
        } else {
            "Every launch template, Auto Scaling group and account default read launches IMDSv2-only instances."
        }
    }

    pub fn extend(&mut self, other: Sources) {
        self.templates.extend(other.templates);
        self.groups.extend(other.groups);
        self.defaults.extend(other.defaults);
        self.images.extend(other.images);
    }
}

/// One change to a source of new instances, journaled as a whole: what it
/// does and everything its rollback restores. Steps run in order; the
/// journal records how many are done, so a resumed run continues after the
/// last one that landed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "change")]
pub enum SourceChange {
    /// `templates fix`: a new version of the template copied from
    /// `source_version` with `target`'s options (step 1), made the default
    /// (step 2) when `make_default`.
    NewVersion {
        template_id: String,
        source_version: i64,
        /// The template's latest version when planned: a version above it
        /// with our description is ours (how a resume finds it).
        latest_version: i64,
        previous_default: i64,
        make_default: bool,
        target: TemplateTarget,
    },
    /// `asg fix` on a group pinned to a version: a fixed copy of that
    /// version (step 1), then the group pointed at it (step 2).
    PinGroup {
        group: String,
        template_id: String,
        source_version: i64,
        latest_version: i64,
        previous: GroupTarget,
        target: TemplateTarget,
    },
    /// `asg fix` on a group on a launch configuration: a launch template
    /// copied from it with IMDSv2 required (step 1), then the group
    /// switched to it (step 2).
    ConvertGroup {
        group: String,
        configuration: String,
        template_name: String,
        hop_limit: Option<i32>,
        previous: GroupTarget,
    },
    /// `defaults set`, and the rollback of any defaults change.
    SetDefaults {
        previous: DefaultsTarget,
        target: DefaultsTarget,
    },
    /// Rollback of a template fix: the old default version back.
    RestoreDefaultVersion { template_id: String, version: i64 },
    /// Rollback of a group fix: the old template version or configuration back.
    RestoreGroup { group: String, target: GroupTarget },
}

impl SourceChange {
    /// Steps it takes.
    pub fn steps(&self) -> i64 {
        match self {
            SourceChange::NewVersion { make_default, .. } => 1 + i64::from(*make_default),
            SourceChange::PinGroup { .. } | SourceChange::ConvertGroup { .. } => 2,
            _ => 1,
        }
    }

    /// What it changes, for the journal's `resource` column and messages.
    pub fn resource(&self) -> String {
        match self {
            SourceChange::NewVersion { template_id, .. }
            | SourceChange::RestoreDefaultVersion { template_id, .. } => template_id.clone(),
            SourceChange::PinGroup { group, .. }
            | SourceChange::ConvertGroup { group, .. }
            | SourceChange::RestoreGroup { group, .. } => group.clone(),
            SourceChange::SetDefaults { .. } => "account default".into(),
        }
    }

    pub fn kind(&self) -> SourceKind {
        match self {
            SourceChange::NewVersion { .. } | SourceChange::RestoreDefaultVersion { .. } => {
                SourceKind::Template
            }
            SourceChange::PinGroup { .. }
            | SourceChange::ConvertGroup { .. }
            | SourceChange::RestoreGroup { .. } => SourceKind::Group,
            SourceChange::SetDefaults { .. } => SourceKind::Defaults,
        }
    }

    /// One line for people: "lt-0ab: new version from v3 (IMDSv2 required), made default".
    pub fn describe(&self) -> String {
        match self {
            SourceChange::NewVersion {
                template_id,
                source_version,
                make_default,
                target,
                ..
            } => format!(
                "{template_id}: new version copied from v{source_version}, HttpTokens={}{}{}",
                target.http_tokens.as_str(),
                target
                    .hop_limit
                    .map(|h| format!(", hop limit {h}"))
                    .unwrap_or_default(),
                if *make_default {
                    ", made the default"
                } else {
                    ""
                }
            ),
            SourceChange::PinGroup {
                group,
                template_id,
                source_version,
                ..
            } => format!(
                "group {group}: pinned {template_id} v{source_version} → a fixed copy of it (IMDSv2 required)"
            ),
            SourceChange::ConvertGroup {
                group,
                configuration,
                template_name,
                ..
            } => format!(
                "group {group}: launch configuration {configuration} → new launch template {template_name} (IMDSv2 required)"
            ),
            SourceChange::SetDefaults { previous, target } => format!(
                "account default: {} → {}",
                previous.describe(),
                target.describe()
            ),
            SourceChange::RestoreDefaultVersion {
                template_id,
                version,
            } => format!("{template_id}: default version back to v{version}"),
            SourceChange::RestoreGroup { group, target } => {
                format!("group {group}: back to {}", target.describe())
            }
        }
    }

    /// Where a group fix points its group (its last step), once its first
    /// step has made the version or template.
    pub fn group_target(&self, result: &ChangeResult) -> Option<GroupTarget> {
        match self {
            SourceChange::PinGroup { template_id, .. } => Some(GroupTarget::Template {
                template_id: template_id.clone(),
                version: result.version?.to_string(),
            }),
            SourceChange::ConvertGroup { .. } => {
                let t = result.template.as_ref()?;
                Some(GroupTarget::Template {
                    template_id: t.template_id.clone(),
                    version: t.version.to_string(),
                })
            }
            _ => None,
        }
    }

    /// The change that undoes this one, given what it created.
    pub fn undo(&self, result: &ChangeResult) -> Option<SourceChange> {
        match self {
            SourceChange::NewVersion {
                template_id,
                previous_default,
                make_default: true,
                ..
            } => Some(SourceChange::RestoreDefaultVersion {
                template_id: template_id.clone(),
                version: *previous_default,
            }),
            // A version that was not made the default changed nothing that
            // launches (except `$Latest`, see the README).
            SourceChange::NewVersion { .. } => None,
            SourceChange::PinGroup {
                group, previous, ..
            }
            | SourceChange::ConvertGroup {
                group, previous, ..
            } => Some(SourceChange::RestoreGroup {
                group: group.clone(),
                target: previous.clone(),
            }),
            SourceChange::SetDefaults { previous, target } => Some(SourceChange::SetDefaults {
                previous: *target,
                target: *previous,
            }),
            SourceChange::RestoreDefaultVersion { .. } | SourceChange::RestoreGroup { .. } => {
                let _ = result;
                None
            }
        }
    }
}

/// What a source change created, journaled after its first step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeResult {
    /// The launch template version made.
    pub version: Option<i64>,
    /// The launch template made from a launch configuration.
    pub template: Option<CreatedTemplate>,
}

/// What a source change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    Template,
    Group,
    Defaults,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Template => "template",
            SourceKind::Group => "group",
            SourceKind::Defaults => "defaults",
        }
    }
}

/// The versions groups pin to that the `$Default`/`$Latest` listing did not
/// return, per template: one more listing per such template.
pub fn pinned_versions(
    versions: &[TemplateVersion],
    groups: &[AutoScalingGroup],
) -> BTreeMap<String, Vec<i64>> {
    let index = Index::new(versions);
    let mut out: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    for g in groups {
        for r in refs(&g.launch) {
            if let (Some(id), Some(VersionPin::Fixed(n))) =
                (index.id_of(r), VersionPin::parse(r.version.as_deref()))
                && index.version(&id, n).is_none()
            {
                out.entry(id).or_default().insert(n);
            }
        }
    }
    out.into_iter()
        .map(|(k, v)| (k, v.into_iter().collect()))
        .collect()
}

/// The AMIs worth describing: those the templates and configurations launch
/// and those behind instances that allow v1.
pub fn wanted_images<'a>(
    versions: &[TemplateVersion],
    configurations: &[LaunchConfiguration],
    instances: impl Iterator<Item = &'a crate::model::Instance>,
) -> Vec<String> {
    let mut ids: BTreeSet<String> = BTreeSet::new();
    ids.extend(versions.iter().filter_map(|v| v.image_id.clone()));
    ids.extend(configurations.iter().filter_map(|c| c.image_id.clone()));
    ids.extend(
        instances
            .filter(|i| i.metadata.allows_v1())
            .filter_map(|i| i.image_id.clone()),
    );
    ids.into_iter().collect()
}

fn refs(spec: &GroupLaunchSpec) -> Vec<&TemplateRef> {
    match spec {
        GroupLaunchSpec::Template { template } => vec![template],
        GroupLaunchSpec::Mixed {
            template,
            overrides,
        } => std::iter::once(template).chain(overrides).collect(),
        _ => Vec::new(),
    }
}

/// Template versions by id and number, and names to ids.
struct Index<'a> {
    by_id: HashMap<&'a str, Vec<&'a TemplateVersion>>,
    by_name: HashMap<&'a str, &'a str>,
}

impl<'a> Index<'a> {
    fn new(versions: &'a [TemplateVersion]) -> Index<'a> {
        let mut by_id: HashMap<&str, Vec<&TemplateVersion>> = HashMap::new();
        let mut by_name = HashMap::new();
        for v in versions {
            by_id.entry(&v.template_id).or_default().push(v);
            if let Some(name) = &v.template_name {
                by_name.insert(name.as_str(), v.template_id.as_str());
            }
        }
        Index { by_id, by_name }
    }

    fn id_of(&self, r: &TemplateRef) -> Option<String> {
        r.template_id.clone().or_else(|| {
            r.template_name
                .as_deref()
                .and_then(|n| self.by_name.get(n))
                .map(|s| (*s).to_owned())
        })
    }

    fn version(&self, id: &str, n: i64) -> Option<&'a TemplateVersion> {
        self.by_id.get(id)?.iter().copied().find(|v| v.version == n)
    }

    fn default(&self, id: &str) -> Option<&'a TemplateVersion> {
        self.by_id.get(id)?.iter().copied().find(|v| v.is_default)
    }

    /// The highest version the listing returned: `$Latest` (pinned extras
    /// are older than it, or they would be the latest).
    fn latest(&self, id: &str) -> Option<&'a TemplateVersion> {
        self.by_id
            .get(id)?
            .iter()
            .copied()
            .max_by_key(|v| v.version)
    }

    fn pinned(&self, id: &str, pin: VersionPin) -> Option<&'a TemplateVersion> {
        match pin {
            VersionPin::Default => self.default(id),
            VersionPin::Latest => self.latest(id),
            VersionPin::Fixed(n) => self.version(id, n),
        }
    }
}

fn options(v: &TemplateVersion) -> LaunchOptions {
    LaunchOptions {
        http_tokens: v.http_tokens,
        hop_limit: v.hop_limit,
        http_endpoint: v.http_endpoint,
    }
}

/// One region's rows. `instances` are the scan's instances of that region.
pub fn assess(
    account_id: &str,
    region: &str,
    input: &RegionInput,
    instances: &[&Instance],
) -> Sources {
    let account = match &input.defaults {
        Some(d) => Account::Known(d.into()),
        None => Account::Unknown,
    };
    let ami = |id: Option<&String>| -> Ami {
        match (id, &input.images) {
            (Some(id), Some(images)) => match images.get(id) {
                Some(true) => Ami::V2,
                Some(false) => Ami::Unset,
                None => Ami::Unknown,
            },
            _ => Ami::Unknown,
        }
    };
    let versions = input.versions.as_deref().unwrap_or_default();
    let index = Index::new(versions);
    let next_of = |v: &TemplateVersion| {
        launch::resolve(
            &options(v),
            &format!("launch template {} v{}", v.template_id, v.version),
            ami(v.image_id.as_ref()),
            &account,
        )
    };

    let mut out = Sources::default();
    let mut ids: Vec<&str> = index.by_id.keys().copied().collect();
    ids.sort_unstable();
    for id in ids {
        let (Some(default), Some(latest)) = (index.default(id), index.latest(id)) else {
            continue;
        };
        out.templates.push(TemplateSource {
            account_id: account_id.to_owned(),
            region: region.to_owned(),
            template_id: id.to_owned(),
            name: default.template_name.clone(),
            default_version: default.version,
            latest_version: latest.version,
            default_options: options(default),
            image_id: default.image_id.clone(),
            default_next: next_of(default),
            latest_next: next_of(latest),
        });
    }

    let allowing: BTreeSet<&str> = instances
        .iter()
        .filter(|i| i.metadata.allows_v1())
        .map(|i| i.instance_id.as_str())
        .collect();
    let configurations: HashMap<&str, &LaunchConfiguration> = input
        .configurations
        .iter()
        .map(|c| (c.name.as_str(), c))
        .collect();
    for g in input.groups.as_deref().unwrap_or_default() {
        let resolve_ref =
            |r: &TemplateRef| -> Result<(String, VersionPin, Option<&TemplateVersion>), String> {
                let id = index.id_of(r).ok_or_else(|| {
                    format!(
                        "launch template {} not found",
                        r.template_name.as_deref().unwrap_or("(unnamed)")
                    )
                })?;
                let pin = VersionPin::parse(r.version.as_deref())
                    .ok_or_else(|| format!("version {:?} not understood", r.version))?;
                let v = index.pinned(&id, pin);
                Ok((id, pin, v))
            };
        let (launch, next) = match &g.launch {
            GroupLaunchSpec::Template { .. } | GroupLaunchSpec::Mixed { .. } => {
                let all = refs(&g.launch);
                match resolve_ref(all[0]) {
                    Err(detail) => (GroupLaunch::Unknown { detail }, None),
                    Ok((id, pin, v)) => {
                        // The worst of the base and every override decides.
                        let mut next = v.map(next_of);
                        for r in &all[1..] {
                            if let Ok((_, _, Some(o))) = resolve_ref(r) {
                                let e = next_of(o);
                                if e.allows_v1() && !next.as_ref().is_some_and(Effective::allows_v1)
                                {
                                    next = Some(e);
                                }
                            }
                        }
                        let mixed = matches!(g.launch, GroupLaunchSpec::Mixed { .. })
                            .then(|| all.len() - 1);
                        (
                            GroupLaunch::Template {
                                template_id: id,
                                pin,
                                version: v.map(|v| v.version),
                                mixed_overrides: mixed,
                            },
                            next,
                        )
                    }
                }
            }
            GroupLaunchSpec::Configuration { name } => {
                let next = configurations.get(name.as_str()).map(|c| {
                    launch::resolve(
                        &LaunchOptions {
                            http_tokens: c.http_tokens,
                            hop_limit: c.hop_limit,
                            http_endpoint: c.http_endpoint,
                        },
                        &format!("launch configuration {name}"),
                        ami(c.image_id.as_ref()),
                        &account,
                    )
                });
                (GroupLaunch::Configuration { name: name.clone() }, next)
            }
            GroupLaunchSpec::Unknown => (
                GroupLaunch::Unknown {
                    detail: "no launch template or launch configuration".into(),
                },
                None,
            ),
        };
        out.groups.push(GroupSource {
            account_id: account_id.to_owned(),
            region: region.to_owned(),
            name: g.name.clone(),
            arn: g.arn.clone(),
            launch,
            next,
            instances: g.instance_ids.len() as u64,
            instances_allowing_v1: g
                .instance_ids
                .iter()
                .filter(|i| allowing.contains(i.as_str()))
                .count() as u64,
        });
    }

    if let Some(d) = &input.defaults {
        out.defaults.push(DefaultsSource {
            account_id: account_id.to_owned(),
            region: region.to_owned(),
            defaults: d.clone(),
        });
    }

    if let Some(images) = &input.images {
        let mut behind: BTreeMap<&str, u64> = BTreeMap::new();
        for i in instances.iter().filter(|i| i.metadata.allows_v1()) {
            if let Some(id) = i.image_id.as_deref()
                && images.get(id) == Some(&false)
            {
                *behind.entry(id).or_default() += 1;
            }
        }
        out.images = behind
            .into_iter()
            .map(|(id, n)| ImageSource {
                account_id: account_id.to_owned(),
                region: region.to_owned(),
                image_id: id.to_owned(),
                instances_allowing_v1: n,
            })
            .collect();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launch::Rung;

    fn v(id: &str, n: i64, default: bool, tokens: Option<HttpTokens>) -> TemplateVersion {
        TemplateVersion {
            template_id: id.into(),
            template_name: Some(format!("{id}-name")),
            version: n,
            is_default: default,
            http_tokens: tokens,
            http_endpoint: None,
            hop_limit: None,
            image_id: Some("ami-1".into()),
            description: None,
        }
    }

    fn group(name: &str, launch: GroupLaunchSpec, ids: &[&str]) -> AutoScalingGroup {
        AutoScalingGroup {
            name: name.into(),
            arn: None,
            launch,
            instance_ids: ids.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn pinned(id: &str, version: Option<&str>) -> GroupLaunchSpec {
        GroupLaunchSpec::Template {
            template: TemplateRef {
                template_id: Some(id.into()),
                template_name: None,
                version: version.map(str::to_owned),
            },
        }
    }

    fn input() -> RegionInput {
        RegionInput {
            versions: Some(vec![
                v("lt-a", 1, true, Some(HttpTokens::Required)),
                v("lt-a", 3, false, None),
                v("lt-b", 2, true, Some(HttpTokens::Optional)),
            ]),
            groups: Some(vec![
                group("on-default", pinned("lt-a", None), &["i-1", "i-2"]),
                group("on-latest", pinned("lt-a", Some("$Latest")), &[]),
                group(
                    "by-name",
                    GroupLaunchSpec::Template {
                        template: TemplateRef {
                            template_id: None,
                            template_name: Some("lt-b-name".into()),
                            version: Some("2".into()),
                        },
                    },
                    &[],
                ),
                group(
                    "legacy",
                    GroupLaunchSpec::Configuration { name: "lc".into() },
                    &[],
                ),
            ]),
            configurations: vec![LaunchConfiguration {
                name: "lc".into(),
                image_id: Some("ami-2".into()),
                http_tokens: None,
                http_endpoint: None,
                hop_limit: None,
            }],
            defaults: Some(MetadataDefaults::default()),
            images: Some(HashMap::from([
                ("ami-1".into(), false),
                ("ami-2".into(), true),
            ])),
        }
    }

    #[test]
    fn templates_resolve_their_default_and_latest_versions() {
        let s = assess("1", "r", &input(), &[]);
        let a = &s.templates[0];
        assert_eq!((a.default_version, a.latest_version), (1, 3));
        assert!(!a.default_next.allows_v1());
        assert!(
            a.latest_next.allows_v1(),
            "latest leaves tokens unset, AMI unset"
        );
        assert_eq!(a.latest_next.decided_by, Rung::Ec2Default);
        assert!(a.allows_v1(), "EC2.170 looks at both versions");
    }

    #[test]
    fn groups_follow_their_pin_and_name() {
        let s = assess("1", "r", &input(), &[]);
        let by = |n: &str| s.groups.iter().find(|g| g.name == n).unwrap();
        assert!(!by("on-default").allows_v1());
        assert!(by("on-latest").allows_v1());
        let named = by("by-name");
        assert!(matches!(
            named.launch,
            GroupLaunch::Template { ref template_id, pin: VersionPin::Fixed(2), version: Some(2), .. }
                if template_id == "lt-b"
        ));
        assert!(named.allows_v1());
        // The configuration sets nothing; its AMI has ImdsSupport=v2.0.
        let legacy = by("legacy").next.clone().unwrap();
        assert_eq!(
            (legacy.http_tokens, legacy.decided_by),
            (HttpTokens::Required, Rung::Ami)
        );
    }

    #[test]
    fn a_mixed_group_is_as_bad_as_its_worst_override() {
        let mut i = input();
        i.groups = Some(vec![group(
            "mixed",
            GroupLaunchSpec::Mixed {
                template: TemplateRef {
                    template_id: Some("lt-a".into()),
                    ..Default::default()
                },
                overrides: vec![TemplateRef {
                    template_id: Some("lt-b".into()),
                    ..Default::default()
                }],
            },
            &[],
        )]);
        let s = assess("1", "r", &i, &[]);
        assert!(s.groups[0].allows_v1(), "lt-b's default allows v1");
        assert!(matches!(
            s.groups[0].launch,
            GroupLaunch::Template {
                mixed_overrides: Some(1),
                ..
            }
        ));
    }

    #[test]
    fn versions_pinned_outside_the_listing_are_asked_for_once_per_template() {
        let i = input();
        let groups = vec![
            group("a", pinned("lt-a", Some("2")), &[]),
            group("b", pinned("lt-a", Some("2")), &[]),
            group("c", pinned("lt-a", Some("1")), &[]),
        ];
        let wanted = pinned_versions(i.versions.as_ref().unwrap(), &groups);
        assert_eq!(wanted, BTreeMap::from([("lt-a".to_owned(), vec![2])]));
    }

    #[test]
    fn unknown_defaults_make_answers_guesses() {
        let mut i = input();
        i.defaults = None;
        let s = assess("1", "r", &i, &[]);
        assert!(s.defaults.is_empty());
        assert!(!s.templates[0].latest_next.certain);
    }

    #[test]
    fn images_without_v2_support_count_their_v1_instances() {
        use crate::aws::fake::instance;
        let mut a = instance(1, HttpTokens::Optional);
        a.image_id = Some("ami-1".into());
        let mut b = instance(2, HttpTokens::Required);
        b.image_id = Some("ami-1".into());
        let mut c = instance(3, HttpTokens::Optional);
        c.image_id = Some("ami-2".into());
        let s = assess("1", "r", &input(), &[&a, &b, &c]);
        assert_eq!(s.images.len(), 1, "ami-2 has ImdsSupport=v2.0");
        assert_eq!(
            (
                s.images[0].image_id.as_str(),
                s.images[0].instances_allowing_v1
            ),
            ("ami-1", 1)
        );
    }
}
