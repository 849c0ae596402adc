//! The change executor: sends journaled `ModifyInstanceMetadataOptions`
//! calls, paced per account and region, retried on throttling and transient
//! errors, then verified by re-describing the instances.
//!
//! Order of events for each change: journal intent → wait for a token →
//! call → journal result. A change is never dropped: it ends `applied`,
//! `pending`, `failed` (with AWS's code) or `skipped`, or stays `planned`
//! when the run was stopped (Ctrl-C, access denied) so `--resume` picks it up.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};

use crate::aws::{AwsError, AwsErrorKind, Ec2Api, Filter};
use crate::clock::now;
use crate::journal::{ChangeRecord, ChangeStatus};
use crate::model::{MetadataState, Options};
use crate::progress::Reporter;
use crate::store::{Store, StoreError};

/// How fast and how hard to try.
#[derive(Debug, Clone)]
pub struct ExecSettings {
    /// Sustained changes per second per account and region (EC2 refills 5/s).
    pub rate: f64,
    /// Calls that may go at once before pacing starts (EC2's bucket holds about 100).
    pub burst: f64,
    /// Attempts per change, including the first.
    pub max_attempts: u32,
    /// Calls in flight per region.
    pub in_flight: usize,
    /// Regions worked on at once.
    pub concurrency: usize,
    /// Send every call with `DryRun=true` first; any refusal stops the run before a change.
    pub check_permissions: bool,
    pub verify_timeout: Duration,
    pub verify_interval: Duration,
    /// First backoff after a throttle or transient error (doubles each attempt).
    pub backoff: Duration,
}

impl Default for ExecSettings {
    fn default() -> Self {
        ExecSettings {
            rate: 5.0,
            burst: 100.0,
            max_attempts: 10,
            in_flight: 4,
            concurrency: 8,
            check_permissions: false,
            verify_timeout: Duration::from_secs(60),
            verify_interval: Duration::from_secs(2),
            backoff: Duration::from_millis(250),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("permission check failed for {instance_id} in {region}: {error}")]
    Permission {
        region: String,
        instance_id: String,
        error: Box<AwsError>,
    },
}

/// What happened, for the summary and the exit code.
#[derive(Debug, Default)]
pub struct ExecOutcome {
    /// Stopped by Ctrl-C before every change was sent.
    pub interrupted: bool,
    /// Stopped because AWS denied access.
    pub stopped_by: Option<AwsError>,
    /// `RequestLimitExceeded` (and other throttling) answers seen.
    pub throttled: u64,
    /// Retries of transient errors (throttling included).
    pub retries: u64,
}

/// A token bucket: `burst` calls at once, then `rate` per second.
struct Bucket {
    tokens: f64,
    burst: f64,
    rate: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: f64, burst: f64) -> Self {
        Bucket {
            tokens: burst,
            burst,
            rate,
            last: Instant::now(),
        }
    }

    /// Takes a token now, or says how long to wait for one.
    fn take(&mut self) -> Option<Duration> {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            None
        } else {
            Some(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }

    /// AWS throttled us: our idea of its bucket was too generous.
    fn drain(&mut self) {
        self.tokens = 0.0;
    }
}

/// Whether an error is worth another attempt (the call is idempotent:
/// every field is explicit, so sending it twice sets the same options).
fn transient(e: &AwsError) -> bool {
    match e.kind {
        AwsErrorKind::Throttled | AwsErrorKind::Network => true,
        AwsErrorKind::Service | AwsErrorKind::Other => match e.code.as_deref() {
            None => true, // an unparseable answer: a 5xx from a proxy or load balancer
            Some(code) => matches!(
                code,
                "InternalError"
                    | "InternalFailure"
                    | "ServiceUnavailable"
                    | "Unavailable"
                    | "RequestTimeout"
            ),
        },
        _ => false,
    }
}

/// The journal, shared by concurrent changes (each write is short).
pub type Journal<'s> = Mutex<&'s mut Store>;

pub struct Executor<'a> {
    pub ec2: &'a dyn Ec2Api,
    pub store: &'a Journal<'a>,
    pub run: i64,
    pub settings: ExecSettings,
    /// Set by Ctrl-C: send nothing new, finish what is in flight.
    pub cancel: &'a AtomicBool,
    pub reporter: &'a dyn Reporter,
    /// Called with each change's final record (for `--log`).
    pub on_result: &'a (dyn Fn(&ChangeRecord) + Send + Sync),
}

