"""`notify`: one notice per owner, to files, SNS (read back through an SQS
subscription) and SES (read back from moto's record of sent mail), sent
again only when what it says changed."""

import json
import urllib.request

import fleet
from conftest import MOTO


def seed(run, account):
    ec2 = account.client("ec2", "us-east-1")
    in_use, ready = fleet.launch(ec2, 2, tags={"owner": "team-a"})
    (alice,) = fleet.launch(ec2, 1, tags={"Owner": "alice@example.com"})
    (untagged,) = fleet.launch(ec2, 1)
    fleet.launch(ec2, 1, tokens="required", tags={"owner": "team-a"})
    fleet.put_metrics(account, [in_use], value=4.0)
    fleet.put_metrics(account, [ready, alice], value=0.0)
    assert run("scan", "--regions", "us-east-1").code == 0
    return ec2, dict(in_use=in_use, ready=ready, alice=alice, untagged=untagged)


def subscribed_queue(account):
    sns, sqs = account.client("sns"), account.client("sqs")
    topic = sns.create_topic(Name="imds-owners")["TopicArn"]
    queue = sqs.create_queue(QueueName="imds-owners")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)

    def drain():
        got = []
        while True:
            msgs = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
            if not msgs:
                return got
            for m in msgs:
                got.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])

    return topic, drain


def statuses(result, via):
    return {
        n["owner_key"]: d["status"]
        for n in result.json()["notices"]
        for d in n["deliveries"]
        if d["via"] == via
    }


def test_notices_to_files(run, account):
    _, ids = seed(run, account)
    out = run.tmp / "notices"
    r = run("notify", "--out-dir", str(out), "--format", "json")
    assert r.code == 0, r.stderr
    doc = r.json()
    owners = {n["owner_key"]: n for n in doc["notices"]}
    acct = account.account_id
    assert set(owners) == {"tag:team-a", "tag:alice@example.com", f"account:{acct}"}
    assert sorted(owners["tag:team-a"]["instance_ids"]) == sorted([ids["in_use"], ids["ready"]])
    assert owners["tag:alice@example.com"]["email"] == "alice@example.com"
    # One Markdown file and one e-mail body per owner, under stable names.
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{stem}.{ext}"
        for stem in ("team-a", "alice@example.com", f"_no-owner-tag-{acct}")
        for ext in ("md", "txt")
    )
    md = (out / "team-a.md").read_text()
    assert md.startswith("# IMDSv1 on instances of team-a")
    assert f"`imdsguard harden --regions us-east-1 --instance-ids {ids['ready']}`" in md
    assert "Still uses IMDSv1" in md and "56 \\(last " in md
    text = (out / f"_no-owner-tag-{acct}.txt").read_text()
    assert f"* {ids['untagged']}" in text and "No evidence yet" in text
    assert f"--instance-ids {ids['untagged']}" in text
    # The same scan gives the same files, byte for byte.
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert run("notify", "--out-dir", str(out)).code == 0
    assert before == {p.name: p.read_bytes() for p in out.iterdir()}


def test_sns_sends_only_what_changed(run, account):
    ec2, ids = seed(run, account)
    topic, drain = subscribed_queue(account)

    r = run("notify", "--sns-topic", topic, "--dry-run", "--format", "json")
    assert r.code == 0, r.stderr
    assert set(statuses(r, "sns").values()) == {"would-send"}
    assert drain() == []

    r = run("notify", "--sns-topic", topic, "--yes", "--format", "json")
    assert r.code == 0, r.stderr
    assert set(statuses(r, "sns").values()) == {"sent"}
    got = drain()
    by_owner = {m["MessageAttributes"]["owner"]["Value"]: m for m in got}
    assert set(by_owner) == {"team-a", "alice@example.com", f"account:{account.account_id}"}
    assert by_owner["team-a"]["Subject"] == "IMDSv1: 2 instances of team-a to act on"
    assert ids["in_use"] in by_owner["team-a"]["Message"]

    # Nothing changed: nothing is sent again.
    r = run("notify", "--sns-topic", topic, "--yes", "--format", "json")
    assert set(statuses(r, "sns").values()) == {"unchanged"}
    assert drain() == []

    # team-a's ready instance gets enforced: only team-a's notice changed.
    ec2.modify_instance_metadata_options(InstanceId=ids["ready"], HttpTokens="required")
    assert run("scan", "--regions", "us-east-1").code == 0
    r = run("notify", "--sns-topic", topic, "--yes", "--format", "json")
    assert statuses(r, "sns")["tag:team-a"] == "sent"
    assert statuses(r, "sns")["tag:alice@example.com"] == "unchanged"
    got = drain()
    assert [m["MessageAttributes"]["owner"]["Value"] for m in got] == ["team-a"]
    assert ids["ready"] not in got[0]["Message"]

    r = run("notify", "--sns-topic", topic, "--yes", "--resend", "--format", "json")
    assert set(statuses(r, "sns").values()) == {"sent"}
    assert len(drain()) == 3

    journal = run("query", "SELECT status, COUNT(*) AS n FROM notices GROUP BY status", "--format", "json").json()
    assert journal["rows"] == [{"status": "sent", "n": 7}]


