"""What every step of the benchmark shares: the fake endpoint (Fake), the
measured binary (Imdsguard), the fleet's minimum calls and latency floor, the
scan runner and its checks, the plain apply and the trail steps.

bench.py (the entry point, which writes RESULTS.md) and the step modules
(org.py, peers.py, apply_bench.py) import from here; nothing here imports
them, so the imports run one way.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path



HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FAKE = HERE / "fakeaws.py"
BENCH_REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2", "sa-east-1"]
# An uneven split, like real estates: 40/30/20/10 %.
SPLIT = [0.4, 0.3, 0.2, 0.1]
SIZES = [1_000, 5_000, 10_000]
MEMORY_FLEET = 100_000
APPLY_CHANGES = 1_000
APPLY_REGION = "us-east-1"
DAYS = 14
DESCRIBE_PAGE = 1_000  # EC2's largest DescribeInstances page
METRIC_QUERIES = 500  # CloudWatch's cap on queries per GetMetricData
ORG_PAGE = 20  # Organizations' largest ListAccounts page
IMAGE_BATCH = 200  # AMI ids per DescribeImages (imdsguard's image-id filter batch)
CONCURRENCY = 64  # imdsguard's default --concurrency: account-regions in flight across all accounts
REGION_CALLS = 4  # imdsguard's default --region-calls: calls in flight in one account and region
# Many accounts: an organization of MULTI_ACCOUNTS active accounts (the
# management account, whose credentials the scan runs with, and the members,
# reached through ROLE_NAME) plus MULTI_SUSPENDED suspended ones, each active
# one with MULTI_PER_REGION instances in every bench region.
MULTI_ACCOUNTS = 10
MULTI_SUSPENDED = 1
MULTI_PER_REGION = 250
ROLE_NAME = "BenchRole"

# Targets (issue 5).
TARGET_CALL_RATIO = 1.05
TARGET_APPLY_RATE = 4.5
# Compare-and-set: the DescribeInstances calls made to re-check instances
# right before changing them, per change made (issue 8: about 1 per 50).
TARGET_RECHECKS_PER_CHANGE = 0.02
TARGET_RSS_MB = 300
# Issue 14: imdsguard's own work (no AWS call in flight) at 100k --days 14,
# and the daily usage's share of the database.
TARGET_OWN_SHARE = 0.10
TARGET_USAGE_BYTES = 200

# Trail (issue 12): `imdsguard trail --bucket` over a generated CloudTrail bucket
# (fakeaws.TrailBucket: 2 accounts, one in an organization folder, x 4 regions x
# the window's TRAIL_DAYS + 1 date folders, and a folder a day before the
# window that must never be listed), at TRAIL_BYTES of uncompressed JSON in
# the window and, to see whether memory follows the volume, at the smallest
# layout (one large object per folder and the 1,010 small ones, about 0.1 GB).
TRAIL_BYTES = 1_100_000_000  # >= 1 GB (and >= 1 GiB) of JSON
TRAIL_SMALL_BYTES = 1  # the smallest layout the fake makes
TRAIL_DAYS = 7
TRAIL_BUCKET = "bench-org-trail"
TRAIL_PREFIX = "cloudtrail"
TRAIL_REGION = "us-east-1"
TRAIL_OBJECTS_AT_ONCE = 16  # imdsguard's default --objects-at-once
TRAIL_TIMEOUT = 900
TRAIL_RSS_GROWTH = 0.25  # peak RSS may grow at most this much for ~10x the logs

SCAN_TIMEOUT = {1_000: 180, 5_000: 300, 10_000: 420, MEMORY_FLEET: 1200}
MULTI_TIMEOUT = 420
PLAN_TIMEOUT = 300
APPLY_TIMEOUT = 900  # 1,000 changes at 5/s is 200 s


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the fake endpoint
class Fake:
    """fakeaws.py in a child process, on a free loopback port."""

    def __init__(self, workdir: Path, sizes: dict[str, int], latency_ms: float, lifetime: float, extra=()):
        self.ready = workdir / f"fake-{os.getpid()}-{time.monotonic_ns()}.url"
        self.logfile = open(workdir / "fakeaws.log", "a")
        spec = ",".join(f"{r}={n}" for r, n in sizes.items())
        cmd = [
            sys.executable,
            str(FAKE),
            "--regions",
            spec,
            "--latency-ms",
            str(latency_ms),
            "--ready-file",
            str(self.ready),
            "--max-lifetime",
            str(lifetime),
            *extra,
        ]
        self.proc = subprocess.Popen(cmd, stdout=self.logfile, stderr=self.logfile)
        deadline = time.monotonic() + 120
        while not self.ready.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"fakeaws exited with {self.proc.returncode}; see {self.logfile.name}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("fakeaws did not start within 120 s")
            time.sleep(0.05)
        self.url = self.ready.read_text().strip()
        assert self.url.startswith("http://127.0.0.1:"), self.url

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=120) as r:
            return json.load(r)

    def post(self, path: str, payload=None) -> dict:
        data = b"" if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(self.url + path, data=data, method="POST")
        with urllib.request.urlopen(req, timeout=120) as r:
            return json.load(r)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.post("/_bench/shutdown")
            except Exception:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.terminate()  # our own child, by its handle
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        self.ready.unlink(missing_ok=True)
        self.logfile.close()

    def __enter__(self) -> "Fake":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# ---------------------------------------------------------------- running imdsguard
@dataclass
class Run:
    argv: list[str]
    code: int
    wall: float
    rss_kb: int
    stdout: str
    stderr: str
    timed_out: bool = False
    started: float = 0.0  # time.monotonic() around the process
    ended: float = 0.0
    cpu_s: float = 0.0  # user + system CPU seconds (GNU time)

    @property
    def rss_mb(self) -> float:
        return self.rss_kb / 1024.0

    def brief_error(self) -> str:
        if self.timed_out:
            return "timed out"
        lines = [l for l in self.stderr.strip().splitlines() if l.strip() and not l.startswith("\t")]
        return (lines[0] if lines else f"exit {self.code}")[:200]


def fake_env(endpoint: str, home: Path) -> dict:
    """The environment of a client of the fake: its endpoint for every
    service, static credentials, empty profile files in `home` (so nothing on
    this machine is read), region us-east-1, no instance metadata, no colour."""
    home.mkdir(parents=True, exist_ok=True)
    # Empty files rather than missing ones: the SDK warns about missing ones.
    (home / "empty-aws-config").touch()
    (home / "empty-aws-credentials").touch()
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "AWS_CONFIG_FILE": str(home / "empty-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "empty-aws-credentials"),
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "NO_COLOR": "1",
    }


class Imdsguard:
    def __init__(self, binary: Path, workdir: Path):
        self.binary = binary
        self.workdir = workdir

    def env(self, endpoint: str, home: Path) -> dict:
        return fake_env(endpoint, home)

    def run(self, args: list[str], endpoint: str, home: Path, timeout: float) -> Run:
        timefile = self.workdir / "time.txt"
        timefile.unlink(missing_ok=True)
        argv = ["/usr/bin/time", "-v", "-o", str(timefile), str(self.binary), *args]
        t0 = time.monotonic()
        timed_out = False
        try:
            proc = subprocess.run(
                argv, env=self.env(endpoint, home), capture_output=True, text=True, timeout=timeout, cwd=self.workdir
            )
            code, out, err = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as e:
            timed_out = True
            code = -1
            out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        t1 = time.monotonic()
        wall = t1 - t0
        rss = 0
        cpu = 0.0
        if timefile.exists():
            text = timefile.read_text()
            m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
            rss = int(m.group(1)) if m else 0
            cpu = sum(float(x) for x in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", text))
        return Run(argv[4:], code, wall, rss, out, err, timed_out, t0, t1, cpu)

    def has_subcommand(self, name: str) -> bool:
        try:
            proc = subprocess.run(
                [str(self.binary), name, "--help"], capture_output=True, text=True, timeout=30,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.workdir)},
            )
        except subprocess.TimeoutExpired:
            return False
        return proc.returncode == 0


# ---------------------------------------------------------------- helpers
def split_fleet(total: int) -> dict[str, int]:
    sizes = [int(total * s) for s in SPLIT]
    sizes[0] += total - sum(sizes)
    return dict(zip(BENCH_REGIONS, sizes))


def scanned_accounts(expected: dict, mode: str) -> dict[str, dict]:
    """account id -> {region: expected counts} of the accounts a scan covers:
    the caller's own (mode ""), or every active account of the organization
    whose role can be assumed (mode "accounts": all of them listed; mode
    "org": found by ListAccounts)."""
    if not mode:
        return {expected["account_id"]: expected["regions"]}
    return {a: v["regions"] for a, v in expected["accounts"].items()
            if v["status"] == "ACTIVE" and v.get("assumable", True)}


def unassumable_accounts(expected: dict) -> set[str]:
    """ACTIVE accounts whose role the fake refuses (AccessDenied)."""
    return {a for a, v in expected["accounts"].items() if v["status"] == "ACTIVE" and not v.get("assumable", True)}


def account_minimum(regions: dict, usage: bool) -> dict[str, int]:
    """The physical minimum of one account's own calls: one GetCallerIdentity,
    DescribeRegions and ListInstanceProfiles (25 profiles: one page); per
    region the DescribeInstances pages, the GetMetricData batches (2 queries
    per instance with the endpoint enabled, with usage) and the sources of new
    instances: one page each of DescribeLaunchTemplateVersions ($Default and
    $Latest of every template; the fake has none), DescribeAutoScalingGroups
    (no groups, so no DescribeLaunchConfigurations and no pinned-version
    DescribeLaunchTemplateVersions) and GetInstanceMetadataDefaults, and
    ceil(distinct AMIs / 200) DescribeImages, the AMIs being those of the
    instances that allow IMDSv1 (no template or configuration adds one); none
    in a region without such instances."""
    out = {
        "GetCallerIdentity": 1,
        "DescribeRegions": 1,
        "ListInstanceProfiles": 1,  # 25 profiles: one page
        "DescribeInstances": sum(max(1, math.ceil(r["instances"] / DESCRIBE_PAGE)) for r in regions.values()),
        "GetMetricData": 0,
        "DescribeLaunchTemplateVersions": len(regions),
        "DescribeAutoScalingGroups": len(regions),
        "GetInstanceMetadataDefaults": len(regions),
        # The fleet gives every instance one of 8 AMIs (fakeaws.AMIS): one call
        # per region with instances allowing v1; the fake says which exactly.
        "DescribeImages": sum(math.ceil(len(r["v1_amis"]) / IMAGE_BATCH) for r in regions.values()),
    }
    if usage:
        out["GetMetricData"] = sum(math.ceil(2 * r["endpoint_enabled"] / METRIC_QUERIES) for r in regions.values())
    return out


def minimum_calls(expected: dict, usage: bool, mode: str = "") -> dict[str, int]:
    """The physical minimum: nothing can be saved below this. Per account one
    GetCallerIdentity, DescribeRegions and ListInstanceProfiles and the
    regions' pages and metric batches, and per region one
    DescribeLaunchTemplateVersions, DescribeAutoScalingGroups and
    GetInstanceMetadataDefaults and ceil(distinct AMIs of the instances that
    allow v1 / 200) DescribeImages (account_minimum); with many accounts also
    one AssumeRole per account other than the caller's, and ListAccounts'
    pages for --org."""
    out: dict[str, int] = {}
    accounts = scanned_accounts(expected, mode)
    for regions in accounts.values():
        for k, v in account_minimum(regions, usage).items():
            out[k] = out.get(k, 0) + v
    if mode:
        # One for every other account, those refusing it included.
        refused = unassumable_accounts(expected)
        out["AssumeRole"] = sum(1 for a in accounts if a != expected["account_id"]) + len(refused)
    if mode == "org":
        out["ListAccounts"] = math.ceil(len(expected["accounts"]) / ORG_PAGE)
    return out


def calls_by_action(stats: dict) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in stats["calls"]:
        out[c["action"]] = out.get(c["action"], 0) + c["count"]
    return out


def calls_by_account(stats: dict) -> dict[str, dict[str, int]]:
    """account -> action -> calls made with that account's credentials; an
    AssumeRole is counted under the account it assumes a role in (the fake
    counts the call itself under the caller)."""
    out: dict[str, dict[str, int]] = {}
    for c in stats["calls"]:
        if c["action"] == "AssumeRole":
            continue
        acct = out.setdefault(c.get("account", "?"), {})
        acct[c["action"]] = acct.get(c["action"], 0) + c["count"]
    for target, n in stats.get("assume_role_targets", {}).items():
        out.setdefault(target, {})["AssumeRole"] = n
    return out


# The sources of new instances, read per region alongside the usage measurement.
SOURCE_ACTIONS = (
    "DescribeLaunchTemplateVersions", "DescribeAutoScalingGroups", "DescribeLaunchConfigurations",
    "GetInstanceMetadataDefaults", "DescribeImages",
)
REGION_ACTIONS = ("DescribeInstances", "GetMetricData") + SOURCE_ACTIONS


def calls_by_region(stats: dict) -> dict[tuple[str, str], dict[str, int]]:
    """(account, region) -> action -> calls, for the calls a region's own work makes."""
    out: dict[tuple[str, str], dict[str, int]] = {}
    for c in stats["calls"]:
        if c["action"] in REGION_ACTIONS:
            per = out.setdefault((c.get("account", ""), c["region"]), {})
            per[c["action"]] = per.get(c["action"], 0) + c["count"]
    return out


