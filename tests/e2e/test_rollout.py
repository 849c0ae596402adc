"""`rollout`: a plan in waves. Canaries first (one per group), a soak, then
the next wave, or a rollback of what broke (refused IMDSv1 calls seeded in
CloudWatch after the change), its group held, and a halt."""

import datetime
import json
import signal

import conftest
import fleet
from awsproxy import AwsProxy, ec2_error
from test_runs import popen, slow, wait_until

REGION = "us-east-1"


def tokens(account, ids):
    ec2 = account.client("ec2", REGION)
    out = {}
    for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]:
        for i in r["Instances"]:
            out[i["InstanceId"]] = i["MetadataOptions"]["HttpTokens"]
    return out


def seed(run, account, tmp_path):
    ec2 = account.client("ec2", REGION)
    a = fleet.launch(ec2, 3, tags={"owner": "team-a"})
    b = fleet.launch(ec2, 2, tags={"owner": "team-b"})
    fleet.put_metrics(account, a + b, region=REGION)  # zero v1 calls: all ready
    assert run("scan", "--regions", REGION).code == 0
    path = tmp_path / "plan.json"
    r = run("plan", "--regions", REGION, "--action", "require-v2", "--out", str(path))
    assert r.code == 0, r.stderr
    return a, b, path


def one_group_rollout(run, account, tmp_path, n):
    """`n` instances of one group (one canary, then the rest), scanned,
    planned and started with no soak; returns their ids."""
    ec2 = account.client("ec2", REGION)
    ids = fleet.launch(ec2, n)
    fleet.put_metrics(account, ids, region=REGION)
    assert run("scan", "--regions", REGION).code == 0
    path = tmp_path / "plan.json"
    assert run("plan", "--regions", REGION, "--action", "require-v2", "--out", str(path)).code == 0
    r = run("rollout", "start", str(path), "--waves", "1,100%", "--soak", "0s", "--yes")
    assert r.code == 0, r.stderr
    return ids


def refused(account, instance_id, n=3.0):
    """MetadataNoTokenRejected after the change, the way EC2 would report it."""
    cw = account.client("cloudwatch", REGION)
    cw.put_metric_data(
        Namespace="AWS/EC2",
        MetricData=[
            {
                "MetricName": "MetadataNoTokenRejected",
                "Dimensions": [{"Name": "InstanceId", "Value": instance_id}],
                "Timestamp": datetime.datetime.now(datetime.timezone.utc),
                "Value": n,
            }
        ],
    )


def waves(doc):
    return {w["number"]: {i["instance_id"]: i["state"] for i in w["instances"]} for w in doc["waves"]}


def test_canaries_then_the_rest(run, account, tmp_path):
    a, b, path = seed(run, account, tmp_path)
    r = run("rollout", "start", str(path), "--waves", "1,100%", "--soak", "0s", "--yes", "--format", "json")
    assert r.code == 0, r.stderr
    doc = r.json()
    rid = doc["rollout_id"]
    w = waves(doc)
    # Wave 1: one canary per group (team-a, team-b), nothing else changed.
    assert set(w[1]) == {a[0], b[0]} and set(w[1].values()) == {"applied"}
    assert set(w[2].values()) == {"pending"}
    now = tokens(account, a + b)
    assert [now[i] for i in a + b] == ["required", "optional", "optional", "required", "optional"]

    r = run("rollout", "advance", str(rid), "--yes", "--format", "json")
    assert r.code == 0, r.stderr
    assert set(waves(r.json())[2].values()) == {"applied"}
    assert set(tokens(account, a + b).values()) == {"required"}
    r = run("rollout", "advance", str(rid), "--yes", "--format", "json")
    assert r.code == 0 and r.json()["state"] == "done"


