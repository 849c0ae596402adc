//! The change executor for one account: compare-and-set batches of
//! journaled `ModifyInstanceMetadataOptions` calls, paced per region,
//! retried where that is safe, then verified by re-describing.
//!
//! Per region, in a loop:
//! 1. wait until the pacing bucket has a token, then take the next batch:
//!    the tokens there are now plus half a `recheck_window` of refill (at
//!    most 200 changes, one `DescribeInstances`);
//! 2. re-describe the batch and compare each instance with the options its
//!    change expects ([`compare`]): only those still at `previous` are sent;
//!    one already at its target is skipped (or, if a call of ours landed and
//!    its answer was lost, applied); one someone else changed is skipped as
//!    `changed-since-plan` with the options seen; one gone has failed;
//! 3. send: journal intent → wait for a token → call → journal result. A
//!    change whose look is older than `recheck_window` when its turn comes
//!    goes back to be re-described first, so every call is made against
//!    options seen at most that long before.
//!
//! Retries: throttling (`RequestLimitExceeded`) is retried with backoff (EC2
//! did not act). A call without a usable answer (timeout, connection error,
//! 5xx) may have landed: it is never blindly resent, but goes back to the
//! next batch, whose re-describe shows whether it landed. Expired or
//! invalid credentials stop the run with the change still `planned`; access
//! denied stops it with that change `failed`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};

use super::ledger::{Ledger, LedgerError};
use super::observe::{IDS_PER_CALL, Observed, Verdict, compare, observe_region};
use super::{Halt, Stops};
use crate::aws::{AwsError, AwsErrorKind, Ec2Api};
use crate::model::MetadataState;
use crate::progress::Reporter;
use crate::store::journal::{ChangeRecord, ChangeStatus, Reason};

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
    pub verify_timeout: Duration,
    pub verify_interval: Duration,
    /// First backoff after a throttle or a lost answer (doubles each attempt).
    pub backoff: Duration,
    /// The oldest a look at an instance may be when its change is sent.
    pub recheck_window: Duration,
}

impl Default for ExecSettings {
    fn default() -> Self {
        ExecSettings {
            rate: 5.0,
            burst: 100.0,
            max_attempts: 10,
            in_flight: 4,
            concurrency: 8,
            verify_timeout: Duration::from_secs(60),
            verify_interval: Duration::from_secs(2),
            backoff: Duration::from_millis(250),
            recheck_window: Duration::from_secs(30),
        }
    }
}

/// A region whose instances could not be re-checked: its remaining
/// changes were not sent (they stay resumable).
#[derive(Debug, Clone)]
pub struct RegionFailure {
    pub account_id: String,
    pub region: String,
    pub error: AwsError,
}

/// What a run's execution saw, for the summary and the benchmark.
#[derive(Debug)]
pub struct Counters {
    /// `RequestLimitExceeded` (and other throttling) answers.
    pub throttled: AtomicU64,
    /// Attempts after the first (throttling and lost answers).
    pub retries: AtomicU64,
    /// `DescribeInstances` calls made to compare before sending.
    pub rechecks: AtomicU64,
    /// `DescribeInstances` calls made to verify.
    pub verifies: AtomicU64,
    /// The state of the backoff jitter.
    seed: AtomicU64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            throttled: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            rechecks: AtomicU64::new(0),
            verifies: AtomicU64::new(0),
            // Enough randomness to spread retries of concurrent processes.
            seed: AtomicU64::new(0x9e37_79b9_7f4a_7c15 ^ crate::clock::now_epoch() as u64),
        }
    }
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

    fn refill(&mut self) {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.burst);
        self.last = now;
    }

    /// Takes a token now, or says how long to wait for one.
    fn take(&mut self) -> Option<Duration> {
        match self.available() {
            Ok(_) => {
                self.tokens -= 1.0;
                None
            }
            Err(wait) => Some(wait),
        }
    }

    /// The tokens there are (at least one), or how long until there is one.
    fn available(&mut self) -> Result<f64, Duration> {
        self.refill();
        if self.tokens >= 1.0 {
            Ok(self.tokens)
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }

    /// AWS throttled us: our idea of its bucket was too generous.
    fn drain(&mut self) {
        self.tokens = 0.0;
    }
}

/// A region's bucket, shared by its concurrent sends: waiting for a token
/// is the only way any call is paced.
struct Pacer(tokio::sync::Mutex<Bucket>);

impl Pacer {
    fn new(rate: f64, burst: f64) -> Pacer {
        Pacer(tokio::sync::Mutex::new(Bucket::new(rate, burst)))
    }

