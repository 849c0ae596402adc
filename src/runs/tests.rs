//! The run engine end to end against the in-memory EC2 fake: each test
//! names the property it checks and would fail without it.

use std::sync::Arc;
use std::time::Duration;

use super::executor::ExecSettings;
use super::lease::{self, LeaseGuard};
use super::ledger::{ChangeLog, Ledger};
use super::status;
use super::{Drive, Fleet, Outcome, RunError, Stop, Stops, drive};
use crate::aws::fake::{Calls, FakeEc2, instance};
use crate::aws::{AwsError, Ec2Api};
use crate::model::{Action, HttpTokens, Options};
use crate::progress::Silent;
use crate::store::Store;
use crate::store::journal::{
    ChangeStatus, NewChange, Purpose, Reason, Run, RunKind, RunStatus, test_run,
};

const ACCOUNT: &str = "111122223333";
const REGION: &str = "us-east-1";

fn fake(n: usize) -> (FakeEc2, Arc<Calls>) {
    let calls = Arc::new(Calls::default());
    let mut ec2 = FakeEc2 {
        calls: calls.clone(),
        ..Default::default()
    };
    let fleet: Vec<_> = (0..n).map(|i| instance(i, HttpTokens::Optional)).collect();
    ec2.instances.insert(REGION.into(), fleet);
    (ec2, calls)
}

fn optional() -> Options {
    instance(0, HttpTokens::Optional)
        .metadata
        .explicit()
        .unwrap()
}

fn required() -> Options {
    Options {
        http_tokens: HttpTokens::Required,
        ..optional()
    }
}

fn id(i: usize) -> String {
    instance(i, HttpTokens::Optional).instance_id
}

/// A run of `require-v2` over instances `range` of each account.
fn run_over(store: &mut Store, parts: &[(&str, std::ops::Range<usize>)]) -> i64 {
    let changes: Vec<NewChange> = parts
        .iter()
        .flat_map(|(account, range)| {
            range.clone().map(|i| NewChange {
                account_id: (*account).into(),
                region: REGION.into(),
                instance_id: id(i),
                previous: optional(),
                target: required(),
            })
        })
        .collect();
    test_run(store, &changes, &lease::me(Purpose::Apply))
}

fn new_run(store: &mut Store, account: &str, range: std::ops::Range<usize>) -> i64 {
    run_over(store, &[(account, range)])
}

fn fast() -> ExecSettings {
    ExecSettings {
        rate: 1000.0,
        burst: 1000.0,
        verify_interval: Duration::from_millis(1),
        verify_timeout: Duration::from_millis(200),
        backoff: Duration::from_millis(1),
        ..ExecSettings::default()
    }
}

/// Drives `run` over the accounts of `fleet` and finishes it.
async fn go(
    fleet: &[(&str, &FakeEc2)],
    store: &mut Store,
    run: i64,
    settings: ExecSettings,
    check_permissions: bool,
    log: Option<ChangeLog>,
) -> (Result<Outcome, RunError>, Run) {
    let fleet: Fleet = fleet
        .iter()
        .map(|(a, e)| ((*a).to_owned(), *e as &dyn Ec2Api))
        .collect();
    let guard = LeaseGuard::start(store, vec![run], lease::me(Purpose::Apply));
    let stops = Stops::new(Default::default(), guard.lost());
    let head = store.run_head(run).unwrap();
    let changes = store.load_run(run).unwrap().changes;
    let result = {
        let ledger = Ledger::new(store, run, head.kind, head.action, head.parent_run, log);
        let d = Drive {
            fleet: &fleet,
            ledger: &ledger,
            settings: &settings,
            stops: &stops,
            reporter: &Silent,
            check_permissions,
        };
        drive(&d, changes).await
    };
    let finished = status::finish(store, run, &guard).unwrap();
    (result, finished)
}

fn count(run: &Run, s: ChangeStatus) -> usize {
    run.changes.iter().filter(|c| c.status == s).count()
}

