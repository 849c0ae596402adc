"""Runs you can trust under real operations, end to end against moto:
one owner per run, compare-and-set before every change, lost answers,
expired credentials, a permission phase across accounts, a complete
`--log`, plans checked for meaning, honest exit codes.

Each test breaks the world the way operations do (a second terminal, a
colleague's change, a proxy that drops answers) and asserts what reached
moto, not only what imdsguard says."""

from __future__ import annotations

import hashlib
import json
import re
import signal
import sqlite3
import subprocess
import threading
import time

import boto3

import conftest
from awsproxy import DROP, AwsProxy, Reply, ec2_error
from fleet import launch
from test_accounts import ROLE, fresh_id, member
from test_apply import REGION, options

MODIFY = "ModifyInstanceMetadataOptions"


def plan_file(run, tmp_path, *args, name="plan.json"):
    path = tmp_path / name
    r = run("plan", "--regions", REGION, "--out", str(path), *args)
    assert r.code == 0, r.stderr
    return path, json.loads(path.read_text())


def all_unknown_plan(run, tmp_path, *args):
    """A plan for every instance of the account (no metrics: --include-unknown)."""
    return plan_file(run, tmp_path, "--action", "require-v2", "--no-usage", "--include-unknown", *args)


def popen(run, *args, endpoint, env=None):
    full = dict(run.base_env, **run.account.env(), AWS_ENDPOINT_URL=endpoint, **(env or {}))
    return subprocess.Popen(
        [conftest.BIN, *args], env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_until(cond, timeout=60.0, what="condition"):
    deadline = time.time() + timeout
    while not cond():
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def journal(run, run_id=1):
    db = sqlite3.connect(run.db)
    try:
        rows = db.execute(
            "SELECT instance_id, status, reason, attempts, logged_status FROM changes WHERE run_id = ? ORDER BY seq",
            (run_id,),
        ).fetchall()
        head = db.execute("SELECT status, rolled_back_by FROM runs WHERE id = ?", (run_id,)).fetchone()
    finally:
        db.close()
    return {r[0]: r[1:] for r in rows}, head


def slow(seconds, action=MODIFY):
    def fault(req):
        if req.action == action and req.params.get("DryRun") != "true":
            time.sleep(seconds)
        return None

    return fault


def fresh_credentials(account):
    """New credentials for the same account: a refreshed session."""
    sts = boto3.client(
        "sts",
        region_name="us-east-1",
        endpoint_url=conftest.ENDPOINT,
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="moto-does-not-check",
    )
    c = sts.assume_role(RoleArn=f"arn:aws:iam::{account.account_id}:role/imdsguard-test", RoleSessionName="e2e2")[
        "Credentials"
    ]
    assert c["AccessKeyId"] != account.access_key
    return conftest.Account(account.account_id, c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])


# --- kill -9, lost answers ---------------------------------------------------


def test_kill9_mid_apply_then_resume_never_resends_what_reached_ec2(run, account, tmp_path):
    ids = launch(account.client("ec2", REGION), 100)
    path, plan = all_unknown_plan(run, tmp_path)
    log = tmp_path / "changes.jsonl"

    # Each call waits 0.3 s in the proxy before it reaches moto: at any moment
    # several are journaled `issued` with no answer yet.
    with AwsProxy(conftest.ENDPOINT, slow(0.3)) as proxy:
        proc = popen(run, "apply", str(path), "--yes", "--rate", "40", "--log", str(log), endpoint=proxy.url)
        wait_until(lambda: len(proxy.forwarded_ids()) >= 20, what="20 changes")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        at_kill, _ = journal(run)
        # The calls in flight still reach moto: their answers are what is lost.
        proxy.wait_idle()
        reached = set(proxy.forwarded_ids())
    issued = {i for i, (s, *_ ) in at_kill.items() if s == "issued"}
    assert issued, "the kill must catch calls in flight (journaled, unanswered)"
    assert 20 <= len(reached) < 100

    with AwsProxy(conftest.ENDPOINT) as proxy:
        # No --log: the run keeps writing to its own log file.
        r = run("apply", "--resume", "1", "--yes", "--rate", "100", "--format", "json", endpoint=proxy.url)
        assert r.code == 0, r.stderr
        second = proxy.forwarded_ids()
    assert "taking it over" in r.stderr and "its process has ended" in r.stderr
    # Nothing that reached EC2 before the kill is sent again; the rest once.
    assert not reached & set(second)
    assert len(second) == len(set(second))
    assert reached | set(second) == set(ids)
    assert all(v[0] == "required" for v in options(account, ids).values())
    doc = r.json()
    assert doc["run"]["status"] == "done" and doc["counts"]["applied"] == 100
    by_id = {c["instance_id"]: c for c in doc["run"]["changes"]}
    for iid in issued:
        assert by_id[iid]["reason"] == "answer-lost", iid

    # The log: exactly one `applied` line per change, including those whose
    # line the kill cut off and the resume wrote.
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert sorted(x["seq"] for x in lines) == list(range(100))
    assert {x["status"] for x in lines} == {"applied"}
    assert {x["instance_id"] for x in lines} == set(ids)
    rows, _ = journal(run)
    assert all(s == "applied" and logged == "applied" for s, _, _, logged in rows.values())


