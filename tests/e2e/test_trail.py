"""`imdsguard trail --bucket`: CloudTrail log objects in moto's S3 (gzip
JSON in CloudTrail's own record shape, across days, regions, two accounts,
one under an organization folder), with noise: IMDSv2 deliveries, a session
that is not an instance, users, a malformed record, a malformed object and
objects outside the window. Exact per-instance counts, user agents and
verdicts; only the window's date folders listed; no access key id or IP kept."""

from __future__ import annotations

import datetime
import gzip
import json
import sqlite3
import urllib.parse

import conftest
from awsproxy import AwsProxy

OTHER = "210987654321"
I1 = "i-0123456789abcdef0"
I2 = "i-0fedcba9876543210"


def record(when, account, region, session, delivery, agent, name="DescribeInstances", source="ec2.amazonaws.com"):
    identity = {"type": "AssumedRole", "principalId": f"AROAEXAMPLE:{session}",
                "arn": f"arn:aws:sts::{account}:assumed-role/app-role/{session}", "accountId": account,
                "accessKeyId": "ASIAEXAMPLEKEY123456"}
    if delivery:
        identity["sessionContext"] = {"ec2RoleDelivery": delivery,
                                      "sessionIssuer": {"type": "Role", "userName": "app-role"}}
    return {"eventVersion": "1.08", "userIdentity": identity, "eventTime": when, "eventSource": source,
            "eventName": name, "awsRegion": region, "sourceIPAddress": "203.0.113.7", "userAgent": agent,
            "recipientAccountId": account}


def put(s3, bucket, key, records=None, raw=None):
    body = raw if raw is not None else json.dumps({"Records": records}).encode()
    s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(body))


def folder(account, region, day, org=None):
    base = f"ct/AWSLogs/{org + '/' if org else ''}{account}/CloudTrail/{region}/"
    return base + day.strftime("%Y/%m/%d/")