def test_refused_calls_roll_back_and_hold_the_group(run, account, tmp_path):
    a, b, path = seed(run, account, tmp_path)
    r = run("rollout", "start", str(path), "--waves", "1,100%", "--soak", "0s", "--yes", "--format", "json")
    assert r.code == 0, r.stderr
    rid = r.json()["rollout_id"]
    refused(account, a[0])
    r = run("rollout", "advance", str(rid), "--yes", "--format", "json")
    assert r.code == 1, r.stderr
    doc = r.json()
    assert doc["state"] == "halted"
    w = waves(doc)
    assert w[1][a[0]] == "rolled-back" and w[1][b[0]] == "applied"
    assert w[2] == {a[1]: "held", a[2]: "held", b[1]: "pending"}
    assert tokens(account, [a[0]])[a[0]] == "optional", "the broken canary is back on v1"
    assert any(d["kind"] == "halt" and a[0] in d["reason"] for d in doc["decisions"])
    # Halted: advance changes nothing until a person resumes.
    r = run("rollout", "advance", str(rid), "--yes")
    assert r.code == 1 and "halted" in r.stderr
    r = run("rollout", "resume", str(rid), "--skip-group", "--format", "json")
    assert r.code == 0, r.stderr
    r = run("rollout", "advance", str(rid), "--yes", "--format", "json")
    assert r.code == 0, r.stderr
    w = waves(r.json())
    assert w[2] == {a[1]: "held", a[2]: "held", b[1]: "applied"}
    assert tokens(account, a + b) == {a[0]: "optional", a[1]: "optional", a[2]: "optional", b[0]: "required", b[1]: "required"}


def test_a_soak_not_over_changes_nothing_and_abort_restores(run, account, tmp_path):
    a, b, path = seed(run, account, tmp_path)
    r = run("rollout", "start", str(path), "--waves", "1,100%", "--soak", "2h", "--yes", "--format", "json")
    assert r.code == 0, r.stderr
    rid = r.json()["rollout_id"]
    with AwsProxy(conftest.ENDPOINT) as proxy:
        r = run("rollout", "advance", str(rid), "--yes", "--format", "json", endpoint=proxy.url)
        assert proxy.total() == 0, "a soak not over reads only the database"
    assert r.code == 0 and "wave 1 soaks for" in r.stderr and "nothing to do yet" in r.stderr, r.stderr
    assert set(waves(r.json())[2].values()) == {"pending"}
    assert sorted(tokens(account, a + b).values()) == ["optional"] * 3 + ["required"] * 2
    r = run("rollout", "abort", str(rid), "--yes", "--format", "json")
    assert r.code == 0, r.stderr
    assert r.json()["state"] == "aborted"
    assert set(tokens(account, a + b).values()) == {"optional"}
    assert set(waves(r.json())[1].values()) == {"rolled-back"}


def test_a_failing_health_check_halts(run, account, tmp_path):
    _, _, path = seed(run, account, tmp_path)
    marker = tmp_path / "ids"
    r = run("rollout", "start", str(path), "--waves", "1,100%", "--soak", "0s", "--yes", "--format", "json",
            "--health-cmd", f'echo "$IMDSGUARD_INSTANCE_IDS" > {marker}; echo "web check failed" >&2; exit 3')
    assert r.code == 0, r.stderr
    rid = r.json()["rollout_id"]
    r = run("rollout", "advance", str(rid), "--yes", "--format", "json")
    assert r.code == 1 and r.json()["state"] == "halted"
    assert "web check failed" in json.dumps(r.json()["decisions"])
    assert len(marker.read_text().strip().split(",")) == 2


def test_bad_rollout_input(run, account, tmp_path):
    _, _, path = seed(run, account, tmp_path)
    r = run("rollout", "start", str(path), "--waves", "10%,100%", "--yes")
    assert r.code == 2 and "canaries per group" in r.stderr
    r = run("rollout", "start", str(path), "--waves", "1,50%", "--yes")
    assert r.code == 2 and "100%" in r.stderr
    r = run("rollout", "status", "7")
    assert r.code == 1 and "no rollout with id 7" in r.stderr
    assert run("rollout", "list").stdout.strip() == "(no rollouts)"


