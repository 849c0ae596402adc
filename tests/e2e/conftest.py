"""Fixtures for the end-to-end tests: the moto server, a fresh AWS account
per test, and a runner for the real imdsguard binary.

`scripts/test` starts moto and exports IMDSGUARD_TEST_ENDPOINT and
IMDSGUARD_BIN. Each test gets its own account id (moto keeps separate state
per account, selected by the credentials of an assumed role), so tests are
isolated without resetting the server and can run in any order.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from awsproxy import AwsProxy

MOTO = os.environ.get("IMDSGUARD_TEST_ENDPOINT", "")
BIN = os.environ.get("IMDSGUARD_BIN", "")
# Every test talks to moto through this translating proxy (see awsproxy.py:
# aws-sdk-cloudwatch speaks CBOR, moto does not). Set in pytest_configure,
# before test modules import it.
ENDPOINT = ""
SHIM: AwsProxy | None = None


def no_account_defaults(req):
    """moto answers GetInstanceMetadataDefaults with a 500 (it lacks it);
    EC2 answers an account without defaults with an empty accountLevel.
    Tests that need defaults (or a failure) answer it in their own proxy,
    which sits in front of this one."""
    if req.action != "GetInstanceMetadataDefaults":
        return None
    from awsproxy import Reply

    body = (
        '<GetInstanceMetadataDefaultsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
        "<requestId>shim-1</requestId><accountLevel/></GetInstanceMetadataDefaultsResponse>"
    )
    return Reply(200, body.encode(), {"Content-Type": "text/xml"})


def pytest_configure(config):
    global ENDPOINT, SHIM
    if not MOTO or not BIN:
        raise pytest.UsageError("run the end-to-end tests through scripts/test (it starts moto and builds imdsguard)")
    SHIM = AwsProxy(MOTO, fault=no_account_defaults, cbor_shim=True).__enter__()
    ENDPOINT = SHIM.url


def pytest_unconfigure(config):
    if SHIM:
        SHIM.__exit__(None, None, None)


@dataclass
class Account:
    account_id: str
    access_key: str
    secret_key: str
    session_token: str

    def client(self, service: str, region: str = "us-east-1", endpoint: str = ""):
        return boto3.client(
            service,
            region_name=region,
            endpoint_url=endpoint or ENDPOINT,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            aws_session_token=self.session_token,
        )

    def env(self) -> dict:
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_SESSION_TOKEN": self.session_token,
        }


def new_account() -> Account:
    account_id = random.choice("123456789") + "".join(random.choice("0123456789") for _ in range(11))
    sts = boto3.client(
        "sts",
        region_name="us-east-1",
        endpoint_url=ENDPOINT,
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="moto-does-not-check",
    )
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account_id}:role/imdsguard-test", RoleSessionName="e2e")[
        "Credentials"
    ]
    return Account(account_id, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])


@pytest.fixture
def account() -> Account:
    return new_account()


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> dict:
        return json.loads(self.stdout)


class Runner:
    """Runs the real binary with a scrubbed environment: no ambient AWS
    config, no IMDS (the SDK would otherwise try 169.254.169.254), one
    attempt per request (moto's 500s would be retried for seconds)."""

    def __init__(self, tmp: Path, account: Account | None):
        self.tmp = tmp
        self.account = account
        self.db = tmp / "imdsguard.db"
        home = tmp / "home"
        home.mkdir(exist_ok=True)
        self.base_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "AWS_CONFIG_FILE": str(home / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_REGION": "us-east-1",
            "IMDSGUARD_DB": str(self.db),
        }

    def __call__(self, *args: str, endpoint: str = "", env: dict | None = None, creds: bool = True) -> Result:
        full_env = dict(self.base_env)
        if creds and self.account:
            full_env.update(self.account.env())
        full_env["AWS_ENDPOINT_URL"] = endpoint or ENDPOINT
        full_env.update(env or {})
        full_env = {k: v for k, v in full_env.items() if v is not None}
        proc = subprocess.run([BIN, *args], capture_output=True, text=True, env=full_env, timeout=300)
        return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def run(tmp_path, account) -> Runner:
    return Runner(tmp_path, account)