def test_ses_mails_owners_with_an_address(run, account):
    _, ids = seed(run, account)
    sender = f"imds-{account.account_id}@example.com"
    account.client("ses").verify_email_identity(EmailAddress=sender)
    r = run("notify", "--ses-from", sender, "--yes", "--format", "json")
    assert r.code == 0, r.stderr
    assert statuses(r, "ses") == {
        "tag:team-a": "no-address",
        "tag:alice@example.com": "sent",
        f"account:{account.account_id}": "no-address",
    }
    data = json.load(urllib.request.urlopen(MOTO + "/moto-api/data.json"))
    mails = [m for m in data["ses"]["Message"] if m["source"] == sender]
    assert len(mails) == 1
    assert mails[0]["destinations"]["ToAddresses"] == ["alice@example.com"]
    assert mails[0]["subject"] == "IMDSv1: 1 instance of alice@example.com to act on"
    assert ids["alice"] in mails[0]["body"] and "Ready: it will be enforced" in mails[0]["body"]


def test_bad_input_and_failed_sends(run, account):
    seed(run, account)
    r = run("notify")
    assert r.code == 2 and "nowhere to put the notices" in r.stderr and "--out-dir" in r.stderr
    r = run("notify", "--sns-topic", "imds-owners")
    assert r.code == 2 and "is not an SNS topic ARN" in r.stderr
    r = run("notify", "--ses-from", "not-an-address")
    assert r.code == 2 and "is not an e-mail address" in r.stderr
    # A real send needs a confirmation; without a terminal, --yes.
    topic = f"arn:aws:sns:us-east-1:{account.account_id}:no-such-topic"
    r = run("notify", "--sns-topic", topic)
    assert r.code == 2 and "without confirmation" in r.stderr and "--yes" in r.stderr
    # A topic that does not exist: each notice fails, is journaled as failed,
    # and the command exits 1; a re-run tries again (nothing counts as sent).
    for _ in range(2):
        r = run("notify", "--sns-topic", topic, "--yes", "--format", "json")
        assert r.code == 1
        assert set(statuses(r, "sns").values()) == {"failed"}
    journal = run("query", "SELECT status, COUNT(*) AS n FROM notices GROUP BY status", "--format", "json").json()
    assert journal["rows"] == [{"status": "failed", "n": 6}]


def test_hostile_owner_tags_stay_in_their_files(run, account):
    ec2 = account.client("ec2", "us-east-1")
    fleet.launch(ec2, 1, tags={"owner": "../../escape"})
    fleet.launch(ec2, 1, tags={"owner": "https://evil.example/x"})
    fleet.launch(ec2, 1, tags={"owner": f"_no-owner-tag-{account.account_id}"})
    fleet.launch(ec2, 1)
    assert run("scan", "--regions", "us-east-1", "--no-usage").code == 0
    out = run.tmp / "notices"
    r = run("notify", "--out-dir", str(out), "--format", "json")
    assert r.code == 0, r.stderr
    files = sorted(p.name for p in out.iterdir())
    assert len(files) == 8, files  # four owners, none overwritten
    assert not list(run.tmp.glob("escape*")) and not list(out.parent.parent.glob("escape*"))
    link = next(out.glob("https*evil.example-x-*.md")).read_text()
    assert link.startswith("# IMDSv1 on instances of ` https://evil.example/x `")