def test_kill9_during_a_wave_then_advance_finishes_it_without_resending(run, account, tmp_path):
    ids = one_group_rollout(run, account, tmp_path, 40)
    rid = 1

    with AwsProxy(conftest.ENDPOINT, slow(0.3)) as proxy:
        proc = popen(run, "rollout", "advance", str(rid), "--yes", "--rate", "40", endpoint=proxy.url)
        wait_until(lambda: len(proxy.forwarded_ids()) >= 10, what="10 changes of wave 2")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proxy.wait_idle()
        reached = set(proxy.forwarded_ids())
    assert 10 <= len(reached) < 39

    with AwsProxy(conftest.ENDPOINT) as proxy:
        r = run("rollout", "advance", str(rid), "--yes", "--rate", "100", "--format", "json", endpoint=proxy.url)
        assert r.code == 0, r.stderr
        second = proxy.forwarded_ids()
    assert "left open" in r.stderr and "taking it over" in r.stderr
    assert not reached & set(second), "nothing that reached EC2 is sent again"
    assert len(second) == len(set(second))
    assert reached | set(second) == set(ids) - {ids[0]}
    assert set(tokens(account, ids).values()) == {"required"}
    doc = r.json()
    assert doc["state"] == "soaking" and doc["waves"][1]["state"] == "applied"
    assert [d["done"] for d in doc["decisions"]] == [True] * len(doc["decisions"])


def metric(account, instance_id, name, value, when):
    account.client("cloudwatch", REGION).put_metric_data(
        Namespace="AWS/EC2",
        MetricData=[{"MetricName": name, "Dimensions": [{"Name": "InstanceId", "Value": instance_id}],
                     "Timestamp": when, "Value": value}],
    )


def test_the_effect_before_and_after_a_change(run, account, tmp_path):
    a, b, path = seed(run, account, tmp_path)
    now = datetime.datetime.now(datetime.timezone.utc)
    for i, iid in enumerate(a):  # v1 calls in the hours before the change
        metric(account, iid, "MetadataNoToken", 10.0 + i, now - datetime.timedelta(hours=3))
        metric(account, iid, "MetadataNoToken", 5.0, now - datetime.timedelta(hours=5))
    r = run("rollout", "start", str(path), "--waves", "1,100%", "--soak", "0s", "--yes")
    assert r.code == 0, r.stderr
    assert run("rollout", "advance", "1", "--yes").code == 0
    # After enforcement: no answered v1 call, a refused one on a[1].
    metric(account, a[1], "MetadataNoTokenRejected", 4.0, datetime.datetime.now(datetime.timezone.utc))

    r = run("rollout", "status", "1", "--effect", "--format", "json")
    assert r.code == 0, r.stderr
    e = r.json()
    assert e["subject"] == "rollout 1" and e["period"] == 3600
    by = {i["instance_id"]: i for i in e["instances"]}
    assert set(by) == set(a + b)
    assert [by[i]["v1_calls_before"] for i in a] == [15, 16, 17]
    assert all(by[i]["v1_calls_after"] == 0 for i in a + b)
    assert by[a[1]]["rejected_calls_after"] == 4 and e["rejected_calls_after"] == 4
    assert e["v1_calls_before"] == 48
    assert sum(t["v1_calls"] for t in e["total"]) == 48
    assert any(t["change"] for t in e["total"])

    # Per run too: wave 2's run (run 2) changed a[1], a[2], b[1].
    r = run("runs", "2", "--effect", "--format", "json")
    assert r.code == 0, r.stderr
    assert {i["instance_id"] for i in r.json()["instances"]} == {a[1], a[2], b[1]}
    assert r.json()["v1_calls_before"] == 33

    # The report shows the latest of each, the change marked.
    report = tmp_path / "report.html"
    assert run("report", "--format", "html", "--out", str(report)).code == 0
    html = report.read_text()
    assert "<h2>Effect of changes</h2>" in html
    assert 'id="effect-0"' in html and 'id="effect-1"' in html
    assert 'class="change"' in html
    assert "48 answered before the change, 0 after, 4 refused after" in html


def test_watch_steps_through_short_soaks_to_the_end(run, account, tmp_path):
    a, b, path = seed(run, account, tmp_path)
    r = run("rollout", "start", str(path), "--waves", "1,50%,100%", "--soak", "2s", "--yes")
    assert r.code == 0, r.stderr
    r = run("rollout", "advance", "1", "--watch", "--yes", "--format", "json")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["state"] == "done"
    assert [w["state"] for w in doc["waves"]] == ["passed", "passed", "passed"]
    assert set(tokens(account, a + b).values()) == {"required"}
    assert [d["kind"] for d in doc["decisions"]] == [
        "apply-wave", "pass", "apply-wave", "pass", "apply-wave", "pass", "finish"]


