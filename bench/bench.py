"""The imdsguard benchmark: scans (one account and many), apply, memory, the
CloudTrail logs of a trail bucket (`trail --bucket`), an organisation of
1,000 accounts (bench/org.py), a peer comparison (bench/peers.py: metabadger
0.1.11 and imdsguard on the same 1k and 10k fleets) and, in
bench/apply_bench.py, an apply throttled by a smaller bucket shared with a
second caller, its rollback and an apply killed then resumed, against
bench/fakeaws.py.

Run it through bench/run (which prepares the Python environment, GNU time and
the release binary; `bench/run --help`). Every AWS call goes to a fake
endpoint on 127.0.0.1 that this script starts and stops; nothing reaches AWS.

  bench.py --bin PATH [--quick | --trail-only | --peers-only | --org-only | --apply-only]
           [--no-peers] [--no-org] [--no-apply] [--latency-ms 50]
           [--out bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import apply_bench  # bench/apply_bench.py, the throttled apply, rollback and resume
import org  # bench/org.py, the 1,000-account organisation
import peers  # bench/peers.py, the peer comparison
from common import (APPLY_CHANGES, APPLY_REGION, ApplyResult, BENCH_REGIONS, CONCURRENCY, DAYS, Fake, HERE, Imdsguard,
                    MEMORY_FLEET, MULTI_ACCOUNTS, MULTI_PER_REGION, MULTI_SUSPENDED, MULTI_TIMEOUT,
                    ROLE_NAME, ROOT, SCAN_TIMEOUT, SIZES, ScanResult, TARGET_APPLY_RATE, TARGET_CALL_RATIO,
                    TARGET_OWN_SHARE, TARGET_RECHECKS_PER_CHANGE, TARGET_RSS_MB, TARGET_USAGE_BYTES,
                    TrailResult, fmt_s, log, pf, run_apply, run_scan, run_trails, split_fleet, trail_section)


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    free = subprocess.run(["free", "-h"], capture_output=True, text=True).stdout.rstrip()
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "nproc": nproc,
        "cpu": cpu,
        "free": free,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def binary_info(binary: Path) -> str:
    try:
        version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception:
        version = "?"
    mtime = datetime.datetime.fromtimestamp(binary.stat().st_mtime, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    git = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock"],
                           capture_output=True, text=True).stdout.strip()
    kind = "release" if "/release/" in str(binary) else ("debug" if "/debug/" in str(binary) else "custom")
    return f"`{binary}` ({kind} build; `{version}`; built {mtime}; HEAD {git}{', src/ has uncommitted changes' if dirty else ''})"


ACTIONS = [
    "DescribeInstances", "GetMetricData", "GetCallerIdentity", "DescribeRegions", "ListInstanceProfiles",
    "AssumeRole", "ListAccounts",
    # The sources of new instances (per region). DescribeLaunchConfigurations
    # is not a column: the fake has no groups, so its minimum is 0 and any
    # call shows (bold) under `other`.
    "DescribeLaunchTemplateVersions", "DescribeAutoScalingGroups", "GetInstanceMetadataDefaults", "DescribeImages",
]


def call_cells(calls: dict[str, int], minimum: dict[str, int]) -> list[str]:
    """One cell per action in ACTIONS (bold where it differs from its minimum),
    then `other` (bold when not 0: every action the minimum has is a column)."""
    cells = []
    for a in ACTIONS:
        got, want = calls.get(a, 0), minimum.get(a, 0)
        cells.append(f"{got}" if got == want else f"**{got}** (min {want})")
    other = sum(v for k, v in calls.items() if k not in ACTIONS)
    cells.append(f"**{other}**" if other else "0")
    return cells


def account_table(r: ScanResult, management: str) -> list[str]:
    """Calls per account of a many-account scan."""
    head = ["account", "reached as", "instances (fleet / scan)"] + ACTIONS + ["other", "calls", "minimum"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for acct in sorted(set(r.per_account_min) | set(r.per_account), key=lambda a: (a != management, a)):
        calls = r.per_account.get(acct, {})
        want = dict(r.per_account_min.get(acct, {}))
        if acct == management and r.mode == "org":
            want["ListAccounts"] = r.minimum.get("ListAccounts", 0)
        fleet, seen = r.per_account_instances.get(acct, (0, 0))
        how = ("caller's credentials" if acct == management
               else f"role {ROLE_NAME}" if acct in r.per_account_min else "**not in the scan**")
        inst = f"{fleet:,} / {seen:,}" if fleet == seen else f"**{fleet:,} / {seen:,}**"
        rows.append("| " + " | ".join([acct, how, inst] + call_cells(calls, want)
                                      + [str(sum(calls.values())), str(sum(want.values()))]) + " |")
    return rows


def scan_table(results: list[ScanResult]) -> list[str]:
    actions = ACTIONS
    head = ["scan", "instances", "accounts × regions"] + actions + [
        "other", "calls", "minimum", "calls / min", "wall", "waiting on fake", "latency floor", "peak RSS", "totals = fleet",
    ]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        cells = [r.label, f"{r.fleet:,}", f"{r.accounts} × {r.regions}"] + call_cells(r.calls, r.minimum)
        cells += [
            str(r.total),
            str(r.min_total),
            f"{r.ratio:.3f}",
            fmt_s(r.wall),
            f"{r.busy / r.wall:.0%} ({fmt_s(r.busy)})" if r.wall else "-",
            f"{r.floor / r.wall:.0%} ({fmt_s(r.floor)})" if r.wall else "-",
            f"{r.rss_mb:.0f} MB",
            "yes" if not r.problems and not r.error else "**NO**",
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def write_results(path: Path, args, binary: str, scans: list[ScanResult], multi: list[ScanResult],
                  memory: list[ScanResult], apply: ApplyResult | None, elapsed: float, management: str,
                  trails: list[TrailResult] | None = None, peer_results: list | None = None,
                  org_result=None, throttle=None) -> bool:
    m = machine()
    lines = [
        "# imdsguard benchmark results",
        "",
        f"Generated by `bench/run{' --quick' if args.quick else ''}{' --trail-only' if args.trail_only else ''}"
        f"{' --peers-only' if args.peers_only else ''}{' --no-peers' if args.no_peers else ''}"
        f"{' --org-only' if args.org_only else ''}{' --no-org' if args.no_org else ''}"
        f"{' --apply-only' if args.apply_only else ''}` "
        f"on {m['date']} in {elapsed / 60:.1f} min. "
        "Do not edit by hand: run `bench/run` again.",
        "",
        "## Machine",
        "",
        f"* CPU: {m['cpu']} · `nproc`: {m['nproc']} · kernel {m['kernel']} · Python {m['python']}",
        f"* binary: {binary}",
        f"* fake AWS: `bench/fakeaws.py` on 127.0.0.1, fixed latency {args.latency_ms:g} ms per call, seed 42",
        "",
        "```",
        "$ free -h",
        m["free"],
        "```",
        "",
    ]
    verdicts: list[tuple[str, bool | None, str]] = []

    if args.trail_only or args.peers_only or args.org_only or args.apply_only:
        only, flag = next((o, f) for o, f, on in (
            ("trail benchmark", "--trail-only", args.trail_only), ("peer comparison", "--peers-only", args.peers_only),
            ("organisation scan", "--org-only", args.org_only),
            ("throttled apply, rollback and resume", "--apply-only", args.apply_only)) if on)
        lines += [f"Only the {only} was run (`{flag}`): no scans, plain apply or memory check.", ""]
    else:
        all_scans = scans + multi + memory
        multi_n = MULTI_ACCOUNTS * len(BENCH_REGIONS) * MULTI_PER_REGION
        lines += [
            "## Scans",
            "",
            f"`imdsguard scan --days {DAYS} --regions {','.join(BENCH_REGIONS)} --format json --db TMP` against a fleet "
            "split 40/30/20/10 % over 4 regions of one account: 30 % `HttpTokens=optional` (10 % of those with "
            "`MetadataNoToken` > 0, 10 % stopped with no metric data), 5 % endpoint disabled, the rest required "
            "(3 % of those with `MetadataNoTokenRejected` > 0). The memory rows are the 100,000-instance fleet, "
            "25,000 per region, scanned with `--no-usage` and with `--days 14`.",
            "",
            f"The many-account rows scan an organization of {MULTI_ACCOUNTS} active accounts × {len(BENCH_REGIONS)} "
            f"regions × {MULTI_PER_REGION} instances ({multi_n:,} instances) with the same command plus "
            f"`--accounts ID,... --role-name {ROLE_NAME}` (all {MULTI_ACCOUNTS} ids) or `--org --role-name {ROLE_NAME}` "
            f"(Organizations `ListAccounts`, which also lists {MULTI_SUSPENDED} SUSPENDED account with no fleet, "
            "whose role cannot be assumed). The credentials are the management account's "
            f"({management}); the other {MULTI_ACCOUNTS - 1} are reached through STS `AssumeRole`, and the fake "
            "answers each call for the account of its access key id. Each member account's `HttpTokens=optional` "
            "share is 30 % shifted by its own non-zero step of -10..+10 points, so no two accounts' counts are alike.",
            "",
        ]
        lines += scan_table(all_scans)
        lines += [
            "",
            "* **minimum** (the physical minimum per account): Σ ceil(N_r / 1000) `DescribeInstances` + "
            "Σ ceil(2 · N_r,enabled / 500) `GetMetricData` (instances with the metadata endpoint disabled are not "
            "measured) + 1 `GetCallerIdentity` + 1 `DescribeRegions` + 1 `ListInstanceProfiles` (the fake has 25 "
            "profiles: one page) + per region the sources of new instances: 1 `DescribeLaunchTemplateVersions` "
            "(`$Default` and `$Latest`; the fake has no templates), 1 `DescribeAutoScalingGroups` (no groups: no "
            "`DescribeLaunchConfigurations`, no pinned versions), 1 `GetInstanceMetadataDefaults` and "
            "ceil(distinct AMIs of the instances allowing IMDSv1 / 200) `DescribeImages` (the fleet uses 8 AMIs: 1 "
            "per region); with many accounts, summed over the accounts, + 1 `AssumeRole` per account other "
            "than the caller's (credentials last an hour: no refresh in a run) and, for `--org`, "
            "ceil(accounts listed / 20) `ListAccounts`. A bold cell differs from its minimum; `other` is every "
            "other action (minimum 0).",
            "* **waiting on fake**: measured by the fake: the time during which at least one AWS call of the run was "
            "in flight (request received → response written, i.e. the injected latency plus the fake's own work, "
            "union over concurrent calls), divided by wall time. The rest is imdsguard's own work (start-up, "
            "parsing, SQLite, rendering) and the client side of HTTP.",
            "* **latency floor**: what the injected latency alone forces: the two account-level calls that come "
            "before the regions (`GetCallerIdentity`, `DescribeRegions`) plus the busiest region's sequential calls "
            "(regions run concurrently, `--concurrency` 8 ≥ 4 regions; pages and metric batches within a region are "
            "sequential; `ListInstanceProfiles` overlaps the regions): a region's `DescribeInstances` pages, then the "
            "longer of its `GetMetricData` batches and its sources of new instances, which are read alongside them "
            "(the template, group and default listings side by side, then `DescribeImages`: 2 calls in the fake), "
            "× latency. With many accounts: `ListAccounts` "
            "(`--org`) + the same two calls + the larger of the busiest region's sequential calls and "
            f"ceil(Σ regions' sequential calls / {CONCURRENCY}) (at most `--concurrency` {CONCURRENCY} regions are in "
            "flight across all accounts; the members' `AssumeRole` overlaps the caller's regions), × latency. "
            "The simpler estimate "
            "Σ latency / regions-in-parallel gives "
            + ", ".join(f"{r.latency_sum / min(r.accounts * r.regions, CONCURRENCY):.2f} s ({r.label})" for r in all_scans)
            + ".",
            "* **totals = fleet**: the scan's JSON `summary` (total and per region: instances, required, optional, "
            "disabled, every readiness count) and its instance count equal the generated fleet, no failures, no "
            "warnings, exit 0; its `sources`: no templates or groups, one account-defaults row per account and "
            "region, and per region exactly the AMIs without `ImdsSupport=v2.0` (half of the fleet's 8) behind "
            "instances allowing IMDSv1, with their instance counts. "
            "With many accounts, per account and region (`summary.regions[]` by `account_id` and `region`; no entry "
            "for an account outside the fleet, such as the suspended one), every instance record names the account "
            "and region that own it, and each account's identity is its own (`user/bench` for the caller, "
            f"`assumed-role/{ROLE_NAME}/imdsguard` for the others).",
            "",
        ]
        lines += [
            "Where the wall time goes (clocks of the runner and the fake are both CLOCK_MONOTONIC); **own work** is "
            "the share of the wall with no AWS call in flight:",
            "",
            "| scan | wall | start → first AWS call | first call → last response | of which ≥ 1 call in flight | "
            "last response → exit (SQLite, rendering) | own work | imdsguard `-v` |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in all_scans:
            lines.append(
                f"| {r.label} | {fmt_s(r.wall)} | {fmt_s(r.before_first)} | {fmt_s(r.calls_span)} | {fmt_s(r.busy)} | "
                f"{fmt_s(r.after_last)} | {r.own_share:.1%} | {r.timings or '?'} |"
            )
        lines += [
            "",
            "The database after each scan (file and WAL; per table with SQLite's `dbstat`). Since schema 8 each "
            "measured instance's daily series is packed into its one `usage` row (a `WITHOUT ROWID` table: no "
            "second copy of the key); `usage_daily` is a view over it.",
            "",
            "| scan | database | per instance | `usage` (daily series included) per instance | `instances` and "
            "its indexes per instance |",
            "|---|---|---|---|---|",
        ]
        for r in all_scans:
            if not r.db_bytes or not r.fleet:
                continue
            inst = sum(v for k, v in r.db_tables.items() if k in ("instances", "instances_by_instance")
                       or k.startswith("sqlite_autoindex_instances"))
            lines.append(
                f"| {r.label} | {r.db_bytes / 1e6:.1f} MB | {r.db_bytes / r.fleet:.0f} B | "
                f"{r.usage_bytes / r.fleet:.0f} B | {inst / r.fleet:.0f} B |"
            )
        lines.append("")
        problems = [(r.label, p) for r in all_scans for p in ([r.error] if r.error else []) + r.problems]
        if problems:
            lines += ["Problems:", ""] + [f"* {label}: {p}" for label, p in problems] + [""]

        lines += ["## Many accounts", ""]
        if multi:
            lines += [
                "Calls per account: made with that account's credentials; an `AssumeRole` is counted under the account "
                "it assumes the role in (it is sent with the caller's credentials), `ListAccounts` under the caller.",
                "",
            ]
            for r in multi:
                lines += [f"**{r.label}**: `imdsguard {r.argv}`: {r.total} calls (minimum {r.min_total}, "
                          f"ratio {r.ratio:.3f}) in {fmt_s(r.wall)}, peak RSS {r.rss_mb:.0f} MB.", ""]
                lines += account_table(r, management) + [""]
        else:
            lines += ["Not run (`--quick`).", ""]

        for r in scans:
            ok = r.ratio <= TARGET_CALL_RATIO and not r.error
            verdicts.append((f"API calls ≤ {TARGET_CALL_RATIO} × minimum ({r.fleet:,} instances)", ok,
                             f"{r.total} / {r.min_total} = {r.ratio:.3f}"))
            verdicts.append((f"scan totals equal the fleet ({r.fleet:,} instances)", not r.problems and not r.error,
                             "; ".join(r.problems[:2]) or "all counts match"))
        for r in multi:
            flag = "--accounts" if r.mode == "accounts" else "--org"
            what = f"{r.accounts} accounts × {r.regions} regions, {r.fleet:,} instances, `{flag}`"
            ok = r.ratio <= TARGET_CALL_RATIO and not r.error
            verdicts.append((f"API calls ≤ {TARGET_CALL_RATIO} × minimum ({what})", ok,
                             f"{r.total} / {r.min_total} = {r.ratio:.3f}, wall {fmt_s(r.wall)}"
                             + (f"; {r.error}" if r.error else "")))
            verdicts.append((f"scan totals equal the fleet per account ({what})", not r.problems and not r.error,
                             "; ".join(r.problems[:2]) or "all counts, owners and identities match"))
        if not multi:
            verdicts.append((f"API calls ≤ {TARGET_CALL_RATIO} × minimum ({MULTI_ACCOUNTS} accounts)", None,
                             "not run (--quick)"))

        lines += ["## Apply", ""]
        if apply is None:
            lines += ["Not run (`--quick` runs it too; it was disabled with `--no-apply`).", ""]
            verdicts.append((f"apply ≥ {TARGET_APPLY_RATE} changes/s with 0 failed", None, "not run"))
        elif apply.skipped:
            lines += [f"**Skipped**: {apply.skipped}. Run `bench/run` again once it exists.", ""]
            verdicts.append((f"apply ≥ {TARGET_APPLY_RATE} changes/s with 0 failed", None, "skipped: no apply command"))
        else:
            lines += [
                f"{APPLY_CHANGES:,} instances with `HttpTokens=optional` in {APPLY_REGION}, of 1,250 (950 with the "
                "endpoint enabled, 50 with it disabled, which must stay disabled; the other 250 are already required). "
                "`imdsguard plan --action require-v2 --include-unknown --include-in-use "
                f"--regions {APPLY_REGION} --no-usage --out plan.json --db TMP`, then `imdsguard apply plan.json --yes "
                "--format json --db TMP` (its defaults: 5 changes/s per region, retries). The fake's "
                "`ModifyInstanceMetadataOptions` sits behind a token bucket per region (burst 100, refill 5/s) and "
                "answers HTTP 503 `RequestLimitExceeded` when it is empty.",
                "",
                "| planned changes | changes made | apply wall | changes/s | changes/s (fake: first → last change) | "
                "ModifyInstanceMetadataOptions calls | RequestLimitExceeded served | failed changes | endpoints flipped | peak RSS |",
                "|---|---|---|---|---|---|---|---|---|---|",
                f"| {apply.planned if apply.planned is not None else '?'} | {apply.changes} | {fmt_s(apply.wall)} | "
                f"{apply.rate:.2f} | {apply.fake_rate:.2f} | {apply.modify_calls} | {apply.throttled} | "
                f"{apply.failed if apply.failed is not None else '?'} | {apply.endpoint_flips} | {apply.rss_mb:.0f} MB |",
                "",
                "* changes/s = changes made / wall time of the `apply` process (start-up, checks and verification "
                "included); the fake's figure is the rate between its first and last accepted change.",
                f"* failed changes: {apply.failed_source}"
                + (f"; of the plan's own instances, {apply.planned_not_done} are not at required"
                   if apply.planned_not_done is not None else "")
                + "; the apply report itself says "
                f"{apply.report_failed if apply.report_failed is not None else 'nothing parseable'}"
                + (f" (its counts: {json.dumps(apply.report_counts)})" if apply.report_counts else "")
                + (f"; the plan skipped {apply.plan_skipped} instance(s)" if apply.plan_skipped is not None else "")
                + ".",
                f"* calls by `plan`: {json.dumps(apply.plan_calls)}; by `apply`: {json.dumps(apply.apply_calls)}",
                "",
            ]
            describes = apply.apply_calls.get("DescribeInstances", 0)
            if apply.rechecks is not None and apply.changes:
                per = apply.rechecks / apply.changes
                lines += [
                    "Compare-and-set: right before each batch of changes, `apply` describes those instances again "
                    "(≤ 200 ids per call) and sends only where the options are still the ones the plan saw.",
                    "",
                    "| DescribeInstances in all | pre-flight check | re-checks before sending | verification | "
                    "re-checks per change made | changes/s |",
                    "|---|---|---|---|---|---|",
                    f"| {describes} | {describes - apply.rechecks - (apply.verifies or 0)} | {apply.rechecks} | "
                    f"{apply.verifies if apply.verifies is not None else '?'} | "
                    f"{per:.4f}" + (f" (1 per {1 / per:.0f})" if per else "") + f" | {apply.rate:.2f} |",
                    "",
                ]
                verdicts.append((f"compare-and-set ≤ {TARGET_RECHECKS_PER_CHANGE} DescribeInstances per change",
                                 per <= TARGET_RECHECKS_PER_CHANGE,
                                 f"{apply.rechecks} re-checks for {apply.changes} changes = {per:.4f}"))
            else:
                verdicts.append((f"compare-and-set ≤ {TARGET_RECHECKS_PER_CHANGE} DescribeInstances per change", None,
                                 "the apply report has no `execution.describe_rechecks`"))
            if apply.error:
                lines += [f"Error: {apply.error}", ""]
            ok = (apply.rate >= TARGET_APPLY_RATE and apply.failed == 0 and not apply.error
                  and apply.endpoint_flips == 0 and apply.changes == APPLY_CHANGES)
            verdicts.append((f"apply ≥ {TARGET_APPLY_RATE} changes/s with 0 failed", ok,
                             f"{apply.rate:.2f}/s, {apply.failed} failed" + (f", {apply.error}" if apply.error else "")))

        lines += ["## Memory (100,000 instances)", ""]
        for r in [x for x in scans if x.fleet == 10_000] + [x for x in memory if x.usage]:
            if r.db_bytes:
                verdicts.append((f"daily usage ≤ {TARGET_USAGE_BYTES} bytes per instance in the database "
                                 f"({r.label})", r.usage_bytes / r.fleet <= TARGET_USAGE_BYTES,
                                 f"`usage` {r.usage_bytes / r.fleet:.0f} B per instance; the whole scan "
                                 f"{r.db_bytes / r.fleet:.0f} B per instance ({r.db_bytes / 1e6:.1f} MB)"))
        for r in [x for x in memory if x.usage]:
            verdicts.append((f"own work ≤ {TARGET_OWN_SHARE:.0%} of wall ({r.label})", r.own_share <= TARGET_OWN_SHARE,
                             f"{r.own_share:.1%}: {fmt_s(r.wall - r.busy)} of {fmt_s(r.wall)} with no call in flight"))
        if memory:
            for r in memory:
                ok = r.rss_mb < TARGET_RSS_MB and not r.error and not r.problems
                verdicts.append((f"peak RSS < {TARGET_RSS_MB} MB, 100k `{r.label.split(' ', 1)[1]}`", ok, f"{r.rss_mb:.0f} MB"))
            lines += ["See the `100k` rows of the scan table above (peak RSS by `/usr/bin/time -v`).", ""]
        else:
            lines += ["Not run (`--quick`).", ""]
            verdicts.append((f"peak RSS < {TARGET_RSS_MB} MB at 100k instances", None, "not run (--quick)"))

    only_flag = next((f for f, on in (("--quick", args.quick), ("--trail-only", args.trail_only),
                                       ("--peers-only", args.peers_only), ("--org-only", args.org_only),
                                       ("--apply-only", args.apply_only)) if on), "not run")
    trail_lines, trail_verdicts = trail_section(trails or [], only_flag)
    lines += trail_lines
    verdicts += trail_verdicts
    org_lines, org_verdicts = org.section(org_result, "--no-org" if args.no_org else only_flag)
    lines += org_lines
    verdicts += org_verdicts
    throttle_lines, throttle_verdicts = apply_bench.throttle_section(
        throttle or [], "--no-apply" if args.no_apply else only_flag)
    lines += throttle_lines
    verdicts += throttle_verdicts
    peer_lines, peer_verdicts = peers.section(peer_results or [], "--no-peers" if args.no_peers else only_flag)
    lines += peer_lines
    verdicts += peer_verdicts

    lines += ["## Targets", "", "| target | result | detail |", "|---|---|---|"]
    lines += [f"| {name} | {pf(ok)} | {detail} |" for name, ok, detail in verdicts]
    lines += [""]
    all_ok = all(ok is not False for _, ok, _ in verdicts)
    path.write_text("\n".join(lines))
    print("\n".join(lines))
    return all_ok


def check(binary: Path, latency_ms: float) -> int:
    """One 1k-instance scan against the fake: exit 1 when it makes more calls
    than the minimum or its totals differ from the fleet. Fast (a few
    seconds, any build), and about properties, not timings."""
    workdir = Path(tempfile.mkdtemp(prefix="imdsguard-check-"))
    ig = Imdsguard(binary.resolve(), workdir)
    n = SIZES[0]
    with Fake(workdir, split_fleet(n), latency_ms, SCAN_TIMEOUT[n] + 120) as fake:
        r = run_scan(ig, fake, n, True, "check", SCAN_TIMEOUT[n])
    total, minimum = sum(r.calls.values()), sum(r.minimum.values())
    extra = {a: c - r.minimum.get(a, 0) for a, c in r.calls.items() if c > r.minimum.get(a, 0)}
    problems = list(r.problems) + ([r.error] if r.error else [])
    if total > minimum:
        problems.append(f"{total} calls for a minimum of {minimum}; over it: {extra}")
    if problems:
        print(f"regression check FAILED (logs in {workdir}):", *problems, sep="\n  ", file=sys.stderr)
        return 1
    print(f"regression check: {n:,} instances, {total} calls = the minimum, totals equal the fleet")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, type=Path)
    ap.add_argument("--quick", action="store_true", help="1,000 instances only; skip 100k and the trail")
    ap.add_argument("--latency-ms", type=float, default=50.0)
    ap.add_argument("--no-apply", action="store_true", help="skip the apply benchmark")
    ap.add_argument("--trail-only", action="store_true",
                    help="run only the trail benchmark (CloudTrail logs in S3, ~1.1 GB); for iterating on it")
    ap.add_argument("--peers-only", action="store_true",
                    help="run only the peer comparison (metabadger and imdsguard at 1k and 10k; ~15 min)")
    ap.add_argument("--no-peers", action="store_true", help="skip the peer comparison")
    ap.add_argument("--org-only", action="store_true",
                    help="run only the organisation scan (1,000 accounts x 17 regions, 4 concurrencies; ~6 min)")
    ap.add_argument("--no-org", action="store_true", help="skip the organisation scan")
    ap.add_argument("--apply-only", action="store_true",
                    help="run only the throttled apply, its rollback and the killed-then-resumed apply "
                         "(bench/apply_bench.py, about 13 min)")
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    ap.add_argument("--check", action="store_true",
                    help="the regression check of scripts/test: one 1,000-instance scan, fail unless its calls "
                         "equal the minimum and its totals equal the fleet; no timing, no results file")
    args = ap.parse_args()
    if sum((args.quick, args.trail_only, args.peers_only, args.org_only, args.apply_only)) > 1:
        ap.error("--quick, --trail-only, --peers-only, --org-only and --apply-only exclude each other")
    for only, no in (("peers", "peers"), ("org", "org"), ("apply", "apply")):
        if getattr(args, f"{only}_only") and getattr(args, f"no_{no}"):
            ap.error(f"--{only}-only and --no-{no} exclude each other")
    if args.check:
        return check(args.bin, args.latency_ms)

    t0 = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="imdsguard-bench-"))
    ig = Imdsguard(args.bin.resolve(), workdir)
    scans: list[ScanResult] = []
    multi: list[ScanResult] = []
    memory: list[ScanResult] = []
    management = "?"
    apply = None
    trails: list[TrailResult] = []
    peer_results: list = []
    org_result = None
    throttle = None
    only = args.trail_only or args.peers_only or args.org_only or args.apply_only
    try:
        for n in ([] if only else SIZES[:1] if args.quick else SIZES):
            with Fake(workdir, split_fleet(n), args.latency_ms, SCAN_TIMEOUT[n] + 120) as fake:
                scans.append(run_scan(ig, fake, n, True, f"{n // 1000}k", SCAN_TIMEOUT[n]))
                management = fake.get("/_bench/fleet")["account_id"]
        if not args.quick and not only:
            sizes = {r: MULTI_PER_REGION for r in BENCH_REGIONS}
            extra = ["--accounts", str(MULTI_ACCOUNTS), "--suspended-accounts", str(MULTI_SUSPENDED),
                     "--role-name", ROLE_NAME]
            n = MULTI_ACCOUNTS * len(BENCH_REGIONS) * MULTI_PER_REGION
            with Fake(workdir, sizes, args.latency_ms, 2 * MULTI_TIMEOUT + 120, extra) as fake:
                for mode, flag in (("accounts", "--accounts"), ("org", "--org")):
                    label = f"{n // 1000}k, {MULTI_ACCOUNTS} accounts {flag}"
                    multi.append(run_scan(ig, fake, n, True, label, MULTI_TIMEOUT, mode))
        if not args.no_apply and not only:
            apply = run_apply(ig, workdir, args.latency_ms)
        if not args.quick and not only:
            sizes = {r: MEMORY_FLEET // len(BENCH_REGIONS) for r in BENCH_REGIONS}
            with Fake(workdir, sizes, args.latency_ms, 2 * SCAN_TIMEOUT[MEMORY_FLEET] + 120) as fake:
                memory.append(run_scan(ig, fake, MEMORY_FLEET, False, "100k --no-usage", SCAN_TIMEOUT[MEMORY_FLEET]))
                memory.append(run_scan(ig, fake, MEMORY_FLEET, True, f"100k --days {DAYS}", SCAN_TIMEOUT[MEMORY_FLEET]))
        if args.org_only or not (args.quick or only or args.no_org):
            org_result = org.run_org(ig, workdir, args.latency_ms)
        if not (args.quick or only) or args.trail_only:
            trails = run_trails(ig, workdir, args.latency_ms)
        if args.apply_only or not (args.quick or only or args.no_apply):
                    throttle = apply_bench.run_throttled(ig, workdir, args.latency_ms)
        if args.peers_only or not (args.quick or only or args.no_peers):
            peer_results = peers.run_peers(ig, workdir, args.latency_ms)
        ok = write_results(args.out, args, binary_info(ig.binary), scans, multi, memory, apply,
                           time.monotonic() - t0, management, trails, peer_results, org_result, throttle)
    except BaseException:
        log(f"bench failed; logs kept in {workdir}")
        raise
    if ok:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        log(f"logs (fakeaws.log) kept in {workdir}")
    log(f"results written to {args.out}" + ("" if ok else " (some targets FAILED)"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
