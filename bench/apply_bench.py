"""The throttled-apply benchmark (issue 5's "throttled apply", rollback and
resume): three steps against bench/fakeaws.py, each of 1,000 changes, where
EC2's `RequestLimitExceeded` really happens.

The fake's `ModifyInstanceMetadataOptions` bucket for the apply's account and
region holds FAKE_BUCKET tokens (fewer than imdsguard's own burst) and refills
at FAKE_REFILL/s, and a second caller in the fake (another tool or team using
the same account) takes OTHER_RATE of them a second. What is left for
imdsguard is FAKE_REFILL minus what the second caller actually took, measured
over the same window as imdsguard's own rate.

1. throttled apply: `plan`, then `apply` of 1,000 changes; failed (the fake's
   final state and the apply report), duplicated (the fake's per-instance
   counters), RequestLimitExceeded, the sustained rate over the middle of the
   run (its 10th to 90th percentile of landed changes, so the initial burst is
   left out) against the refill left for us, wall;
2. rollback of that run (`rollback RUN --yes`): every instance back to exactly
   the options the fake had before the apply, 0 failed, 0 duplicated, calls,
   wall, rate;
3. apply killed then resumed: a fresh fleet and plan, `apply` SIGKILLed once
   KILL_AFTER changes have landed and while one of its calls is in flight at
   the fake (so its answer is lost: the journal says `issued`, the call
   lands after the kill), then `apply --resume RUN`: all 1,000 at
   their target, none modified twice and no call re-sent for a change that
   landed (the fake's per-instance counters over both processes), 0 failed;
   the resume's calls and wall.

"Duplicated" is counted per instance by the fake: an instance one of our
calls landed on more than once, or that got any call (even a throttled one)
after one of ours had landed on it. Throttled calls do not land (EC2 did not
act), so retrying them is not a duplicate.

bench.py calls run_throttled() and throttle_section(); nothing else here is
used from outside.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from common import APPLY_REGION, Fake, Imdsguard, calls_by_action, fmt_s, log

CHANGES = 1_000
FLEET = 1_250  # 1,000 optional (950 enabled, 50 endpoint-disabled), 250 required; as the apply step
FLEET_SHARES = ["--optional-share", "0.76", "--disabled-share", "0.04", "--disabled-tokens", "optional"]
# The fake's bucket: smaller than imdsguard's burst and shared with a second caller.
FAKE_BUCKET = 20
FAKE_REFILL = 5.0  # EC2's refill for ModifyInstanceMetadataOptions
OTHER_RATE = 1.0  # the second caller's take, tokens/s
# imdsguard's own pacing at its defaults: --rate 5, burst 10 × rate capped at
# 50 (settings::exec_request).
IMDSGUARD_RATE = 5.0
IMDSGUARD_BURST = 50
# The sustained rate: between these fractions of the landed changes (leaves
# out the initial burst and the last stragglers).
WINDOW = (0.10, 0.90)
TARGET_RATE_TOLERANCE = 0.10
KILL_AFTER = 400  # landed changes before the SIGKILL
KILL_GRACE = 50  # ... waiting at most this many more for a call in flight
PLAN_TIMEOUT = 300
STEP_TIMEOUT = 900  # 1,000 changes at ~4/s is ~250 s


@dataclass
class Window:
    """imdsguard's landed changes per second over the middle of a step, and
    the refill the second caller left over the same seconds."""

    first: int = 0  # index of the first landed change of the window (0-based)
    last: int = 0
    seconds: float = 0.0
    ours: float = 0.0
    other: float = 0.0

    @property
    def available(self) -> float:
        return FAKE_REFILL - self.other

    @property
    def ratio(self) -> float:
        return self.ours / self.available if self.available > 0 else 0.0


@dataclass
class Step:
    label: str
    argv: str = ""
    error: str = ""
    wall: float = 0.0
    rss_mb: float = 0.0
    changes: int = 0  # changes the step had to make
    calls: dict[str, int] = field(default_factory=dict)  # by action, this step's process(es) only
    modify_calls: int = 0
    landed: int = 0  # ModifyInstanceMetadataOptions calls that landed
    throttled: int = 0  # RequestLimitExceeded the fake served us
    report_throttled: int | None = None  # the run report's execution.throttled
    report_retries: int | None = None
    report_counts: dict = field(default_factory=dict)
    report_failed: int | None = None
    wrong: int = 0  # instances not at the options the step must leave (the fake's state)
    wrong_examples: list[str] = field(default_factory=list)
    duplicated: int = 0
    dup_examples: list[str] = field(default_factory=list)
    window: Window | None = None
    rate: float = 0.0  # landed / wall
    other_throttled: int = 0  # the second caller's own throttles during the step
    run_id: int | None = None
    killed_at: int | None = None  # changes landed when the apply was killed (resume step)
    issued_at_kill: int | None = None  # changes the journal left `issued` (answer lost) at the kill
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.error and self.wrong == 0 and self.report_failed == 0 and self.duplicated == 0


def lookup(fake: Fake, ids: list[str]) -> dict[str, dict]:
    req = urllib.request.Request(fake.url + "/_bench/lookup", data=json.dumps(ids).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)


def required(o: dict) -> dict:
    return {**o, "httpTokens": "required"}


def compare_state(fake: Fake, want: dict[str, dict]) -> tuple[int, list[str]]:
    """Instances whose options (every field) differ from `want`."""
    now = lookup(fake, list(want))
    bad = [i for i, o in want.items() if now.get(i) != o]
    return len(bad), [f"{i}: {now.get(i)} (want {want[i]})" for i in bad[:2]]


def duplicates(mods: dict, ids) -> tuple[int, list[str]]:
    """Instances one of our calls landed on twice, or that got a call after
    one of ours had landed (the fake's per-instance counters)."""
    out = []
    for i in ids:
        m = mods["instances"].get(i) or {}
        if m.get("landed", 0) > 1 or m.get("after_landed", 0) > 0:
            out.append(f"{i}: landed {m.get('landed')}, changed {m.get('changed')}, "
                       f"calls after it landed {m.get('after_landed')}")
    return len(out), out[:2]


def window(times: list[float], other_takes: list[float]) -> Window | None:
    t = sorted(times)
    n = len(t)
    if n < 20:
        return None
    first, last = int(n * WINDOW[0]), int(n * WINDOW[1]) - 1
    seconds = t[last] - t[first]
    if seconds <= 0:
        return None
    other = sum(1 for x in other_takes if t[first] <= x <= t[last])
    return Window(first, last, seconds, (last - first) / seconds, other / seconds)


def read_report(step: Step, stdout: str) -> dict:
    try:
        doc = json.loads(stdout)
    except Exception:
        step.error = step.error or "no JSON report on stdout"
        return {}
    step.report_counts = doc.get("counts") or {}
    step.report_failed = step.report_counts.get("failed")
    execution = doc.get("execution") or {}
    step.report_throttled = execution.get("throttled")
    step.report_retries = execution.get("retries")
    step.run_id = (doc.get("run") or {}).get("id")
    return doc


def diff_calls(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {a: n - before.get(a, 0) for a, n in after.items() if n - before.get(a, 0)}


def fake_args() -> list[str]:
    return FLEET_SHARES + ["--burst", str(FAKE_BUCKET), "--refill", str(FAKE_REFILL),
                           "--other-caller", f"{APPLY_REGION}={OTHER_RATE}"]


def make_plan(ig: Imdsguard, fake: Fake, tmp: Path, home: Path) -> tuple[list[str], str]:
    """Plans require-v2 for the region; the planned ids, or an error."""
    plan, db = tmp / "plan.json", tmp / "imdsguard.db"
    args = ["plan", "--action", "require-v2", "--include-unknown", "--include-in-use",
            "--regions", APPLY_REGION, "--no-usage", "--out", str(plan), "--db", str(db)]
    run = ig.run(args, fake.url, home, PLAN_TIMEOUT)
    if run.code != 0 or not plan.exists():
        return [], f"plan failed (exit {run.code}): {run.brief_error()}"
    doc = json.loads(plan.read_text())
    ids = [c["instance_id"] for c in doc.get("changes") or []]
    if len(ids) != CHANGES:
        return ids, f"the plan has {len(ids)} changes, not {CHANGES}"
    return ids, ""


def measure(step: Step, fake: Fake, mods: dict, ids, since: float = 0.0) -> None:
    """The fake's side of a step: landed, throttled, duplicates, window."""
    stats = fake.get("/_bench/stats")
    step.throttled = sum(stats["throttled"].values())
    times = [t for t in mods["landed_times"] if t >= since]
    other = mods["other_caller"] or {"takes": [], "throttled": 0}
    step.landed = len(times)
    step.window = window(times, other["takes"])
    step.other_throttled = other["throttled"]
    step.duplicated, step.dup_examples = duplicates(mods, ids)
    strays = sorted(set(mods["instances"]) - set(ids))
    if strays:
        step.error = step.error or f"{len(strays)} instance(s) outside the plan got calls, e.g. {strays[0]}"
    step.rate = step.landed / step.wall if step.wall else 0.0


def run_throttled(ig: Imdsguard, workdir: Path, latency_ms: float) -> list[Step]:
    missing = [c for c in ("plan", "apply", "rollback") if not ig.has_subcommand(c)]
    if missing:
        log(f"throttled apply: SKIPPED: no `{' / '.join(missing)}` in this binary")
        return []
    return [*throttled_apply_and_rollback(ig, workdir, latency_ms), interrupted_apply(ig, workdir, latency_ms)]


def throttled_apply_and_rollback(ig: Imdsguard, workdir: Path, latency_ms: float) -> tuple[Step, Step]:
    apply, back = Step("throttled apply", changes=CHANGES), Step("rollback", changes=CHANGES)
    lifetime = PLAN_TIMEOUT + 2 * STEP_TIMEOUT + 120
    with Fake(workdir, {APPLY_REGION: FLEET}, latency_ms, lifetime, fake_args()) as fake:
        tmp = Path(tempfile.mkdtemp(prefix="throttle-", dir=workdir))
        home, db = tmp / "home", tmp / "imdsguard.db"
        ids, err = make_plan(ig, fake, tmp, home)
        if err:
            apply.error = back.error = err
            return apply, back
        before = lookup(fake, ids)  # the options every instance must get back

        args = ["apply", str(tmp / "plan.json"), "--yes", "--format", "json", "--db", str(db)]
        apply.argv = "imdsguard apply plan.json --yes --format json --db TMP"
        log(f"throttled apply: {' '.join(args)} (bucket {FAKE_BUCKET}, refill {FAKE_REFILL:g}/s, second caller "
            f"{OTHER_RATE:g}/s: about {CHANGES / (FAKE_REFILL - OTHER_RATE):.0f} s)")
        run_step(ig, fake, home, apply, args, ids)
        apply.wrong, apply.wrong_examples = compare_state(fake, {i: required(o) for i, o in before.items()})
        log_step(apply)
        if apply.run_id is None:
            back.error = "no run id in the apply report: nothing to roll back"
            return apply, back

        args = ["rollback", str(apply.run_id), "--yes", "--format", "json", "--db", str(db)]
        back.argv = "imdsguard rollback RUN --yes --format json --db TMP"
        log(f"rollback: imdsguard {' '.join(args)}")
        run_step(ig, fake, home, back, args, ids)
        back.wrong, back.wrong_examples = compare_state(fake, before)
        log_step(back)
    return apply, back


def run_step(ig: Imdsguard, fake: Fake, home: Path, step: Step, args: list[str], ids: list[str]) -> None:
    """Runs one journaled command (`apply`, `rollback`) on fresh counters and
    records its wall, peak RSS, calls, report and landed changes in `step`."""
    fake.post("/_bench/reset")
    run = ig.run(args, fake.url, home, STEP_TIMEOUT)
    step.wall, step.rss_mb = run.wall, run.rss_mb
    step.calls = calls_by_action(fake.get("/_bench/stats"))
    step.modify_calls = step.calls.get("ModifyInstanceMetadataOptions", 0)
    read_report(step, run.stdout)
    if run.code != 0:
        step.error = f"{args[0]} exited {run.code}: {run.brief_error()}"
    measure(step, fake, fake.get("/_bench/modifies"), ids)


def interrupted_apply(ig: Imdsguard, workdir: Path, latency_ms: float) -> Step:
    step = Step("apply killed, then --resume", changes=CHANGES)
    lifetime = PLAN_TIMEOUT + 2 * STEP_TIMEOUT + 120
    with Fake(workdir, {APPLY_REGION: FLEET}, latency_ms, lifetime, fake_args()) as fake:
        tmp = Path(tempfile.mkdtemp(prefix="resume-", dir=workdir))
        home, db = tmp / "home", tmp / "imdsguard.db"
        ids, err = make_plan(ig, fake, tmp, home)
        if err:
            step.error = err
            return step
        want = {i: required(o) for i, o in lookup(fake, ids).items()}

        fake.post("/_bench/reset")
        # Straight, not through /usr/bin/time: the signal must reach imdsguard itself.
        args = ["apply", str(tmp / "plan.json"), "--yes", "--format", "json", "--db", str(db)]
        log(f"resume: imdsguard {' '.join(args)}, SIGKILL after {KILL_AFTER} changes landed, during a call")
        out = open(tmp / "killed.out", "w")
        t0 = time.monotonic()
        proc = subprocess.Popen([str(ig.binary), *args], env=ig.env(fake.url, home), stdout=out, stderr=out,
                                cwd=ig.workdir)
        landed = in_flight = 0
        while proc.poll() is None and time.monotonic() - t0 < STEP_TIMEOUT:
            stats = fake.get("/_bench/stats")
            landed = sum(stats["modified"].values())
            # The hard case: a ModifyInstanceMetadataOptions of ours in the
            # fake's latency (it lands after the kill, its answer is lost).
            # Within KILL_GRACE changes of KILL_AFTER, kill anyway.
            in_flight = stats["inflight_by_action"].get("ModifyInstanceMetadataOptions", 0)
            if landed >= KILL_AFTER + KILL_GRACE or (landed >= KILL_AFTER and in_flight):
                os.kill(proc.pid, signal.SIGKILL)  # our own child, by its pid
                break
            time.sleep(0.1 if landed < KILL_AFTER - 20 else 0.005)
        code = proc.wait()
        killed_wall = time.monotonic() - t0
        out.close()
        if code != -signal.SIGKILL:
            step.error = f"the apply was not killed (exit {code}, {landed} landed)"
            return step
        time.sleep(1.0)  # calls in flight at the kill reach the fake and land
        stats = fake.get("/_bench/stats")
        at_kill = sum(stats["modified"].values())
        calls_before = calls_by_action(stats)
        throttled_before = sum(stats["throttled"].values())
        journal = ig.run(["runs", "--format", "json", "--db", str(db)], fake.url, home, 60)
        try:
            run_id = json.loads(journal.stdout)["runs"][0]["id"]
        except Exception:
            step.error = f"no run in the journal after the kill: {journal.brief_error()}"
            return step
        shown = ig.run(["runs", str(run_id), "--format", "json", "--db", str(db)], fake.url, home, 60)
        try:
            kill_counts = {k: v for k, v in (json.loads(shown.stdout).get("counts") or {}).items() if v}
        except Exception:
            kill_counts = {}
        step.notes.append(f"SIGKILL after {fmt_s(killed_wall)}, {landed} changes landed and {in_flight} "
                          f"ModifyInstanceMetadataOptions call(s) of ours in flight at the fake; {at_kill} landed "
                          f"once those finished; the journal then: {json.dumps(kill_counts)}")
        step.issued_at_kill = kill_counts.get("issued", 0)

        args = ["apply", "--resume", str(run_id), "--yes", "--format", "json", "--db", str(db)]
        step.argv = "imdsguard apply --resume RUN --yes --format json --db TMP"
        log(f"resume: imdsguard {' '.join(args)}")
        since = time.monotonic()
        run = ig.run(args, fake.url, home, STEP_TIMEOUT)
        step.wall, step.rss_mb = run.wall, run.rss_mb
        stats = fake.get("/_bench/stats")
        step.calls = diff_calls(calls_by_action(stats), calls_before)
        step.modify_calls = step.calls.get("ModifyInstanceMetadataOptions", 0)
        read_report(step, run.stdout)
        if run.code != 0:
            step.error = f"apply --resume exited {run.code}: {run.brief_error()}"
        mods = fake.get("/_bench/modifies")
        # Landed, rate and window: the resume's own; duplicates: over both processes.
        measure(step, fake, mods, ids, since)
        step.throttled = sum(stats["throttled"].values()) - throttled_before
        step.wrong, step.wrong_examples = compare_state(fake, want)
        total_landed = len(mods["landed_times"])
        step.notes.append(f"the resume landed {step.landed} changes; with the {at_kill} before the kill, "
                          f"{total_landed} calls landed in all for {CHANGES} changes")
        if total_landed != CHANGES:
            step.notes.append(f"{total_landed - CHANGES:+d} landed calls against the changes")
        step.killed_at = at_kill
        log_step(step)
    return step


def log_step(s: Step) -> None:
    w = s.window
    log(f"{s.label}: {s.landed} landed in {fmt_s(s.wall)}, {s.throttled} RequestLimitExceeded, "
        f"{s.wrong} not at the expected options, report failed {s.report_failed}, {s.duplicated} duplicated"
        + (f", sustained {w.ours:.2f}/s for {w.available:.2f}/s available" if w else "")
        + (f", ERROR: {s.error}" if s.error else ""))


# ---------------------------------------------------------------- RESULTS.md
def throttle_section(steps: list[Step], skipped: str) -> tuple[list[str], list]:
    """The section of RESULTS.md and its (target, ok, detail) verdicts."""
    lines = ["## Throttled apply, rollback and resume", ""]
    names = {
        "apply": f"throttled apply: 0 failed, 0 duplicated ({CHANGES:,} changes)",
        "rate": f"throttled apply: sustained rate within {TARGET_RATE_TOLERANCE:.0%} of the refill left by the "
                "second caller",
        "back": f"rollback of {CHANGES:,} changes: every instance back to exactly its previous options, "
                "0 failed, 0 duplicated",
        "resume": f"apply SIGKILLed after {KILL_AFTER} changes, then `--resume`: all {CHANGES:,} at target, "
                  "0 failed, 0 duplicated",
    }
    if not steps:
        lines += [f"Not run ({skipped}).", ""]
        return lines, [(n, None, f"not run ({skipped})") for n in names.values()]
    by = {s.label: s for s in steps}
    apply, back, resume = by.get("throttled apply"), by.get("rollback"), by.get("apply killed, then --resume")
    lines += [
        f"{CHANGES:,} instances with `HttpTokens=optional` in {APPLY_REGION} (of {FLEET:,}: 950 with the endpoint "
        "enabled, 50 with it disabled; as in the apply step), planned with `imdsguard plan --action require-v2 …`. The fake's `ModifyInstanceMetadataOptions` bucket "
        f"for that account and region holds **{FAKE_BUCKET}** tokens and refills at {FAKE_REFILL:g}/s (EC2's), "
        f"while imdsguard, at its defaults, assumes {IMDSGUARD_RATE:g}/s with a burst of {IMDSGUARD_BURST}; and a "
        f"second caller in the fake (another tool or team in the same account) takes {OTHER_RATE:g} token/s from "
        "the same bucket, and is throttled like anyone when it is empty (it then tries again every 20 ms). An empty "
        "bucket answers HTTP 503 `RequestLimitExceeded`.",
        "",
        "* **duplicated**: counted per instance by the fake over the step (both processes for the resume): an "
        "instance a call of ours landed on more than once, or that got any call, even a throttled one, after one "
        "had landed. A throttled call does not land, so its retry is not a duplicate.",
        f"* **sustained rate**: imdsguard's landed changes per second between its {WINDOW[0]:.0%} and "
        f"{WINDOW[1]:.0%} landed change (the fake's clock; the initial burst is left out); **refill left** = "
        f"{FAKE_REFILL:g}/s − what the second caller actually took over the same seconds.",
        "* **not as expected**: instances whose options at the fake (every field) are not what the step must "
        "leave: the pre-apply options with `HttpTokens=required` after an apply or a resume, exactly the pre-apply "
        "options after the rollback.",
        "",
        "| step | command | wall | Modify calls (landed) | RequestLimitExceeded (fake / report) | retries | "
        "changes/s (wall) | sustained changes/s | refill left | sustained / left | not as expected | "
        "report failed | duplicated | peak RSS |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in steps:
        w = s.window
        lines.append(
            f"| {s.label} | `{s.argv}` | {fmt_s(s.wall)} | {s.modify_calls} ({s.landed}) | {s.throttled} / "
            f"{_q(s.report_throttled)} | {_q(s.report_retries)} | {s.rate:.2f} | "
            + (f"{w.ours:.2f} | {w.available:.2f} | {w.ratio:.3f}" if w else "? | ? | ?")
            + f" | {s.wrong} | {_q(s.report_failed)} | {s.duplicated} | {s.rss_mb:.0f} MB |"
        )
    lines.append("")
    for s in steps:
        lines.append(f"* {s.label}: calls {json.dumps(s.calls)}; report counts {json.dumps(s.report_counts)}"
                     + (f"; the second caller was throttled {s.other_throttled} time(s) during the step"
                        if s.other_throttled else "")
                     + "".join(f"; {n}" for n in s.notes)
                     + (f"; e.g. {s.wrong_examples[0]}" if s.wrong_examples else "")
                     + (f"; duplicated e.g. {s.dup_examples[0]}" if s.dup_examples else "")
                     + (f"; **error**: {s.error}" if s.error else "") + ".")
    lines.append("")

    verdicts = []
    if apply:
        verdicts.append((names["apply"], apply.ok and apply.throttled > 0,
                         f"{apply.throttled} RequestLimitExceeded served; {apply.wrong} not at target (fake), "
                         f"{_q(apply.report_failed)} failed (report), {apply.duplicated} duplicated"
                         + ("; no throttling happened: the bench proves nothing" if not apply.throttled else "")
                         + (f"; {apply.error}" if apply.error else "")))
        w = apply.window
        verdicts.append((names["rate"], bool(w) and abs(w.ratio - 1) <= TARGET_RATE_TOLERANCE,
                         f"{w.ours:.2f}/s for {w.available:.2f}/s left ({FAKE_REFILL:g} − {w.other:.2f}), "
                         f"ratio {w.ratio:.3f}, over landed changes {w.first + 1}–{w.last + 1} ({fmt_s(w.seconds)})"
                         if w else "too few landed changes to measure"))
    if back:
        verdicts.append((names["back"], back.ok,
                         f"{back.wrong} not at their previous options, {_q(back.report_failed)} failed (report), "
                         f"{back.duplicated} duplicated; {back.landed} changes in {fmt_s(back.wall)}, "
                         f"{back.throttled} RequestLimitExceeded" + (f"; {back.error}" if back.error else "")))
    if resume:
        verdicts.append((names["resume"], resume.ok,
                         f"killed at {_q(resume.killed_at)} landed, {_q(resume.issued_at_kill)} of them `issued` "
                         f"(answer lost) in the journal; the resume: {resume.landed} changes, "
                         f"{resume.modify_calls} Modify calls in {fmt_s(resume.wall)}; {resume.wrong} not at target, "
                         f"{_q(resume.report_failed)} failed (report), {resume.duplicated} duplicated"
                         + (f"; {resume.error}" if resume.error else "")))
    return lines, verdicts


def _q(x) -> str:
    return "?" if x is None else str(x)
