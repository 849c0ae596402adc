"""The organisation step of bench.py (issue 14): `imdsguard scan --org` of
1,000 accounts × AWS's 17 default regions, where large migrations live.

The fake serves an organisation (fakeaws.py --org-instances): 1,000 ACTIVE
accounts (the management account and 999 members) with uneven fleets of
about 60,000 instances in all (1 account in 8 with none; most accounts in 1
to 3 regions, every other region empty), 5 members whose role is refused
(AccessDenied: a missing role, a trust policy), and 2 SUSPENDED accounts
that ListAccounts shows. Every region is discovered (no --regions).

The scan runs at several --concurrency values (account-regions in flight
across all accounts; --region-calls stays at its default 4 calls in flight
per account and region, where AWS's limits apply), so the default can be
chosen from the measurement: the smallest value whose wall time is within
5 % of the best. The targets are checked at imdsguard's default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

# The shared helpers (bench/common.py); bench.py imports this module.
from common import (CONCURRENCY, DAYS, REGION_CALLS, ROLE_NAME, Fake, Imdsguard, ScanResult, fmt_s, log,
                   run_scan)

ORG_ACCOUNTS = 1_000  # ACTIVE, the management account included
ORG_SUSPENDED = 2
ORG_UNASSUMABLE = 5
ORG_INSTANCES = 60_000  # about: the fleets are drawn per account
# AWS's 17 regions that need no opt-in; DescribeRegions also lists 4 opt-in
# regions that are not enabled, which the scan must skip.
ORG_REGIONS = [
    "us-east-1", "eu-west-1", "ap-southeast-2", "sa-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1",
    "eu-central-1", "eu-west-2", "eu-west-3", "eu-north-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
    "ap-south-1", "ap-southeast-1",
]
SWEEP = sorted({16, 32, CONCURRENCY, 128})
ORG_TIMEOUT = 900

# Targets (issue 14).
TARGET_CALL_RATIO = 1.01
TARGET_FLOOR_RATIO = 1.5
TARGET_RSS_MB = 500
TARGET_OWN_SHARE = 0.10
KNEE = 1.05  # "stops improving": within 5 % of the best wall


@dataclass
class OrgResult:
    runs: list[ScanResult] = field(default_factory=list)
    fleet: int = 0
    accounts: int = 0
    nonempty: int = 0
    account_regions: int = 0
    error: str = ""

    def at(self, concurrency: int) -> ScanResult | None:
        return next((r for r in self.runs if r.concurrency == concurrency), None)

    def knee(self) -> int | None:
        done = [r for r in self.runs if not r.error]
        if not done:
            return None
        best = min(r.wall for r in done)
        return min(r.concurrency for r in done if r.wall <= best * KNEE)


def run_org(ig: Imdsguard, workdir: Path, latency_ms: float) -> OrgResult:
    res = OrgResult()
    extra = ["--accounts", str(ORG_ACCOUNTS), "--suspended-accounts", str(ORG_SUSPENDED),
             "--unassumable-accounts", str(ORG_UNASSUMABLE), "--org-instances", str(ORG_INSTANCES),
             "--role-name", ROLE_NAME]
    with Fake(workdir, {r: 0 for r in ORG_REGIONS}, latency_ms, len(SWEEP) * (ORG_TIMEOUT + 60), extra) as fake:
        expected = fake.get("/_bench/fleet")
        regions = [r for a in expected["accounts"].values() for r in a["regions"].values()]
        res.fleet = sum(r["instances"] for r in regions)
        res.accounts = sum(1 for a in expected["accounts"].values() if a["status"] == "ACTIVE")
        res.nonempty = sum(1 for r in regions if r["instances"])
        res.account_regions = len(regions)
        for c in SWEEP:
            label = f"org {res.accounts:,} accounts, --concurrency {c}"
            res.runs.append(run_scan(ig, fake, res.fleet, True, label, ORG_TIMEOUT, "org", concurrency=c,
                                     all_regions=True))
    return res


def section(org: OrgResult | None, skipped: str) -> tuple[list[str], list]:
    """The organisation section of RESULTS.md and its verdicts."""
    lines = ["## Organisation: 1,000 accounts × 17 regions", ""]
    verdicts: list[tuple[str, bool | None, str]] = []
    names = [
        f"organisation scan: API calls ≤ {TARGET_CALL_RATIO} × minimum",
        f"organisation scan: wall ≤ {TARGET_FLOOR_RATIO} × latency floor at the default --concurrency {CONCURRENCY}",
        f"organisation scan: peak RSS < {TARGET_RSS_MB} MB",
        "organisation scan: totals equal the fleet per account and region; exactly the refusing accounts failed",
        f"organisation scan: own work ≤ {TARGET_OWN_SHARE:.0%} of wall",
        f"default --concurrency {CONCURRENCY} is where the wall stops improving (within {KNEE - 1:.0%} of the best)",
    ]
    if org is None or not org.runs:
        lines += [f"Not run ({skipped}).", ""]
        return lines, [(n, None, f"not run ({skipped})") for n in names]
    r0 = org.runs[0]
    lines += [
        f"`imdsguard {r0.argv}` (the `--concurrency` value varies) against an organisation of {org.accounts:,} "
        f"ACTIVE accounts ({ORG_UNASSUMABLE} of them refusing the role: AccessDenied) and {ORG_SUSPENDED} "
        f"SUSPENDED ones, {org.fleet:,} instances in {org.nonempty:,} of {org.account_regions:,} account-regions "
        "(uneven: 1 account in 8 with none, most in 1 to 3 regions, the rest of the 17 empty). Every region is "
        "discovered with `DescribeRegions` (4 opt-in regions are listed but not enabled). Each empty region still "
        "costs its listing and the 3 source listings (a template or a group scaled to 0 launches v1 instances "
        f"tomorrow). `--region-calls` is the default {REGION_CALLS}.",
        "",
        "| --concurrency | calls | minimum | calls / min | wall | latency floor at it | wall / floor | "
        "waiting on fake | own work | peak RSS | CPU (imdsguard) | totals = fleet |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in org.runs:
        lines.append(
            f"| {r.concurrency} | {r.total:,} | {r.min_total:,} | {r.ratio:.4f} | {fmt_s(r.wall)} | {fmt_s(r.floor)} | "
            f"{r.wall / r.floor if r.floor else float('nan'):.2f} | {r.busy / r.wall if r.wall else 0:.0%} | "
            f"{r.own_share:.1%} | {r.rss_mb:.0f} MB | {r.cpu_note or '?'} | "
            f"{'yes' if not r.problems and not r.error else 'NO'} |"
        )
    knee = org.knee()
    lines += [
        "",
        "* **minimum**: per account reached, as for the scans above (`GetCallerIdentity`, `DescribeRegions`, "
        "`ListInstanceProfiles`, `AssumeRole` for members, and per region its listing, metric batches and "
        "sources), + 1 `AssumeRole` per refusing account (nothing else can be sent there) + "
        f"ceil({org.accounts + ORG_SUSPENDED:,} / 20) `ListAccounts`.",
        "* **latency floor at it**: `ListAccounts`' pages (sequential) + `GetCallerIdentity` + `DescribeRegions` + "
        "ceil(Σ account-regions' paths / --concurrency) latencies, a region's path being its listing pages then "
        f"ceil(its other calls / {REGION_CALLS}) or its sources' chain (2), whichever is longer.",
        "* **own work**: the share of the wall time during which no AWS call was in flight (start-up, the "
        "database, rendering).",
        f"* the wall stops improving at --concurrency {knee} on this machine"
        + (f" (the default is {CONCURRENCY})" if knee != CONCURRENCY else " (the default)") + ". Past it the fake, "
        "one Python process, is the bottleneck: it serves about "
        f"{r0.total / max(r0.busy, 1e-9):,.0f} calls a second at --concurrency {r0.concurrency}. Real AWS limits "
        "each account and region on its own, so against AWS more account-regions in flight keep helping; "
        f"`--region-calls` {REGION_CALLS} keeps each account-region at a few calls at once.",
        "",
    ]
    problems = [(r.label, p) for r in org.runs for p in ([r.error] if r.error else []) + r.problems]
    if problems:
        lines += ["Problems:", ""] + [f"* {label}: {p}" for label, p in problems[:10]] + [""]
    d = org.at(CONCURRENCY)
    if d is None:
        return lines, [(n, None, "the default concurrency was not measured") for n in names]
    per_account_ok = sum(1 for a, m in d.per_account_min.items()
                         if all(d.per_account.get(a, {}).get(k, 0) == v for k, v in m.items()))
    lines += [f"At the default: {per_account_ok:,} of {len(d.per_account_min):,} accounts made exactly their "
              f"minimum calls. imdsguard's own timings (`-v`): {d.timings or '?'}.", ""]
    floor_ratio = d.wall / d.floor if d.floor else math.inf
    verdicts += [
        (names[0], d.ratio <= TARGET_CALL_RATIO and not d.error, f"{d.total:,} / {d.min_total:,} = {d.ratio:.4f}"),
        (names[1], floor_ratio <= TARGET_FLOOR_RATIO and not d.error,
         f"{fmt_s(d.wall)} / {fmt_s(d.floor)} = {floor_ratio:.2f}"),
        (names[2], d.rss_mb < TARGET_RSS_MB and not d.error, f"{d.rss_mb:.0f} MB"),
        (names[3], not d.problems and not d.error, "; ".join(([d.error] if d.error else []) + d.problems[:2])
         or f"{org.fleet:,} instances, {ORG_UNASSUMABLE} AccessDenied failures"),
        (names[4], d.own_share <= TARGET_OWN_SHARE, f"{d.own_share:.1%}"),
        (names[5], knee == CONCURRENCY,
         f"best wall at {min(org.runs, key=lambda r: r.wall).concurrency}; within {KNEE - 1:.0%} from {knee}"),
    ]
    log(f"org: {len(org.runs)} scans, knee at --concurrency {knee}")
    return lines, verdicts