def region_path(calls: dict[str, int]) -> int:
    """Latencies a region's calls take one after another at the least, in
    imdsguard's order (scan.rs scan_region / launch_input): the
    DescribeInstances pages (sequential: each needs the last one's token);
    then the GetMetricData batches and the sources of new instances, all
    sharing the region's REGION_CALLS calls in flight (--region-calls). The
    sources are one round of the template, group and account-default
    listings side by side, then the launch configurations (only after the
    groups), the pinned template versions (after both listings) and the
    DescribeImages batches (after everything). So after the listing, the
    region takes at least the longer of ceil(its other calls / REGION_CALLS)
    and the sources' chain, max(templates, groups, defaults) + configurations
    + images (exact for the fake: 1 + 0 + 1 where an instance allows v1)."""
    g = calls.get
    chain = 0
    if any(g(a, 0) for a in SOURCE_ACTIONS):
        chain = (max(g("DescribeLaunchTemplateVersions", 0), g("DescribeAutoScalingGroups", 0),
                     g("GetInstanceMetadataDefaults", 0))
                 + g("DescribeLaunchConfigurations", 0) + g("DescribeImages", 0))
    after = g("GetMetricData", 0) + sum(g(a, 0) for a in SOURCE_ACTIONS)
    return g("DescribeInstances", 0) + max(math.ceil(after / REGION_CALLS), chain)