def test_answers_lost_after_ec2_acted_are_never_applied_twice(run, account, tmp_path):
    ids = launch(account.client("ec2", REGION), 12)
    lost = []

    def after(req, reply):
        # Every third change lands in moto and then its answer is lost: a 500
        # from a load balancer, or a connection closed without a reply.
        if req.action == MODIFY and req.params.get("DryRun") != "true":
            n = len([q for q in proxy.forwarded if q.action == MODIFY])
            if n % 3 == 0:
                lost.append(req.params["InstanceId"])
                if n % 2 == 0:
                    return DROP
                return Reply(500, b"<html>Internal Server Error</html>", {"Content-Type": "text/html"})
        return None

    with AwsProxy(conftest.ENDPOINT, after=after) as proxy:
        r = run(
            "harden", "--regions", REGION, "--no-usage", "--include-unknown", "--yes", "--format", "json",
            endpoint=proxy.url,
        )
        sent = proxy.forwarded_ids()
    assert r.code == 0, r.stderr
    assert len(lost) == 4
    assert sorted(sent) == sorted(ids), "each instance changed exactly once"
    assert all(v[0] == "required" for v in options(account, ids).values())
    doc = r.json()
    reasons = {c["instance_id"]: c["reason"] for c in doc["run"]["changes"]}
    assert {i for i, why in reasons.items() if why == "answer-lost"} == set(lost)
    assert doc["counts"]["applied"] == 12


# --- compare-and-set ---------------------------------------------------------


def test_a_change_made_by_someone_else_during_a_paced_apply_is_not_overwritten(run, account, tmp_path):
    ec2 = account.client("ec2", REGION)
    launch(ec2, 30)
    path, plan = all_unknown_plan(run, tmp_path)
    victim = plan["changes"][-1]["instance_id"]
    with AwsProxy(conftest.ENDPOINT) as proxy:
        # 2 changes/s after a burst of 20; every change compared with a look
        # at most 2 s old.
        proc = popen(run, "apply", str(path), "--yes", "--rate", "2", "--recheck-window", "2",
                     "--format", "json", endpoint=proxy.url)
        wait_until(lambda: len(proxy.forwarded_ids()) >= 5, what="the apply to start")
        # A colleague sets hop limit 3 on an instance still waiting its turn.
        ec2.modify_instance_metadata_options(
            InstanceId=victim, HttpTokens="optional", HttpEndpoint="enabled", HttpPutResponseHopLimit=3,
            InstanceMetadataTags="disabled", HttpProtocolIpv6="disabled",
        )
        out, err = proc.communicate(timeout=120)
        sent = proxy.forwarded_ids()
    assert proc.returncode == 1, err
    assert victim not in sent and len(sent) == 29
    assert options(account, [victim])[victim][:3] == ("optional", "enabled", 3)
    doc = json.loads(out)
    c = next(c for c in doc["run"]["changes"] if c["instance_id"] == victim)
    assert (c["status"], c["reason"]) == ("skipped", "changed-since-plan")
    assert c["observed"]["hop_limit"] == 3
    assert doc["run"]["status"] == "incomplete"
    assert f"{victim} (skipped: changed-since-plan)" in err
    # Rolling back restores what the run did, not the stale plan: the
    # skipped instance keeps the colleague's hop limit.
    r = run("rollback", "1", "--yes")
    assert r.code == 0, r.stderr
    assert options(account, [victim])[victim][:3] == ("optional", "enabled", 3)


