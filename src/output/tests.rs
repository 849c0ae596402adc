//! Snapshot tests of the renderers: a fixed scan (three instances, two
//! regions, a failure, usage) and a fixed run, in every format. A change to
//! what users see shows up as a snapshot diff to review
//! (`INSTA_UPDATE=always cargo test` rewrites them; `git diff` shows them).

use crate::aws::{AwsError, Operation};
use crate::findings;
use crate::model::{Action, HttpTokens, Toggle};
use crate::output::{Format, RowsFormat, ScanFormat, Style};
use crate::readiness::{Readiness, Usage};
use crate::report::test_support::record;
use crate::report::{DayPoint, Failure, RegionSummary, ScanReport};
use crate::runs::Outcome;
use crate::store::journal::{ChangeRecord, ChangeStatus, Reason, Run, RunKind, RunStatus};

fn scan() -> ScanReport {
    let mut ready = record(1, HttpTokens::Optional, Readiness::Ready);
    ready.role_name = Some("web-role".into());
    ready.owner = Some("alice".into());
    ready.instance.instance_profile_arn =
        Some("arn:aws:iam::111122223333:instance-profile/web".into());
    ready.instance.tags.insert("Name".into(), "web-1".into());
    ready.reason = "allows IMDSv1; no v1 calls in 14 days of data".into();
    ready.usage = Some(Usage {
        window_days: 14,
        v1_calls: 0,
        last_v1_call: None,
        days_with_data: 14,
        rejected_calls: 0,
    });
    let mut busy = record(2, HttpTokens::Optional, Readiness::InUse);
    busy.container_host = true;
    busy.container_reason = Some("tag eks:cluster-name".into());
    busy.owner = Some("=cmd|' /C calc'!A0".into());
    busy.reason = "allows IMDSv1; 42 v1 calls in the window".into();
    busy.usage = Some(Usage {
        window_days: 14,
        v1_calls: 42,
        last_v1_call: Some("2026-11-20".into()),
        days_with_data: 14,
        rejected_calls: 0,
    });
    busy.daily = vec![DayPoint {
        day: 20_412,
        v1_calls: 42.0,
        rejected_calls: 0.0,
    }];
    let mut done = record(3, HttpTokens::Required, Readiness::Compliant);
    done.region = "eu-west-1".into();
    done.reason = "IMDSv2 required".into();
    done.instance.metadata.hop_limit = Some(2);
    let mut report = ScanReport {
        id: Some(7),
        started_at: "2026-11-30T10:00:00Z".into(),
        finished_at: "2026-11-30T10:00:05Z".into(),
        identities: vec![(
            "111122223333".into(),
            "arn:aws:iam::111122223333:user/test".into(),
        )],
        usage_days: Some(14),
        warnings: vec!["roles unknown in one account".into()],
        failures: vec![Failure::new(
            Some("111122223333"),
            Some("ap-south-1"),
            AwsError::from_code(
                Operation::DescribeInstances,
                Some("UnauthorizedOperation"),
                Some("You are not authorized to perform this operation."),
                None,
            ),
        )],
        ..Default::default()
    };
    for region in ["us-east-1", "eu-west-1"] {
        let mut s = RegionSummary {
            account_id: "111122223333".into(),
            region: region.into(),
            complete: true,
            ..Default::default()
        };
        for r in [&ready, &busy, &done]
            .into_iter()
            .filter(|r| r.region == region)
        {
            s.add(r);
        }
        report.regions.push(s);
    }
    report.instances = vec![ready, busy, done];
    report
}

