"""IMDSv1 usage from CloudWatch and the readiness verdicts, end to end:
datapoints written to moto with PutMetricData, read back by imdsguard
through GetMetricData (CBOR, via the shim in awsproxy.py)."""

from __future__ import annotations

import re

import time
from dataclasses import dataclass, field

import pytest

import conftest
import fleet
from awsproxy import AwsProxy

REGIONS = ["us-east-1", "eu-west-1"]


@dataclass
class Case:
    name: str
    region: str = "us-east-1"
    tokens: str = "optional"
    endpoint: str = "enabled"
    stopped: bool = False
    # days ago -> value; a day listed with 0 has a datapoint of 0
    v1: dict = field(default_factory=dict)
    rejected: dict = field(default_factory=dict)


ZEROS_30 = {d: 0 for d in range(30)}

CASES = [
    Case("ready", v1=dict(ZEROS_30)),
    Case("in-use", v1={**ZEROS_30, 2: 10, 5: 30}),
    Case("old-use", v1={**ZEROS_30, 20: 7}),  # ready at 14 days, in-use at 30
    Case("unknown", stopped=True),
    Case("rejecting", tokens="required", v1=dict(ZEROS_30), rejected={1: 4, 9: 1}),
    Case("compliant", tokens="required", v1=dict(ZEROS_30), rejected={d: 0 for d in range(30)}),
    Case("disabled", endpoint="disabled"),
    Case("partial", v1={d: 0 for d in range(5)}),  # ready, data on 5 of 14 days
    Case("eu-in-use", region="eu-west-1", v1={0: 3, 1: 0, 13: 2}),
    Case("eu-unknown", region="eu-west-1"),
]


def day_of(days_ago: int, now: float) -> str:
    # The day of the datapoint fleet.put_metrics writes `days_ago` days back.
    return fleet.stamp(days_ago, now).strftime("%Y-%m-%d")


@pytest.fixture(scope="module")
def world():
    """One seeded account shared by this module's tests (seeding is the slow part)."""
    account = conftest.new_account()
    now = time.time()
    ids = {}
    for case in CASES:
        ec2 = account.client("ec2", case.region)
        [iid] = fleet.launch(ec2, 1, tokens=case.tokens, endpoint=case.endpoint, tags={"Name": case.name})
        if case.stopped:
            ec2.stop_instances(InstanceIds=[iid])
        ids[case.name] = iid
        # The fixture's `now`: the tests derive the expected days from it.
        for metric, series in (("MetadataNoToken", case.v1), ("MetadataNoTokenRejected", case.rejected)):
            fleet.put_metrics(account, [iid], value=series, metric=metric, region=case.region, now=now)
    return account, ids, now


def expected(case: Case, days: int, now: float) -> dict:
    v1 = sum(v for d, v in case.v1.items() if d < days)
    rejected = sum(v for d, v in case.rejected.items() if d < days)
    used_days = sorted(d for d, v in case.v1.items() if d < days and v > 0)
    data_days = {d for d in case.v1 if d < days} | {d for d in case.rejected if d < days}
    return {
        "window_days": days,
        "v1_calls": v1,
        "rejected_calls": rejected,
        "last_v1_call": day_of(used_days[0], now) if used_days else None,
        "days_with_data": len(data_days),
    }


def verdict(case: Case, days: int) -> str:
    e = expected(case, days, 0)
    if case.endpoint == "disabled":
        return "disabled"
    if case.tokens == "required":
        return "rejecting-v1" if e["rejected_calls"] else "compliant"
    if e["v1_calls"]:
        return "in-use"
    return "ready" if e["days_with_data"] else "unknown"


@pytest.fixture
def urun(tmp_path, world) -> conftest.Runner:
    return conftest.Runner(tmp_path, world[0])