# --- one owner per run -------------------------------------------------------


def test_a_second_process_cannot_drive_a_run_that_is_being_driven(run, account, tmp_path):
    ids = launch(account.client("ec2", REGION), 40)
    path, _ = all_unknown_plan(run, tmp_path)
    with AwsProxy(conftest.ENDPOINT, slow(0.2)) as proxy:
        proc = popen(run, "apply", str(path), "--yes", "--rate", "10", endpoint=proxy.url)
        wait_until(lambda: len(proxy.forwarded_ids()) >= 3, what="the apply to start")
        with AwsProxy(conftest.ENDPOINT) as other:
            r = run("rollback", "1", "--yes", endpoint=other.url)
            assert r.code == 1
            assert re.search(r"run 1 is being applied by pid \d+ on host \S+ since ", r.stderr), r.stderr
            assert "help: wait for it to finish, or stop it with Ctrl-C" in r.stderr
            r = run("apply", "--resume", "1", "--yes", endpoint=other.url)
            assert r.code == 1 and "run 1 is being applied by pid" in r.stderr
            assert other.count(MODIFY) == 0, "the refused processes sent nothing"
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert all(v[0] == "required" for v in options(account, ids).values())


def test_two_resumes_at_once_one_refuses_and_a_stale_lease_is_taken_over(run, account, tmp_path):
    launch(account.client("ec2", REGION), 40)
    path, _ = all_unknown_plan(run, tmp_path)
    with AwsProxy(conftest.ENDPOINT, slow(0.2)) as proxy:
        proc = popen(run, "apply", str(path), "--yes", "--rate", "10", endpoint=proxy.url)
        wait_until(lambda: len(proxy.forwarded_ids()) >= 5, what="the apply to start")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proxy.wait_idle()
        first = popen(run, "apply", "--resume", "1", "--yes", "--rate", "5", endpoint=proxy.url)
        n = len(proxy.forwarded_ids())
        wait_until(lambda: len(proxy.forwarded_ids()) > n, what="the first resume to send")
        second = run("apply", "--resume", "1", "--yes", endpoint=proxy.url)
        out, err = first.communicate(timeout=120)
    assert second.code == 1 and "run 1 is being resumed by pid" in second.stderr
    assert first.returncode == 0, err
    assert "taking it over" in err
    rows, head = journal(run)
    assert head[0] == "done"


def test_a_rolled_back_run_is_never_resumed(run, account, tmp_path):
    launch(account.client("ec2", REGION), 30)
    path, _ = all_unknown_plan(run, tmp_path)
    with AwsProxy(conftest.ENDPOINT, slow(0.1)) as proxy:
        proc = popen(run, "apply", str(path), "--yes", "--rate", "20", endpoint=proxy.url)
        wait_until(lambda: len(proxy.forwarded_ids()) >= 8, what="the apply to start")
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    assert proc.returncode == 130
    _, head = journal(run)
    assert head[0] == "interrupted"
    r = run("rollback", "1", "--yes")
    assert r.code == 0, r.stderr
    _, head = journal(run)
    assert head == ("rolled-back", 2)
    with AwsProxy(conftest.ENDPOINT) as proxy:
        r = run("apply", "--resume", "1", "--yes", endpoint=proxy.url)
        assert r.code == 1
        assert "run 1 was rolled back by run 2; nothing more is applied from it" in r.stderr
        assert proxy.count(MODIFY) == 0
    r = run("runs", "--format", "json")
    statuses = {x["id"]: x["status"] for x in r.json()["runs"]}
    assert statuses == {1: "rolled-back", 2: "done"}


# --- rollback ----------------------------------------------------------------