def test_a_wave_cut_short_is_finished_by_the_next_advance_and_abort_overrides_it(run, account, tmp_path):
    ids = one_group_rollout(run, account, tmp_path, 12)

    stale = account.access_key
    passed = [0]

    def expire_after_four(req):
        if req.access_key != stale or req.action != "ModifyInstanceMetadataOptions":
            return None
        if passed[0] < 4:
            passed[0] += 1
            return None
        return ec2_error("RequestExpired", "Request has expired.", 400)

    with AwsProxy(conftest.ENDPOINT, expire_after_four) as proxy:
        r = run("rollout", "advance", "1", "--yes", "--rate", "100", "--format", "json", endpoint=proxy.url)
        first = proxy.forwarded_ids()
    # The wave did not finish: no soak starts, the decision stays open, exit 1.
    assert r.code == 1, r.stderr
    assert "did not finish" in r.stderr
    doc = r.json()
    assert doc["state"] == "applying" and not doc["decisions"][-1]["done"]
    assert len(first) == 4

    with AwsProxy(conftest.ENDPOINT) as proxy:
        r = run("rollout", "advance", "1", "--yes", "--rate", "100", "--format", "json", endpoint=proxy.url)
        second = proxy.forwarded_ids()
    assert r.code == 0, r.stderr
    assert not set(first) & set(second) and len(second) == 7
    assert r.json()["state"] == "soaking" and set(tokens(account, ids).values()) == {"required"}

    # Abort (with nothing open now) puts everything back, and stays aborted.
    r = run("rollout", "abort", "1", "--yes", "--format", "json")
    assert r.code == 0, r.stderr
    assert set(tokens(account, ids).values()) == {"optional"}
    with AwsProxy(conftest.ENDPOINT) as proxy:
        r = run("rollout", "advance", "1", "--yes", endpoint=proxy.url)
        assert proxy.count("ModifyInstanceMetadataOptions") == 0
    assert r.code == 0 and "is aborted" in r.stderr


def test_abort_overrides_a_decision_an_interrupted_step_left_open(run, account, tmp_path):
    ids = one_group_rollout(run, account, tmp_path, 6)

    def refuse_modify(req):
        if req.action == "ModifyInstanceMetadataOptions":
            return ec2_error("RequestExpired", "Request has expired.", 400)
        return None

    with AwsProxy(conftest.ENDPOINT, refuse_modify) as proxy:
        r = run("rollout", "advance", "1", "--yes", "--format", "json", endpoint=proxy.url)
    assert r.code == 1 and not r.json()["decisions"][-1]["done"]
    r = run("rollout", "abort", "1", "--yes", "--format", "json")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["state"] == "aborted"
    assert all(d["done"] for d in doc["decisions"])
    assert any("superseded" in d["reason"] for d in doc["decisions"])
    # The next advance does not pick the old decision up again.
    with AwsProxy(conftest.ENDPOINT) as proxy:
        r = run("rollout", "advance", "1", "--yes", "--format", "json", endpoint=proxy.url)
        assert proxy.count("ModifyInstanceMetadataOptions") == 0
    assert r.code == 0 and r.json()["state"] == "aborted"
    assert set(tokens(account, ids).values()) == {"optional"}


def test_a_plain_resume_returns_held_instances_to_their_wave(run, account, tmp_path):
    a, b, path = seed(run, account, tmp_path)
    rid = run("rollout", "start", str(path), "--waves", "1,100%", "--soak", "0s", "--yes", "--format", "json").json()["rollout_id"]
    refused(account, a[0])
    r = run("rollout", "advance", str(rid), "--yes", "--format", "json")
    assert r.code == 1
    held = [i for i in r.json()["waves"][1]["instances"] if i["state"] == "held"]
    assert {i["instance_id"] for i in held} == {a[1], a[2]}
    assert all("its group broke in wave 1" in i["reason"] for i in held)
    assert run("rollout", "resume", str(rid)).code == 0
    r = run("rollout", "advance", str(rid), "--yes", "--format", "json")
    assert r.code == 0, r.stderr
    assert waves(r.json())[2] == {a[1]: "applied", a[2]: "applied", b[1]: "applied"}
