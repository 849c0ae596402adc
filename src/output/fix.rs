//! The fix commands' output (`templates fix`, `asg fix`, `defaults set`,
//! and the rollback or resume of their runs): one row per change with its
//! status, and in JSON also what was left alone, the instance refreshes
//! not started and what `--enforce` would block.

use std::io::Write;

use serde::Serialize;

use crate::ops::fix::{EnforceImpact, Left, Refresh};
use crate::output::rows::{self, Row, Value};
use crate::output::{Format, RowsFormat, Style};
use crate::sources::{ChangeResult, SourceChange};

/// One change, planned or journaled.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeRow {
    pub account_id: String,
    pub region: String,
    pub kind: &'static str,
    pub resource: String,
    pub description: String,
    pub status: &'static str,
    /// The launch template version made, if any.
    pub version: Option<i64>,
    /// The launch template made from a launch configuration, if any.
    pub template_id: Option<String>,
    pub message: Option<String>,
    /// The typed change (what a rollback restores is in it).
    pub change: SourceChange,
}

impl ChangeRow {
    pub fn new(
        account_id: &str,
        region: &str,
        change: &SourceChange,
        status: &'static str,
        result: &ChangeResult,
        message: Option<&str>,
    ) -> ChangeRow {
        ChangeRow {
            account_id: account_id.to_owned(),
            region: region.to_owned(),
            kind: change.kind().as_str(),
            resource: change.resource(),
            description: change.describe(),
            status,
            version: result
                .version
                .or(result.template.as_ref().map(|t| t.version)),
            template_id: result.template.as_ref().map(|t| t.template_id.clone()),
            message: message.map(str::to_owned),
            change: change.clone(),
        }
    }
}

impl Row for ChangeRow {
    const COLUMNS: &'static [&'static str] = &[
        "account_id",
        "region",
        "kind",
        "resource",
        "description",
        "status",
        "version",
        "template_id",
        "message",
    ];
    fn values(&self) -> Vec<Value<'_>> {
        vec![
            (&self.account_id).into(),
            (&self.region).into(),
            self.kind.into(),
            (&self.resource).into(),
            (&self.description).into(),
            self.status.into(),
            self.version.into(),
            self.template_id.as_ref().into(),
            self.message.as_ref().into(),
        ]
    }
}

/// Everything a fix command shows.
#[derive(Debug, Serialize)]
pub struct FixView<'a> {
    pub schema: &'static str,
    pub kind: &'static str,
    pub run: Option<i64>,
    pub dry_run: bool,
    pub changes: Vec<ChangeRow>,
    pub left_alone: &'a [Left],
    pub instance_refreshes_not_started: &'a [Refresh],
    pub enforce_impact: &'a [EnforceImpact],
}

pub fn render(
    view: &FixView<'_>,
    format: Format,
    style: Style,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, view)?;
            writeln!(out)
        }
        Format::Csv => rows::render("source-changes", &view.changes, RowsFormat::Csv, style, out),
        Format::Table => {
            if view.changes.is_empty() {
                writeln!(out, "nothing to change")?;
            } else {
                rows::render(
                    "source-changes",
                    &view.changes,
                    RowsFormat::Table,
                    style,
                    out,
                )?;
            }
            for l in view.left_alone {
                // Names come from AWS (anyone who can name a group chooses them).
                let line = format!(
                    "left alone: {} {} {}: {}",
                    l.account_id, l.region, l.resource, l.why
                );
                writeln!(out, "{}", crate::output::sanitize::terminal(&line))?;
            }
            Ok(())
        }
    }
}

/// Shell-quotes one word for a POSIX shell: hostile names stay one word.
pub fn sh(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@".contains(c))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The instance refreshes imdsguard does not start, as commands to run.
pub fn refresh_notes(refreshes: &[Refresh]) -> Vec<String> {
    refreshes
        .iter()
        .map(|r| {
            format!(
                "group {} in {} still runs {} instance(s) that allow IMDSv1; imdsguard starts no \
                 instance refresh. To replace them: aws autoscaling start-instance-refresh \
                 --auto-scaling-group-name {} --region {}",
                r.group,
                r.region,
                r.instances_allowing_v1,
                sh(&r.group),
                sh(&r.region)
            )
        })
        .collect()
}

/// What `--enforce` would block, as warnings.
pub fn impact_notes(impact: &[EnforceImpact]) -> Vec<String> {
    impact
        .iter()
        .filter(|i| !i.instances_in_use.is_empty() || !i.launch_paths_refused.is_empty())
        .map(|i| {
            let mut parts = Vec::new();
            if !i.instances_in_use.is_empty() {
                parts.push(format!(
                    "{} instance(s) still use IMDSv1 (their rollback to v1 becomes impossible): {}",
                    i.instances_in_use.len(),
                    crate::ops::list(i.instances_in_use.iter().map(String::as_str))
                ));
            }
            if !i.launch_paths_refused.is_empty() {
                parts.push(format!(
                    "launches would be refused from {}",
                    crate::ops::list(i.launch_paths_refused.iter().map(String::as_str))
                ));
            }
            format!(
                "--enforce in {} {}: {}",
                i.account_id,
                i.region,
                parts.join("; ")
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::sh;

    #[test]
    fn hostile_names_stay_one_shell_word() {
        assert_eq!(sh("web-prod"), "web-prod");
        assert_eq!(sh("a b"), "'a b'");
        assert_eq!(sh("x'; rm -rf / #"), r"'x'\''; rm -rf / #'");
        assert_eq!(sh("$(id)"), "'$(id)'");
    }
}