@pytest.mark.parametrize("days", [14, 30])
def test_usage_and_verdicts(urun, world, days):
    _, ids, now = world
    before = conftest.SHIM.cbor_calls
    r = urun("scan", "--regions", ",".join(REGIONS), "--days", str(days), "--format", "json")
    assert r.code == 0, r.stderr
    # CloudWatch really was asked, through the CBOR shim: if this ever drops
    # to zero, the SDK and moto stopped understanding each other.
    assert conftest.SHIM.cbor_calls > before
    doc = r.json()
    assert doc["scan"]["usage_days"] == days
    by_id = {i["instance_id"]: i for i in doc["instances"]}
    for case in CASES:
        rec = by_id[ids[case.name]]
        assert rec["readiness"] == verdict(case, days), (case.name, rec["reason"])
        if case.endpoint == "disabled":
            assert rec["usage"] is None
            continue
        want = expected(case, days, now)
        assert rec["usage"] == want, case.name
    # Findings follow the verdicts.
    rules = {}
    for f in doc["findings"]:
        rules.setdefault(f["rule"], set()).add(re.split("[/:]", f["resource"])[-1])
    want_in_use = {ids[c.name] for c in CASES if verdict(c, days) == "in-use"}
    want_refused = {ids[c.name] for c in CASES if verdict(c, days) == "rejecting-v1"}
    assert rules.get("imdsv1-in-use", set()) == want_in_use
    assert rules.get("imdsv1-refused", set()) == want_refused
    # The verdict counts per region add up.
    for c in doc["summary"]["regions"]:
        assert sum(c["readiness"].values()) == c["instances"]


def test_reasons_are_explicit(urun, world):
    _, ids, now = world
    r = urun("scan", "--regions", ",".join(REGIONS), "--format", "json")
    by_id = {i["instance_id"]: i for i in r.json()["instances"]}
    assert by_id[ids["ready"]]["reason"] == "no v1 calls in 14 days, data on 14 of 14 days"
    assert by_id[ids["partial"]]["reason"] == "no v1 calls in 14 days, data on 5 of 14 days"
    assert by_id[ids["in-use"]]["reason"] == f"40 v1 calls in 14 days, last on {day_of(2, now)}"
    assert "no metric data" in by_id[ids["unknown"]]["reason"]
    assert "5 v1 calls refused" in by_id[ids["rejecting"]]["reason"]


def test_one_get_metric_data_call_per_region(urun, world):
    with AwsProxy(conftest.ENDPOINT) as proxy:
        r = urun("scan", "--regions", ",".join(REGIONS), "--format", "json", endpoint=proxy.url)
        assert r.code == 0, r.stderr
        for region in REGIONS:
            assert proxy.count("GetMetricData", region=region) == 1
        # The disabled-endpoint instance is not queried: 2 queries per other instance.
        import cbor2

        queries = sum(len(cbor2.loads(req.body)["MetricDataQueries"]) for req in proxy.log if req.action == "GetMetricData")
        assert queries == 2 * (len(CASES) - 1)


def test_no_usage_skips_cloudwatch(urun, world):
    with AwsProxy(conftest.ENDPOINT) as proxy:
        r = urun("scan", "--regions", ",".join(REGIONS), "--no-usage", "--format", "json", endpoint=proxy.url)
        assert r.code == 0, r.stderr
        assert proxy.count("GetMetricData") == 0
    doc = r.json()
    assert doc["scan"]["usage_days"] is None
    for rec in doc["instances"]:
        assert rec["usage"] is None
        assert rec["readiness"] in ("compliant", "disabled", "unknown")


@pytest.mark.parametrize("days", ["0", "456"])
def test_days_out_of_range(urun, days):
    with AwsProxy(conftest.ENDPOINT) as proxy:
        r = urun("scan", "--days", days, endpoint=proxy.url)
        assert r.code == 2
        assert f"--days {days} is out of range" in r.stderr
        assert "between 1 and 455" in r.stderr
        assert proxy.total() == 0