def test_rollback_restores_all_five_fields_exactly_and_leaves_later_changes_alone(run, account, tmp_path):
    ec2 = account.client("ec2", REGION)
    # Five non-default fields: tokens optional, endpoint enabled, hop 3,
    # tags disabled, IPv6 enabled. A call that left one out would reset it.
    a, b, c = (launch(ec2, 1, hop=3)[0] for _ in range(3))
    d = launch(ec2, 1, hop=3)[0]
    for iid in (a, b, c, d):
        ec2.modify_instance_metadata_options(
            InstanceId=iid, HttpTokens="optional", HttpEndpoint="enabled", HttpPutResponseHopLimit=3,
            InstanceMetadataTags="disabled", HttpProtocolIpv6="enabled",
        )
    before = options(account, [a, b, c, d])
    assert before[a] == ("optional", "enabled", 3, "disabled", "enabled")

    r = run("harden", "--regions", REGION, "--no-usage", "--include-unknown", "--instance-ids", f"{a},{b},{c}",
            "--hop-limit", "5", "--enable-tags", "--yes")
    assert r.code == 0, r.stderr
    r = run("disable", "--regions", REGION, "--no-usage", "--instance-ids", d, "--yes")
    assert r.code == 0, r.stderr
    mid = options(account, [a, b, c, d])
    assert mid[a] == ("required", "enabled", 5, "enabled", "enabled")
    assert mid[d] == ("optional", "disabled", 3, "disabled", "enabled")

    # Only a.
    r = run("rollback", "1", "--instance-ids", a, "--yes")
    assert r.code == 0, r.stderr
    now = options(account, [a, b, c])
    assert now[a] == before[a] and now[b] == mid[b] and now[c] == mid[c]
    assert journal(run, 1)[1][0] == "partly-rolled-back"

    # Someone changes c again; the rest of run 1 is rolled back, c is left
    # alone and reported, and the exit says the run is not fully undone.
    ec2.modify_instance_metadata_options(
        InstanceId=c, HttpTokens="required", HttpEndpoint="enabled", HttpPutResponseHopLimit=7,
        InstanceMetadataTags="enabled", HttpProtocolIpv6="enabled",
    )
    r = run("rollback", "1", "--yes")
    assert r.code == 1, r.stderr
    assert f"{c}: changed again since run 1" in r.stderr and "--force" in r.stderr
    now = options(account, [a, b, c])
    assert now[b] == before[b] and now[c][2] == 7
    assert journal(run, 1)[1][0] == "partly-rolled-back"

    # --force puts c back too; run 1 is then wholly rolled back.
    r = run("rollback", "1", "--force", "--yes")
    assert r.code == 0, r.stderr
    assert options(account, [c])[c] == before[c]
    assert journal(run, 1)[1][0] == "rolled-back"

    # The disabled endpoint comes back, with every other field as it was.
    r = run("rollback", "2", "--yes", "--format", "json")
    assert r.code == 0, r.stderr
    assert options(account, [d])[d] == before[d]
    assert r.json()["field_changes"] == [
        {"field": "http_endpoint", "from": "disabled", "to": "enabled", "count": 1}
    ]


# --- permission phase across accounts ----------------------------------------


def test_one_account_refusing_the_dry_run_changes_nothing_in_any_account(run, account, tmp_path):
    a, b = member(account, fresh_id()), member(account, fresh_id())
    ids_a = launch(a.client("ec2", REGION), 3)
    ids_b = launch(b.client("ec2", REGION), 3)
    plan = tmp_path / "plan.json"
    r = run("plan", "--action", "require-v2", "--regions", REGION, "--no-usage", "--include-unknown",
            "--accounts", f"{a.account_id},{b.account_id}", "--role-name", ROLE, "--out", str(plan))
    assert r.code == 0, r.stderr

    def fault(req):
        # The proxy plays EC2's dry runs (moto would apply them): account a
        # may, account b may not. b answers slowly, so a's dry runs have all
        # passed, and a would be free to start, by the time b refuses.
        if req.action == MODIFY and req.params.get("DryRun") == "true":
            if req.params["InstanceId"] in ids_b:
                time.sleep(0.3)
                return ec2_error("UnauthorizedOperation", "You are not authorized to perform this operation.", 403)
            return ec2_error("DryRunOperation", "Request would have succeeded, but DryRun flag is set.", 412)
        return None

    with AwsProxy(conftest.ENDPOINT, fault) as proxy:
        r = run("apply", str(plan), "--yes", "--check-permissions", "--role-name", ROLE, endpoint=proxy.url)
        assert r.code == 1
        assert "permission check failed for" in r.stderr and b.account_id in r.stderr
        assert "no change was made in any account" in r.stderr
        assert proxy.forwarded_ids() == [], "no real change anywhere"
        dry = {q.params["InstanceId"] for q in proxy.log if q.action == MODIFY and q.params.get("DryRun") == "true"}
        assert set(ids_a) <= dry, "account a's dry runs all passed first"
    assert {v[0] for v in options(a, ids_a).values()} | {v[0] for v in options(b, ids_b).values()} == {"optional"}


