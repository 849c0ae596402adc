"""The peer comparison of the benchmark: metabadger 0.1.11, the open-source
IMDSv1 -> IMDSv2 tool, measured side by side with imdsguard on the same
generated fleet (bench/fakeaws.py), at 1,000 and 10,000 instances.

metabadger works on one account; its `--all-region` modes walk every region
botocore knows, and `cloudwatch-metrics --all-region` asks the default
region's CloudWatch for every region's instances (see ABSENT). So it is run
as its README tells users to: one command and one region at a time,
`--region R`, the regions one after another. Its three read-only commands
are its counterpart of `imdsguard scan --days 14`:

  discover-metadata --region R --json   the metadata options of the region
  discover-role-usage --region R        which instances have an instance profile
  cloudwatch-metrics --region R         which instances made IMDSv1 calls

metabadger is installed from PyPI into .venv-peers (scripts/lib.sh
ensure_peers_venv, bench/requirements-peers.txt: it and its dependencies
pinned). It is pointed at the fake through AWS_ENDPOINT_URL, which botocore
>= 1.31 reads for every client and resource; metabadger's own
LOCALSTACK_ENDPOINT_URL would miss the CloudWatch resource that
cloudwatch-metrics reads metrics through (aws_auth.get_boto3_resource passes
no endpoint), so it is not used.

The fake's counters are reset before each command; its counts by action,
its busy time and the process's wall time and peak RSS are kept per command
and region. imdsguard runs `scan --days 14` once against the same fake
process (bench.run_scan, with its own checks), so both see the same fleet.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

# The shared helpers (bench/common.py); bench.py imports this module.
from common import (BENCH_REGIONS, DAYS, DESCRIBE_PAGE, ROOT, SCAN_TIMEOUT, Fake, Imdsguard, ScanResult, fake_env,
                   calls_by_action, fmt_s, log, run_scan, split_fleet)

METABADGER = "metabadger"
METABADGER_VERSION = "0.1.11"
PEERS_VENV = ROOT / ".venv-peers"
PEER_SIZES = [1_000, 10_000]
# The three read-only commands, in the order of the README's guided steps
# (discover-metadata, discover-role-usage), then the usage metrics.
COMMANDS = ("discover-metadata", "discover-role-usage", "cloudwatch-metrics")
# cloudwatch-metrics asks for one instance's metric per call, one call after
# another: 4,000 instances in the largest region x 50 ms is over 200 s.
COMMAND_TIMEOUT = 900
# Targets at 10,000 instances (the issue): imdsguard makes at least this many
# times fewer calls and takes at least this many times less wall time.
TARGET_CALLS_X = 100
TARGET_WALL_X = 20
INSTANCE_ID = re.compile(r"\bi-0[0-9a-f]{16}\b")
V1_CLASS = "optional/running/v1-calls"  # fakeaws.CLASS_NAMES: MetadataNoToken > 0, in every period

# What metabadger does not do that imdsguard's scan does, from its source
# (metabadger/command/*.py, metabadger/shared/discover.py, version 0.1.11).
ABSENT = [
    "**Usage window and metrics**: `cloudwatch-metrics` reads `MetadataNoToken` alone (not "
    "`MetadataNoTokenRejected`), as the Sum of one period of `--time-period` seconds ending now (default "
    "3600: the last hour), and looks at the first datapoint only; imdsguard reads both metrics of every "
    f"instance with the endpoint enabled over the last {DAYS} days. An instance whose software fetches "
    "credentials over IMDSv1 once a day looks unused to metabadger 23 hours a day.",
    "**Calls per instance**: `cloudwatch-metrics` sends one `GetMetricStatistics` per instance (stopped and "
    "endpoint-disabled ones included) and one `DescribeTags` per instance it found in use, one after another; "
    "imdsguard batches 500 queries per `GetMetricData`.",
    "**Regions**: one region per command (`--region`, default us-west-2); its `--all-region` modes list "
    "the instances of every region botocore knows (not `DescribeRegions`), and `cloudwatch-metrics "
    "--all-region` then asks the default region's CloudWatch and EC2 for every region's instances' metrics and "
    "tags, so the bench runs it per region. No accounts or organizations beyond one profile; no concurrency.",
    "**Role usage**: `discover-role-usage` makes one `DescribeInstances` call without `MaxResults` and never "
    "follows `NextToken`, and reads only the first instance of each reservation (`Instances[0]`): it misses "
    "every other instance launched in the same reservation (the fake launches pairs, so about half).",
    "**Posture**: `discover-metadata` counts the raw values of `HttpTokens` and `HttpEndpoint`, so an instance "
    "with the endpoint disabled and `HttpTokens=required` counts as v2-enforced; no readiness verdict per "
    "instance (in use, ready, unknown, rejecting v1), no sources of new IMDSv1 instances (launch templates, "
    "Auto Scaling groups, account defaults, AMIs' `ImdsSupport`), nothing saved for later commands (imdsguard "
    "keeps the scan in SQLite for plan/apply), and JSON output for `discover-metadata` only (the other two "
    "print tables).",
    "**Waits of its own**: each listing pass steps a progress bar that sleeps 1 ms per reservation "
    "(`time.sleep(0.001)`): `discover-metadata` lists its region twice, `cloudwatch-metrics` once; the wall "
    "times above include those sleeps and 12 Python start-ups (boto3 and pandas imported each time).",
]


@dataclass
class CommandRun:
    command: str
    region: str
    argv: list[str]
    code: int = 0
    wall: float = 0.0
    startup: float = 0.0  # process start -> first AWS call
    busy: float = 0.0  # at least one call in flight (the fake's clock)
    rss_mb: float = 0.0
    calls: dict[str, int] = field(default_factory=dict)
    found: int | None = None  # what the command reports, for the check against the fleet
    want: int | None = None
    problem: str = ""
    load: float = 0.0  # the machine's 1-minute load average when it started

    @property
    def total(self) -> int:
        return sum(self.calls.values())


@dataclass
class PeerResult:
    fleet: int
    label: str
    imdsguard: ScanResult
    runs: list[CommandRun] = field(default_factory=list)
    formula: int = 0  # the calls metabadger's source makes for this fleet (expected_calls)
    roles_in_fleet: int = 0  # instances with a profile, every one of them
    latency: float = 0.0
    scan_load: float = 0.0  # the 1-minute load average when imdsguard's scan started

    @property
    def calls(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.runs:
            for k, v in r.calls.items():
                out[k] = out.get(k, 0) + v
        return out

    @property
    def total(self) -> int:
        return sum(r.total for r in self.runs)

    @property
    def wall(self) -> float:
        """The commands one after another, as a user runs them."""
        return sum(r.wall for r in self.runs)

    @property
    def side_by_side(self) -> float:
        """If a user ran the regions in 4 shells at once (each region's
        commands one after another): the busiest region's wall. Computed
        from the sequential runs, not measured (the fake and both tools share
        2 cores)."""
        per: dict[str, float] = {}
        for r in self.runs:
            per[r.region] = per.get(r.region, 0.0) + r.wall
        return max(per.values()) if per else 0.0

    @property
    def problems(self) -> list[str]:
        return [f"{r.command} --region {r.region}: {r.problem}" for r in self.runs if r.problem]

    @property
    def calls_x(self) -> float:
        return self.total / self.imdsguard.total if self.imdsguard.total else float("nan")

    @property
    def wall_x(self) -> float:
        return self.wall / self.imdsguard.wall if self.imdsguard.wall else float("nan")


def times(x: float) -> str:
    """A ratio as `N×`, with a decimal below 10."""
    return f"{x:.0f}×" if x >= 10 else f"{x:.1f}×"


def expected_calls(regions: dict) -> int:
    """The calls metabadger 0.1.11's code makes for a fleet, summed over the
    regions (N_r instances, V_r of them with IMDSv1 calls in the last hour):
    discover-metadata lists the region twice (discover_instances to see
    whether there are any, then get_summary), pages of 1,000; discover-role-usage
    one DescribeInstances without paging; cloudwatch-metrics lists the region
    once, then one GetMetricStatistics per instance and one DescribeTags per
    instance in use: Σ_r (3 · ceil(N_r / 1000) + 1 + N_r + V_r)."""
    total = 0
    for r in regions.values():
        pages = max(1, math.ceil(r["instances"] / DESCRIBE_PAGE))
        total += 3 * pages + 1 + r["instances"] + r["classes"][V1_CLASS]
    return total


def metabadger_env(endpoint: str, home: Path) -> dict:
    """The environment a metabadger command runs in: the fake's, as for
    imdsguard, with the venv's bin first and no default region (each command
    names its own with --region)."""
    env = fake_env(endpoint, home)
    env["PATH"] = f"{PEERS_VENV / 'bin'}:/usr/bin:/bin"
    del env["AWS_REGION"]
    return env


def run_command(fake: Fake, command: str, region: str, home: Path) -> tuple[CommandRun, str]:
    """One metabadger command for one region, with the fake's counters reset
    before it; (its run, its stdout)."""
    args = [command, "--region", region] + (["--json"] if command == "discover-metadata" else [])
    run = CommandRun(command, region, args)
    fake.post("/_bench/reset")
    timefile = home / "time.txt"
    timefile.unlink(missing_ok=True)
    run.load = os.getloadavg()[0]
    argv = ["/usr/bin/time", "-v", "-o", str(timefile), str(PEERS_VENV / "bin" / METABADGER), *args]
    t0 = time.monotonic()
    try:
        proc = subprocess.run(argv, env=metabadger_env(fake.url, home), capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT, cwd=home)
        run.code, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired:
        run.code, out, err = -1, "", ""
        run.problem = f"timed out after {COMMAND_TIMEOUT} s"
    run.wall = time.monotonic() - t0
    stats = fake.get("/_bench/stats")
    run.calls = calls_by_action(stats)
    run.busy = stats["busy_seconds"]
    if stats.get("first_call_monotonic"):
        run.startup = max(0.0, stats["first_call_monotonic"] - t0)
    if timefile.exists():
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", timefile.read_text())
        run.rss_mb = int(m.group(1)) / 1024.0 if m else 0.0
    if run.code != 0 and not run.problem:
        lines = [l for l in err.strip().splitlines() if l.strip()]
        run.problem = f"exit {run.code}: {(lines[-1] if lines else '')[:200]}"
    return run, out


def check_output(run: CommandRun, out: str, fleet: dict, state: dict, roles: dict) -> None:
    """What the command reports against the fleet: discover-metadata's counts
    (exact; its `required` and `optional` are raw HttpTokens values, endpoint
    disabled or not), the instances discover-role-usage lists (those with a
    profile that are first in their reservation: all it reads) and those
    cloudwatch-metrics lists as using IMDSv1 (the fleet's instances with
    MetadataNoToken > 0, which the fake gives them in every period)."""
    if run.problem:
        return
    if run.command == "discover-metadata":
        start = out.find("\n{")
        try:
            doc, _ = json.JSONDecoder().raw_decode(out[start + 1:]) if start >= 0 else ({}, 0)
        except ValueError as e:
            run.problem = f"no JSON summary: {e}"
            return
        want = {
            "instances": fleet["instances"],
            "enabled": fleet["endpoint_enabled"],
            "disabled": fleet["disabled"],
            "required": state.get("enabled/required", 0) + state.get("disabled/required", 0),
            "optional": state.get("enabled/optional", 0) + state.get("disabled/optional", 0),
        }
        wrong = {k: (doc.get(k, 0), v) for k, v in want.items() if doc.get(k, 0) != v}
        run.found, run.want = doc.get("instances"), fleet["instances"]
        if wrong:
            run.problem = "counts (found, fleet): " + ", ".join(f"{k} {a} vs {b}" for k, (a, b) in wrong.items())
        return
    found = len(set(INSTANCE_ID.findall(out)))
    if run.command == "discover-role-usage":
        run.found, run.want = found, roles["with_profile_first_in_reservation"]
    else:
        run.found, run.want = found, fleet["classes"][V1_CLASS]
    if run.found != run.want:
        run.problem = f"listed {run.found} instances, the fleet has {run.want}"


def run_peer(ig: Imdsguard, workdir: Path, n: int, latency_ms: float) -> PeerResult:
    sizes = split_fleet(n)
    # The commands one after another, 12 of them, plus imdsguard's scan.
    lifetime = SCAN_TIMEOUT[n] + len(COMMANDS) * len(sizes) * COMMAND_TIMEOUT + 120
    label = f"{n // 1000}k"
    with Fake(workdir, sizes, latency_ms, lifetime) as fake:
        expected = fake.get("/_bench/fleet")["regions"]
        state = fake.get("/_bench/state")
        roles = fake.get("/_bench/roles")
        scan_load = os.getloadavg()[0]
        scan = run_scan(ig, fake, n, True, f"{label} (peers)", SCAN_TIMEOUT[n])
        res = PeerResult(n, label, scan, formula=expected_calls(expected),
                         roles_in_fleet=sum(r["with_profile"] for r in roles.values()), latency=latency_ms / 1000,
                         scan_load=scan_load)
        home = Path(tempfile.mkdtemp(prefix=f"metabadger-{n}-", dir=workdir))
        for region in BENCH_REGIONS:
            for command in COMMANDS:
                run, out = run_command(fake, command, region, home)
                check_output(run, out, expected[region], state[region], roles[region])
                log(f"{label}: metabadger {' '.join(run.argv)}: {run.total} calls, {fmt_s(run.wall)}"
                    + (f", PROBLEM: {run.problem}" if run.problem else ""))
                res.runs.append(run)
        shutil.rmtree(home, ignore_errors=True)
    log(f"{label}: metabadger {res.total} calls in {fmt_s(res.wall)}; imdsguard {scan.total} calls in "
        f"{fmt_s(scan.wall)}: {times(res.calls_x)} the calls, {times(res.wall_x)} the wall time")
    return res


def run_peers(ig: Imdsguard, workdir: Path, latency_ms: float) -> list[PeerResult]:
    """The peer step of bench.py: metabadger and imdsguard at 1k and 10k."""
    if not (PEERS_VENV / "bin" / METABADGER).exists():
        raise RuntimeError(f"no {PEERS_VENV}/bin/{METABADGER}: bench/run creates it (scripts/lib.sh ensure_peers_venv)")
    return [run_peer(ig, workdir, n, latency_ms) for n in PEER_SIZES]


def section(results: list[PeerResult], skipped: str) -> tuple[list[str], list]:
    """The Peers section of RESULTS.md and its verdicts."""
    lines = [f"## Peers: {METABADGER} {METABADGER_VERSION}", ""]
    name_calls = f"≥ {TARGET_CALLS_X}× fewer API calls than {METABADGER} (10,000 instances)"
    name_wall = f"≥ {TARGET_WALL_X}× less wall time than {METABADGER} (10,000 instances)"
    verdicts: list[tuple[str, bool | None, str]] = []
    if not results:
        lines += [f"Not run (`{skipped}`).", ""]
        return lines, [(name_calls, None, f"not run ({skipped})"), (name_wall, None, f"not run ({skipped})")]
    actions = ["DescribeInstances", "DescribeTags", "GetMetricStatistics", "GetMetricData"]
    lines += [
        f"[{METABADGER}](https://github.com/salesforce/metabadger) {METABADGER_VERSION} (PyPI, in `.venv-peers` "
        "with its dependencies pinned by `bench/requirements-peers.txt`: boto3/botocore 1.44.8, pandas 3.1.1) "
        "against fleets generated as for the 1k and 10k scans (same split, shares and seed), one fake process "
        "per size that both tools read, at the same latency. "
        "It is run as its README shows, one region at a time, the regions and commands one after another "
        f"(4 regions × 3 commands = 12 processes): `{METABADGER} discover-metadata --region R --json`, "
        f"`{METABADGER} discover-role-usage --region R`, `{METABADGER} cloudwatch-metrics --region R` (default "
        f"`--time-period 3600`). imdsguard: `imdsguard scan --days {DAYS} --regions {','.join(BENCH_REGIONS)} "
        "--format json` once, against the same fake process. The fake serves what botocore 1.44 sends: EC2 "
        "`DescribeInstances` and `DescribeTags` (EC2 query), CloudWatch `GetMetricStatistics` in JSON 1.0 "
        "(CloudWatch's model also lists RPC-v2 CBOR and query; botocore 1.44 prefers JSON), the Sum of the "
        "same per-instance data `GetMetricData` gives imdsguard.",
        "",
        "| fleet | tool | " + " | ".join(actions) + " | other | calls | wall | start-ups | waiting on fake | "
        "peak RSS | load | findings = fleet |",
        "|---|---|" + "---|" * len(actions) + "---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s = r.imdsguard
        cells = [f"{s.calls.get(a, 0):,}" for a in actions]
        lines.append(
            f"| {r.label} | imdsguard | " + " | ".join(cells)
            + f" | {s.total - sum(s.calls.get(a, 0) for a in actions):,} | {s.total:,} | {fmt_s(s.wall)} | "
            f"{fmt_s(s.before_first)} (1) | {s.busy / s.wall:.0%} ({fmt_s(s.busy)}) | {s.rss_mb:.0f} MB | "
            f"{r.scan_load:.1f} | "
            + ("yes" if not s.problems and not s.error else "**no**") + " |"
        )
        calls = r.calls
        cells = [f"{calls.get(a, 0):,}" for a in actions]
        busy = sum(x.busy for x in r.runs)
        startup = sum(x.startup for x in r.runs)
        lines.append(
            f"| {r.label} | {METABADGER} | " + " | ".join(cells)
            + f" | {r.total - sum(calls.get(a, 0) for a in actions):,} | {r.total:,} | {fmt_s(r.wall)} | "
            f"{fmt_s(startup)} ({len(r.runs)}) | {busy / r.wall:.0%} ({fmt_s(busy)}) | "
            f"{max(x.rss_mb for x in r.runs):.0f} MB | {min(x.load for x in r.runs):.1f}–{max(x.load for x in r.runs):.1f} | "
            + ("yes" if not r.problems else "**no**") + " |"
        )
    lines += [
        "",
        "| fleet | calls: metabadger / imdsguard | wall: metabadger / imdsguard | metabadger calls as its code "
        "predicts | latency alone (metabadger: calls × latency, all sequential) | metabadger, regions side by side "
        "(computed) / imdsguard |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.label} | {r.total:,} / {r.imdsguard.total:,} = **{times(r.calls_x)}** | "
            f"{fmt_s(r.wall)} / {fmt_s(r.imdsguard.wall)} = **{times(r.wall_x)}** | {r.formula:,} "
            f"({'equal' if r.formula == r.total else 'differs'}) | {fmt_s(r.total * r.latency)} | "
            f"{fmt_s(r.side_by_side)} / {fmt_s(r.imdsguard.wall)} = {times(r.side_by_side / r.imdsguard.wall)} |"
        )
    lines += [
        "",
        f"Per command (Σ over the 4 regions; found / fleet: what the command reports against the generated fleet):",
        "",
        "| fleet | command | calls | of which | wall | busiest region | found / fleet |",
        "|---|---|---|---|---|---|---|",
    ]
    what = {
        "discover-metadata": "instances counted",
        "discover-role-usage": "instances with a role listed (first of their reservation)",
        "cloudwatch-metrics": "instances listed as using IMDSv1",
    }
    for r in results:
        for command in COMMANDS:
            runs = [x for x in r.runs if x.command == command]
            calls: dict[str, int] = {}
            for x in runs:
                for k, v in x.calls.items():
                    calls[k] = calls.get(k, 0) + v
            busiest = max(runs, key=lambda x: x.wall)
            found = sum(x.found or 0 for x in runs)
            want = sum(x.want or 0 for x in runs)
            lines.append(
                f"| {r.label} | `{command}` | {sum(calls.values()):,} | "
                + ", ".join(f"{k} {v:,}" for k, v in sorted(calls.items())) + f" | {fmt_s(sum(x.wall for x in runs))} | "
                f"{busiest.region} {fmt_s(busiest.wall)} | {what[command]}: {found:,} / {want:,} |"
            )
    lines += [
        "",
        "* **calls as its code predicts**: per region r with N_r instances, V_r of them with IMDSv1 calls in the "
        "last hour: `discover-metadata` 2 · ceil(N_r / 1000) `DescribeInstances` (it lists the region twice, "
        "pages of 1,000); `discover-role-usage` 1 `DescribeInstances` (no paging); `cloudwatch-metrics` "
        "ceil(N_r / 1000) `DescribeInstances` + N_r `GetMetricStatistics` + V_r `DescribeTags`: "
        "Σ_r (3 · ceil(N_r / 1000) + 1 + N_r + V_r). None of the three calls STS, IAM or `DescribeRegions`.",
        "* **wall**: the sum of the 12 processes' wall times (the way a user runs them, one after another); "
        "**start-ups**: process start → its first AWS call, summed (number of processes); **waiting on fake**: "
        "time with at least one call in flight, summed over the processes, / wall. **regions side by side**: the "
        "busiest region's three commands, as if a user ran the 4 regions in 4 shells at once (computed from the "
        "sequential runs, not measured). **load**: the machine's 1-minute load average as each process started "
        "(`nproc` cores; above it, the tools, the fake and anything else running share the CPU and times stretch).",
        "* **findings = fleet**: imdsguard: its scan totals equal the fleet (as in the scan table). metabadger: "
        "`discover-metadata`'s JSON counts (instances, enabled, disabled, and its raw `required`/`optional` "
        "HttpTokens counts) equal the fleet's, `cloudwatch-metrics` lists exactly the instances with "
        "`MetadataNoToken` > 0, and `discover-role-usage` lists exactly the instances with a profile that are "
        f"first in their reservation; the fleet has {results[-1].roles_in_fleet:,} instances with a profile at "
        f"{results[-1].label}, of which it lists "
        f"{sum(x.found or 0 for x in results[-1].runs if x.command == 'discover-role-usage'):,} "
        "(see below).",
        "",
        f"What {METABADGER} does not do that `imdsguard scan` does (read from its source), so that the numbers "
        "compare like with like as far as they can:",
        "",
    ]
    lines += [f"* {a}" for a in ABSENT] + [""]
    problems = [(r.label, p) for r in results for p in r.problems + r.imdsguard.problems
                + ([r.imdsguard.error] if r.imdsguard.error else [])]
    if problems:
        lines += ["Problems:", ""] + [f"* {label}: {p}" for label, p in problems] + [""]
    big = next((r for r in results if r.fleet == 10_000), None)
    if big is None:
        return lines, [(name_calls, None, "no 10k run"), (name_wall, None, "no 10k run")]
    # A comparison only counts when both tools ran to the end with findings equal to the fleet.
    valid = not big.problems and not big.imdsguard.problems and not big.imdsguard.error
    note = "" if valid else " (not valid: see Problems)"
    verdicts.append((name_calls, valid and big.calls_x >= TARGET_CALLS_X,
                     f"{big.total:,} / {big.imdsguard.total:,} = {times(big.calls_x)}{note}"))
    verdicts.append((name_wall, valid and big.wall_x >= TARGET_WALL_X,
                     f"{fmt_s(big.wall)} / {fmt_s(big.imdsguard.wall)} = {times(big.wall_x)}{note}"))
    return lines, verdicts
