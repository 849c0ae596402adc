//! Which instances a command acts on: the selection filters shared by
//! `scan`, `plan` and `harden` (`--instance-ids`, `--input-file`, `--tag`,
//! `--exclude-ids`, `--exclude-tag`, `--state`).
//!
//! Parsing is strict and happens before any AWS call, so bad input costs
//! nothing. Matching happens twice on purpose: as server-side
//! `DescribeInstances` filters where EC2 supports them (less data on the
//! wire), and again client-side, which is the source of truth (emulators
//! and old API versions ignore some filters).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::aws::Filter;
use crate::model::Instance;

/// A selection error: always the user's input, never AWS.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SelectionError {
    #[error("malformed instance id `{0}`")]
    InstanceId(String),
    #[error("malformed tag filter `{0}`: expected KEY=VALUE")]
    Tag(String),
    #[error("cannot read {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("{path}: no `instance_id` column in the header line")]
    NoIdColumn { path: PathBuf },
    #[error("{path}, line {line}: {reason}")]
    Csv {
        path: PathBuf,
        line: u64,
        reason: String,
    },
    #[error("malformed region `{0}`")]
    Region(String),
    #[error("malformed account id `{0}`")]
    AccountId(String),
}

impl SelectionError {
    pub fn hint(&self) -> &'static str {
        match self {
            SelectionError::InstanceId(_) => {
                "instance ids look like i-0123456789abcdef0 (i- and 8 or 17 hex digits); separate several with commas"
            }
            SelectionError::Tag(_) => {
                "write --tag KEY=VALUE (e.g. --tag env=prod); VALUE may be * to match any value"
            }
            SelectionError::Unreadable { .. } => "check the path and its permissions",
            SelectionError::NoIdColumn { .. } | SelectionError::Csv { .. } => {
                "the file needs a header line with an `instance_id` column; `region` and `account_id` columns are optional"
            }
            SelectionError::Region(_) => {
                "regions look like us-east-1; use --regions all for every enabled region"
            }
            SelectionError::AccountId(_) => {
                "account ids are 12 digits; separate several with commas"
            }
        }
    }
}

/// Which lifecycle states to include.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StateFilter {
    Running,
    Stopped,
    /// Every state except terminated / shutting-down.
    #[default]
    All,
}

/// One row of an `--input-file` CSV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputRow {
    pub instance_id: String,
    pub region: Option<String>,
    pub account_id: Option<String>,
}

/// A parsed, validated selection.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Instances named with `--instance-ids` or `--input-file`; `None` means any.
    /// Each id maps to the (account, region) it was pinned to, if any.
    ids: Option<BTreeMap<String, Vec<Pin>>>,
    tags: Vec<(String, String)>,
    exclude_ids: BTreeSet<String>,
    exclude_tags: Vec<(String, String)>,
    state: StateFilter,
}

/// Where a named instance is expected: `(account_id, region)`, each optional.
type Pin = (Option<String>, Option<String>);

/// A selection as the command line gives it (ids and tags already parsed;
/// ids are checked again here, the input file is read here).
#[derive(Debug, Clone, Default)]
pub struct SelectionInput {
    pub instance_ids: Vec<String>,
    pub input_file: Option<PathBuf>,
    pub tags: Vec<(String, String)>,
    pub exclude_ids: Vec<String>,
    pub exclude_tags: Vec<(String, String)>,
    pub state: StateFilter,
}

/// Up to this many ids go to EC2 as an `instance-id` filter; beyond, we
/// list everything and select client-side (EC2 caps filter values).
const MAX_SERVER_SIDE_IDS: usize = 200;

impl Selection {
    pub fn parse(input: &SelectionInput) -> Result<Selection, SelectionError> {
        let mut ids: Option<BTreeMap<String, Vec<Pin>>> = None;
        for raw in &input.instance_ids {
            let id = parse_instance_id(raw)?;
            ids.get_or_insert_with(BTreeMap::new)
                .entry(id)
                .or_default()
                .push((None, None));
        }
        if let Some(path) = &input.input_file {
            let rows = read_input_file(path)?;
            let map = ids.get_or_insert_with(BTreeMap::new);
            for row in rows {
                map.entry(row.instance_id)
                    .or_default()
                    .push((row.account_id, row.region));
            }
        }
        Ok(Selection {
            ids,
            tags: input.tags.clone(),
            exclude_ids: input
                .exclude_ids
                .iter()
                .map(|i| parse_instance_id(i))
                .collect::<Result<_, _>>()?,
            exclude_tags: input.exclude_tags.clone(),
            state: input.state,
        })
    }