def test_trail_from_s3(run, account):
    me = account.account_id
    s3 = account.client("s3", "us-east-1")
    # Bucket names are global (in moto too): one per test account.
    bucket = f"trail-{me}"
    s3.create_bucket(Bucket=bucket)
    now = datetime.datetime.now(datetime.timezone.utc)
    today, three, old = now, now - datetime.timedelta(days=3), now - datetime.timedelta(days=20)
    t = lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    cli_old = "aws-cli/1.16.100 Python/2.7.16 Linux/4.14.186 botocore/1.12.90"
    boto_new = "Boto3/1.20.0 Python/3.9.1 Linux/5.10 Botocore/1.23.0"
    put(s3, bucket, folder(me, "us-east-1", today) + "a.json.gz", [
        record(t(today - datetime.timedelta(hours=1)), me, "us-east-1", I1, "1.0", cli_old),
        record(t(today - datetime.timedelta(hours=2)), me, "us-east-1", I1, "1.0", cli_old, name="GetObject",
               source="s3.amazonaws.com"),
        record(t(today - datetime.timedelta(hours=2)), me, "us-east-1", I1, "1.0", boto_new),
        record(t(today - datetime.timedelta(hours=3)), me, "us-east-1", I1, "2.0", boto_new),  # IMDSv2: context
        record(t(today - datetime.timedelta(hours=3)), me, "us-east-1", "botocore-session-1", "1.0", cli_old),
        record(t(today - datetime.timedelta(hours=4)), me, "us-east-1", "alice", None, cli_old),  # not IMDS
        {"eventTime": t(today), "userIdentity": "not an object"},  # a malformed record
    ])
    put(s3, bucket, folder(me, "us-east-1", three) + "b.json.gz", [
        record(t(three), me, "us-east-1", I1, "1.0", cli_old),
        record(t(three), me, "us-east-1", I1, "1.0", boto_new),
    ])
    put(s3, bucket, folder(me, "us-east-1", three) + "broken.json.gz", raw=b"{ this is not json")
    put(s3, bucket, folder(OTHER, "eu-west-1", three, org="o-abc123defg") + "c.json.gz", [
        record(t(three), OTHER, "eu-west-1", I2, "1.0", "curl/7.61.1"),
    ])
    # Outside the window: its folder is never listed.
    put(s3, bucket, folder(me, "us-east-1", old) + "old.json.gz", [record(t(old), me, "us-east-1", I1, "1.0", cli_old)])

    with AwsProxy(conftest.ENDPOINT) as proxy:
        r = run("trail", "--bucket", bucket, "--prefix", "ct", "--days", "7", "--bucket-region", "us-east-1",
                "--format", "json", endpoint=proxy.url)
        listed = [urllib.parse.parse_qs(urllib.parse.urlparse(q.path).query).get("prefix", [""])[0]
                  for q in proxy.log if q.method == "GET" and "list-type=2" in q.path]
    assert r.code == 1, r.stderr  # one object could not be read: reported, not fatal
    assert "broken.json.gz" in r.stderr
    doc = r.json()
    assert doc["kind"] == "trail" and doc["source"] == f"s3://{bucket}/ct"
    assert doc["counts"] == {"records": 9, "attributed": 6, "v2": 1, "v1_not_instance": 1, "malformed": 2,
                             "objects": 4}
    by_id = {i["instance_id"]: i for i in doc["instances"]}
    assert set(by_id) == {I1, I2}
    one = by_id[I1]
    assert (one["account_id"], one["region"], one["role_name"], one["v1_credential_calls"]) == (
        me, "us-east-1", "app-role", 5)
    agents = {a["user_agent"]: a for a in one["user_agents"]}
    assert agents[cli_old]["calls"] == 3 and agents[boto_new]["calls"] == 2
    assert (agents[cli_old]["tool"], agents[cli_old]["version"]) == ("AWS CLI", "1.16.100")
    assert agents[cli_old]["advice"] == "upgrade AWS CLI to ≥ 1.16.289"
    assert agents[boto_new]["verdict"]["kind"] == "supports-v2"
    assert one["first_seen"] == t(three) and dict(one["top_events"])["s3.amazonaws.com:GetObject"] == 1
    two = by_id[I2]
    assert (two["account_id"], two["region"], two["user_agents"][0]["advice"]) == (OTHER, "eu-west-1",
                                                                                 "unknown agent")
    # Only the window's date folders were listed, never the old one or the bucket.
    assert old.strftime("%Y/%m/%d/") not in " ".join(listed)
    assert all(p.startswith("ct/AWSLogs/") for p in listed)
    # Never kept or shown: access key ids and source addresses.
    db = sqlite3.connect(run.db)
    dump = "\n".join(db.iterdump())
    assert "ASIAEXAMPLEKEY" not in dump and "203.0.113.7" not in dump
    assert "ASIAEXAMPLEKEY" not in r.stdout + r.stderr and "203.0.113.7" not in r.stdout + r.stderr
    rows = db.execute("SELECT instance_id, tool, verdict FROM trail_agents ORDER BY instance_id, calls DESC").fetchall()
    assert rows == [(I1, "AWS CLI", "upgrade"), (I1, "Boto3", "supports-v2"), (I2, None, "unknown")]

    table = run("trail", "--bucket", bucket, "--prefix", "ct", "--days", "7", "--bucket-region", "us-east-1")
    assert "upgrade AWS CLI to ≥ 1.16.289" in table.stdout


def test_trail_bad_input(run):
    for args in (["--bucket", "Not_A_Bucket"], ["--bucket", "ok-bucket", "--days", "91"],
                 ["--bucket", "ok-bucket", "--prefix", "a\x1bb"]):
        r = run("trail", *args)
        assert r.code == 2, (args, r.stderr)
        assert "\x1b" not in r.stderr