struct Shared {
    stop: AtomicBool,
    stopped_by: Mutex<Option<AwsError>>,
    throttled: AtomicU64,
    retries: AtomicU64,
    seed: AtomicU64,
}

impl Executor<'_> {
    /// Sends every change not yet sent, then verifies them.
    pub async fn execute(&self, changes: Vec<ChangeRecord>) -> Result<ExecOutcome, ExecError> {
        let shared = Shared {
            stop: AtomicBool::new(false),
            stopped_by: Mutex::new(None),
            throttled: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            seed: AtomicU64::new(0x9e37_79b9_7f4a_7c15 ^ crate::clock::now_epoch() as u64),
        };
        let mut groups: BTreeMap<(String, String), Vec<ChangeRecord>> = BTreeMap::new();
        for c in changes
            .into_iter()
            .filter(|c| c.status == ChangeStatus::Planned)
        {
            groups
                .entry((c.account_id.clone(), c.region.clone()))
                .or_default()
                .push(c);
        }
        let total: usize = groups.values().map(Vec::len).sum();

        if self.settings.check_permissions {
            self.check_permissions(&groups, &shared).await?;
        }

        self.reporter.start(total as u64);
        let results: Vec<Result<Vec<ChangeRecord>, ExecError>> = stream::iter(groups)
            .map(|((_, region), group)| {
                let shared = &shared;
                async move { self.run_region(&region, group, shared).await }
            })
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        self.reporter.finish();
        let mut sent = Vec::new();
        for r in results {
            sent.extend(r?);
        }
        self.verify(sent).await?;
        Ok(ExecOutcome {
            interrupted: self.cancel.load(Ordering::SeqCst),
            stopped_by: shared.stopped_by.lock().expect("not poisoned").clone(),
            throttled: shared.throttled.load(Ordering::SeqCst),
            retries: shared.retries.load(Ordering::SeqCst),
        })
    }

    async fn check_permissions(
        &self,
        groups: &BTreeMap<(String, String), Vec<ChangeRecord>>,
        shared: &Shared,
    ) -> Result<(), ExecError> {
        for ((_, region), group) in groups {
            let bucket =
                tokio::sync::Mutex::new(Bucket::new(self.settings.rate, self.settings.burst));
            for c in group {
                match self
                    .call_with_retries(region, c, true, &bucket, shared, None)
                    .await
                {
                    Ok(_) => {}
                    Err(error) => {
                        return Err(ExecError::Permission {
                            region: region.clone(),
                            instance_id: c.instance_id.clone(),
                            error: Box::new(error),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Runs one region's changes; returns the ones EC2 accepted.
    async fn run_region(
        &self,
        region: &str,
        group: Vec<ChangeRecord>,
        shared: &Shared,
    ) -> Result<Vec<ChangeRecord>, ExecError> {
        let bucket = tokio::sync::Mutex::new(Bucket::new(self.settings.rate, self.settings.burst));
        let bucket = &bucket;
        let results: Vec<Result<Option<ChangeRecord>, ExecError>> = stream::iter(group)
            .map(|c| async move { self.run_one(region, c, bucket, shared).await })
            .buffer_unordered(self.settings.in_flight.max(1))
            .collect()
            .await;
        let mut accepted = Vec::new();
        for r in results {
            if let Some(c) = r? {
                accepted.push(c);
            }
        }
        Ok(accepted)
    }

    fn stopped(&self, shared: &Shared) -> bool {
        self.cancel.load(Ordering::SeqCst) || shared.stop.load(Ordering::SeqCst)
    }

    async fn run_one(
        &self,
        region: &str,
        mut c: ChangeRecord,
        bucket: &tokio::sync::Mutex<Bucket>,
        shared: &Shared,
    ) -> Result<Option<ChangeRecord>, ExecError> {
        if self.stopped(shared) {
            return Ok(None); // stays `planned`: `--resume` will send it
        }
        let result = self
            .call_with_retries(region, &c, false, bucket, shared, Some(c.seq))
            .await;
        let at = now();
        let store = self.store.lock().expect("not poisoned");
        let accepted = match result {
            Ok(None) => {
                // Stopped before (another) attempt: back to `planned` for `--resume`,
                // which first checks EC2 for any earlier attempt that did land.
                store.settle(
                    self.run,
                    c.seq,
                    ChangeStatus::Planned,
                    "stopped before sending",
                    &at,
                )?;
                return Ok(None);
            }
            Ok(Some(outcome)) => {
                let status = match outcome.state {
                    Some(MetadataState::Applied) => ChangeStatus::Applied,
                    _ => ChangeStatus::Pending,
                };
                let state = outcome.state.map(|s| s.as_str());
                store.mark_result(
                    self.run,
                    c.seq,
                    status,
                    state,
                    outcome.request_id.as_deref(),
                    None,
                    None,
                    &at,
                )?;
                c.status = status;
                c.response_state = state.map(str::to_owned);
                c.request_id = outcome.request_id;
                true
            }
            Err(e) => {
                if e.kind == AwsErrorKind::AccessDenied {
                    shared.stop.store(true, Ordering::SeqCst);
                    shared
                        .stopped_by
                        .lock()
                        .expect("not poisoned")
                        .get_or_insert(e.clone());
                }
                store.mark_result(
                    self.run,
                    c.seq,
                    ChangeStatus::Failed,
                    None,
                    e.request_id.as_deref(),
                    e.code.as_deref(),
                    Some(&e.to_string()),
                    &at,
                )?;
                c.status = ChangeStatus::Failed;
                c.error_code = e.code.clone();
                c.message = Some(e.to_string());
                (self.on_result)(&c);
                false
            }
        };
        drop(store);
        self.reporter.advance(&c.instance_id);
        Ok(accepted.then_some(c))
    }

    /// One change, attempted until it succeeds, fails for good, or attempts
    /// run out. `journal_seq` journals each attempt's intent (not for dry runs).
    async fn call_with_retries(
        &self,
        region: &str,
        c: &ChangeRecord,
        dry_run: bool,
        bucket: &tokio::sync::Mutex<Bucket>,
        shared: &Shared,
        journal_seq: Option<i64>,
    ) -> Result<Option<crate::aws::ModifyOutcome>, AwsError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            loop {
                let wait = bucket.lock().await.take();
                match wait {
                    None => break,
                    Some(d) => tokio::time::sleep(d).await,
                }
            }
            // A stop (Ctrl-C, access denied) may have come while this change
            // waited for a token or a backoff: then it is not sent at all.
            if self.stopped(shared) {
                return Ok(None);
            }
            if let Some(seq) = journal_seq
                && let Err(e) =
                    self.store
                        .lock()
                        .expect("not poisoned")
                        .mark_issued(self.run, seq, &now())
            {
                // Without a recorded intent we must not send the call.
                return Err(AwsError::local(
                    "ec2:ModifyInstanceMetadataOptions",
                    AwsErrorKind::Other,
                    format!("journal write failed, change not sent: {e}"),
                ));
            }
            match self
                .ec2
                .modify_metadata_options(region, &c.instance_id, &c.target, dry_run)
                .await
            {
                Ok(o) => return Ok(Some(o)),
                Err(e) if transient(&e) && attempt < self.settings.max_attempts => {
                    if e.kind == AwsErrorKind::Throttled {
                        shared.throttled.fetch_add(1, Ordering::SeqCst);
                        bucket.lock().await.drain();
                    }
                    shared.retries.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(self.backoff(attempt, shared)).await;
                }
                Err(e) => {
                    if e.kind == AwsErrorKind::Throttled {
                        shared.throttled.fetch_add(1, Ordering::SeqCst);
                    }
                    return Err(e);
                }
            }
        }
    }

    /// Exponential backoff with jitter (50–100 % of the step), capped at 20 s.
    fn backoff(&self, attempt: u32, shared: &Shared) -> Duration {
        let step = self.settings.backoff.as_secs_f64()
            * 2f64.powi(attempt.saturating_sub(1).min(10) as i32);
        // xorshift: enough randomness to spread retries, no dependency.
        let mut x = shared.seed.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        shared.seed.store(x, Ordering::Relaxed);
        let jitter = 0.5 + (x % 1000) as f64 / 2000.0;
        Duration::from_secs_f64((step * jitter).min(20.0))
    }

    /// Re-describes accepted changes until each shows its target options
    /// with state `applied`, or the timeout passes (then: `pending`).
    async fn verify(&self, mut waiting: Vec<ChangeRecord>) -> Result<(), ExecError> {
        let deadline = Instant::now() + self.settings.verify_timeout;
        loop {
            if waiting.is_empty() {
                return Ok(());
            }
            let seen = describe_options(
                self.ec2,
                waiting
                    .iter()
                    .map(|c| (c.region.as_str(), c.instance_id.as_str())),
            )
            .await;
            let mut still = Vec::new();
            for mut c in waiting {
                let key = (c.region.clone(), c.instance_id.clone());
                match seen.get(&key) {
                    Some(Ok(Some((opts, state))))
                        if *opts == c.target && *state != Some(MetadataState::Pending) =>
                    {
                        c.status = ChangeStatus::Applied;
                        c.verified = true;
                        self.store.lock().expect("not poisoned").mark_verified(
                            self.run,
                            c.seq,
                            ChangeStatus::Applied,
                            true,
                            None,
                            &now(),
                        )?;
                        (self.on_result)(&c);
                    }
                    Some(Ok(None)) => {
                        let msg = "instance no longer exists";
                        c.status = ChangeStatus::Failed;
                        c.message = Some(msg.into());
                        self.store.lock().expect("not poisoned").mark_verified(
                            self.run,
                            c.seq,
                            ChangeStatus::Failed,
                            false,
                            Some(msg),
                            &now(),
                        )?;
                        (self.on_result)(&c);
                    }
                    _ => still.push(c),
                }
            }
            waiting = still;
            if waiting.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let msg = format!(
                    "not confirmed within {} s: re-check with `imdsguard scan`",
                    self.settings.verify_timeout.as_secs()
                );
                for c in &mut waiting {
                    c.status = ChangeStatus::Pending;
                    c.message = Some(msg.clone());
                    self.store.lock().expect("not poisoned").mark_verified(
                        self.run,
                        c.seq,
                        ChangeStatus::Pending,
                        false,
                        Some(&msg),
                        &now(),
                    )?;
                    (self.on_result)(c);
                }
                return Ok(());
            }
            tokio::time::sleep(self.settings.verify_interval).await;
        }
    }
}

/// What EC2 says now about each instance: its explicit options and metadata
/// state, `None` if it no longer exists (or is terminated), or the error of
/// its region. Batched: `instance-id` filters of up to 200 ids, pages of 1000.
/// What a batched re-describe found, per key: the options and metadata
/// state, `None` for an instance that is gone, or its region's error.
pub type Described<K> = HashMap<K, Result<Option<(Options, Option<MetadataState>)>, AwsError>>;

pub async fn describe_options<'x>(
    ec2: &dyn Ec2Api,
    instances: impl Iterator<Item = (&'x str, &'x str)>,
) -> Described<(String, String)> {
    let mut by_region: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (region, id) in instances {
        by_region.entry(region).or_default().push(id);
    }
    let mut out = HashMap::new();
    for (region, ids) in by_region {
        for chunk in ids.chunks(200) {
            let filters = [Filter {
                name: "instance-id".into(),
                values: chunk.iter().map(|s| (*s).to_owned()).collect(),
            }];
            let result = crate::aws::live_instances(ec2, region, &filters)
                .await
                .map(|list| {
                    list.into_iter()
                        .filter_map(|i| {
                            Some((i.instance_id, (i.metadata.explicit()?, i.metadata.state)))
                        })
                        .collect::<HashMap<_, _>>()
                });
            for id in chunk {
                let key = (region.to_owned(), (*id).to_owned());
                let value = match &result {
                    Ok(found) => Ok(found.get(*id).copied()),
                    Err(e) => Err(e.clone()),
                };
                out.insert(key, value);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::fake::{Calls, FakeEc2, instance};
    use crate::journal::NewChange;
    use crate::model::HttpTokens;
    use crate::progress::Silent;
    use std::sync::Arc;

    fn setup(n: usize) -> (FakeEc2, Arc<Calls>, Store, i64) {
        let calls = Arc::new(Calls::default());
        let mut ec2 = FakeEc2 {
            calls: calls.clone(),
            ..Default::default()
        };
        let fleet: Vec<_> = (0..n).map(|i| instance(i, HttpTokens::Optional)).collect();
        let changes: Vec<NewChange> = fleet
            .iter()
            .map(|i| {
                let previous = i.metadata.explicit().unwrap();
                let mut target = previous;
                target.http_tokens = HttpTokens::Required;
                NewChange {
                    account_id: "111122223333".into(),
                    region: "us-east-1".into(),
                    instance_id: i.instance_id.clone(),
                    previous,
                    target,
                }
            })
            .collect();
        ec2.instances.insert("us-east-1".into(), fleet);
        let mut store = Store::in_memory();
        let run = store
            .create_run("apply", "require-v2", None, None, "t", &changes)
            .unwrap();
        (ec2, calls, store, run)
    }

    fn exec(
        ec2: &FakeEc2,
        store: &mut Store,
        run: i64,
        settings: ExecSettings,
    ) -> Result<ExecOutcome, ExecError> {
        let changes = store.load_run(run).unwrap().changes;
        let cancel = AtomicBool::new(false);
        let journal = Mutex::new(store);
        let executor = Executor {
            ec2,
            store: &journal,
            run,
            settings,
            cancel: &cancel,
            reporter: &Silent,
            on_result: &|_| {},
        };
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(executor.execute(changes))
    }

    fn fast() -> ExecSettings {
        ExecSettings {
            rate: 1000.0,
            burst: 1000.0,
            verify_interval: Duration::from_millis(1),
            backoff: Duration::from_millis(1),
            ..ExecSettings::default()
        }
    }

    #[test]
    fn applies_journals_and_verifies() {
        let (ec2, calls, mut store, run) = setup(30);
        let out = exec(&ec2, &mut store, run, fast()).unwrap();
        assert!(!out.interrupted && out.stopped_by.is_none());
        assert_eq!(Calls::get(&calls.modifies), 30);
        let r = store.load_run(run).unwrap();
        assert!(
            r.changes
                .iter()
                .all(|c| c.status == ChangeStatus::Applied && c.verified && c.attempts == 1)
        );
        // Verification is batched: one DescribeInstances for 30 instances.
        assert_eq!(Calls::get(&calls.describe_instances), 1);
    }

    #[test]
    fn permission_check_stops_before_any_change() {
        let (mut ec2, calls, mut store, run) = setup(5);
        ec2.dry_run_error = Some(AwsError::from_code(
            "ec2:ModifyInstanceMetadataOptions",
            Some("UnauthorizedOperation"),
            Some("You are not authorized to perform this operation."),
            None,
        ));
        let settings = ExecSettings {
            check_permissions: true,
            ..fast()
        };
        let err = exec(&ec2, &mut store, run, settings).unwrap_err();
        assert!(
            matches!(err, ExecError::Permission { ref error, .. } if error.kind == AwsErrorKind::AccessDenied)
        );
        assert_eq!(Calls::get(&calls.dry_runs), 1);
        assert_eq!(Calls::get(&calls.modifies), 0);
        let r = store.load_run(run).unwrap();
        assert!(
            r.changes
                .iter()
                .all(|c| c.status == ChangeStatus::Planned && c.attempts == 0)
        );
    }

    #[test]
    fn permission_check_passes_then_applies() {
        let (ec2, calls, mut store, run) = setup(5);
        let settings = ExecSettings {
            check_permissions: true,
            ..fast()
        };
        exec(&ec2, &mut store, run, settings).unwrap();
        assert_eq!(Calls::get(&calls.dry_runs), 5);
        assert_eq!(Calls::get(&calls.modifies), 5);
    }

    #[test]
    fn access_denied_stops_the_run_and_leaves_the_rest_planned() {
        let (mut ec2, calls, mut store, run) = setup(10);
        ec2.modify_error = Some(AwsError::from_code(
            "ec2:ModifyInstanceMetadataOptions",
            Some("UnauthorizedOperation"),
            Some("no"),
            None,
        ));
        let settings = ExecSettings {
            in_flight: 1,
            ..fast()
        };
        let out = exec(&ec2, &mut store, run, settings).unwrap();
        assert!(out.stopped_by.is_some());
        assert_eq!(Calls::get(&calls.modifies), 1);
        let r = store.load_run(run).unwrap();
        assert_eq!(
            r.changes
                .iter()
                .filter(|c| c.status == ChangeStatus::Failed)
                .count(),
            1
        );
        assert_eq!(
            r.changes
                .iter()
                .filter(|c| c.status == ChangeStatus::Planned)
                .count(),
            9
        );
    }

    #[test]
    fn a_cancelled_run_sends_nothing_more() {
        let (ec2, calls, mut store, run) = setup(5);
        let changes = store.load_run(run).unwrap().changes;
        let cancel = AtomicBool::new(true);
        let journal = Mutex::new(&mut store);
        let executor = Executor {
            ec2: &ec2,
            store: &journal,
            run,
            settings: fast(),
            cancel: &cancel,
            reporter: &Silent,
            on_result: &|_| {},
        };
        let out = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(executor.execute(changes))
            .unwrap();
        assert!(out.interrupted);
        assert_eq!(Calls::get(&calls.modifies), 0);
        let r = store.load_run(run).unwrap();
        assert!(r.changes.iter().all(|c| c.status == ChangeStatus::Planned));
    }

    #[test]
    fn throttling_is_retried_until_attempts_run_out() {
        let (mut ec2, calls, mut store, run) = setup(1);
        ec2.modify_error = Some(AwsError::from_code(
            "ec2:ModifyInstanceMetadataOptions",
            Some("RequestLimitExceeded"),
            Some("Request limit exceeded."),
            None,
        ));
        let settings = ExecSettings {
            max_attempts: 4,
            ..fast()
        };
        let out = exec(&ec2, &mut store, run, settings).unwrap();
        assert_eq!(Calls::get(&calls.modifies), 4);
        assert_eq!(out.throttled, 4);
        let c = &store.load_run(run).unwrap().changes[0];
        assert_eq!((c.status, c.attempts), (ChangeStatus::Failed, 4));
        assert_eq!(c.error_code.as_deref(), Some("RequestLimitExceeded"));
    }

    #[test]
    fn bucket_paces_after_burst() {
        let mut b = Bucket::new(5.0, 3.0);
        assert!(b.take().is_none());
        assert!(b.take().is_none());
        assert!(b.take().is_none());
        let wait = b.take().expect("empty");
        assert!(
            wait <= Duration::from_millis(200) && wait > Duration::from_millis(150),
            "{wait:?}"
        );
        b.drain();
        assert!(b.take().is_some());
    }

    #[test]
    fn transient_errors() {
        let t = |code: Option<&str>| AwsError::from_code("x:Y", code, Some("m"), None);
        assert!(transient(&t(Some("RequestLimitExceeded"))));
        assert!(transient(&t(Some("InternalError"))));
        assert!(transient(&t(None)));
        assert!(!transient(&t(Some("UnauthorizedOperation"))));
        assert!(!transient(&t(Some("InvalidInstanceID.NotFound"))));
        assert!(!transient(&t(Some("InvalidParameterValue"))));
    }
}