    /// Waits for a token and takes it.
    async fn take(&self) {
        loop {
            let wait = self.0.lock().await.take();
            match wait {
                None => return,
                Some(d) => tokio::time::sleep(d).await,
            }
        }
    }

    /// Waits until there is a token, without taking it; how many there are.
    async fn ready(&self) -> f64 {
        loop {
            let ready = self.0.lock().await.available();
            match ready {
                Ok(t) => return t,
                Err(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    async fn drain(&self) {
        self.0.lock().await.drain();
    }
}

/// What an error means for the change that got it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// EC2 did not act: wait and try again.
    Throttled,
    /// No usable answer: the call may or may not have landed.
    NoAnswer,
    /// The credentials expired or are not accepted: stop, resumable.
    Credentials,
    /// Not allowed: stop; this change failed.
    AccessDenied,
    /// A definite refusal of this change.
    Refused,
}

fn classify(e: &AwsError) -> Class {
    match e.kind {
        AwsErrorKind::Throttled => Class::Throttled,
        AwsErrorKind::Network => Class::NoAnswer,
        AwsErrorKind::ExpiredToken | AwsErrorKind::BadCredentials | AwsErrorKind::NoCredentials => {
            Class::Credentials
        }
        AwsErrorKind::AccessDenied => Class::AccessDenied,
        AwsErrorKind::Service | AwsErrorKind::Other => match e.code.as_deref() {
            // An unparseable answer: a 5xx from a proxy or load balancer.
            None => Class::NoAnswer,
            Some(
                "InternalError" | "InternalFailure" | "ServiceUnavailable" | "Unavailable"
                | "RequestTimeout",
            ) => Class::NoAnswer,
            Some(_) => Class::Refused,
        },
        AwsErrorKind::RegionDisabled => Class::Refused,
    }
}

/// What became of one change sent from a batch.
enum Sent {
    /// EC2 accepted it: verify it.
    Accepted(ChangeRecord),
    /// Look at it again before (re)sending: its look is stale, or its answer was lost.
    Again(ChangeRecord),
    /// Settled (failed) and journaled.
    Settled,
    /// Not sent: the run is stopping.
    Left,
}

/// A refused dry run (`--check-permissions`).
#[derive(Debug, Clone)]
pub struct Denied {
    pub account_id: String,
    pub region: String,
    pub instance_id: String,
    pub error: AwsError,
}

pub struct Executor<'a, 's> {
    pub account_id: &'a str,
    pub ec2: &'a dyn Ec2Api,
    pub ledger: &'a Ledger<'s>,
    pub settings: &'a ExecSettings,
    pub stops: &'a Stops,
    pub reporter: &'a dyn Reporter,
    pub counters: &'a Counters,
}

impl Executor<'_, '_> {
    /// Sends every change given (none may be final), then verifies the
    /// ones EC2 accepted. Returns the regions that could not be re-checked.
    pub async fn execute(
        &self,
        changes: Vec<ChangeRecord>,
    ) -> Result<Vec<RegionFailure>, LedgerError> {
        let mut groups: BTreeMap<String, Vec<ChangeRecord>> = BTreeMap::new();
        for c in changes {
            groups.entry(c.region.clone()).or_default().push(c);
        }
        let results: Vec<_> = stream::iter(groups)
            .map(|(region, group)| async move { self.run_region(&region, group).await })
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        let mut accepted = Vec::new();
        let mut failures = Vec::new();
        for r in results {
            let (a, f) = r?;
            accepted.extend(a);
            failures.extend(f);
        }
        self.verify(accepted).await?;
        Ok(failures)
    }

    /// One region's changes, batch by batch.
    async fn run_region(
        &self,
        region: &str,
        changes: Vec<ChangeRecord>,
    ) -> Result<(Vec<ChangeRecord>, Option<RegionFailure>), LedgerError> {
        let s = self.settings;
        let bucket = Pacer::new(s.rate, s.burst);
        let mut queue: VecDeque<ChangeRecord> = changes.into();
        let mut accepted = Vec::new();
        // Half the window's refill per batch, so pacing alone never makes
        // a look stale before its change goes out.
        let refill = (s.rate * s.recheck_window.as_secs_f64() / 2.0).floor() as usize;
        while !queue.is_empty() && !self.stops.stopped() {
            // Look only once the first change can go: its look is then fresh.
            let tokens = bucket.ready().await;
            if self.stops.stopped() {
                break;
            }
            let size = (tokens.floor() as usize + refill)
                .clamp(1, IDS_PER_CALL)
                .min(queue.len());
            let batch: Vec<ChangeRecord> = queue.drain(..size).collect();
            let ids: Vec<&str> = batch.iter().map(|c| c.instance_id.as_str()).collect();
            let (seen, calls) = observe_region(self.ec2, region, &ids).await;
            self.counters
                .rechecks
                .fetch_add(calls as u64, Ordering::Relaxed);
            let looked = Instant::now();
            if let Some(Err(e)) = seen.values().find(|v| v.is_err()) {
                let e = e.clone();
                for c in batch.into_iter().rev() {
                    queue.push_front(c);
                }
                match classify(&e) {
                    Class::Credentials => self.stops.halt(Halt::Credentials(e)),
                    Class::AccessDenied => self.stops.halt(Halt::AccessDenied(e)),
                    _ => {
                        return Ok((
                            accepted,
                            Some(RegionFailure {
                                account_id: self.account_id.to_owned(),
                                region: region.to_owned(),
                                error: e,
                            }),
                        ));
                    }
                }
                break;
            }
            let mut to_send = Vec::new();
            for mut c in batch {
                let observed = match seen.get(&c.instance_id) {
                    Some(Ok(o)) => *o,
                    _ => Observed::Gone,
                };
                match compare(&c.previous, &c.target, &observed) {
                    Verdict::AtPrevious if c.tries >= s.max_attempts => {
                        let last = c.message.clone().unwrap_or_default();
                        c.settle(
                            ChangeStatus::Failed,
                            Reason::NoAnswer,
                            format!(
                                "no usable answer from EC2 in {} attempts ({last}); it still has its previous options",
                                c.tries
                            ),
                        );
                        self.settled(&mut c)?;
                    }
                    Verdict::AtPrevious => to_send.push(c),
                    Verdict::AtTarget if c.attempts > 0 => {
                        // A call of ours landed: an answer lost to a timeout
                        // or a crash, or one answered `pending` earlier.
                        if matches!(c.status, ChangeStatus::Issued | ChangeStatus::Failed) {
                            c.reason = Some(Reason::AnswerLost);
                            c.message = Some(
                                "the answer to a call was lost; EC2 shows the target options"
                                    .into(),
                            );
                            c.error_code = None;
                        }
                        match observed {
                            Observed::Found {
                                state: Some(MetadataState::Pending),
                                ..
                            } => {
                                c.status = ChangeStatus::Pending;
                                self.ledger.record(&mut c)?;
                                accepted.push(c);
                            }
                            _ => {
                                c.status = ChangeStatus::Applied;
                                c.verified = true;
                                self.settled(&mut c)?;
                            }
                        }
                    }
                    Verdict::AtTarget => {
                        c.settle(
                            ChangeStatus::Skipped,
                            Reason::AtTarget,
                            "already at target; nothing sent",
                        );
                        self.settled(&mut c)?;
                    }
                    Verdict::Changed(now) => {
                        c.observed = Some(now);
                        c.settle(
                            ChangeStatus::Skipped,
                            Reason::ChangedSincePlan,
                            format!(
                                "changed since the plan (now {}); not touched",
                                now.describe()
                            ),
                        );
                        self.settled(&mut c)?;
                    }
                    Verdict::Unreadable => {
                        c.settle(
                            ChangeStatus::Skipped,
                            Reason::ChangedSincePlan,
                            "EC2 does not report all its metadata options; not touched",
                        );
                        self.settled(&mut c)?;
                    }
                    Verdict::Gone => {
                        c.settle(
                            ChangeStatus::Failed,
                            Reason::Gone,
                            "instance no longer exists",
                        );
                        self.settled(&mut c)?;
                    }
                }
            }
            let bucket = &bucket;
            let results: Vec<Result<Sent, LedgerError>> = stream::iter(to_send)
                .map(|c| async move { self.send(region, c, looked, bucket).await })
                .buffer_unordered(s.in_flight.max(1))
                .collect()
                .await;
            for r in results {
                match r? {
                    Sent::Accepted(c) => accepted.push(c),
                    Sent::Again(c) => queue.push_front(c),
                    Sent::Settled | Sent::Left => {}
                }
            }
        }
        Ok((accepted, None))
    }

    fn settled(&self, c: &mut ChangeRecord) -> Result<(), LedgerError> {
        self.ledger.record(c)?;
        self.reporter.advance(&c.instance_id);
        Ok(())
    }

    /// One change: journal intent, call, journal the result.
    async fn send(
        &self,
        region: &str,
        mut c: ChangeRecord,
        looked: Instant,
        bucket: &Pacer,
    ) -> Result<Sent, LedgerError> {
        let s = self.settings;
        loop {
            bucket.take().await;
            // A stop (Ctrl-C, credentials, access denied, a lost lease) may
            // have come while this change waited: then it is not sent.
            if self.stops.stopped() {
                return Ok(Sent::Left);
            }
            if looked.elapsed() > s.recheck_window {
                return Ok(Sent::Again(c));
            }
            c.tries += 1;
            self.ledger.issued(&mut c)?;
            let result = self
                .ec2
                .modify_metadata_options(region, &c.instance_id, &c.target, false)
                .await;
            let e = match result {
                Ok(outcome) => {
                    c.status = match outcome.state {
                        Some(MetadataState::Applied) => ChangeStatus::Applied,
                        _ => ChangeStatus::Pending,
                    };
                    c.response_state = outcome.state;
                    c.request_id = outcome.request_id;
                    c.reason = None;
                    c.error_code = None;
                    c.message = None;
                    self.ledger.record(&mut c)?;
                    return Ok(Sent::Accepted(c));
                }
                Err(e) => e,
            };
            c.error_code = e.code.clone();
            c.request_id = e.request_id.clone().or(c.request_id);
            c.message = Some(e.to_string());
            match classify(&e) {
                Class::Throttled => {
                    self.counters.throttled.fetch_add(1, Ordering::Relaxed);
                    bucket.drain().await;
                    if c.tries >= s.max_attempts {
                        c.settle(ChangeStatus::Failed, Reason::Refused, e.to_string());
                        self.settled(&mut c)?;
                        return Ok(Sent::Settled);
                    }
                    self.counters.retries.fetch_add(1, Ordering::Relaxed);
                    // EC2 did not act: the journal says so until the retry.
                    c.status = ChangeStatus::Planned;
                    self.ledger.record(&mut c)?;
                    tokio::time::sleep(self.backoff(c.tries)).await;
                }
                Class::NoAnswer => {
                    // It may have landed: the next look tells. The change
                    // stays `issued` in the journal until then.
                    self.counters.retries.fetch_add(1, Ordering::Relaxed);
                    self.ledger.record(&mut c)?;
                    tokio::time::sleep(self.backoff(c.tries)).await;
                    return Ok(Sent::Again(c));
                }
                Class::Credentials => {
                    // Refused before EC2 acted: still to do, after a refresh.
                    c.settle(ChangeStatus::Planned, Reason::Stopped, e.to_string());
                    self.ledger.record(&mut c)?;
                    self.stops.halt(Halt::Credentials(e));
                    return Ok(Sent::Left);
                }
                Class::AccessDenied => {
                    c.settle(ChangeStatus::Failed, Reason::Refused, e.to_string());
                    self.settled(&mut c)?;
                    self.stops.halt(Halt::AccessDenied(e));
                    return Ok(Sent::Settled);
                }
                Class::Refused => {
                    c.settle(ChangeStatus::Failed, Reason::Refused, e.to_string());
                    self.settled(&mut c)?;
                    return Ok(Sent::Settled);
                }
            }
        }
    }

    /// Exponential backoff with jitter (50–100 % of the step), capped at 20 s.
    fn backoff(&self, attempt: u32) -> Duration {
        let step = self.settings.backoff.as_secs_f64()
            * 2f64.powi(attempt.saturating_sub(1).min(10) as i32);
        // xorshift: enough randomness to spread retries, no dependency.
        let mut x = self.counters.seed.load(Ordering::Relaxed).max(1);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.counters.seed.store(x, Ordering::Relaxed);
        let jitter = 0.5 + (x % 1000) as f64 / 2000.0;
        Duration::from_secs_f64((step * jitter).min(20.0))
    }

    /// Sends every change with `DryRun=true` (paced like the real calls,
    /// throttling and lost answers retried); the first refusal is returned,
    /// and sets `refused` so no account sends more dry runs after it.
    pub async fn check_permissions(
        &self,
        changes: &[ChangeRecord],
        refused: &AtomicBool,
    ) -> Result<(), Denied> {
        let mut groups: BTreeMap<&str, Vec<&ChangeRecord>> = BTreeMap::new();
        for c in changes {
            groups.entry(c.region.as_str()).or_default().push(c);
        }
        for (region, group) in groups {
            let s = self.settings;
            let bucket = Pacer::new(s.rate, s.burst);
            let bucket = &bucket;
            let results: Vec<Result<(), Denied>> = stream::iter(group)
                .map(|c| async move { self.dry_run(region, c, bucket, refused).await })
                .buffer_unordered(s.in_flight.max(1))
                .collect()
                .await;
            for r in results {
                r?;
            }
        }
        Ok(())
    }

    async fn dry_run(
        &self,
        region: &str,
        c: &ChangeRecord,
        bucket: &Pacer,
        refused: &AtomicBool,
    ) -> Result<(), Denied> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            bucket.take().await;
            if self.stops.stopped() || refused.load(Ordering::SeqCst) {
                return Ok(()); // the caller sees the stop, or the refusal
            }
            let error = match self
                .ec2
                .modify_metadata_options(region, &c.instance_id, &c.target, true)
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            let class = classify(&error);
            if matches!(class, Class::Throttled | Class::NoAnswer)
                && attempt < self.settings.max_attempts
            {
                if class == Class::Throttled {
                    self.counters.throttled.fetch_add(1, Ordering::Relaxed);
                    bucket.drain().await;
                }
                self.counters.retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(self.backoff(attempt)).await;
                continue;
            }
            refused.store(true, Ordering::SeqCst);
            return Err(Denied {
                account_id: self.account_id.to_owned(),
                region: region.to_owned(),
                instance_id: c.instance_id.clone(),
                error,
            });
        }
    }

    /// Re-describes accepted changes until each shows its target options
    /// with state `applied`, or the timeout passes (then: `pending`).
    async fn verify(&self, mut waiting: Vec<ChangeRecord>) -> Result<(), LedgerError> {
        let deadline = Instant::now() + self.settings.verify_timeout;
        loop {
            // Answered `applied` and nothing to wait for: one look confirms.
            if waiting.is_empty() {
                return Ok(());
            }
            let mut by_region: BTreeMap<String, Vec<ChangeRecord>> = BTreeMap::new();
            for c in waiting {
                by_region.entry(c.region.clone()).or_default().push(c);
            }
            let mut still = Vec::new();
            for (region, group) in by_region {
                let ids: Vec<&str> = group.iter().map(|c| c.instance_id.as_str()).collect();
                let (seen, calls) = observe_region(self.ec2, &region, &ids).await;
                self.counters
                    .verifies
                    .fetch_add(calls as u64, Ordering::Relaxed);
                if let Some(Err(e)) = seen.values().find(|v| v.is_err()) {
                    match classify(e) {
                        // No more looking with these credentials: each change
                        // keeps what EC2 answered (`verified` stays false).
                        Class::Credentials => {
                            self.stops.halt(Halt::Credentials(e.clone()));
                            continue;
                        }
                        Class::AccessDenied => {
                            self.stops.halt(Halt::AccessDenied(e.clone()));
                            continue;
                        }
                        _ => {}
                    }
                }
                for mut c in group {
                    match seen.get(&c.instance_id) {
                        Some(Ok(Observed::Found { options, state }))
                            if *options == c.target && *state != Some(MetadataState::Pending) =>
                        {
                            c.status = ChangeStatus::Applied;
                            c.verified = true;
                            self.settled(&mut c)?;
                        }
                        Some(Ok(Observed::Gone)) => {
                            c.settle(
                                ChangeStatus::Failed,
                                Reason::Gone,
                                "instance no longer exists",
                            );
                            self.settled(&mut c)?;
                        }
                        _ => still.push(c),
                    }
                }
            }
            waiting = still;
            if waiting.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let msg = format!(
                    "not confirmed within {} s",
                    self.settings.verify_timeout.as_secs()
                );
                for mut c in waiting {
                    c.settle(ChangeStatus::Pending, Reason::NotVerified, msg.clone());
                    self.settled(&mut c)?;
                }
                return Ok(());
            }
            tokio::time::sleep(self.settings.verify_interval).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn error_classes() {
        let t = |code: Option<&str>| {
            AwsError::from_code(
                crate::aws::Operation::DescribeInstances,
                code,
                Some("m"),
                None,
            )
        };
        assert_eq!(classify(&t(Some("RequestLimitExceeded"))), Class::Throttled);
        assert_eq!(classify(&t(Some("InternalError"))), Class::NoAnswer);
        assert_eq!(classify(&t(None)), Class::NoAnswer);
        assert_eq!(
            classify(&AwsError::local(
                crate::aws::Operation::DescribeInstances,
                AwsErrorKind::Network,
                "reset"
            )),
            Class::NoAnswer
        );
        for code in ["ExpiredToken", "RequestExpired", "AuthFailure"] {
            assert_eq!(classify(&t(Some(code))), Class::Credentials, "{code}");
        }
        assert_eq!(
            classify(&t(Some("UnauthorizedOperation"))),
            Class::AccessDenied
        );
        assert_eq!(
            classify(&t(Some("InvalidInstanceID.NotFound"))),
            Class::Refused
        );
        assert_eq!(classify(&t(Some("InvalidParameterValue"))), Class::Refused);
    }
}