def test_trail_joins_the_latest_scan(run, account):
    """`show usage` and the HTML report name each in-use instance's callers,
    and say when its IMDSv1 use is not credential fetches."""
    import fleet

    me = account.account_id
    ec2 = account.client("ec2", "us-east-1")
    fetches, reads = fleet.launch(ec2, 2)
    fleet.put_metrics(account, [fetches, reads], value=7.0)
    assert run("scan", "--regions", "us-east-1").code == 0
    r = run("show", "usage", "--format", "json")
    assert all("v1_callers" not in i for i in r.json()["instances"]), "no trail read yet: no claim"

    s3 = account.client("s3", "us-east-1")
    bucket = f"trail-{me}"
    s3.create_bucket(Bucket=bucket)
    now = datetime.datetime.now(datetime.timezone.utc)
    when = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    put(s3, bucket, f"AWSLogs/{me}/CloudTrail/us-east-1/" + now.strftime("%Y/%m/%d/") + "x.json.gz", [
        record(when, me, "us-east-1", fetches, "1.0", "aws-cli/1.16.100 Python/2.7 Linux/4.14 botocore/1.12.90"),
    ])
    r = run("trail", "--bucket", bucket, "--days", "1", "--bucket-region", "us-east-1")
    assert r.code == 0, r.stderr
    assert f"metadata reads): {reads}" in r.stderr

    doc = run("show", "usage", "--format", "json").json()
    callers = {i["instance_id"]: i["v1_callers"] for i in doc["instances"]}
    assert callers[fetches] == "AWS CLI 1.16.100: upgrade AWS CLI to ≥ 1.16.289"
    assert callers[reads] == "IMDSv1 use is not credential fetches (metadata reads)"
    table = run("show", "usage").stdout
    assert "V1 CALLERS (CLOUDTRAIL)" in table and "upgrade AWS CLI" in table
    # The readiness reason says it everywhere: instances, notices.
    reasons = {i["instance_id"]: i["reason"] for i in run("show", "instances", "--format", "json").json()["instances"]}
    assert "v1 callers (CloudTrail): AWS CLI 1.16.100: upgrade AWS CLI to ≥ 1.16.289" in reasons[fetches]
    assert "the calls are metadata reads" in reasons[reads]
    out = run.tmp / "notices"
    r = run("notify", "--out-dir", str(out), "--dry-run")
    assert r.code == 0, r.stderr
    notices = "".join(p.read_text() for p in out.glob("*.txt"))
    assert "upgrade AWS CLI to ≥ 1.16.289" in notices
    html = run("report", "--format", "html").stdout
    assert "<th>v1 callers (CloudTrail)</th>" in html
    assert "AWS CLI 1.16.100: upgrade AWS CLI to ≥ 1.16.289" in html


def test_trail_from_athena(run, account):
    """One query on Athena (moto's, fed the rows a real query would give):
    the SQL's filters, paging of the results, the rows folded per instance."""
    import urllib.request

    me = account.account_id
    header = ["account_id", "region", "instance_id", "role_name", "user_agent", "event", "calls", "first_seen",
              "last_seen"]
    cli_old = "aws-cli/1.16.100 Python/2.7 Linux/4.14 botocore/1.12.90"
    data = [
        [me, "us-east-1", I1, "app-role", cli_old, "ec2.amazonaws.com:DescribeInstances", "40",
         "2026-11-20T01:00:00Z", "2026-11-30T01:00:00Z"],
        [me, "us-east-1", I1, "app-role", cli_old, "s3.amazonaws.com:GetObject", "2", "2026-11-19T01:00:00Z",
         "2026-11-21T01:00:00Z"],
        [OTHER, "eu-west-1", I2, "batch", "aws-sdk-java/1.11.500 Linux/4.14", "sqs.amazonaws.com:ReceiveMessage",
         "7", "2026-11-25T01:00:00Z", "2026-11-25T02:00:00Z"],
    ]
    rows = [{"Data": [{"VarCharValue": v} for v in r]} for r in [header] + data]
    queued = json.dumps({
        "account_id": me, "region": "us-east-1",
        "results": [{"rows": rows, "column_info": [{"Name": h, "Type": "varchar"} for h in header]}],
    }).encode()
    urllib.request.urlopen(urllib.request.Request(
        f"{conftest.MOTO}/moto-api/static/athena/query-results", data=queued,
        headers={"Content-Type": "application/json"}))

    with AwsProxy(conftest.ENDPOINT) as proxy:
        r = run("trail", "--athena-table", "cloudtrail.org_trail", "--athena-output", "s3://results/imdsguard/",
                "--days", "30", "--format", "json", endpoint=proxy.url)
        [start] = [q for q in proxy.log if q.action == "StartQueryExecution"]
    assert r.code == 0, r.stderr
    sql = json.loads(start.body)["QueryString"]
    assert 'FROM "cloudtrail"."org_trail"' in sql and "ec2roledelivery = '1.0'" in sql
    assert json.loads(start.body)["ResultConfiguration"]["OutputLocation"] == "s3://results/imdsguard/"
    doc = r.json()
    assert doc["source"] == "athena:cloudtrail.org_trail"
    by_id = {i["instance_id"]: i for i in doc["instances"]}
    assert by_id[I1]["v1_credential_calls"] == 42 and by_id[I1]["first_seen"] == "2026-11-19T01:00:00Z"
    assert by_id[I2]["user_agents"][0]["advice"] == "upgrade AWS SDK for Java to ≥ 1.11.678"

    # --print-sql prints the same query and touches nothing.
    r = run("trail", "--athena-table", "cloudtrail.org_trail", "--print-sql", "--days", "30", creds=False)
    assert r.code == 0 and r.stdout.startswith("SELECT") and "ec2roledelivery = '1.0'" in r.stdout
    r = run("trail", "--athena-table", "db.t; DROP TABLE x", "--print-sql")
    assert r.code == 2 and "not an Athena table" in r.stderr
    r = run("trail", "--athena-table", "db.t")
    assert r.code == 2 and "--athena-output" in r.stderr