def latency_floor(stats: dict, mode: str = "", concurrency: int = CONCURRENCY) -> float:
    """Time the scan cannot avoid waiting with this latency: the account-level
    calls that precede the regions (GetCallerIdentity, DescribeRegions) plus
    the busiest region's sequential calls (regions run concurrently; within a
    region pages and metric batches are sequential, and the sources of new
    instances are read alongside the metric batches: region_path).
    ListInstanceProfiles runs alongside the regions, so it is not on the
    critical path.

    The sources changed the floor, not only the call count: adding them as
    sequential calls would overstate it (they overlap GetMetricData), but
    leaving them out understates it wherever a region's sources chain (2
    latencies in the fake: the three listings side by side, then
    DescribeImages) is longer than its metric batches: every region with
    --no-usage, and a region with one batch (≤ 250 instances measured), which
    is every region of the many-account fleet. So the per-region figure is
    DescribeInstances + max(GetMetricData, sources chain). (The listings do
    not depend on the instances and could in principle overlap
    DescribeInstances; only DescribeImages needs the instances' AMIs. The
    floor follows imdsguard's order, as it follows its --concurrency.)

    With many accounts, ListAccounts' pages (--org, sequential) come first
    too, and at most `concurrency` account-regions are in flight across all
    accounts, each holding its slot for its whole path, so the regions take
    at least ceil(Σ region paths / concurrency) latencies; the members'
    AssumeRole overlaps other accounts' regions."""
    lat = stats["latency_per_call_seconds"]
    paths = [region_path(calls) for calls in calls_by_region(stats).values()]
    busiest = max(paths) if paths else 0
    if not mode:
        return lat * (2 + busiest)
    pre = 2 + (calls_by_action(stats).get("ListAccounts", 0) if mode == "org" else 0)
    spread = math.ceil(sum(paths) / concurrency)
    return lat * (pre + max(busiest, spread))


def check_totals(doc: dict, expected: dict, usage: bool, mode: str = "", refused: set[str] = frozenset()) -> list[str]:
    """Differences between the scan's JSON summary and the generated fleet,
    in total and per (account, region). Accounts in `refused` must each be
    exactly one failure (their AssumeRole, AccessDenied) and nothing else."""
    problems = []
    key = "readiness_usage" if usage else "readiness_no_usage"
    accounts = scanned_accounts(expected, mode)
    want = {(a, name): r for a, regions in accounts.items() for name, r in regions.items()}
    want_total = {"instances": 0, "required": 0, "optional": 0, "disabled": 0}
    want_ready: dict[str, int] = {}
    for r in want.values():
        for k in want_total:
            want_total[k] += r[k]
        for k, v in r[key].items():
            want_ready[k] = want_ready.get(k, 0) + v
    total = doc["summary"]["total"]
    for k, v in want_total.items():
        if total.get(k) != v:
            problems.append(f"total.{k} = {total.get(k)}, fleet has {v}")
    for k, v in want_ready.items():
        if total["readiness"].get(k, 0) != v:
            problems.append(f"total.readiness.{k} = {total['readiness'].get(k, 0)}, fleet has {v}")
    got = {(r.get("account_id", expected["account_id"]), r["region"]): r for r in doc["summary"]["regions"]}
    for (acct, name), r in want.items():
        where = f"{acct} {name}" if mode else name
        g = got.get((acct, name))
        if g is None:
            problems.append(f"{where} missing from the summary")
            continue
        for k in ("instances", "required", "optional", "disabled"):
            if g.get(k) != r[k]:
                problems.append(f"{where}.{k} = {g.get(k)}, fleet has {r[k]}")
        for k, v in r[key].items():
            if (g.get("readiness") or {}).get(k, 0) != v:
                problems.append(f"{where}.readiness.{k} = {(g.get('readiness') or {}).get(k, 0)}, fleet has {v}")
        if not g.get("complete", False):
            problems.append(f"{where} incomplete")
    for acct, name in sorted(set(got) - set(want)):
        problems.append(f"{acct} {name} in the summary, but not in the fleet scanned")
    if len(doc.get("instances", [])) != want_total["instances"]:
        problems.append(f"{len(doc.get('instances', []))} instance records, fleet has {want_total['instances']}")
    problems += check_sources(doc, want, mode)
    failures = doc.get("failures") or []
    failed = sorted(f.get("account_id") or "?" for f in failures)
    if failed != sorted(refused):
        problems.append(f"{len(failures)} failure(s) for accounts {failed[:3]}..., expected exactly the "
                        f"{len(refused)} refusing the role: {failures[:2]}")
    elif any(f.get("code") != "AccessDenied" and "AccessDenied" not in json.dumps(f) for f in failures):
        problems.append(f"a refused account's failure does not say AccessDenied: {failures[:1]}")
    if doc["scan"].get("complete", False) == bool(refused):
        problems.append(f"scan.complete is {doc['scan'].get('complete')}")
    return problems