    /// The regions the selection is confined to, when every named instance
    /// is pinned to a region (a CSV with a `region` column): no need to
    /// list the other regions at all.
    pub fn pinned_regions(&self) -> Option<BTreeSet<String>> {
        let ids = self.ids.as_ref()?;
        let mut regions = BTreeSet::new();
        for pins in ids.values() {
            for (_, region) in pins {
                regions.insert(region.clone()?);
            }
        }
        Some(regions)
    }

    /// Server-side `DescribeInstances` filters that narrow the listing in `region`
    /// without ever dropping an instance the client-side check would keep.
    pub fn server_filters(&self, region: &str) -> Vec<Filter> {
        let mut filters = Vec::new();
        for (key, value) in &self.tags {
            filters.push(Filter {
                name: format!("tag:{key}"),
                values: vec![value.clone()],
            });
        }
        match self.state {
            StateFilter::Running => filters.push(Filter {
                name: "instance-state-name".into(),
                values: vec!["running".into()],
            }),
            StateFilter::Stopped => filters.push(Filter {
                name: "instance-state-name".into(),
                values: vec!["stopped".into()],
            }),
            StateFilter::All => {}
        }
        if let Some(ids) = &self.ids {
            let here: Vec<String> = ids
                .iter()
                .filter(|(_, pins)| {
                    pins.iter()
                        .any(|(_, r)| r.as_deref().is_none_or(|r| r == region))
                })
                .map(|(id, _)| id.clone())
                .collect();
            if here.len() <= MAX_SERVER_SIDE_IDS {
                filters.push(Filter {
                    name: "instance-id".into(),
                    values: here,
                });
            }
        }
        filters
    }

    /// True when a region cannot hold any selected instance (saves the calls).
    pub fn excludes_region(&self, region: &str) -> bool {
        self.server_filters(region)
            .iter()
            .any(|f| f.name == "instance-id" && f.values.is_empty())
    }

    /// The client-side truth: is this instance, in this account and region, selected?
    pub fn matches(&self, account_id: &str, region: &str, instance: &Instance) -> bool {
        if instance.state.is_gone() {
            return false;
        }
        match self.state {
            StateFilter::Running if instance.state.as_str() != "running" => return false,
            StateFilter::Stopped if instance.state.as_str() != "stopped" => return false,
            _ => {}
        }
        if let Some(ids) = &self.ids {
            let Some(pins) = ids.get(&instance.instance_id) else {
                return false;
            };
            let pinned_here = pins.iter().any(|(a, r)| {
                a.as_deref().is_none_or(|a| a == account_id)
                    && r.as_deref().is_none_or(|r| r == region)
            });
            if !pinned_here {
                return false;
            }
        }
        if self.exclude_ids.contains(&instance.instance_id) {
            return false;
        }
        if !self.tags.iter().all(|(k, v)| tag_matches(instance, k, v)) {
            return false;
        }
        !self
            .exclude_tags
            .iter()
            .any(|(k, v)| tag_matches(instance, k, v))
    }

    /// The ids named explicitly, for reporting the ones that were not found.
    pub fn named_ids(&self) -> Vec<&str> {
        self.ids
            .iter()
            .flat_map(|m| m.keys().map(String::as_str))
            .collect()
    }
}

fn tag_matches(instance: &Instance, key: &str, value: &str) -> bool {
    instance
        .tag(key)
        .is_some_and(|v| value == "*" || v == value)
}