fn unauthorized() -> AwsError {
    AwsError::from_code(
        crate::aws::Operation::ModifyInstanceMetadataOptions,
        Some("UnauthorizedOperation"),
        Some("You are not authorized to perform this operation."),
        None,
    )
}

#[tokio::test]
async fn applies_journals_and_verifies_with_one_look_per_batch() {
    let (ec2, calls) = fake(30);
    let mut store = Store::in_memory();
    let run = new_run(&mut store, ACCOUNT, 0..30);
    let (out, r) = go(&[(ACCOUNT, &ec2)], &mut store, run, fast(), false, None).await;
    let out = out.unwrap();
    assert!(out.stop.is_none());
    assert_eq!(Calls::get(&calls.modifies), 30);
    assert_eq!(r.status, RunStatus::Done);
    assert!(
        r.changes
            .iter()
            .all(|c| c.status == ChangeStatus::Applied && c.verified && c.attempts == 1)
    );
    // One re-check before sending (30 ids fit one call), one verification.
    assert_eq!((out.rechecks, out.verifies), (1, 1));
    assert_eq!(Calls::get(&calls.describe_instances), 2);
}

#[tokio::test]
async fn the_recheck_window_bounds_how_many_changes_share_one_look() {
    // 100/s with a 0.2 s window: a burst of 5, then 10 more per look (half
    // the window's refill) — never a whole paced run on one stale look.
    let (ec2, calls) = fake(45);
    let mut store = Store::in_memory();
    let run = new_run(&mut store, ACCOUNT, 0..45);
    let settings = ExecSettings {
        rate: 100.0,
        burst: 5.0,
        recheck_window: Duration::from_millis(200),
        ..fast()
    };
    let (out, r) = go(&[(ACCOUNT, &ec2)], &mut store, run, settings, false, None).await;
    let out = out.unwrap();
    assert_eq!(r.status, RunStatus::Done);
    assert_eq!(Calls::get(&calls.modifies), 45);
    // First look: 5 tokens + 10 = 15; then about 1 token + 10 each.
    assert!(
        (3..=5).contains(&out.rechecks),
        "{} looks for 45 changes",
        out.rechecks
    );
}

#[tokio::test]
async fn an_instance_changed_during_the_run_is_skipped_not_overwritten() {
    // A batch of 1 per look: the third look comes after someone set hop 3 on
    // instance 2, which was still waiting for its turn.
    let (ec2, calls) = fake(4);
    let theirs = Options {
        hop_limit: 3,
        ..optional()
    };
    *ec2.drift_before_describe.lock().unwrap() = Some((3, id(2), theirs));
    let mut store = Store::in_memory();
    let run = new_run(&mut store, ACCOUNT, 0..4);
    let settings = ExecSettings {
        rate: 1000.0,
        burst: 1.0,
        in_flight: 1,
        recheck_window: Duration::from_millis(1),
        ..fast()
    };
    let (out, r) = go(&[(ACCOUNT, &ec2)], &mut store, run, settings, false, None).await;
    out.unwrap();
    assert_eq!(Calls::get(&calls.modifies), 3);
    assert!(!ec2.modify_log.lock().unwrap().contains(&id(2)));
    let c = &r.changes[2];
    assert_eq!(
        (c.status, c.reason, c.observed),
        (
            ChangeStatus::Skipped,
            Some(Reason::ChangedSincePlan),
            Some(theirs)
        )
    );
    assert_eq!(r.status, RunStatus::Incomplete);
    // What they set is still there.
    assert_eq!(ec2.modified.lock().unwrap()[&id(2)], theirs);
}

#[tokio::test]
async fn a_lost_answer_is_looked_at_again_never_sent_twice() {
    let (ec2, calls) = fake(6);
    *ec2.lose_answers.lock().unwrap() = 3; // the first three land, then "connection reset"
    let mut store = Store::in_memory();
    let run = new_run(&mut store, ACCOUNT, 0..6);
    let (out, r) = go(&[(ACCOUNT, &ec2)], &mut store, run, fast(), false, None).await;
    let out = out.unwrap();
    assert_eq!(r.status, RunStatus::Done);
    assert_eq!(Calls::get(&calls.modifies), 6, "each instance exactly once");
    let log = ec2.modify_log.lock().unwrap().clone();
    let unique: std::collections::BTreeSet<_> = log.iter().collect();
    assert_eq!(unique.len(), 6);
    assert_eq!(
        r.changes
            .iter()
            .filter(|c| c.reason == Some(Reason::AnswerLost))
            .count(),
        3
    );
    assert!(out.retries >= 3);
}