def test_trail_from_lookup_events(run, account):
    """`LookupEvents` (moto has none: the proxy answers as CloudTrail would,
    in its JSON protocol): every page followed, at most 2 requests a second
    per region, events filtered here."""
    import time as clock

    from awsproxy import Reply

    me = account.account_id
    now = datetime.datetime.now(datetime.timezone.utc)
    when = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    cli_old = "aws-cli/1.16.100 Python/2.7 Linux/4.14 botocore/1.12.90"
    pages = {
        "us-east-1": [
            [record(when, me, "us-east-1", I1, "1.0", cli_old)] * 2,
            [record(when, me, "us-east-1", I1, "2.0", cli_old)],
            [record(when, me, "us-east-1", I1, "1.0", cli_old)],
        ],
        "eu-west-1": [[record(when, me, "eu-west-1", "alice", None, cli_old)]],
    }
    seen: list = []

    def fault(req):
        if req.action != "LookupEvents":
            return None
        body = json.loads(req.body)
        seen.append((req.region, clock.monotonic(), body))
        n = int(body.get("NextToken", "0"))
        region_pages = pages[req.region]
        events = [{"EventId": f"e{n}-{i}", "CloudTrailEvent": json.dumps(e)} for i, e in enumerate(region_pages[n])]
        out = {"Events": events}
        if n + 1 < len(region_pages):
            out["NextToken"] = str(n + 1)
        return Reply(200, json.dumps(out).encode(), {"Content-Type": "application/x-amz-json-1.1"})

    with AwsProxy(conftest.ENDPOINT, fault) as proxy:
        r = run("trail", "--lookup", "--regions", "us-east-1,eu-west-1", "--days", "3", "--format", "json",
                endpoint=proxy.url)
    assert r.code == 0, r.stderr
    east = [t for reg, t, _ in seen if reg == "us-east-1"]
    assert len(east) == 3 and len([1 for reg, _, _ in seen if reg == "eu-west-1"]) == 1
    assert all(b - a >= 0.45 for a, b in zip(east, east[1:])), "2 requests a second per region at most"
    assert all("StartTime" in b and "EndTime" in b for _, _, b in seen)
    doc = r.json()
    assert doc["counts"]["attributed"] == 3 and doc["counts"]["v2"] == 1
    [one] = doc["instances"]
    assert (one["instance_id"], one["v1_credential_calls"]) == (I1, 3)
