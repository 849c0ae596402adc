"""Several accounts in one run: `--accounts` and `--org` with `--role-name`,
through moto's STS (an assumed role's credentials act in that account)."""

from __future__ import annotations

import boto3
import pytest

import conftest
import fleet
from awsproxy import AwsProxy, query_error

ROLE = "ImdsguardAudit"
REGION = "us-east-1"


def member(base: conftest.Account, account_id: str) -> conftest.Account:
    """Credentials in `account_id`, as imdsguard will get them: by assuming ROLE."""
    sts = base.client("sts")
    c = sts.assume_role(RoleArn=f"arn:aws:iam::{account_id}:role/{ROLE}", RoleSessionName="seed")["Credentials"]
    return conftest.Account(account_id, c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])


def fresh_id() -> str:
    return conftest.new_account().account_id


def seed(acct: conftest.Account, optional: int, required: int) -> list[str]:
    ec2 = acct.client("ec2", REGION)
    ids = fleet.launch(ec2, optional)
    fleet.launch(ec2, required, tokens="required")
    return ids


def test_accounts_list_scans_each_account(run, account):
    a, b = member(account, fresh_id()), member(account, fresh_id())
    seed(a, 3, 1)
    seed(b, 2, 2)
    r = run("scan", "--regions", REGION, "--no-usage", "--format", "json", "--accounts", f"{a.account_id},{b.account_id}",
            "--role-name", ROLE)
    assert r.code == 0, r.stderr
    doc = r.json()
    assert {i["account_id"] for i in doc["scan"]["identities"]} == {a.account_id, b.account_id}
    by = {(c["account_id"], c["region"]): c for c in doc["summary"]["regions"]}
    assert (by[(a.account_id, REGION)]["optional"], by[(a.account_id, REGION)]["required"]) == (3, 1)
    assert (by[(b.account_id, REGION)]["optional"], by[(b.account_id, REGION)]["required"]) == (2, 2)
    assert doc["summary"]["total"]["instances"] == 8
    assert {i["account_id"] for i in doc["instances"]} == {a.account_id, b.account_id}

    # The reports get a per-account table: a has 4 instances, 1 enforced.
    html = run.tmp / "report.html"
    assert run("report", "--format", "html", "--out", str(html)).code == 0
    page = html.read_text()
    assert "<h2>By account</h2>" in page
    assert f"<tr><td>{a.account_id}</td><td class=n>4</td><td class=n>25.0%</td>" in page
    assert f"<tr><td>{b.account_id}</td><td class=n>4</td><td class=n>50.0%</td>" in page
    md = run("report", "--format", "markdown").stdout
    assert f"| {a.account_id} | 4 | 25.0% | 25.0% | 3 |" in md


def test_org_scans_management_and_members(run, account):
    org = account.client("organizations")
    org.create_organization(FeatureSet="ALL")
    members = []
    for n in range(2):
        status = org.create_account(Email=f"m{n}@example.com", AccountName=f"member-{n}")["CreateAccountStatus"]
        members.append(member(account, status["AccountId"]))
    seed(account, 1, 0)
    seed(members[0], 2, 0)
    seed(members[1], 0, 3)
    r = run("scan", "--regions", REGION, "--no-usage", "--format", "json", "--org", "--role-name", ROLE)
    assert r.code == 0, r.stderr
    doc = r.json()
    counts = {c["account_id"]: c for c in doc["summary"]["regions"]}
    assert set(counts) == {account.account_id, members[0].account_id, members[1].account_id}
    assert counts[account.account_id]["optional"] == 1
    assert counts[members[0].account_id]["optional"] == 2
    assert counts[members[1].account_id]["required"] == 3


def test_an_unreachable_account_does_not_stop_the_rest(run, account):
    a, b = member(account, fresh_id()), member(account, fresh_id())
    seed(a, 2, 0)
    seed(b, 1, 0)

    def fault(req):
        if req.action == "AssumeRole" and b.account_id in req.params.get("RoleArn", ""):
            return query_error("AccessDenied", "User is not authorized to perform: sts:AssumeRole")
        return None

    with AwsProxy(conftest.ENDPOINT, fault) as proxy:
        r = run("scan", "--regions", REGION, "--no-usage", "--format", "json",
                "--accounts", f"{a.account_id},{b.account_id}", "--role-name", ROLE, endpoint=proxy.url)
    assert r.code == 1
    assert f"{b.account_id}: access denied on sts:AssumeRole: AccessDenied" in r.stderr
    assert "trust policy" in r.stderr
    doc = r.json()
    assert doc["summary"]["total"]["instances"] == 2
    assert [f["account_id"] for f in doc["failures"]] == [b.account_id]


def test_bad_account_flags(run):
    r = run("scan", "--accounts", "123", "--role-name", ROLE)
    assert r.code == 2 and "malformed account id `123`" in r.stderr
    r = run("scan", "--accounts", "123456789012")
    assert r.code == 2 and "need --role-name" in r.stderr
    r = run("scan", "--org", "--role-name", "arn:aws:iam::1:role/x")
    assert r.code == 2 and "malformed role name" in r.stderr


def test_apply_and_rollback_across_accounts(run, account, tmp_path):
    a, b = member(account, fresh_id()), member(account, fresh_id())
    ids = {a.account_id: seed(a, 2, 0), b.account_id: seed(b, 3, 0)}
    plan = tmp_path / "plan.json"
    accounts = f"{a.account_id},{b.account_id}"
    r = run("plan", "--action", "require-v2", "--regions", REGION, "--no-usage", "--include-unknown",
            "--accounts", accounts, "--role-name", ROLE, "--out", str(plan))
    assert r.code == 0, r.stderr

    # Without a role, the other accounts cannot be reached: refused, nothing sent.
    with AwsProxy(conftest.ENDPOINT) as proxy:
        r = run("apply", str(plan), "--yes", endpoint=proxy.url)
        assert r.code == 1 and "--role-name" in r.stderr
        assert proxy.count("ModifyInstanceMetadataOptions") == 0

    r = run("apply", str(plan), "--yes", "--role-name", ROLE, "--format", "json")
    assert r.code == 0, r.stderr
    assert r.json()["counts"]["applied"] == 5

    def tokens(acct):
        out = acct.client("ec2", REGION).describe_instances(InstanceIds=ids[acct.account_id])
        return {i["MetadataOptions"]["HttpTokens"] for res in out["Reservations"] for i in res["Instances"]}

    assert tokens(a) == tokens(b) == {"required"}
    r = run("rollback", "1", "--yes", "--role-name", ROLE)
    assert r.code == 0, r.stderr
    assert tokens(a) == tokens(b) == {"optional"}