# --- credentials -------------------------------------------------------------


def test_expired_credentials_stop_the_run_and_resume_finishes_with_fresh_ones(run, account, tmp_path):
    ids = launch(account.client("ec2", REGION), 20)
    path, _ = all_unknown_plan(run, tmp_path)
    stale = account.access_key
    lock = threading.Lock()
    passed = [0]

    def fault(req):
        # After 8 changes the session expires: every call signed with it fails.
        if req.access_key != stale:
            return None
        with lock:
            if passed[0] < 8:
                passed[0] += req.action == MODIFY
                return None
        return ec2_error("RequestExpired", "Request has expired.", 400)

    with AwsProxy(conftest.ENDPOINT, fault) as proxy:
        r = run("apply", str(path), "--yes", "--rate", "100", "--format", "json", endpoint=proxy.url)
        first = proxy.forwarded_ids()
    assert r.code == 1
    assert "run 1 stopped: credentials expired" in r.stderr
    assert "help: refresh your credentials and run `imdsguard apply --resume 1`" in r.stderr
    doc = r.json()
    assert doc["run"]["status"] == "interrupted"
    assert doc["counts"]["failed"] == 0 and doc["counts"]["planned"] >= 1
    assert len(first) == 8

    fresh = fresh_credentials(account)
    with AwsProxy(conftest.ENDPOINT) as proxy:
        r = run("apply", "--resume", "1", "--yes", "--format", "json", endpoint=proxy.url, env=fresh.env())
        second = proxy.forwarded_ids()
    assert r.code == 0, r.stderr
    assert not set(first) & set(second)
    assert set(first) | set(second) == set(ids)
    assert r.json()["counts"]["applied"] == 20


# --- plans checked for meaning -----------------------------------------------


def redigest(plan: dict) -> dict:
    """What anyone can do to a plan file: edit it, recompute its SHA-256."""
    doc = dict(plan, digest="")
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    return dict(plan, digest=hashlib.sha256(text.encode()).hexdigest())


def test_edited_and_redigested_plans_are_refused_by_meaning(run, account, tmp_path):
    ec2 = account.client("ec2", REGION)
    launch(ec2, 2)
    launch(ec2, 1, endpoint="disabled")
    path, plan = all_unknown_plan(run, tmp_path)
    by_endpoint = {c["current"]["http_endpoint"]: i for i, c in enumerate(plan["changes"])}
    on, off = by_endpoint["enabled"], by_endpoint["disabled"]

    def edited(name, edit):
        p = json.loads(json.dumps(plan))
        edit(p)
        f = tmp_path / name
        f.write_text(json.dumps(redigest(p), indent=2))
        return f

    cases = {
        "v1.json": (lambda p: p["changes"][on]["target"].update(http_tokens="optional", hop_limit=64),
                    "HttpTokens `optional` is not what a require-v2 plan sets"),
        "endpoint.json": (lambda p: p["changes"][off]["target"].update(http_endpoint="enabled"),
                          "would re-enable the metadata endpoint the plan saw disabled"),
        "hop.json": (lambda p: p["changes"][on]["target"].update(hop_limit=64),
                     "HttpPutResponseHopLimit 64: the plan saw 1"),
        "old.json": (lambda p: p.update(created_at="2020-01-01T00:00:00Z"), "more than the 7 days allowed"),
    }
    with AwsProxy(conftest.ENDPOINT) as proxy:
        for name, (edit, needle) in cases.items():
            r = run("apply", str(edited(name, edit)), "--yes", endpoint=proxy.url)
            assert r.code == 2, (name, r.stderr)
            assert needle in r.stderr, (name, r.stderr)
            assert "help:" in r.stderr
        assert proxy.total() == 0, "refused before any AWS call"
        # Naming the instance and field.
        r = run("apply", str(edited("v1b.json", cases["v1.json"][0])), "--yes", endpoint=proxy.url)
        assert plan["changes"][on]["instance_id"] in r.stderr
    # The control: an unedited plan, re-digested, is accepted and applied; an
    # old one is accepted when the user says how old is fine.
    r = run("apply", str(edited("same.json", lambda p: None)), "--yes")
    assert r.code == 0, r.stderr
    r = run("apply", str(edited("old2.json", cases["old.json"][0])), "--yes", "--max-plan-age", "3650d")
    assert r.code == 0, r.stderr  # everything is at target by now: nothing sent, nothing wrong
    r = run("apply", str(path), "--yes", "--max-plan-age", "soon")
    assert r.code == 2 and "for '--max-plan-age <AGE>': `soon` is not a duration" in r.stderr