#[tokio::test]
async fn expired_credentials_stop_the_run_and_resume_finishes_it() {
    let (mut ec2, calls) = fake(10);
    ec2.fail_after = Some((
        4,
        AwsError::from_code(
            crate::aws::Operation::ModifyInstanceMetadataOptions,
            Some("RequestExpired"),
            Some("Request has expired."),
            None,
        ),
    ));
    let settings = ExecSettings {
        in_flight: 1,
        ..fast()
    };
    let mut store = Store::in_memory();
    let run = new_run(&mut store, ACCOUNT, 0..10);
    let (out, r) = go(
        &[(ACCOUNT, &ec2)],
        &mut store,
        run,
        settings.clone(),
        false,
        None,
    )
    .await;
    let out = out.unwrap();
    assert!(matches!(out.stop, Some(Stop::Credentials(_))));
    assert_eq!(r.status, RunStatus::Interrupted);
    // Accepted before the expiry; verifying them needs credentials too, so
    // they keep EC2's answer, unverified.
    assert_eq!(count(&r, ChangeStatus::Applied), 4);
    assert!(r.changes.iter().all(|c| !c.verified));
    // The change that met the expiry and every later one are still to do.
    assert_eq!(count(&r, ChangeStatus::Planned), 6);
    assert_eq!(count(&r, ChangeStatus::Failed), 0);
    let stopped = r
        .changes
        .iter()
        .find(|c| c.attempts == 1 && c.status == ChangeStatus::Planned);
    assert_eq!(stopped.map(|c| c.reason), Some(Some(Reason::Stopped)));

    // Fresh credentials: the resume sends exactly the six left.
    ec2.fail_after = None;
    let before = Calls::get(&calls.modifies);
    let (out, r) = go(&[(ACCOUNT, &ec2)], &mut store, run, settings, false, None).await;
    assert!(out.unwrap().stop.is_none());
    assert_eq!(r.status, RunStatus::Done);
    assert_eq!(Calls::get(&calls.modifies) - before, 6);
}

#[tokio::test]
async fn a_resume_records_calls_that_landed_without_sending_them_again() {
    // A crash after intent was journaled and EC2 acted, before the answer
    // was: the journal says `issued`, EC2 says target.
    let (ec2, calls) = fake(3);
    let mut store = Store::in_memory();
    let run = new_run(&mut store, ACCOUNT, 0..3);
    store.mark_issued(run, 1, "t").unwrap();
    ec2.modified.lock().unwrap().insert(id(1), required());
    // And one that is at target without any call of ours (someone else).
    ec2.modified.lock().unwrap().insert(id(2), required());
    let (out, r) = go(&[(ACCOUNT, &ec2)], &mut store, run, fast(), false, None).await;
    out.unwrap();
    assert_eq!(*ec2.modify_log.lock().unwrap(), vec![id(0)]);
    assert_eq!(Calls::get(&calls.modifies), 1);
    assert_eq!(
        (r.changes[1].status, r.changes[1].reason),
        (ChangeStatus::Applied, Some(Reason::AnswerLost))
    );
    assert_eq!(
        (r.changes[2].status, r.changes[2].reason),
        (ChangeStatus::Skipped, Some(Reason::AtTarget))
    );
    assert_eq!(r.status, RunStatus::Done, "at target is not a problem");
}