def check_sources(doc: dict, want: dict, mode: str) -> list[str]:
    """The sources of new instances against the fleet: no warnings (a source
    listing that fails is only a warning), no templates or groups (the fake
    has none), one account-default row per (account, region), and per
    (account, region) exactly the AMIs without ImdsSupport=v2.0 behind
    instances that allow v1, each with its count of such instances."""
    problems = []
    if doc.get("warnings"):
        problems.append(f"warnings: {doc['warnings'][:2]}")
    src = doc.get("sources")
    if not isinstance(src, dict):
        return problems + ["no `sources` in the scan JSON"]
    for kind in ("launch_templates", "auto_scaling_groups"):
        if src.get(kind):
            problems.append(f"{len(src[kind])} {kind} in sources, the fake has none")
    defaults = sorted((d.get("account_id"), d.get("region")) for d in src.get("account_defaults") or [])
    if defaults != sorted(want):
        problems.append(f"{len(defaults)} account_defaults rows, expected one per account and region ({len(want)})")
    got_images = {(i.get("account_id"), i.get("region"), i.get("image_id")): i.get("instances_allowing_v1")
                  for i in src.get("images") or []}
    want_images = {(a, name, ami): v["instances"] for (a, name), r in want.items()
                   for ami, v in r["v1_amis"].items() if not v["imds_v2"]}
    if got_images != want_images:
        wrong = sorted(set(got_images.items()) ^ set(want_images.items()))[:2]
        problems.append(f"sources.images: {len(got_images)} AMI rows, fleet has {len(want_images)}"
                        + (f" (differ: {wrong})" if wrong else ""))
    return problems


def fmt_s(x: float) -> str:
    return f"{x:.1f} s" if x >= 10 else f"{x:.2f} s"


