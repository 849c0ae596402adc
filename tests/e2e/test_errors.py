"""What users see when things go wrong: one line, a hint, an exit code,
and for bad input, not a single request to AWS."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import fleet
from awsproxy import AwsProxy, ec2_error, query_error
from conftest import ENDPOINT


def assert_one_error(r, *needles):
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) >= 1, r.stderr
    for n in needles:
        assert n in r.stderr, (n, r.stderr)
    assert "help:" in r.stderr
    assert "panicked" not in r.stderr and "RUST_BACKTRACE" not in r.stderr


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--instance-ids", "i-123"], "malformed instance id `i-123`"),
        (["--instance-ids", "i-0123456789abcdef0,bogus"], "malformed instance id `bogus`"),
        (["--exclude-ids", "x"], "malformed instance id `x`"),
        (["--tag", "env"], "malformed tag filter `env`"),
        (["--exclude-tag", "=prod"], "malformed tag filter `=prod`"),
        (["--regions", "us-east-1,mars"], "malformed region `mars`"),
        (["--input-file", "/nonexistent/ids.csv"], "cannot read /nonexistent/ids.csv"),
    ],
)
def test_bad_input_exits_2_without_calling_aws(run, args, needle):
    with AwsProxy(ENDPOINT) as proxy:
        r = run("scan", *args, endpoint=proxy.url)
        assert r.code == 2, r.stderr
        assert_one_error(r, needle)
        assert proxy.total() == 0


def test_malformed_csv_names_the_line(run, tmp_path):
    bad = tmp_path / "ids.csv"
    bad.write_text("instance_id,region\ni-0123456789abcdef0,us-east-1\ni-nothex,us-east-1\n")
    with AwsProxy(ENDPOINT) as proxy:
        r = run("scan", "--input-file", str(bad), endpoint=proxy.url)
        assert r.code == 2
        assert_one_error(r, "line 3", "i-nothex")
        short = tmp_path / "short.csv"
        short.write_text("instance_id,region\ni-0123456789abcdef0\n")
        r = run("scan", "--input-file", str(short), endpoint=proxy.url)
        assert r.code == 2
        assert_one_error(r, "line 2", "expected 2 fields, found 1")
        nocol = tmp_path / "nocol.csv"
        nocol.write_text("id\ni-0123456789abcdef0\n")
        r = run("scan", "--input-file", str(nocol), endpoint=proxy.url)
        assert r.code == 2
        assert_one_error(r, "no `instance_id` column")
        assert proxy.total() == 0


def test_clap_rejects_unknown_values_with_exit_2(run):
    r = run("scan", "--state", "sleeping")
    assert r.code == 2
    assert "sleeping" in r.stderr


# The ways to provide credentials that the `help:` line of "no AWS credentials found" names.
NO_CREDENTIALS_HINTS = ("aws configure", "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "aws sso login --profile", "AWS_WEB_IDENTITY_TOKEN_FILE", "scripts/demo")


def test_no_credentials(run):
    r = run("scan", "--regions", "us-east-1", creds=False)
    assert r.code == 1
    assert_one_error(r, "no AWS credentials found", *NO_CREDENTIALS_HINTS)


@contextlib.contextmanager
def fake_imds(behaviour: str):
    """A loopback stand-in for the instance metadata endpoint, as found off
    EC2 or where IMDS is blocked: `forbid` answers 403 to everything, `hang`
    accepts connections and never answers, `refuse` is a closed port.
    Yields (url, requests seen)."""
    seen: list[str] = []
    if behaviour == "refuse":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        yield f"http://127.0.0.1:{port}", seen
        return
    if behaviour == "forbid":

        class Forbid(BaseHTTPRequestHandler):
            def answer(self):
                seen.append(f"{self.command} {self.path}")
                self.send_response(403)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_PUT = answer

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Forbid)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}", seen
        finally:
            server.shutdown()
            server.server_close()
        return
    assert behaviour == "hang"
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []

    def accept():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            seen.append("connection")
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", seen
    finally:
        listener.close()
        for c in held:
            c.close()


@pytest.mark.parametrize("behaviour", ["forbid", "hang", "refuse"])
def test_no_credentials_anywhere_even_where_imds_answers(run, behaviour):
    """No environment credentials, no config files (HOME is empty, the
    AWS_*_FILE paths do not exist), and instance metadata enabled but
    answering 403, never answering, or refusing: the chain found nothing,
    which is not "credentials rejected"."""
    with fake_imds(behaviour) as (url, seen):
        started = time.monotonic()
        r = run(
            "scan",
            "--regions",
            "us-east-1",
            creds=False,
            env={"AWS_EC2_METADATA_DISABLED": None, "AWS_EC2_METADATA_SERVICE_ENDPOINT": url},
        )
        elapsed = time.monotonic() - started
    assert r.code == 1, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, r.stderr
    assert errors[0].startswith("error: no AWS credentials found: tried environment variables"), r.stderr
    assert_one_error(r, *NO_CREDENTIALS_HINTS)
    assert "rejected" not in r.stderr and "access key and secret" not in r.stderr
    assert r.stdout == ""
    if behaviour == "forbid":
        # The SDK asked for an IMDSv2 session token and heard 403.
        assert seen and seen[0] == "PUT /latest/api/token", seen
        assert "instance metadata gave no session token: request forbidden" in errors[0]
    if behaviour == "hang":
        assert seen, "the IMDS stand-in was never asked"
    # IMDS waits 1 s for an answer and does not retry timeouts.
    assert elapsed < 10, elapsed


def test_unknown_profile(run):
    r = run("scan", "--regions", "us-east-1", "--profile", "nosuchprofile", creds=False)
    assert r.code == 1
    assert_one_error(r, "nosuchprofile")


def test_expired_token(run):
    def fault(req):
        if req.action == "GetCallerIdentity":
            return query_error("ExpiredToken", "The security token included in the request is expired")
        return None

    with AwsProxy(ENDPOINT, fault) as proxy:
        r = run("scan", "--regions", "us-east-1", endpoint=proxy.url)
    assert r.code == 1
    assert_one_error(r, "credentials expired", "ExpiredToken", "aws sso login")
    assert r.stdout == ""


def test_access_denied_in_one_region_names_the_permission(run, account):
    fleet.launch(account.client("ec2", "us-east-1"), 3)
    fleet.launch(account.client("ec2", "eu-west-1"), 2)

    def fault(req):
        if req.action == "DescribeInstances" and req.region == "eu-west-1":
            return ec2_error("UnauthorizedOperation", "You are not authorized to perform this operation.", 403)
        return None

    with AwsProxy(ENDPOINT, fault) as proxy:
        r = run("scan", "--regions", "us-east-1,eu-west-1", "--format", "json", endpoint=proxy.url)
    assert r.code == 1
    assert_one_error(r, "eu-west-1", "access denied on ec2:DescribeInstances", "UnauthorizedOperation", "grant `ec2:DescribeInstances`")
    doc = r.json()
    assert doc["scan"]["complete"] is False
    regions = {c["region"]: c for c in doc["summary"]["regions"]}
    assert regions["us-east-1"]["instances"] == 3 and regions["us-east-1"]["complete"] is True
    assert regions["eu-west-1"]["complete"] is False
    assert doc["failures"][0]["region"] == "eu-west-1"
    assert doc["failures"][0]["code"] == "UnauthorizedOperation"


def test_iam_denied_degrades_to_unknown_roles(run, account):
    fleet.launch(account.client("ec2", "us-east-1"), 2)

    def fault(req):
        if req.action == "ListInstanceProfiles":
            return query_error("AccessDenied", "User is not authorized to perform: iam:ListInstanceProfiles")
        return None

    with AwsProxy(ENDPOINT, fault) as proxy:
        r = run("scan", "--regions", "us-east-1", "--format", "json", endpoint=proxy.url)
    assert r.code == 0, r.stderr
    assert "roles unknown" in r.stderr and "iam:ListInstanceProfiles" in r.stderr
    assert r.json()["summary"]["total"]["instances"] == 2


def test_unknown_region_suggests(run):
    r = run("scan", "--regions", "us-east-9")
    assert r.code == 2
    assert_one_error(r, "unknown region `us-east-9`", "did you mean")


def test_disabled_region_reported_rest_completes(run, account):
    fleet.launch(account.client("ec2", "us-east-1"), 1)
    r = run("scan", "--regions", "us-east-1,me-south-1", "--format", "json")
    assert r.code == 1
    assert_one_error(r, "me-south-1", "not enabled")
    doc = r.json()
    assert doc["summary"]["total"]["instances"] == 1
    assert doc["failures"][0]["region"] == "me-south-1"


def test_unreachable_endpoint(run):
    r = run("scan", "--regions", "us-east-1", endpoint="http://127.0.0.1:9")
    assert r.code == 1
    assert_one_error(r, "could not reach AWS")