#[tokio::test]
async fn one_refusal_in_the_permission_phase_changes_nothing_in_any_account() {
    let (a, a_calls) = fake(5);
    let (mut b, b_calls) = fake(5);
    b.dry_run_error = Some(unauthorized());
    let mut store = Store::in_memory();
    let run = run_over(
        &mut store,
        &[("111111111111", 0..5), ("222222222222", 0..5)],
    );
    let (out, r) = go(
        &[("111111111111", &a), ("222222222222", &b)],
        &mut store,
        run,
        fast(),
        true,
        None,
    )
    .await;
    assert!(matches!(out, Err(RunError::Permission(ref d)) if d.account_id == "222222222222"));
    assert_eq!(
        Calls::get(&a_calls.modifies) + Calls::get(&b_calls.modifies),
        0
    );
    assert!(Calls::get(&b_calls.dry_runs) >= 1);
    assert_eq!(count(&r, ChangeStatus::Planned), 10);
    assert_eq!(r.status, RunStatus::Interrupted);
}

#[tokio::test]
async fn access_denied_stops_the_run_and_leaves_the_rest_planned() {
    let (mut ec2, calls) = fake(10);
    ec2.modify_error = Some(unauthorized());
    let mut store = Store::in_memory();
    let run = new_run(&mut store, ACCOUNT, 0..10);
    let settings = ExecSettings {
        in_flight: 1,
        ..fast()
    };
    let (out, r) = go(&[(ACCOUNT, &ec2)], &mut store, run, settings, false, None).await;
    assert!(matches!(out.unwrap().stop, Some(Stop::AccessDenied(_))));
    assert_eq!(Calls::get(&calls.modifies), 1);
    assert_eq!(count(&r, ChangeStatus::Failed), 1);
    assert_eq!(count(&r, ChangeStatus::Planned), 9);
}

#[tokio::test]
async fn throttling_is_retried_until_attempts_run_out() {
    let (mut ec2, calls) = fake(1);
    ec2.modify_error = Some(AwsError::from_code(
        crate::aws::Operation::ModifyInstanceMetadataOptions,
        Some("RequestLimitExceeded"),
        Some("Request limit exceeded."),
        None,
    ));
    let mut store = Store::in_memory();
    let run = new_run(&mut store, ACCOUNT, 0..1);
    let settings = ExecSettings {
        max_attempts: 4,
        ..fast()
    };
    let (out, r) = go(&[(ACCOUNT, &ec2)], &mut store, run, settings, false, None).await;
    assert_eq!(out.unwrap().throttled, 4);
    assert_eq!(Calls::get(&calls.modifies), 4);
    let c = &r.changes[0];
    assert_eq!((c.status, c.attempts), (ChangeStatus::Failed, 4));
    assert_eq!(c.error_code.as_deref(), Some("RequestLimitExceeded"));
}

#[tokio::test]
async fn a_stopped_run_sends_nothing_more() {
    let (ec2, calls) = fake(5);
    let mut store = Store::in_memory();
    let run = new_run(&mut store, ACCOUNT, 0..5);
    let fleet: Fleet = [(ACCOUNT.to_owned(), &ec2 as &dyn Ec2Api)].into();
    let stops = Stops::default();
    stops
        .interrupt
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let changes = store.load_run(run).unwrap().changes;
    let ledger = Ledger::new(
        &mut store,
        run,
        RunKind::Apply,
        Action::RequireV2,
        None,
        None,
    );
    let d = Drive {
        fleet: &fleet,
        ledger: &ledger,
        settings: &fast(),
        stops: &stops,
        reporter: &Silent,
        check_permissions: false,
    };
    let out = drive(&d, changes).await.unwrap();
    assert!(matches!(out.stop, Some(Stop::Interrupted)));
    assert_eq!(Calls::get(&calls.modifies), 0);
}