def test_cloudwatch_denied_keeps_inventory(urun, world):
    from awsproxy import Reply
    import cbor2

    def fault(req):
        if req.action == "GetMetricData" and req.region == "eu-west-1":
            body = cbor2.dumps({"__type": "AccessDenied", "message": "not authorized to perform cloudwatch:GetMetricData"})
            return Reply(403, body, {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"})
        return None

    with AwsProxy(conftest.ENDPOINT, fault) as proxy:
        r = urun("scan", "--regions", ",".join(REGIONS), "--format", "json", endpoint=proxy.url)
    assert r.code == 1
    assert "access denied on cloudwatch:GetMetricData" in r.stderr
    assert "grant `cloudwatch:GetMetricData`" in r.stderr
    doc = r.json()
    eu = [i for i in doc["instances"] if i["region"] == "eu-west-1"]
    assert len(eu) == 2 and all(i["usage"] is None and i["readiness"] == "unknown" for i in eu)
    assert all("usage unknown" in i["reason"] for i in eu)
    us = [i for i in doc["instances"] if i["region"] == "us-east-1" and i["http_endpoint"] == "enabled"]
    assert all(i["usage"] is not None for i in us)


def test_show_usage_ranks_and_charts(urun, world):
    _, ids, now = world
    r = urun("scan", "--regions", ",".join(REGIONS), "--days", "30", "--format", "json")
    assert r.code == 0, r.stderr
    r = urun("show", "usage", "--format", "json")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["kind"] == "usage" and doc["window_days"] == 30
    assert len(doc["days"]) == 30 and doc["days"][-1] == day_of(0, now)
    calls = [i["usage"]["v1_calls"] for i in doc["instances"]]
    assert calls == sorted(calls, reverse=True)
    assert doc["instances"][0]["instance_id"] == ids["in-use"]
    old = next(i for i in doc["instances"] if i["instance_id"] == ids["old-use"])
    assert old["daily_v1_calls"][30 - 1 - 20] == 7
    assert old["daily_v1_calls"].count(None) == 0
    unknown = next(i for i in doc["instances"] if i["instance_id"] == ids["unknown"])
    assert unknown["daily_v1_calls"] == [None] * 30

    table = urun("show", "usage")
    assert table.code == 0
    line = next(l for l in table.stdout.splitlines() if ids["in-use"] in l)
    assert "█" in line and "40" in line

    fleet_doc = urun("show", "usage", "--fleet", "--format", "json").json()
    assert fleet_doc["kind"] == "fleet-usage"
    days = {d["day"]: d for d in fleet_doc["days"]}
    for days_ago in range(30):
        want_v1 = sum(c.v1.get(days_ago, 0) for c in CASES if c.endpoint == "enabled")
        want_rej = sum(c.rejected.get(days_ago, 0) for c in CASES if c.endpoint == "enabled")
        got = days[day_of(days_ago, now)]
        assert (got["v1_calls"], got["rejected_calls"]) == (want_v1, want_rej), days_ago


def test_show_instances_replays_the_scan(urun, world):
    r1 = urun("scan", "--regions", ",".join(REGIONS), "--format", "json")
    r2 = urun("show", "instances", "--format", "json")
    assert r2.code == 0, r2.stderr
    a, b = r1.json(), r2.json()
    assert a["summary"] == b["summary"]
    assert a["instances"] == b["instances"]
    r3 = urun("show", "usage", "--scan", "999")
    assert r3.code == 1 and "no scan with id 999" in r3.stderr


def test_daily_series_is_packed_per_instance_and_queryable_per_day(urun, world):
    """Schema 8 keeps one `usage` row per measured instance, its daily
    series packed in it; the `usage_daily` view still answers per day,
    exactly as the datapoints were written (zeros and gaps apart)."""
    _, ids, now = world
    r = urun("-v", "scan", "--regions", ",".join(REGIONS), "--days", "30", "--format", "json")
    assert r.code == 0, r.stderr
    # -v says where the time went.
    assert re.search(r"^timings: reading [\d.]+ s, then [\d.]+ s saving", r.stderr, re.M), r.stderr

    measured = [c for c in CASES if c.endpoint == "enabled"]
    q = urun("query", "SELECT COUNT(*) AS n FROM usage", "--format", "json")
    assert q.code == 0, q.stderr
    assert q.json()["rows"] == [{"n": len(measured)}]

    want = sorted(
        (ids[c.name], day_of(d, now), float(c.v1.get(d, 0)), float(c.rejected.get(d, 0)))
        for c in measured
        for d in {d for d in c.v1 if d < 30} | {d for d in c.rejected if d < 30}
    )
    q = urun(
        "query",
        "SELECT instance_id, day, v1_calls, rejected_calls FROM usage_daily ORDER BY instance_id, day",
        "--format",
        "json",
    )
    assert q.code == 0, q.stderr
    got = sorted((x["instance_id"], x["day"], x["v1_calls"], x["rejected_calls"]) for x in q.json()["rows"])
    assert got == want

    # The gaps are stored as gaps: eu-in-use has data 13, 1 and 0 days ago.
    q = urun("query", f"SELECT v1_series, rejected_series FROM usage WHERE instance_id = '{ids['eu-in-use']}'",
             "--format", "json")
    [row] = q.json()["rows"]
    assert row["v1_series"] == "[2" + ",null" * 11 + ",0,3]"
    assert row["rejected_series"] is None


@pytest.mark.parametrize("flag", [["--region-calls", "0"], ["--region-calls", "33"], ["--concurrency", "0"]])
def test_concurrency_limits_out_of_range(urun, flag):
    r = urun(*flag, "scan", "--regions", "us-east-1")
    assert r.code == 2, r.stderr
    assert "not in" in r.stderr or "invalid value" in r.stderr
