//! One owner per run: the process that drives a run (apply, resume,
//! rollback) holds its lease in the database and refreshes a heartbeat.
//!
//! Rules, in one place:
//! * A lease is taken in a `BEGIN IMMEDIATE` transaction (see
//!   [`Store::acquire_leases`]), all-or-nothing, so two processes cannot both
//!   believe they own a run.
//! * A run that someone else holds is refused, with who holds it and since
//!   when — unless the holder is gone: the same host and its pid is dead (or
//!   now belongs to a process started at another time), or its heartbeat is
//!   older than [`STALE_AFTER`] (any host). Then the lease is taken over with
//!   a warning, so a `kill -9` never blocks `--resume`.
//! * The holder refreshes its heartbeat every [`HEARTBEAT`] from a thread of
//!   its own (its own SQLite connection), so a busy or paused async runtime
//!   cannot make a live run look dead. If a refresh finds the lease taken
//!   over, the run is told to stop sending ([`LeaseGuard::lost`]).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::RunError;
use crate::store::Store;
use crate::store::journal::{Acquired, Holder, Lease, Purpose};

/// How often a holder proves it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// A lease whose heartbeat is older than this (seconds) belongs to nobody.
pub const STALE_AFTER: i64 = 120;

/// This process, as a lease holder.
pub fn me(purpose: Purpose) -> Holder {
    let pid = std::process::id();
    Holder {
        pid,
        host: hostname(),
        process_start: process_start(pid),
        purpose,
    }
}

/// Why `lease`'s holder no longer drives its run, if it does not.
pub fn gone_because(lease: &Lease, me: &Holder, now: i64) -> Option<String> {
    let silent = now - lease.heartbeat;
    if silent > STALE_AFTER {
        return Some(format!("no heartbeat for {silent} s"));
    }
    if lease.holder.host != me.host {
        return None; // another machine: only the heartbeat can tell
    }
    if !alive(lease.holder.pid) {
        return Some("its process has ended".into());
    }
    match (&lease.holder.process_start, process_start(lease.holder.pid)) {
        (Some(then), Some(now)) if *then != now => {
            Some("its process has ended (the pid now belongs to another process)".into())
        }
        _ => None,
    }
}

/// A lease someone alive holds, said the way the user needs it.
pub fn describe_holder(lease: &Lease) -> String {
    format!(
        "pid {} on host {} since {}",
        lease.holder.pid, lease.holder.host, lease.acquired_at
    )
}

/// Our leases on some runs, with their heartbeat thread. Dropping it stops
/// the heartbeat and gives the leases up.
pub struct LeaseGuard {
    lost: Arc<AtomicBool>,
    /// Dropping the sender wakes the heartbeat thread to release and exit.
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Leases taken over from holders that were gone, and why each was gone.
pub type TakenOver = Vec<(Lease, String)>;

/// Takes the leases of `runs` (all or none) for this process; refuses with
/// who holds one if someone alive does.
pub fn acquire(
    store: &mut Store,
    runs: &[i64],
    purpose: Purpose,
) -> Result<(LeaseGuard, TakenOver), RunError> {
    let me = me(purpose);
    let now = crate::clock::now_epoch();
    // Leases this process holds already (a rollout holds its anchor run
    // while it rolls a wave back) stay with the guard that took them: this
    // guard must not release them when it is dropped.
    let mut fresh = Vec::with_capacity(runs.len());
    for &run in runs {
        let ours = store.lease(run)?.is_some_and(|l| {
            // The pid alone could be a reused one: the start time says
            // it is this very process.
            l.holder.pid == me.pid
                && l.holder.host == me.host
                && l.holder.process_start == me.process_start
        });
        if !ours {
            fresh.push(run);
        }
    }
    match store.acquire_leases(runs, &me, now, |l| gone_because(l, &me, now))? {
        Acquired::Held(lease) => {
            let kind = store.run_head(lease.run)?.kind;
            Err(RunError::Held {
                lease: Box::new(lease),
                kind,
            })
        }
        Acquired::Ours(taken) => Ok((LeaseGuard::start(store, fresh, me), taken)),
    }
}

impl LeaseGuard {
    /// Starts heartbeats for leases `me` already holds (a run created with
    /// its lease, or one just acquired).
    pub fn start(store: &Store, runs: Vec<i64>, me: Holder) -> LeaseGuard {
        Self::start_every(store, runs, me, HEARTBEAT)
    }

    fn start_every(store: &Store, runs: Vec<i64>, me: Holder, every: Duration) -> LeaseGuard {
        let lost = Arc::new(AtomicBool::new(false));
        let (stop, thread) = match store.path() {
            Some(path) => {
                let (tx, rx) = mpsc::channel::<()>();
                let thread = spawn_heartbeat(path, runs, me, every, lost.clone(), rx);
                (Some(tx), thread)
            }
            // An in-memory database (unit tests) dies with its process.
            None => (None, None),
        };
        LeaseGuard { lost, stop, thread }
    }