def pf(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


# ---------------------------------------------------------------- benchmarks
@dataclass
class ScanResult:
    fleet: int
    regions: int
    label: str
    usage: bool
    mode: str = ""  # "" (the caller's account), "accounts" (--accounts) or "org" (--org)
    accounts: int = 1
    argv: str = ""
    per_account: dict[str, dict[str, int]] = field(default_factory=dict)  # account -> action -> calls
    per_account_min: dict[str, dict[str, int]] = field(default_factory=dict)
    per_account_instances: dict[str, tuple[int, int]] = field(default_factory=dict)  # account -> (fleet, scan)
    calls: dict[str, int] = field(default_factory=dict)
    minimum: dict[str, int] = field(default_factory=dict)
    wall: float = 0.0
    rss_mb: float = 0.0
    busy: float = 0.0
    floor: float = 0.0
    latency_sum: float = 0.0
    problems: list[str] = field(default_factory=list)
    error: str = ""
    before_first: float = 0.0  # process start → first AWS call
    calls_span: float = 0.0  # first AWS call → last response
    after_last: float = 0.0  # last response → process exit
    cpu_note: str = ""
    concurrency: int = CONCURRENCY
    db_bytes: int = 0  # the database after the scan (file + WAL)
    db_tables: dict[str, int] = field(default_factory=dict)  # table or index -> bytes (SQLite dbstat)
    timings: str = ""  # imdsguard -v: where its time went
    code: int = 0

    @property
    def own_share(self) -> float:
        """imdsguard's own work: the share of the wall time with no AWS call in flight."""
        return max(0.0, self.wall - self.busy) / self.wall if self.wall else float("nan")

    @property
    def usage_bytes(self) -> int:
        """The daily usage's share of the database: the `usage` table (schema 8
        packs each instance's series into its row; no index of its own)."""
        return sum(v for k, v in self.db_tables.items() if k == "usage" or k.startswith("sqlite_autoindex_usage"))

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    @property
    def min_total(self) -> int:
        return sum(self.minimum.values())

    @property
    def ratio(self) -> float:
        return self.total / self.min_total if self.min_total else float("nan")


def check_accounts(doc: dict, expected: dict, fake: Fake, mode: str) -> list[str]:
    """With many accounts: every instance record carries the account and
    region that really own it, and every account scanned was reached with the
    right identity (its own credentials, or the role in it)."""
    problems = []
    accounts = scanned_accounts(expected, mode)
    records = doc.get("instances", [])
    owners = fake.post("/_bench/owners", [r.get("instance_id") for r in records])
    wrong = [
        r["instance_id"]
        for r in records
        if (owners.get(r.get("instance_id")) or {}) != {"account": r.get("account_id"), "region": r.get("region")}
    ]
    if wrong:
        problems.append(f"{len(wrong)} instance record(s) with the wrong account or region, e.g. {wrong[:2]}")
    ids = {i.get("account_id"): i.get("arn", "") for i in doc.get("scan", {}).get("identities", [])}
    for acct in accounts:
        want = (f"arn:aws:iam::{acct}:user/bench" if acct == expected["account_id"]
                else f"arn:aws:sts::{acct}:assumed-role/{ROLE_NAME}/imdsguard")
        if ids.get(acct) != want:
            problems.append(f"identity of {acct} = {ids.get(acct)!r}, expected {want}")
    extra = sorted(set(ids) - set(accounts))
    if extra:
        problems.append(f"identities of accounts not scanned: {extra}")
    return problems


def db_sizes(db: Path) -> tuple[int, dict[str, int]]:
    """The database's bytes on disk (file and WAL) and per table or index (dbstat)."""
    total = sum(p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists())
    tables: dict[str, int] = {}
    try:
        import sqlite3

        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            for name, size in conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
                tables[name] = size
    except Exception as e:  # a Python built without dbstat: totals only
        log(f"dbstat unavailable: {e}")
    return total, tables


def run_scan(ig: Imdsguard, fake: Fake, fleet: int, usage: bool, label: str, timeout: float,
             mode: str = "", concurrency: int | None = None, all_regions: bool = False) -> ScanResult:
    """One scan against the fake, checked against its fleet. `concurrency`
    passes --concurrency; `all_regions` leaves out --regions (every region
    DescribeRegions says is enabled)."""
    expected = fake.get("/_bench/fleet")
    accounts = scanned_accounts(expected, mode)
    refused = unassumable_accounts(expected) if mode else set()
    regions = list(dict.fromkeys(r for regs in accounts.values() for r in regs))
    res = ScanResult(fleet, len(regions), label, usage, mode, len(accounts))
    res.concurrency = concurrency or CONCURRENCY
    res.minimum = minimum_calls(expected, usage, mode)
    for acct, regs in accounts.items():
        res.per_account_min[acct] = account_minimum(regs, usage)
        if mode:
            res.per_account_min[acct]["AssumeRole"] = 0 if acct == expected["account_id"] else 1
    for acct in refused:
        res.per_account_min[acct] = {"AssumeRole": 1}
    fake.post("/_bench/reset")
    tmp = Path(tempfile.mkdtemp(prefix=f"scan-{fleet}-", dir=ig.workdir))
    out = tmp / "scan.json"
    args = ["scan", *(["--days", str(DAYS)] if usage else ["--no-usage"])]
    if mode == "accounts":
        args += ["--accounts", ",".join(accounts), "--role-name", ROLE_NAME]
    elif mode == "org":
        args += ["--org", "--role-name", ROLE_NAME]
    if not all_regions:
        args += ["--regions", ",".join(regions)]
    if concurrency:
        args += ["--concurrency", str(concurrency)]
    args += ["--format", "json", "--db", str(tmp / "imdsguard.db"), "--out", str(out)]
    args += ["--no-progress", "-v"]
    shown = ["TMP/scan.json" if a == str(out) else "TMP" if a == str(tmp / "imdsguard.db") else a for a in args]
    if mode == "accounts":
        shown[shown.index("--accounts") + 1] = f"<the {len(accounts)} ids>"
    res.argv = " ".join(shown)
    log(f"{label}: imdsguard {' '.join(args)}")
    run = ig.run(args, fake.url, tmp / "home", timeout)
    stats = fake.get("/_bench/stats")
    res.calls = calls_by_action(stats)
    res.per_account = calls_by_account(stats)
    res.wall, res.rss_mb = run.wall, run.rss_mb
    res.cpu_note = f"{run.cpu_s:.1f} s"
    res.busy = stats["busy_seconds"]
    res.floor = latency_floor(stats, mode, res.concurrency)
    res.latency_sum = stats["latency_seconds_injected"]
    if stats.get("first_call_monotonic") and run.started:
        res.before_first = max(0.0, stats["first_call_monotonic"] - run.started)
        res.calls_span = stats["calls_span_seconds"]
        res.after_last = max(0.0, run.ended - stats["last_call_monotonic"])
    res.code = run.code
    # A partial scan (accounts refusing the role) exits 1 by design.
    if run.code != (1 if refused else 0):
        res.error = f"imdsguard exited {run.code}: {run.brief_error()}"
    m = re.search(r"^timings: .*$", run.stderr, re.M)
    res.timings = m.group(0)[len("timings: "):] if m else ""
    res.db_bytes, res.db_tables = db_sizes(tmp / "imdsguard.db")
    try:
        doc = json.loads(out.read_text())
        res.problems = check_totals(doc, expected, usage, mode, refused)
        if mode:
            res.problems += check_accounts(doc, expected, fake, mode)
            got: dict[str, int] = {}
            for r in doc.get("instances", []):
                got[r.get("account_id")] = got.get(r.get("account_id"), 0) + 1
            res.per_account_instances = {
                a: (sum(r["instances"] for r in regs.values()), got.get(a, 0)) for a, regs in accounts.items()
            }
    except Exception as e:  # no or broken JSON
        res.problems = [f"no scan JSON: {e}"]
    shutil.rmtree(tmp, ignore_errors=True)
    log(
        f"{label}: {res.total} calls (minimum {res.min_total}), {fmt_s(res.wall)}, {res.rss_mb:.0f} MB"
        + (f", PROBLEMS: {res.problems}" if res.problems else "")
        + (f", ERROR: {res.error}" if res.error else "")
    )
    return res


@dataclass
class ApplyResult:
    skipped: str = ""
    error: str = ""
    planned: int | None = None
    changes: int = 0
    wall: float = 0.0
    rate: float = 0.0
    fake_rate: float = 0.0
    throttled: int = 0
    modify_calls: int = 0
    failed: int | None = None
    failed_source: str = ""
    remaining_optional: int = 0
    plan_calls: dict[str, int] = field(default_factory=dict)
    apply_calls: dict[str, int] = field(default_factory=dict)
    rss_mb: float = 0.0
    report_failed: int | None = None
    report_counts: dict = field(default_factory=dict)
    endpoint_flips: int = 0
    planned_not_done: int | None = None
    plan_skipped: int | None = None
    # From the run's own JSON (`execution`): DescribeInstances calls made to
    # re-check before sending (compare-and-set) and to verify.
    rechecks: int | None = None
    verifies: int | None = None


def find_count(doc, names: tuple[str, ...]):
    """The first integer under any of `names`, searched breadth-first."""
    queue = [doc]
    while queue:
        x = queue.pop(0)
        if isinstance(x, dict):
            for k, v in x.items():
                if k in names and isinstance(v, int) and not isinstance(v, bool):
                    return v
                if k in names and isinstance(v, list):
                    return len(v)
            queue.extend(x.values())
        elif isinstance(x, list):
            queue.extend(x)
    return None


def run_apply(ig: Imdsguard, workdir: Path, latency_ms: float) -> ApplyResult:
    res = ApplyResult()
    missing = [c for c in ("plan", "apply") if not ig.has_subcommand(c)]
    if missing:
        res.skipped = f"`imdsguard {' / '.join(missing)} --help` fails in this binary: the command is not there yet"
        log(f"apply: SKIPPED: {res.skipped}")
        return res
    # One region of 1,250 instances; exactly 1,000 have HttpTokens=optional and
    # so need `require-v2`: 950 with the endpoint enabled (76 %) and 50 with it
    # disabled (4 %; their endpoint must stay disabled). The other 250 are required.
    size = 1_250
    extra = ["--optional-share", "0.76", "--disabled-share", "0.04", "--disabled-tokens", "optional"]
    with Fake(workdir, {APPLY_REGION: size}, latency_ms, APPLY_TIMEOUT + PLAN_TIMEOUT + 300, extra) as fake:
        before = fake.get("/_bench/state")[APPLY_REGION]
        to_change = before.get("enabled/optional", 0) + before.get("disabled/optional", 0)
        assert to_change == APPLY_CHANGES, before
        tmp = Path(tempfile.mkdtemp(prefix="apply-", dir=workdir))
        db, plan = tmp / "imdsguard.db", tmp / "plan.json"
        home = tmp / "home"
        args = [
            "plan", "--action", "require-v2", "--include-unknown", "--include-in-use",
            "--regions", APPLY_REGION, "--no-usage", "--out", str(plan), "--db", str(db),
        ]
        log(f"apply: imdsguard {' '.join(args)}")
        run = ig.run(args, fake.url, home, PLAN_TIMEOUT)
        res.plan_calls = calls_by_action(fake.get("/_bench/stats"))
        if run.code != 0 or not plan.exists():
            res.error = f"plan failed (exit {run.code}): {run.brief_error()}"
            log(f"apply: {res.error}")
            return res
        planned_ids: list[str] = []
        try:
            doc = json.loads(plan.read_text())
            if isinstance(doc.get("changes"), list):
                planned_ids = [c["instance_id"] for c in doc["changes"] if isinstance(c, dict) and "instance_id" in c]
                res.planned = len(doc["changes"])
                res.plan_skipped = len(doc.get("skipped") or [])
            else:
                res.planned = find_count(doc, ("changes", "actions", "items", "instances"))
        except Exception:
            res.planned = None
        fake.post("/_bench/reset")
        args = ["apply", str(plan), "--yes", "--format", "json", "--db", str(db)]
        log(f"apply: imdsguard {' '.join(args)} (about {APPLY_CHANGES / 5:.0f} s at 5 changes/s)")
        run = ig.run(args, fake.url, home, APPLY_TIMEOUT)
        stats = fake.get("/_bench/stats")
        after = fake.get("/_bench/state")[APPLY_REGION]
        res.apply_calls = calls_by_action(stats)
        res.wall, res.rss_mb = run.wall, run.rss_mb
        res.throttled = sum(stats["throttled"].values())
        res.modify_calls = res.apply_calls.get("ModifyInstanceMetadataOptions", 0)
        # Changes made and failed, from the fake's final state: every instance
        # that allowed IMDSv1 before must now be at HttpTokens=required, and no
        # endpoint may have changed state.
        res.remaining_optional = after.get("enabled/optional", 0) + after.get("disabled/optional", 0)
        res.changes = to_change - res.remaining_optional
        res.failed = res.remaining_optional
        res.failed_source = "the fake's final state: instances still at HttpTokens=optional"
        dis_before = before.get("disabled/optional", 0) + before.get("disabled/required", 0)
        dis_after = after.get("disabled/optional", 0) + after.get("disabled/required", 0)
        res.endpoint_flips = abs(dis_after - dis_before)
        if planned_ids:
            req = urllib.request.Request(fake.url + "/_bench/lookup", data=json.dumps(planned_ids).encode(), method="POST")
            with urllib.request.urlopen(req, timeout=60) as r:
                now = json.load(r)
            res.planned_not_done = sum(1 for o in now.values() if not o or o["httpTokens"] != "required")
        res.rate = res.changes / res.wall if res.wall else 0.0
        span = stats["modify_span_seconds"]
        res.fake_rate = (sum(stats["modified"].values()) - 1) / span if span > 0 else 0.0
        try:
            report = json.loads(run.stdout)
            # schema imdsguard/v1, kind "run": {"run": {...}, "counts": {"applied": n, "failed": n, ...}}
            if isinstance(report.get("counts"), dict):
                res.report_counts = report["counts"]
                res.report_failed = report["counts"].get("failed")
            else:
                res.report_failed = find_count(report, ("failed", "failures", "errors"))
            execution = report.get("execution") or {}
            res.rechecks = execution.get("describe_rechecks")
            res.verifies = execution.get("describe_verifies")
        except Exception:
            res.report_failed = None
        if run.code != 0:
            res.error = f"apply exited {run.code}: {run.brief_error()}"
        shutil.rmtree(tmp, ignore_errors=True)
    log(
        f"apply: {res.changes} changes in {fmt_s(res.wall)} = {res.rate:.2f}/s, "
        f"{res.throttled} RequestLimitExceeded, {res.failed} failed" + (f", ERROR: {res.error}" if res.error else "")
    )
    return res


@dataclass
class TrailResult:
    label: str
    argv: str = ""
    objects: int = 0  # log objects in the window (truth)
    raw_bytes: int = 0  # their uncompressed JSON
    gz_bytes: int = 0  # their gzip bytes
    records: int = 0  # records in the window (truth)
    attributed: int = 0
    instances: int = 0
    wall: float = 0.0
    rss_mb: float = 0.0
    cpu_s: float = 0.0
    busy: float = 0.0
    floor: float = 0.0
    list_calls: int = 0
    list_min: int = 0
    get_calls: int = 0
    totals_ok: bool = False
    listing_ok: bool = False
    problems: list[str] = field(default_factory=list)
    listing_problems: list[str] = field(default_factory=list)
    error: str = ""
    note: str = ""

    @property
    def mb_per_s(self) -> float:
        return self.raw_bytes / 1e6 / self.wall if self.wall else 0.0

    @property
    def objects_per_s(self) -> float:
        return self.objects / self.wall if self.wall else 0.0


def check_trail(doc: dict, truth: dict) -> list[str]:
    """Differences between `trail --format json` and the generated logs: the
    counts, and per instance its role, calls, first and last call and calls
    per user agent; no object that could not be read; the window's folders."""
    problems = []
    if doc.get("kind") != "trail":
        problems.append(f"kind = {doc.get('kind')!r}, not 'trail'")
    if doc.get("counts") != truth["counts"]:
        got = doc.get("counts") or {}
        diff = {k: (got.get(k), v) for k, v in truth["counts"].items() if got.get(k) != v}
        problems.append(f"counts differ (got, expected): {diff}")
    want = {(i["account_id"], i["region"], i["instance_id"]): i for i in truth["instances"]}
    got = {(i.get("account_id"), i.get("region"), i.get("instance_id")): i for i in doc.get("instances") or []}
    if set(got) != set(want):
        problems.append(f"{len(got)} instances, {len(want)} expected: {len(set(got) - set(want))} unexpected, "
                        f"{len(set(want) - set(got))} missing")
    wrong = []
    for key in sorted(set(got) & set(want)):
        g, w = got[key], want[key]
        agents = {a.get("user_agent"): a.get("calls") for a in g.get("user_agents") or []}
        for field_name in ("role_name", "v1_credential_calls", "first_seen", "last_seen"):
            if g.get(field_name) != w[field_name]:
                wrong.append(f"{key[2]}.{field_name} = {g.get(field_name)!r}, expected {w[field_name]!r}")
        if agents != w["user_agents"]:
            wrong.append(f"{key[2]}.user_agents = {agents}, expected {w['user_agents']}")
    if wrong:
        problems.append(f"{len(wrong)} per-instance difference(s), e.g. {wrong[:2]}")
    if doc.get("bad_objects"):
        problems.append(f"bad_objects: {doc['bad_objects'][:2]}")
    days = (doc.get("window") or {}).get("days")
    if days != truth["days"] + 1:
        problems.append(f"window.days = {days}, expected {truth['days'] + 1} date folders")
    return problems


def check_listing(s3: dict, truth: dict) -> list[str]:
    """Only the window's date folders were listed (each one, never the
    folder of the day before the window, never the whole bucket), and each
    object of the window was fetched once and nothing else."""
    problems = []
    window = set(truth["window_folders"])
    outside = truth["outside_folders"]
    allowed = window | set(truth["listing_folders"])
    listed = {}
    for entry in s3["listed"]:
        listed[entry["prefix"]] = listed.get(entry["prefix"], 0) + entry["count"]
    before = sorted(p for p in listed if any(p.startswith(o) for o in outside) or truth["outside_day"] in p)
    if before:
        problems.append(f"{len(before)} prefix(es) of the day before the window listed, e.g. {before[:1]}")
    strays = sorted(p for p in listed if p not in allowed and p not in before)
    if strays:
        problems.append(f"{len(strays)} other prefix(es) listed, e.g. {strays[:2]}")
    missed = sorted(allowed - set(listed))
    if missed:
        problems.append(f"{len(missed)} folder(s) never listed, e.g. {missed[:1]}")
    if s3["get_calls"] != truth["objects"]:
        problems.append(f"{s3['get_calls']} GetObject calls, {truth['objects']} objects in the window")
    if s3["keys_got_twice"]:
        problems.append(f"{s3['keys_got_twice']} object(s) fetched more than once")
    if s3["gets_outside_window"] or s3["gets_not_logs"]:
        problems.append(f"{s3['gets_outside_window']} object(s) outside the window and {s3['gets_not_logs']} "
                        "digest(s) or unknown keys fetched")
    if s3["distinct_keys_got"] != truth["objects"]:
        problems.append(f"{s3['distinct_keys_got']} distinct objects fetched, {truth['objects']} in the window")
    return problems


def trail_floor(truth: dict, s3: dict, latency: float) -> float:
    """What the injected latency alone forces: the account-level listings one
    after another (AWSLogs/, the organization folder, each account's
    CloudTrail/), then the date folders' pages and then the objects, each
    TRAIL_OBJECTS_AT_ONCE at a time (imdsguard lists every folder before it
    fetches)."""
    pre = 2 + len(truth["accounts"])
    pages = max(0, s3["list_calls"] - pre)
    return latency * (pre + math.ceil(pages / TRAIL_OBJECTS_AT_ONCE)
                      + math.ceil(s3["get_calls"] / TRAIL_OBJECTS_AT_ONCE))


def run_trail(ig: Imdsguard, workdir: Path, latency_ms: float, target: int, label: str) -> TrailResult:
    res = TrailResult(label)
    if not ig.has_subcommand("trail"):
        res.error = "`imdsguard trail --help` fails in this binary"
        return res
    extra = ["--trail-bytes", str(target), "--trail-days", str(TRAIL_DAYS), "--trail-bucket", TRAIL_BUCKET,
             "--trail-prefix", TRAIL_PREFIX, "--trail-bucket-region", TRAIL_REGION]
    for attempt in (1, 2):
        with Fake(workdir, {TRAIL_REGION: 10}, latency_ms, TRAIL_TIMEOUT + 300, extra) as fake:
            truth = fake.get("/_bench/trail")
            fake.post("/_bench/reset")
            tmp = Path(tempfile.mkdtemp(prefix="trail-", dir=workdir))
            out = tmp / "trail.json"
            args = ["trail", "--bucket", TRAIL_BUCKET, "--prefix", TRAIL_PREFIX, "--days", str(TRAIL_DAYS),
                    "--bucket-region", TRAIL_REGION, "--format", "json", "--db", str(tmp / "imdsguard.db"),
                    "--out", str(out), "--no-progress"]
            res.argv = " ".join("TMP/trail.json" if a == str(out) else "TMP" if a == str(tmp / "imdsguard.db")
                                else a for a in args)
            log(f"{label}: imdsguard {' '.join(args)} ({truth['objects']:,} objects, "
                f"{truth['bytes_uncompressed'] / 1e9:.2f} GB of JSON)")
            run = ig.run(args, fake.url, tmp / "home", TRAIL_TIMEOUT)
            stats = fake.get("/_bench/stats")
            # The truth holds for a run that starts within the margin of the fake's `now`
            # and ends on its UTC day (else the window's date folders are others).
            late = time.time() - truth["now"]
            if late >= truth["margin_seconds"] or int(time.time()) // 86_400 != truth["now"] // 86_400:
                res.note = f"attempt {attempt}: the run crossed midnight UTC or took over an hour"
                log(f"{label}: {res.note}" + ("; once more" if attempt == 1 else ""))
                if attempt == 1:
                    shutil.rmtree(tmp, ignore_errors=True)
                    continue
        break
    s3 = stats["s3"]
    res.objects, res.raw_bytes, res.gz_bytes = truth["objects"], truth["bytes_uncompressed"], truth["bytes_compressed"]
    res.records, res.attributed = truth["counts"]["records"], truth["counts"]["attributed"]
    res.instances = len(truth["instances"])
    res.wall, res.rss_mb, res.cpu_s = run.wall, run.rss_mb, run.cpu_s
    res.busy = stats["busy_seconds"]
    res.list_calls, res.list_min, res.get_calls = s3["list_calls"], truth["list_minimum"], s3["get_calls"]
    res.floor = trail_floor(truth, s3, stats["latency_per_call_seconds"])
    if run.code != 0:
        res.error = f"imdsguard exited {run.code}: {run.brief_error()}"
    try:
        res.problems = check_trail(json.loads(out.read_text()), truth)
    except Exception as e:  # no or broken JSON
        res.problems = [f"no trail JSON: {e}"]
    res.listing_problems = check_listing(s3, truth)
    res.totals_ok = not res.problems and not res.error
    res.listing_ok = not res.listing_problems and not res.error
    shutil.rmtree(tmp, ignore_errors=True)
    log(
        f"{label}: {res.objects:,} objects, {res.raw_bytes / 1e9:.2f} GB in {fmt_s(res.wall)} = "
        f"{res.mb_per_s:.0f} MB/s, {res.objects_per_s:.0f} objects/s, {res.rss_mb:.0f} MB peak, "
        f"CPU {res.cpu_s:.1f} s" + (f", PROBLEMS: {res.problems + res.listing_problems}"
                                    if res.problems or res.listing_problems else "")
        + (f", ERROR: {res.error}" if res.error else "")
    )
    return res


def run_trails(ig: Imdsguard, workdir: Path, latency_ms: float) -> list[TrailResult]:
    """The smallest layout first (about 0.1 GB), then TRAIL_BYTES: the same
    folders, ~10x the logs, so memory that follows the volume shows."""
    return [run_trail(ig, workdir, latency_ms, TRAIL_SMALL_BYTES, "trail, smallest layout"),
            run_trail(ig, workdir, latency_ms, TRAIL_BYTES, f"trail, {TRAIL_BYTES / 1e9:.1f} GB")]


def trail_section(trails: list[TrailResult], skipped: str) -> tuple[list[str], list]:
    """The Trail section of RESULTS.md and its verdicts."""
    lines = ["## Trail (CloudTrail logs in S3)", ""]
    verdicts: list[tuple[str, bool | None, str]] = []
    name_rss = f"trail: peak RSS < {TARGET_RSS_MB} MB at ≥ 1 GB of logs"
    name_growth = f"trail: peak RSS bounded by concurrency, not volume (< {TRAIL_RSS_GROWTH:.0%} more for ~10× the logs)"
    name_totals = "trail: totals equal the generated logs (counts, every instance's calls and user agents)"
    name_listing = "trail: only the window's date folders listed, each of their objects fetched once"
    if not trails:
        lines += [f"Not run (`{skipped}`).", ""]
        for name in (name_rss, name_growth, name_totals, name_listing):
            verdicts.append((name, None, f"not run ({skipped})"))
        return lines, verdicts
    lines += [
        f"`imdsguard {trails[-1].argv}` (default `--objects-at-once` {TRAIL_OBJECTS_AT_ONCE}) against a trail "
        f"bucket the fake generates: 2 accounts (the management account's folder and a member's under an "
        f"`o-` organization folder) × 4 regions × the {TRAIL_DAYS + 1} date folders of the last {TRAIL_DAYS} "
        "days, plus, per account and region, the folder of the day before the window (never to be listed) and "
        "digest files (never to be read). Objects are gzip JSON in CloudTrail's record shape (about 1.3 KB a "
        "record): large ones of 1–2 MB of JSON, one per folder and round the folders until the volume is "
        "reached, and 1,010 small ones (3 records) in one folder, which takes 2 `ListObjectsV2` pages. "
        "Records: about 70 % IAM users, 10 % function roles, 12 % instance credentials delivered over IMDSv2, "
        "6.5 % over IMDSv1 to one of 200 instances (each with 1–3 user agents of 6: old and new AWS CLI, "
        "Boto3, Java SDK), 1.5 % over IMDSv1 to sessions that are not instances; 30 % of the first date "
        "folder's records are dated before the window. The fake puts each object together on request from "
        "deflate pieces compressed at start-up (its chunks repeat across a folder's objects), so it holds a "
        "few MB whatever the volume.",
        "",
        "| run | objects (GetObject) | JSON (uncompressed) | gzip | records in window | attributed | instances | "
        "wall | MB/s (JSON) | objects/s | CPU (user + sys) | waiting on fake | latency floor | ListObjectsV2 "
        "(min) | peak RSS | totals = truth | only window folders |",
        "|" + "---|" * 17,
    ]
    for r in trails:
        lines.append(
            f"| {r.label} | {r.objects:,} ({r.get_calls:,}) | {r.raw_bytes / 1e9:.2f} GB | {r.gz_bytes / 1e6:.0f} MB | "
            f"{r.records:,} | {r.attributed:,} | {r.instances} | {fmt_s(r.wall)} | {r.mb_per_s:.0f} | "
            f"{r.objects_per_s:.0f} | {fmt_s(r.cpu_s)} ({r.cpu_s / r.wall:.0%} of wall) | "
            + (f"{r.busy / r.wall:.0%} ({fmt_s(r.busy)})" if r.wall else "-") + " | "
            + (f"{r.floor / r.wall:.0%} ({fmt_s(r.floor)})" if r.wall else "-") + " | "
            f"{r.list_calls} ({r.list_min}) | {r.rss_mb:.0f} MB | {'yes' if r.totals_ok else '**NO**'} | "
            f"{'yes' if r.listing_ok else '**NO**'} |"
        )
    lines += [
        "",
        "* **MB/s**, **objects/s**: the window's uncompressed JSON (10⁶ bytes) and objects / wall time of the "
        "`trail` process (start-up, listing, saving and rendering included).",
        "* **CPU**: user + system seconds of the process (GNU time), against its wall time (`nproc` cores above).",
        "* **waiting on fake**: the time during which at least one S3 call was in flight (measured by the fake); "
        f"with {TRAIL_OBJECTS_AT_ONCE} objects in flight it overlaps imdsguard's own work (an object's response "
        "stays in flight until imdsguard reads it), so it bounds the fake's share from above only.",
        "* **latency floor**: what the injected latency alone forces: `AWSLogs/`, the organization folder and "
        f"each account's `CloudTrail/` listed one after another, then the date folders' pages and then the "
        f"objects, {TRAIL_OBJECTS_AT_ONCE} at a time, × latency.",
        "* **ListObjectsV2 (min)**: `AWSLogs/`, the organization folder, each account's `CloudTrail/` (one page "
        "each) and every window folder's pages.",
        "* **totals = truth**: exit 0 and the JSON's `counts` (records, attributed, v2, v1_not_instance, "
        "malformed 0, objects) equal the fake's, and so does every instance's role, calls, first and last call "
        "and calls per user agent; no object reported unreadable.",
        "* **only window folders**: every window folder listed, no other prefix (the day before the window, "
        "the bucket, digests) listed, every object of the window fetched exactly once, nothing else fetched.",
        "",
    ]
    problems = [(r.label, p) for r in trails for p in ([r.error] if r.error else []) + r.problems
                + r.listing_problems + ([r.note] if r.note else [])]
    if problems:
        lines += ["Problems:", ""] + [f"* {label}: {p}" for label, p in problems] + [""]
    big = trails[-1]
    verdicts.append((name_rss, big.rss_mb < TARGET_RSS_MB and not big.error,
                     f"{big.rss_mb:.0f} MB at {big.raw_bytes / 1e9:.2f} GB, {big.mb_per_s:.0f} MB/s, "
                     f"{fmt_s(big.wall)}"))
    if len(trails) > 1 and trails[0].rss_mb:
        small = trails[0]
        growth = big.rss_mb / small.rss_mb - 1
        verdicts.append((name_growth, growth < TRAIL_RSS_GROWTH and not big.error and not small.error,
                         f"{small.rss_mb:.0f} MB at {small.raw_bytes / 1e9:.2f} GB → {big.rss_mb:.0f} MB at "
                         f"{big.raw_bytes / 1e9:.2f} GB ({growth:+.0%})"))
    for name, ok_of, detail_of in (
        (name_totals, lambda r: r.totals_ok, lambda r: "; ".join(([r.error] if r.error else []) + r.problems[:2])
         or f"{r.records:,} records, {r.attributed:,} attributed to {r.instances} instances: all match"),
        (name_listing, lambda r: r.listing_ok, lambda r: "; ".join(([r.error] if r.error else [])
                                                                   + r.listing_problems[:2])
         or f"{r.list_calls} ListObjectsV2 (minimum {r.list_min}), {r.get_calls:,} GetObject = objects"),
    ):
        verdicts.append((name, all(ok_of(r) for r in trails), " · ".join(f"{r.label}: {detail_of(r)}" for r in trails)))
    return lines, verdicts


# ---------------------------------------------------------------- report
