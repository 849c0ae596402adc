"""Bits of the AWS wire protocols that both of our stand-ins for AWS need:
the end-to-end tests' proxy (tests/e2e/awsproxy.py) and the benchmark's
fake (bench/fakeaws.py, which puts this directory on sys.path to import it).

  * the SigV4 credential scope of an Authorization header, which names the
    caller's access key id, the region and the service;
  * error bodies in EC2's query shape and in the awsQuery shape (STS, IAM);
  * timestamps in Smithy RPC-v2 CBOR: CBOR tag 1 (epoch seconds), which
    cbor2 decodes to an aware datetime.

Kept to the standard library and cbor2, so that a script outside the test
suite can import it without pytest or boto3.
"""

from __future__ import annotations

import datetime
import re
from typing import NamedTuple
from xml.sax.saxutils import escape

import cbor2

# Authorization: AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/ec2/aws4_request, SignedHeaders=..., Signature=...
SCOPE = re.compile(r"Credential=([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")


class Scope(NamedTuple):
    access_key: str
    region: str
    service: str


def credential_scope(authorization: str) -> Scope:
    """Who, where and what a SigV4-signed request is for; all empty when the
    header carries no credential scope (an unsigned request)."""
    m = SCOPE.search(authorization)
    return Scope(*m.groups()) if m else Scope("", "", "")


def ec2_error_xml(code: str, message: str, request_id: str) -> bytes:
    """An error body in EC2's query-protocol shape (<Response><Errors>...)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{code}</Code><Message>{escape(message)}</Message>"
        f"</Error></Errors><RequestID>{request_id}</RequestID></Response>"
    ).encode()


def query_error_xml(code: str, message: str, request_id: str, xmlns: str = "") -> bytes:
    """An error body in the awsQuery shape used by STS and IAM (<ErrorResponse>...),
    with the service's namespace when `xmlns` is given."""
    root = f'<ErrorResponse xmlns="{xmlns}">' if xmlns else "<ErrorResponse>"
    return (
        f"{root}<Error><Type>Sender</Type><Code>{code}</Code><Message>{escape(message)}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()


def epoch_seconds(x) -> float:
    """A CBOR-decoded timestamp as epoch seconds: cbor2 gives tag 1 as a
    datetime (naive ones are taken as UTC), an unknown tag as CBORTag."""
    if isinstance(x, datetime.datetime):
        if x.tzinfo is None:
            x = x.replace(tzinfo=datetime.timezone.utc)
        return x.timestamp()
    if isinstance(x, cbor2.CBORTag):
        return epoch_seconds(x.value)
    return float(x)


def cbor_timestamp(seconds: float) -> cbor2.CBORTag:
    """Epoch seconds as RPC-v2 CBOR sends a timestamp: tag 1 around a double."""
    return cbor2.CBORTag(1, float(seconds))