def test_the_prompt_and_summary_count_every_kind_of_field_change(run, account, tmp_path):
    ec2 = account.client("ec2", REGION)
    launch(ec2, 3)
    launch(ec2, 2, tags={"eks:cluster-name": "prod"})
    path, plan = all_unknown_plan(run, tmp_path, "--hop-limit", "auto")
    r = run("apply", str(path), "--yes", "--format", "json")
    assert r.code == 0, r.stderr
    assert "HttpTokens optional→required: 5; HttpEndpoint: none; HttpPutResponseHopLimit 1→2: 2; " \
           "InstanceMetadataTags: none; HttpProtocolIpv6: none" in r.stderr
    assert r.json()["field_changes"] == [
        {"field": "http_tokens", "from": "optional", "to": "required", "count": 5},
        {"field": "hop_limit", "from": "1", "to": "2", "count": 2},
    ]


# --- honest exit codes -------------------------------------------------------


def test_exit_1_with_the_list_for_failed_and_for_pending_changes(run, account, tmp_path):
    ids = launch(account.client("ec2", REGION), 4)
    path, plan = all_unknown_plan(run, tmp_path)
    bad = ids[0]

    def fault(req):
        if req.action == MODIFY and req.params.get("InstanceId") == bad:
            return ec2_error("IncorrectInstanceState", "The instance is not in a state to be modified.", 400)
        return None

    with AwsProxy(conftest.ENDPOINT, fault) as proxy:
        r = run("apply", str(path), "--yes", endpoint=proxy.url)
    assert r.code == 1
    assert f"1 change(s) not done: {bad} (failed: refused)" in r.stderr
    assert "IncorrectInstanceState" in r.stdout

    # Pending: EC2 keeps saying `pending` for one instance.
    ids2 = launch(account.client("ec2", REGION), 2)
    path2, _ = plan_file(run, tmp_path, "--action", "require-v2", "--no-usage", "--include-unknown",
                         "--instance-ids", ",".join(ids2), name="plan2.json")
    slowpoke = ids2[0]
    pattern = re.compile(
        r"(<metadataOptions><state>)applied(</state>(?:(?!</metadataOptions>).)*</metadataOptions>"
        r"<instanceId>" + re.escape(slowpoke) + "</instanceId>)",
        re.S,
    )

    def after(req, reply):
        if req.action == "DescribeInstances":
            return Reply(reply.status, pattern.sub(r"\1pending\2", reply.body.decode()).encode(), reply.headers)
        return None

    with AwsProxy(conftest.ENDPOINT, after=after) as proxy:
        r = run("apply", str(path2), "--yes", "--verify-timeout", "1", "--format", "json", endpoint=proxy.url)
    assert r.code == 1, r.stderr
    doc = r.json()
    c = next(c for c in doc["run"]["changes"] if c["instance_id"] == slowpoke)
    assert (c["status"], c["reason"]) == ("pending", "not-verified")
    assert doc["run"]["status"] == "incomplete"
    assert f"{slowpoke} (pending: not-verified)" in r.stderr