fn render_scan(format: ScanFormat) -> String {
    let report = scan();
    let findings = findings::run(&report);
    let mut out = Vec::new();
    super::render(&report, &findings, format, Style { color: false }, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn scan_as_a_table() {
    insta::assert_snapshot!(render_scan(ScanFormat::Table));
}

#[test]
fn scan_as_json() {
    insta::assert_snapshot!(render_scan(ScanFormat::Json));
}

#[test]
fn scan_as_csv() {
    insta::assert_snapshot!(render_scan(ScanFormat::Csv));
}

#[test]
fn scan_findings_as_sarif() {
    insta::assert_snapshot!(render_scan(ScanFormat::Sarif));
}

fn run() -> Run {
    let base = record(1, HttpTokens::Optional, Readiness::Ready)
        .instance
        .metadata
        .explicit()
        .unwrap();
    let target = crate::model::Options {
        http_tokens: HttpTokens::Required,
        ..base
    };
    let change = |seq: i64, status, reason, message: Option<&str>| ChangeRecord {
        seq,
        account_id: "111122223333".into(),
        region: "us-east-1".into(),
        instance_id: format!("i-{:017x}", seq + 1),
        previous: base,
        target,
        status,
        reason,
        attempts: i64::from(status != ChangeStatus::Skipped),
        issued_at: None,
        finished_at: None,
        response_state: None,
        request_id: None,
        error_code: None,
        message: message.map(str::to_owned),
        observed: None,
        verified: status == ChangeStatus::Applied,
        logged: None,
        tries: 0,
    };
    let mut drifted = change(
        2,
        ChangeStatus::Skipped,
        Some(Reason::ChangedSincePlan),
        Some(
            "changed since the plan (now optional enabled hop 3 tags disabled ipv6 disabled); not touched",
        ),
    );
    drifted.observed = Some(crate::model::Options {
        hop_limit: 3,
        ..base
    });
    Run {
        id: 3,
        kind: RunKind::Apply,
        action: Action::RequireV2,
        parent_run: None,
        status: RunStatus::Incomplete,
        created_at: "2026-11-30T10:01:00Z".into(),
        finished_at: Some("2026-11-30T10:02:00Z".into()),
        rolled_back_by: None,
        log_path: None,
        changes: vec![
            change(0, ChangeStatus::Applied, None, None),
            change(
                1,
                ChangeStatus::Skipped,
                Some(Reason::AtTarget),
                Some("already at target; nothing sent"),
            ),
            drifted,
            {
                let mut c = change(3, ChangeStatus::Failed, Some(Reason::Refused), None);
                c.target.http_endpoint = Toggle::Enabled;
                c.error_code = Some("IncorrectInstanceState".into());
                c
            },
        ],
    }
}

fn render_run(format: Format) -> String {
    let run = run();
    let outcome = Outcome {
        throttled: 2,
        retries: 3,
        rechecks: 1,
        verifies: 1,
        ..Outcome::default()
    };
    let view = super::run::RunView {
        run: &run,
        outcome: Some(&outcome),
        lease: None,
        all: true,
    };
    let mut out = Vec::new();
    super::run::render(&view, format, Style { color: false }, &mut out).unwrap();
    let mut text = String::from_utf8(out).unwrap();
    for m in super::run::aftermath(&run, &outcome) {
        text.push_str(&format!("{m:?}\n"));
    }
    text
}

#[test]
fn run_as_a_table() {
    insta::assert_snapshot!(render_run(Format::Table));
}

#[test]
fn run_as_json() {
    insta::assert_snapshot!(render_run(Format::Json));
}

#[test]
fn run_as_csv() {
    insta::assert_snapshot!(render_run(Format::Csv));
}

#[test]
fn owners_as_every_format() {
    let rows = crate::groups::by_owner(&scan());
    let mut text = String::new();
    for format in [
        RowsFormat::Table,
        RowsFormat::Json,
        RowsFormat::Csv,
        RowsFormat::Markdown,
    ] {
        let mut out = Vec::new();
        super::rows::render("owners", &rows, format, Style { color: false }, &mut out).unwrap();
        text.push_str(&String::from_utf8(out).unwrap());
    }
    insta::assert_snapshot!(text);
}

#[test]
fn an_untagged_owner_is_named_for_people_and_empty_for_machines() {
    let mut report = scan();
    for r in &mut report.instances {
        r.owner = None;
    }
    let rows = crate::groups::by_owner(&report);
    let render = |format| {
        let mut out = Vec::new();
        super::rows::render("owners", &rows, format, Style { color: false }, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    };
    assert!(render(RowsFormat::Table).contains("(no owner tag)"));
    assert!(render(RowsFormat::Markdown).contains("| _\\(no owner tag\\)_ |"));
    assert!(
        render(RowsFormat::Csv)
            .lines()
            .nth(1)
            .unwrap()
            .starts_with(",")
    );
    let json: serde_json::Value = serde_json::from_str(&render(RowsFormat::Json)).unwrap();
    assert!(json["rows"][0]["owner"].is_null());
}

#[test]
fn plan_as_every_format() {
    let mut report = scan();
    report.instances[1].readiness = Readiness::InUse;
    let request = crate::plan::PlanRequest {
        action: Action::RequireV2,
        settings: crate::plan::PlanSettings {
            hop_limit: crate::plan::HopLimit::Auto,
            enable_tags: false,
            include_in_use: false,
            include_unknown: false,
        },
    };
    let plan = crate::plan::build(&request, &report, "2026-11-30T10:00:00Z".into()).unwrap();
    let mut text = String::new();
    for format in [Format::Table, Format::Json, Format::Csv] {
        let mut out = Vec::new();
        super::plan::render(&plan, format, Style { color: false }, &mut out).unwrap();
        text.push_str(&String::from_utf8(out).unwrap());
    }
    insta::assert_snapshot!(text);
}