/// Validates an EC2 instance id: `i-` and 8 or 17 lowercase hex digits.
pub fn parse_instance_id(raw: &str) -> Result<String, SelectionError> {
    let id = raw.trim();
    let ok = id.strip_prefix("i-").is_some_and(|hex| {
        (hex.len() == 8 || hex.len() == 17)
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if ok {
        Ok(id.to_owned())
    } else {
        Err(SelectionError::InstanceId(raw.to_owned()))
    }
}

/// Parses `KEY=VALUE` (VALUE may itself contain `=`; KEY may not be empty).
pub fn parse_tag(raw: &str) -> Result<(String, String), SelectionError> {
    let (key, value) = raw
        .split_once('=')
        .ok_or_else(|| SelectionError::Tag(raw.to_owned()))?;
    let key = key.trim();
    if key.is_empty() || key.len() > 128 || value.len() > 256 {
        return Err(SelectionError::Tag(raw.to_owned()));
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// The one check of an account id's shape: 12 digits.
pub fn parse_account_id(raw: &str) -> Result<String, SelectionError> {
    let id = raw.trim();
    if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(id.to_owned())
    } else {
        Err(SelectionError::AccountId(raw.to_owned()))
    }
}

/// Validates a region name's shape (`us-east-1`, `us-gov-west-1`, `ap-southeast-5`).
pub fn parse_region(raw: &str) -> Result<String, SelectionError> {
    let r = raw.trim();
    let parts: Vec<&str> = r.split('-').collect();
    let ok = parts.len() >= 3
        && parts[0].len() == 2
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts[1..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts.last().is_some_and(|n| {
            !n.is_empty() && n.len() <= 2 && n.bytes().all(|b| b.is_ascii_digit())
        });
    if ok {
        Ok(r.to_owned())
    } else {
        Err(SelectionError::Region(raw.to_owned()))
    }
}

/// Reads an `--input-file` CSV: a header with `instance_id` (also accepted:
/// `InstanceId`, `instance-id`), optional `region` and `account_id`.
pub fn read_input_file(path: &Path) -> Result<Vec<InputRow>, SelectionError> {
    let data = std::fs::read(path).map_err(|e| SelectionError::Unreadable {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let csv_err = |line: u64, reason: String| SelectionError::Csv {
        path: path.to_owned(),
        line,
        reason,
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(data.as_slice());
    let headers = reader
        .headers()
        .map_err(|e| csv_err(1, e.to_string()))?
        .iter()
        .map(|h| {
            h.trim_start_matches('\u{feff}')
                .to_ascii_lowercase()
                .replace('-', "_")
        })
        .collect::<Vec<_>>();
    let col = |names: &[&str]| headers.iter().position(|h| names.contains(&h.as_str()));
    let id_col = col(&["instance_id", "instanceid"]).ok_or_else(|| SelectionError::NoIdColumn {
        path: path.to_owned(),
    })?;
    let region_col = col(&["region"]);
    let account_col = col(&["account_id", "accountid", "account"]);
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            let reason = match e.kind() {
                csv::ErrorKind::UnequalLengths {
                    expected_len, len, ..
                } => {
                    format!("expected {expected_len} fields, found {len}")
                }
                _ => e.to_string(),
            };
            csv_err(line, reason)
        })?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.iter().all(str::is_empty) {
            continue;
        }
        let raw_id = record.get(id_col).unwrap_or("");
        let instance_id = parse_instance_id(raw_id)
            .map_err(|_| csv_err(line, format!("malformed instance id `{raw_id}`")))?;
        let region = match region_col
            .and_then(|c| record.get(c))
            .filter(|s| !s.is_empty())
        {
            Some(r) => Some(
                parse_region(r).map_err(|_| csv_err(line, format!("malformed region `{r}`")))?,
            ),
            None => None,
        };
        let account_id = match account_col
            .and_then(|c| record.get(c))
            .filter(|s| !s.is_empty())
        {
            Some(a) => Some(parse_account_id(a).map_err(|_| {
                csv_err(
                    line,
                    format!("malformed account id `{a}` (12 digits expected)"),
                )
            })?),
            None => None,
        };
        rows.push(InputRow {
            instance_id,
            region,
            account_id,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::fake::instance;
    use crate::model::HttpTokens;
    use std::io::Write;

    #[test]
    fn instance_ids() {
        assert!(parse_instance_id("i-0123456789abcdef0").is_ok());
        assert!(parse_instance_id("i-12345678").is_ok());
        for bad in [
            "i-123",
            "0123456789abcdef0",
            "i-0123456789ABCDEF0",
            "i-0123456789abcdefg",
            "",
            "i-",
        ] {
            assert_eq!(
                parse_instance_id(bad),
                Err(SelectionError::InstanceId(bad.into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn tags() {
        assert_eq!(
            parse_tag("env=prod").unwrap(),
            ("env".into(), "prod".into())
        );
        assert_eq!(parse_tag("k=a=b").unwrap(), ("k".into(), "a=b".into()));
        assert_eq!(parse_tag("k=").unwrap(), ("k".into(), "".into()));
        assert!(parse_tag("env").is_err());
        assert!(parse_tag("=prod").is_err());
    }

    #[test]
    fn regions() {
        for ok in [
            "us-east-1",
            "us-gov-west-1",
            "ap-southeast-5",
            "eu-central-2",
        ] {
            assert!(parse_region(ok).is_ok(), "{ok}");
        }
        for bad in [
            "us-east",
            "useast1",
            "US-EAST-1",
            "us-east-1a",
            "us--1",
            "all",
        ] {
            assert!(parse_region(bad).is_err(), "{bad}");
        }
    }

    fn csv_file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn csv_with_optional_columns() {
        let f = csv_file(
            "account_id,region,instance_id\n111122223333,us-east-1,i-0123456789abcdef0\n,,i-12345678\n\n",
        );
        let rows = read_input_file(f.path()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].region.as_deref(), Some("us-east-1"));
        assert_eq!(rows[0].account_id.as_deref(), Some("111122223333"));
        assert_eq!(rows[1].region, None);
    }

    #[test]
    fn csv_errors_name_the_line() {
        let f = csv_file("instance_id\ni-0123456789abcdef0\nnot-an-id\n");
        match read_input_file(f.path()) {
            Err(SelectionError::Csv { line, reason, .. }) => {
                assert_eq!(line, 3);
                assert!(reason.contains("not-an-id"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        let f = csv_file("id,region\ni-0123456789abcdef0,us-east-1\n");
        assert!(matches!(
            read_input_file(f.path()),
            Err(SelectionError::NoIdColumn { .. })
        ));
        let f = csv_file("instance_id,region\ni-0123456789abcdef0,us-east-1\ni-12345678\n");
        match read_input_file(f.path()) {
            Err(SelectionError::Csv { line, .. }) => assert_eq!(line, 3),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            read_input_file(Path::new("/nonexistent/x.csv")),
            Err(SelectionError::Unreadable { .. })
        ));
    }

    #[test]
    fn matching_combines_filters_with_and() {
        let mut a = instance(1, HttpTokens::Optional);
        a.tags.insert("env".into(), "prod".into());
        a.tags.insert("team".into(), "web".into());
        let mut b = instance(2, HttpTokens::Optional);
        b.tags.insert("env".into(), "prod".into());
        b.state = crate::model::InstanceState("stopped".into());
        let input = SelectionInput {
            tags: vec![parse_tag("env=prod").unwrap()],
            exclude_tags: vec![parse_tag("team=web").unwrap()],
            ..Default::default()
        };
        let sel = Selection::parse(&input).unwrap();
        assert!(!sel.matches("1", "r", &a));
        assert!(sel.matches("1", "r", &b));
        let sel = Selection::parse(&SelectionInput {
            state: StateFilter::Running,
            ..Default::default()
        })
        .unwrap();
        assert!(sel.matches("1", "r", &a));
        assert!(!sel.matches("1", "r", &b));
    }

    #[test]
    fn pinned_regions_skip_other_regions() {
        let f = csv_file("instance_id,region\ni-0123456789abcdef0,us-east-1\n");
        let sel = Selection::parse(&SelectionInput {
            input_file: Some(f.path().to_owned()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            sel.pinned_regions()
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            vec!["us-east-1"]
        );
        assert!(sel.excludes_region("eu-west-1"));
        assert!(!sel.excludes_region("us-east-1"));
        let i = instance(0x0123456789abcdef0, HttpTokens::Optional);
        assert!(sel.matches("1", "us-east-1", &i));
        assert!(!sel.matches("1", "eu-west-1", &i));
    }
}
