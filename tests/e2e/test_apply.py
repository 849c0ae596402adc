"""plan → apply → verify → journal → rollback, end to end against moto,
with a fault-injecting proxy for throttling, flaky errors, latency and a
SIGKILL in the middle of a run."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import threading
import time

import pytest

import conftest
import fleet
from awsproxy import AwsProxy, ec2_error, Reply
from fleet import launch

REGION = "us-east-1"


def options(account, ids):
    ec2 = account.client("ec2", REGION)
    out = {}
    for r in ec2.describe_instances(InstanceIds=list(ids))["Reservations"]:
        for i in r["Instances"]:
            m = i["MetadataOptions"]
            out[i["InstanceId"]] = (
                m["HttpTokens"],
                m["HttpEndpoint"],
                m["HttpPutResponseHopLimit"],
                m["InstanceMetadataTags"],
                m["HttpProtocolIpv6"],
            )
    return out


@pytest.fixture
def world(account):
    ec2 = account.client("ec2", REGION)
    w = {
        "ready": launch(ec2, 3),
        "ready_tags": launch(ec2, 1, meta_tags="enabled"),
        "ready_hop3": launch(ec2, 1, hop=3),
        "ready_container": launch(ec2, 2, tags={"eks:cluster-name": "prod"}),
        "in_use": launch(ec2, 2),
        "unknown": launch(ec2, 2),
        "compliant": launch(ec2, 2, tokens="required", hop=2),
        "disabled": launch(ec2, 1, endpoint="disabled", hop=3),
    }
    ec2.stop_instances(InstanceIds=w["unknown"])
    quiet = w["ready"] + w["ready_tags"] + w["ready_hop3"] + w["ready_container"] + w["compliant"]
    fleet.put_metrics(account, quiet, region=REGION)
    fleet.put_metrics(account, w["in_use"], value=5.0, region=REGION)
    w["all"] = [i for k, v in w.items() for i in v]
    return w


def plan_file(run, tmp_path, *args):
    path = tmp_path / "plan.json"
    r = run("plan", "--regions", REGION, "--out", str(path), *args)
    assert r.code == 0, r.stderr
    return path, json.loads(path.read_text())


def test_require_v2_changes_exactly_the_ready_ones_and_rolls_back(run, account, world, tmp_path):
    before = options(account, world["all"])
    path, plan = plan_file(run, tmp_path, "--action", "require-v2", "--hop-limit", "auto")
    ready = world["ready"] + world["ready_tags"] + world["ready_hop3"] + world["ready_container"]
    # Endpoint-disabled instances cannot be using IMDS at all, so requiring
    # tokens there is safe, and Security Hub EC2.8 checks HttpTokens alone.
    ready += world["disabled"]
    assert {c["instance_id"] for c in plan["changes"]} == set(ready)
    by_id = {c["instance_id"]: c for c in plan["changes"]}
    assert by_id[world["disabled"][0]]["readiness"] == "disabled"
    assert by_id[world["disabled"][0]]["target"]["http_endpoint"] == "disabled"
    skipped = {s["instance_id"]: s for s in plan["skipped"]}
    assert set(skipped) == set(world["in_use"] + world["unknown"])
    assert all(skipped[i]["needs"] == "include-in-use" for i in world["in_use"])
    assert all(skipped[i]["needs"] == "include-unknown" for i in world["unknown"])
    # The plan file says which opt-in is missing; the table names the flag.
    table = run("plan", "--regions", REGION, "--action", "require-v2", "--scan", str(plan["scan_id"])).stdout
    assert "(--include-in-use to force)" in table and "(--include-unknown to force)" in table

    with AwsProxy(conftest.ENDPOINT) as proxy:
        r = run("apply", str(path), "--yes", "--format", "json", endpoint=proxy.url)
        assert r.code == 0, r.stderr
        assert proxy.count("ModifyInstanceMetadataOptions") == len(ready)
    doc = r.json()
    assert doc["kind"] == "run" and doc["run"]["status"] == "done"
    assert doc["counts"]["applied"] == len(ready)
    assert all(c["verified"] for c in doc["run"]["changes"])

    after = options(account, world["all"])
    for iid in world["all"]:
        tokens, endpoint, hop, tags, ipv6 = before[iid]
        if iid in ready:
            want_hop = 2 if iid in world["ready_container"] else hop
            assert after[iid] == ("required", endpoint, want_hop, tags, ipv6), iid
        else:
            assert after[iid] == before[iid], iid
    assert after[world["ready_hop3"][0]][2] == 3
    assert after[world["ready_tags"][0]][3] == "enabled"

    run_id = doc["run"]["id"]
    r = run("rollback", str(run_id), "--yes", "--format", "json")
    assert r.code == 0, r.stderr
    assert r.json()["run"]["parent_run"] == run_id
    assert options(account, world["all"]) == before

    # The journal holds both runs, and the second undoes the first.
    r = run("runs", "--format", "json")
    runs = r.json()["runs"]
    assert [x["kind"] for x in runs] == ["rollback", "apply"]
    assert runs[0]["counts"] == {"applied": len(ready)}


def test_rollback_restores_disabled_endpoint_and_hop_3(run, account, world, tmp_path):
    before = options(account, world["all"])
    target = world["disabled"] + world["ready_hop3"]
    # The disabled-endpoint instance allows v1 on paper; require-v2 keeps its endpoint off.
    r = run("harden", "--regions", REGION, "--instance-ids", ",".join(target), "--yes", "--format", "json")
    assert r.code == 0, r.stderr
    mid = options(account, target)
    assert mid[world["disabled"][0]][:3] == ("required", "disabled", 3)
    assert mid[world["ready_hop3"][0]][:3] == ("required", "enabled", 3)
    r = run("rollback", str(r.json()["run"]["id"]), "--yes")
    assert r.code == 0, r.stderr
    assert options(account, target) == {i: before[i] for i in target}


def test_disable_and_allow_v1(run, account, world):
    iid = world["ready"][0]
    r = run("disable", "--regions", REGION, "--instance-ids", iid, "--yes")
    assert r.code == 0, r.stderr
    assert options(account, [iid])[iid][1] == "disabled"
    comp = world["compliant"][0]
    r = run("harden", "--allow-v1", "--regions", REGION, "--instance-ids", comp, "--yes")
    assert r.code == 0, r.stderr
    assert options(account, [comp])[comp][:3] == ("optional", "enabled", 2)
    # --dry-run changes nothing.
    other = world["ready"][1]
    before = options(account, [other])
    with AwsProxy(conftest.ENDPOINT) as proxy:
        r = run("disable", "--regions", REGION, "--instance-ids", other, "--dry-run", endpoint=proxy.url)
        assert r.code == 0, r.stderr
        assert "endpoint enabled→disabled" in r.stdout
        assert proxy.count("ModifyInstanceMetadataOptions") == 0
    assert options(account, [other]) == before


def test_drifted_plan_is_refused(run, account, world, tmp_path):
    path, plan = plan_file(run, tmp_path, "--action", "require-v2")
    victim = plan["changes"][0]["instance_id"]
    account.client("ec2", REGION).modify_instance_metadata_options(
        InstanceId=victim, HttpTokens="optional", HttpEndpoint="enabled", HttpPutResponseHopLimit=5
    )
    with AwsProxy(conftest.ENDPOINT) as proxy:
        r = run("apply", str(path), "--yes", endpoint=proxy.url)
        assert r.code == 1
        assert "changed since the plan was made" in r.stderr and victim in r.stderr
        assert "help: re-run `imdsguard plan`" in r.stderr
        assert proxy.count("ModifyInstanceMetadataOptions") == 0


def test_bad_plans_and_runs_change_nothing(run, account, world, tmp_path):
    path, plan = plan_file(run, tmp_path, "--action", "require-v2")
    text = path.read_text()
    cases = {
        "garbage.json": ("not json at all", 2, "is not a valid plan file"),
        "truncated.json": (text[: len(text) // 2], 2, "is not a valid plan file"),
        "edited.json": (text.replace('"http_tokens": "required"', '"http_tokens": "optional"', 1), 2, "digest mismatch"),
        "foreign.json": (text.replace("imdsguard/plan-v1", "imdsguard/plan-v7"), 2, "schema `imdsguard/plan-v7`"),
    }
    with AwsProxy(conftest.ENDPOINT) as proxy:
        for name, (content, code, needle) in cases.items():
            p = tmp_path / name
            p.write_text(content)
            r = run("apply", str(p), "--yes", endpoint=proxy.url)
            assert r.code == code, (name, r.stderr)
            assert needle in r.stderr, (name, r.stderr)
            assert "help:" in r.stderr
        r = run("apply", str(tmp_path / "missing.json"), "--yes", endpoint=proxy.url)
        assert r.code == 2 and "cannot read plan" in r.stderr
        for args in (["rollback", "999", "--yes"], ["apply", "--resume", "999", "--yes"], ["runs", "999"]):
            r = run(*args, endpoint=proxy.url)
            assert r.code == 1 and "no run with id 999" in r.stderr, args
        for rate in ("0", "-1", "5000"):
            r = run("apply", str(path), "--yes", f"--rate={rate}", endpoint=proxy.url)
            # clap refuses it, with our reason and hint.
            assert r.code == 2 and f"invalid value '{rate}' for '--rate <N>'" in r.stderr, rate
            assert "is out of range" in r.stderr and "help:" in r.stderr, rate
        # Without --yes and without a terminal, nothing happens.
        r = run("apply", str(path), endpoint=proxy.url)
        assert r.code == 2 and "pass --yes" in r.stderr
        # An instance that no longer exists: refused as a whole.
        account.client("ec2", REGION).terminate_instances(InstanceIds=[plan["changes"][0]["instance_id"]])
        r = run("apply", str(path), "--yes", endpoint=proxy.url)
        assert r.code == 1 and "no longer exist" in r.stderr
        assert proxy.count("ModifyInstanceMetadataOptions") == 0


def test_check_permissions_dry_runs_first(run, account, world, tmp_path):
    """moto ignores DryRun (it would apply the change), so the proxy plays EC2:
    it answers dry runs with UnauthorizedOperation and counts real calls."""
    path, plan = plan_file(run, tmp_path, "--action", "require-v2")

    def fault(req):
        if req.action == "ModifyInstanceMetadataOptions" and req.params.get("DryRun") == "true":
            return ec2_error("UnauthorizedOperation", "You are not authorized to perform this operation.", 403)
        return None

    before = options(account, world["all"])
    with AwsProxy(conftest.ENDPOINT, fault) as proxy:
        r = run("apply", str(path), "--yes", "--check-permissions", endpoint=proxy.url)
        assert r.code == 1
        assert "permission check failed" in r.stderr and "UnauthorizedOperation" in r.stderr
        assert "no change was made" in r.stderr
        dry = [q for q in proxy.log if q.action == "ModifyInstanceMetadataOptions"]
        # Dry runs go 4 at a time; none starts after the first refusal.
        assert 1 <= len(dry) <= 4 and all(q.params.get("DryRun") == "true" for q in dry)
    assert options(account, world["all"]) == before


def test_throttled_and_flaky_ec2_loses_nothing(run, account, tmp_path):
    ids = launch(account.client("ec2", REGION), 60)
    lock = threading.Lock()
    bucket = {"tokens": 10.0, "last": time.monotonic(), "throttled": 0, "failed": 0, "n": 0}

    def fault(req):
        if req.action != "ModifyInstanceMetadataOptions":
            return None
        with lock:
            now = time.monotonic()
            bucket["tokens"] = min(10.0, bucket["tokens"] + (now - bucket["last"]) * 20.0)
            bucket["last"] = now
            bucket["n"] += 1
            if bucket["n"] % 7 == 0:
                bucket["failed"] += 1
                return Reply(500, b"<html>Internal Server Error</html>", {"Content-Type": "text/html"})
            if bucket["tokens"] < 1:
                bucket["throttled"] += 1
                return ec2_error("RequestLimitExceeded", "Request limit exceeded.", 503)
            bucket["tokens"] -= 1
        return None

    with AwsProxy(conftest.ENDPOINT, fault) as proxy:
        r = run(
            "harden", "--regions", REGION, "--no-usage", "--include-unknown", "--yes", "--rate", "100",
            "--format", "json", endpoint=proxy.url,
        )
        # The scan's connection serves the changes: one identity check in all.
        assert proxy.count("GetCallerIdentity") == 1
    assert r.code == 0, r.stderr
    assert bucket["throttled"] > 0 and bucket["failed"] > 0
    doc = r.json()
    assert doc["counts"]["applied"] == 60 and doc["counts"]["failed"] == 0
    assert any(c["attempts"] > 1 for c in doc["run"]["changes"])
    assert all(v[0] == "required" for v in options(account, ids).values())
    assert "throttled" in r.stderr


def slow_modify(req):
    """50 ms per change: long enough to interrupt a run in its middle."""
    if req.action == "ModifyInstanceMetadataOptions":
        time.sleep(0.05)
    return None


def start_apply(run, path, proxy, *args, **popen):
    env = dict(run.base_env, **run.account.env(), AWS_ENDPOINT_URL=proxy.url)
    return subprocess.Popen([conftest.BIN, "apply", str(path), "--yes", *args], env=env, **popen)


def wait_for_modifies(proxy, n):
    deadline = time.time() + 60
    while proxy.count("ModifyInstanceMetadataOptions") < n and time.time() < deadline:
        time.sleep(0.02)


def test_sigkill_mid_run_then_resume(run, account, tmp_path):
    ec2 = account.client("ec2", REGION)
    ids = launch(ec2, 120) + launch(ec2, 100)
    path, plan = plan_file(run, tmp_path, "--action", "require-v2", "--no-usage", "--include-unknown")
    assert len(plan["changes"]) == 220

    with AwsProxy(conftest.ENDPOINT, slow_modify) as proxy:
        proc = start_apply(run, path, proxy, "--rate", "40", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_modifies(proxy, 60)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        first = [q.params["InstanceId"] for q in proxy.log if q.action == "ModifyInstanceMetadataOptions"]
    assert 60 <= len(first) < 220, "the kill must land mid-run"

    db = sqlite3.connect(run.db)
    statuses = dict(db.execute("SELECT instance_id, status FROM changes WHERE run_id = 1").fetchall())
    done = {i for i, s in statuses.items() if s in ("applied", "pending")}
    assert done and len(done) < 220
    assert set(statuses.values()) <= {"planned", "issued", "applied", "pending"}
    db.close()

    with AwsProxy(conftest.ENDPOINT) as proxy:
        r = run("apply", "--resume", "1", "--yes", "--rate", "100", "--format", "json", endpoint=proxy.url)
        assert r.code == 0, r.stderr
        second = [q.params["InstanceId"] for q in proxy.log if q.action == "ModifyInstanceMetadataOptions"]
    # Nothing recorded as accepted is sent again; the rest is sent once.
    assert not done & set(second)
    assert len(second) == len(set(second))
    assert set(second) | set(first) == set(ids)
    assert all(v[0] == "required" for v in options(account, ids).values())
    doc = r.json()
    assert doc["run"]["status"] == "done"
    assert doc["counts"]["applied"] == 220


def test_log_file_has_one_line_per_change(run, account, world, tmp_path):
    log = tmp_path / "changes.jsonl"
    path, plan = plan_file(run, tmp_path, "--action", "require-v2")
    r = run("apply", str(path), "--yes", "--log", str(log))
    assert r.code == 0, r.stderr
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert len(lines) == len(plan["changes"])
    assert {x["instance_id"] for x in lines} == {c["instance_id"] for c in plan["changes"]}
    for x in lines:
        assert x["status"] == "applied" and x["run"] == 1 and x["action"] == "require-v2"
        assert x["previous"]["http_tokens"] == "optional" and x["target"]["http_tokens"] == "required"
        assert x["dry_run"] is False


def test_warns_when_account_enforces_v2(run, account, world, tmp_path):
    path, plan = plan_file(run, tmp_path, "--action", "require-v2")
    body = (
        '<GetInstanceMetadataDefaultsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
        "<requestId>r-1</requestId><accountLevel><httpTokens>required</httpTokens>"
        "<httpTokensEnforced>enabled</httpTokensEnforced></accountLevel>"
        "</GetInstanceMetadataDefaultsResponse>"
    ).encode()

    def fault(req):
        if req.action == "GetInstanceMetadataDefaults":
            return Reply(200, body, {"Content-Type": "text/xml"})
        return None

    with AwsProxy(conftest.ENDPOINT, fault) as proxy:
        r = run("apply", str(path), "--yes", endpoint=proxy.url)
        assert r.code == 0, r.stderr
        assert "HttpTokensEnforced=enabled" in r.stderr and "rollback" in r.stderr
        r = run("rollback", "1", "--yes", endpoint=proxy.url)
        assert "EC2 will refuse to re-allow IMDSv1" in r.stderr


def test_ctrl_c_finishes_in_flight_then_resume(run, account, tmp_path):
    ids = launch(account.client("ec2", REGION), 150)
    path, plan = plan_file(run, tmp_path, "--action", "require-v2", "--no-usage", "--include-unknown")

    with AwsProxy(conftest.ENDPOINT, slow_modify) as proxy:
        proc = start_apply(
            run, path, proxy, "--rate", "40", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        wait_for_modifies(proxy, 40)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        sent = {q.params["InstanceId"] for q in proxy.log if q.action == "ModifyInstanceMetadataOptions"}
    assert proc.returncode == 130, err
    assert "interrupted" in err and "imdsguard apply --resume 1" in err and "imdsguard rollback 1" in err
    db = sqlite3.connect(run.db)
    statuses = dict(db.execute("SELECT instance_id, status FROM changes WHERE run_id = 1").fetchall())
    run_status = db.execute("SELECT status FROM runs WHERE id = 1").fetchone()[0]
    db.close()
    # In-flight calls finished and were recorded: nothing is left in limbo.
    assert "issued" not in statuses.values()
    assert {i for i, s in statuses.items() if s in ("applied", "pending")} == sent
    assert run_status == "interrupted"
    r = run("apply", "--resume", "1", "--yes", "--rate", "100")
    assert r.code == 0, r.stderr
    assert all(v[0] == "required" for v in options(account, ids).values())


def test_plan_from_stored_scan_respects_regions_and_selection(run, account, world, tmp_path):
    eu = launch(account.client("ec2", "eu-west-1"), 2)
    r = run("scan", "--regions", f"{REGION},eu-west-1", "--no-usage", "--format", "json")
    assert r.code == 0, r.stderr
    scan_id = r.json()["scan"]["id"]
    with AwsProxy(conftest.ENDPOINT) as proxy:
        # A stored scan needs no AWS call to plan from.
        r = run(
            "plan", "--action", "require-v2", "--scan", str(scan_id), "--include-unknown",
            "--regions", "eu-west-1", "--format", "json", endpoint=proxy.url,
        )
        assert r.code == 0, r.stderr
        assert proxy.total() == 0
    plan = r.json()
    assert plan["scan_id"] == scan_id
    assert {c["instance_id"] for c in plan["changes"]} == set(eu)
    r = run(
        "plan", "--action", "require-v2", "--scan", str(scan_id), "--include-unknown",
        "--instance-ids", world["ready"][0], "--format", "json",
    )
    assert [c["instance_id"] for c in r.json()["changes"]] == [world["ready"][0]]
    r = run("plan", "--action", "require-v2", "--scan", "999")
    assert r.code == 1 and "no scan with id 999" in r.stderr
    r = run("plan", "--action", "require-v2", "--hop-limit", "99")
    assert r.code == 2 and "for '--hop-limit <keep|auto|N>': `99` is not keep, auto or 1-64" in r.stderr