    /// Set when another process took one of our runs over: stop sending.
    pub fn lost(&self) -> Arc<AtomicBool> {
        self.lost.clone()
    }

    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The heartbeat thread: refreshes every [`HEARTBEAT`] on a connection of
/// its own, flags a lost lease, and releases the leases when told to stop.
fn spawn_heartbeat(
    path: &Path,
    runs: Vec<i64>,
    me: Holder,
    every: Duration,
    lost: Arc<AtomicBool>,
    stop: mpsc::Receiver<()>,
) -> Option<JoinHandle<()>> {
    let side = match Store::open_side(path) {
        Ok(s) => s,
        Err(e) => {
            // Without heartbeats the lease goes stale after STALE_AFTER and
            // another process may take the run over: say so, keep going.
            tracing::warn!(
                "cannot open a heartbeat connection to {}: {e}",
                path.display()
            );
            return None;
        }
    };
    std::thread::Builder::new()
        .name("lease-heartbeat".into())
        .spawn(move || {
            loop {
                match stop.recv_timeout(every) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        match side.heartbeat(&runs, &me, crate::clock::now_epoch()) {
                            Ok(true) => {}
                            Ok(false) => lost.store(true, Ordering::SeqCst),
                            Err(e) => tracing::warn!("lease heartbeat failed: {e}"),
                        }
                    }
                    // Told to stop (the guard was dropped).
                    _ => {
                        if let Err(e) = side.release_leases(&runs, &me) {
                            tracing::warn!("cannot release the run lease: {e}");
                        }
                        return;
                    }
                }
            }
        })
        .ok()
}

fn hostname() -> String {
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; gethostname writes at
        // most that many bytes and we stop at the first NUL.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc == 0 {
            let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
            if let Ok(name) = std::str::from_utf8(&buf[..end])
                && !name.is_empty()
            {
                return name.to_owned();
            }
        }
    }
    std::env::var("HOSTNAME")
        .or_else(|_| std::env::var("COMPUTERNAME"))
        .unwrap_or_else(|_| "unknown-host".into())
}

/// Whether a process with this pid exists on this host.
fn alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        // SAFETY: signal 0 only checks that the process exists.
        if unsafe { libc::kill(pid, 0) } == 0 {
            return true;
        }
        // EPERM: it exists, it is just not ours to signal.
        std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true // only the heartbeat can tell
    }
}

/// When the process started, in the kernel's clock ticks since boot (Linux:
/// field 22 of `/proc/PID/stat`); elsewhere unknown.
fn process_start(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count
    // fields from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(pid: u32, host: &str, heartbeat: i64) -> Lease {
        Lease {
            run: 1,
            holder: Holder {
                pid,
                host: host.into(),
                process_start: None,
                purpose: Purpose::Apply,
            },
            acquired_at: "t".into(),
            heartbeat,
        }
    }

    #[test]
    fn a_live_holder_keeps_its_lease() {
        let me = me(Purpose::Resume);
        // This very process is alive, and its heartbeat is fresh.
        let l = Lease {
            holder: me.clone(),
            ..lease(0, "", 1000)
        };
        assert_eq!(gone_because(&l, &me, 1010), None);
    }

    #[test]
    fn a_dead_pid_on_this_host_or_a_silent_holder_is_gone() {
        let me = me(Purpose::Resume);
        // pid_max on Linux is at most 2^22: this pid cannot exist.
        let dead = lease(4_194_304 + 17, &me.host, 1000);
        assert!(gone_because(&dead, &me, 1001).unwrap().contains("ended"));
        // On another host a dead-looking pid means nothing; silence does.
        let remote = lease(4_194_304 + 17, "elsewhere", 1000);
        assert_eq!(gone_because(&remote, &me, 1000 + STALE_AFTER), None);
        assert!(
            gone_because(&remote, &me, 1001 + STALE_AFTER)
                .unwrap()
                .contains("no heartbeat")
        );
    }

    #[test]
    fn a_lease_already_ours_outlives_a_second_guard() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("db.sqlite")).unwrap();
        let me = me(Purpose::Apply);
        let run = crate::store::journal::test_run(&mut store, &[], &me);
        let outer = LeaseGuard::start(&store, vec![run], me);
        let (inner, taken) = acquire(&mut store, &[run], Purpose::Rollback).unwrap();
        assert!(taken.is_empty());
        drop(inner);
        assert!(
            store.lease(run).unwrap().is_some(),
            "the outer guard still holds it"
        );
        drop(outer);
        assert!(store.lease(run).unwrap().is_none());
    }

    #[test]
    fn the_heartbeat_notices_a_takeover_and_dropping_the_guard_releases() {
        use crate::store::journal::{NewRun, RunKind};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let mut store = Store::open(&path).unwrap();
        let me = me(Purpose::Apply);
        let new = |store: &mut Store| {
            store
                .create_run(
                    &NewRun {
                        kind: RunKind::Apply,
                        action: crate::model::Action::RequireV2,
                        parent_run: None,
                        plan: None,
                        created_at: "t",
                        log_path: None,
                        covers_all: None,
                        changes: &[],
                        wave: None,
                    },
                    &me,
                )
                .unwrap()
        };
        let (a, b) = (new(&mut store), new(&mut store));
        let every = Duration::from_millis(20);
        let guard_a = LeaseGuard::start_every(&store, vec![a], me.clone(), every);
        let guard_b = LeaseGuard::start_every(&store, vec![b], me.clone(), every);
        // Another process takes run a over.
        store
            .execute_for_test(&format!(
                "UPDATE run_leases SET pid = pid + 1 WHERE run_id = {a}"
            ))
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !guard_a.is_lost() && std::time::Instant::now() < deadline {
            std::thread::sleep(every);
        }
        assert!(guard_a.is_lost());
        assert!(!guard_b.is_lost());
        drop(guard_b);
        assert!(store.lease(b).unwrap().is_none(), "released on drop");
        drop(guard_a);
        assert!(
            store.lease(a).unwrap().is_some(),
            "someone else's lease is left alone"
        );
    }

    #[test]
    fn a_reused_pid_is_not_mistaken_for_the_holder() {
        let me = me(Purpose::Resume);
        if me.process_start.is_none() {
            return; // not Linux: no start times to compare
        }
        let mut l = lease(me.pid, &me.host, 1000);
        l.holder.process_start = Some("1".into()); // "started" at boot: not us
        assert!(
            gone_because(&l, &me, 1001)
                .unwrap()
                .contains("another process")
        );
    }
}