#[tokio::test]
async fn the_log_has_one_line_per_change_per_state_and_catches_up_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("changes.jsonl");
    let (ec2, _) = fake(4);
    let mut store = Store::in_memory();
    let run = new_run(&mut store, ACCOUNT, 0..4);
    let log = ChangeLog::open(&path).unwrap();
    let (out, _) = go(
        &[(ACCOUNT, &ec2)],
        &mut store,
        run,
        fast(),
        false,
        Some(log),
    )
    .await;
    out.unwrap();
    let lines = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    assert_eq!(lines().len(), 4);
    assert!(
        lines()
            .iter()
            .all(|l| l["status"] == "applied" && l["run"] == run)
    );

    // A crash lost two lines: the journal says nothing was logged for them.
    let kept: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .take(2)
        .map(str::to_owned)
        .collect();
    std::fs::write(&path, kept.join("\n") + "\n").unwrap();
    store
        .execute_for_test("UPDATE changes SET logged_status = NULL")
        .unwrap();
    let mut changes = store.load_run(run).unwrap().changes;
    let ledger = Ledger::new(
        &mut store,
        run,
        RunKind::Apply,
        Action::RequireV2,
        None,
        Some(ChangeLog::open(&path).unwrap()),
    );
    // Two lines are missing; the two in the file are not written again.
    assert_eq!(ledger.catch_up(&mut changes).unwrap(), 2);
    let mut seqs: Vec<i64> = lines().iter().map(|l| l["seq"].as_i64().unwrap()).collect();
    seqs.sort();
    assert_eq!(seqs, vec![0, 1, 2, 3]);
    assert_eq!(ledger.catch_up(&mut changes).unwrap(), 0);
}

#[tokio::test]
async fn a_rollback_marks_its_parent_and_a_rolled_back_run_is_not_resumed() {
    let (ec2, _) = fake(3);
    let mut store = Store::in_memory();
    let run = new_run(&mut store, ACCOUNT, 0..3);
    let (out, parent) = go(&[(ACCOUNT, &ec2)], &mut store, run, fast(), false, None).await;
    out.unwrap();
    assert_eq!(parent.status, RunStatus::Done);
    // Release this process's lease the way the guard's drop would.
    store
        .release_leases(&[run], &lease::me(Purpose::Apply))
        .unwrap();

    let fleet: Fleet = [(ACCOUNT.to_owned(), &ec2 as &dyn Ec2Api)].into();
    let only = [id(0), id(1)].into_iter().collect();
    let cands = super::rollback::candidates(&mut store, run, &only).unwrap();
    let sel = super::rollback::select(&fleet, &cands, false)
        .await
        .unwrap();
    assert_eq!(sel.changes.len(), 2);
    assert!(!sel.covers_all, "narrowed by --instance-ids");
    let (rb, _guard) = super::rollback::start(&mut store, &cands.parent, &sel, None).unwrap();
    assert_eq!(
        store.run_head(run).unwrap().status,
        RunStatus::PartlyRolledBack
    );
    // While the rollback runs, its parent cannot be resumed.
    assert!(matches!(
        super::resume::open(&mut store, run),
        Err(RunError::RolledBack { partly: true, .. })
    ));
    let (out, rbrun) = go(&[(ACCOUNT, &ec2)], &mut store, rb, fast(), false, None).await;
    out.unwrap();
    assert_eq!(rbrun.status, RunStatus::Done);
    let head = store.run_head(run).unwrap();
    assert_eq!(
        (head.status, head.rolled_back_by),
        (RunStatus::PartlyRolledBack, Some(rb))
    );
    assert_eq!(ec2.modified.lock().unwrap()[&id(0)], optional());
    assert_eq!(ec2.modified.lock().unwrap()[&id(2)], required());
}

#[test]
fn a_run_held_by_a_live_process_is_refused() {
    let mut store = Store::in_memory();
    let run = new_run(&mut store, ACCOUNT, 0..1);
    // This process holds it (as `apply`); a resume by "another" process
    // with a different pid finds it held. Simulate by rewriting the holder.
    store
        .execute_for_test(&format!(
            "UPDATE run_leases SET pid = 1, process_start = NULL WHERE run_id = {run}"
        ))
        .unwrap();
    // pid 1 (init) is alive on every Unix host.
    match super::resume::open(&mut store, run) {
        Err(RunError::Held { lease, .. }) => {
            assert_eq!(lease.holder.pid, 1);
            let e = RunError::Held {
                lease,
                kind: RunKind::Apply,
            };
            assert!(
                e.to_string()
                    .starts_with(&format!("run {run} is being applied by pid 1 on host "))
            );
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a live holder's run was taken"),
    }
}
