"""A fast, deterministic fake of the AWS APIs imdsguard calls, on loopback only.

moto is too slow to serve fleets of 10,000+ instances, so this server
*generates* a fleet from a seed instead of storing one: instance `idx` of
region `r` is a pure function of (seed, r, idx), and only the metadata
options changed by `ModifyInstanceMetadataOptions` are kept in memory.

With --accounts K it serves an organization of K accounts: the management
account 123456789012 (the base credentials, any access key id but an `ASIA`
one, e.g. `bench`; its fleet is exactly the single-account fleet) and K - 1
member accounts whose ids, names and fleets come from the seed. Every account
has the --regions sizes; a member's HttpTokens=optional share is the given
one shifted by a non-zero step of -0.10..+0.10 (a seeded permutation), so
that up to 21 accounts all have different counts. --suspended-accounts N adds N SUSPENDED accounts
with no fleet that only ListAccounts shows (assuming a role there is denied).
Every call is answered for the account of its access key id (the SigV4
`Credential=AKID/...` scope): `AssumeRole` issues `ASIA` + account id + a
4-hex-digit serial, and the session token must come with it.

It implements exactly what imdsguard sends:

  sts        GetCallerIdentity               awsQuery (form POST, XML); the caller's account
  sts        AssumeRole                      awsQuery; arn:aws:iam::ACCOUNT:role/ROLE with
                                             ROLE = --role-name (and --external-id if set),
                                             ACCOUNT an active account of the fleet
  organizations ListAccounts                 JSON 1.1 (X-Amz-Target), management account only,
                                             MaxResults <= 20 (default 20), NextToken;
                                             Status and State (--state-only: State alone,
                                             as after Status's retirement on 2026-09-09)
  iam        ListInstanceProfiles            awsQuery (form POST, XML, Marker/MaxItems)
  ec2        DescribeRegions                 EC2 query (form POST, XML)
  ec2        DescribeInstances               MaxResults/NextToken, InstanceId.N,
                                             Filter.N.Name/Value.M (instance-id,
                                             instance-state-name, tag:KEY, tag-key)
  ec2        GetInstanceMetadataDefaults     no account-level defaults (an empty <accountLevel/>)
  ec2        DescribeLaunchTemplateVersions  no launch templates: an empty set; without a template
                                             only $Default/$Latest, MaxResults 1..200, NextToken;
                                             a LaunchTemplateId/Name is not found
  ec2        DescribeImages                  ImageId.N and/or Filter image-id: one image per id
                                             asked; the fleet's even-numbered AMIs have
                                             ImdsSupport=v2.0, the odd ones none (other ids:
                                             by a CRC of the id)
  autoscaling DescribeAutoScalingGroups      awsQuery; no groups (MaxRecords <= 100, NextToken)
  autoscaling DescribeLaunchConfigurations   awsQuery; none (never called while there are no groups)
  ec2        ModifyInstanceMetadataOptions   behind a token bucket per region
                                             (burst 100, refill 5/s by default);
                                             empty bucket: HTTP 503 RequestLimitExceeded
                                             (--other-caller REGION=RATE: a second
                                             caller drains that bucket too)
  monitoring GetMetricData                   Smithy RPC-v2 CBOR

and what the peer tool the benchmark compares with (bench/peers.py:
metabadger 0.1.11 with botocore 1.44) sends besides DescribeInstances:

  ec2        DescribeTags                    Filter.N (resource-id, resource-type, key, value;
                                             key and value with * and ? wildcards), MaxResults
                                             5..1000 and NextToken (without MaxResults: every tag,
                                             as DescribeInstances gives every instance)
  monitoring GetMetricStatistics             JSON 1.0 (X-Amz-Target GraniteServiceVersion20100801.*):
                                             CloudWatch's model offers smithy-rpc-v2-cbor, json and
                                             query, and botocore 1.44 (pinned in
                                             bench/requirements-peers.txt) prefers json; the Sum
                                             statistic of the same per-instance data GetMetricData
                                             serves, at most 1,440 datapoints a call
  s3         ListObjectsV2, GetObject        REST, path-style (`GET /BUCKET?list-type=2&prefix=..&delimiter=..
                                             &continuation-token=..`, `GET /BUCKET/KEY`), with --trail-bytes
                                             only: one CloudTrail bucket (TrailBucket) in its own region
                                             (another region's signature: AuthorizationHeaderMalformed),
                                             1,000 keys and common prefixes a page

Every AWS call is counted by (service, region, action, account), where
service and region come from the SigV4 credential scope and account from its
access key id, and delayed by a fixed latency (--latency-ms, default 50).
Only ModifyInstanceMetadataOptions is throttled; every read call (the source
listings above included) is only delayed.
Bench endpoints (never counted, never delayed):

  GET  /_bench/stats     counters, throttles, busy time, modifications, calls in flight by action,
                         and under "s3" the prefixes listed and the objects fetched (JSON)
  GET  /_bench/fleet     the generated fleet's expected summary (JSON; "regions" is the
                         management account's, "accounts" has every account)
  GET  /_bench/roles     per region of the management account: instances, those with an
                         instance profile, and those of them first in their reservation (JSON)
  GET  /_bench/state     current HttpTokens/HttpEndpoint counts per region (JSON;
                         ?account=ID for another account than the management one)
  GET  /_bench/trail     the trail bucket's layout and what `imdsguard trail --bucket` must find in
                         its window: counts and, per instance, calls, role, first/last call and
                         calls per user agent (JSON; null without --trail-bytes)
  POST /_bench/lookup    current metadata options of a JSON list of instance ids
  POST /_bench/owners    {id: {"account": .., "region": ..} or null} for a JSON list of ids
  GET  /_bench/modifies  per instance, the ModifyInstanceMetadataOptions calls of ours: sent (throttled
                         ones included), landed (accepted), changed (landed and the options differed),
                         after_landed (sent after one had landed); the monotonic times of the landed
                         ones; the bucket (burst, refill) and the second caller's takes (JSON)
  POST /_bench/reset     zero the counters, the per-instance ones and the second caller's included
                         (the fleet state and the buckets' tokens are kept)
  POST /_bench/shutdown  stop the server

A second caller (--other-caller us-east-1=1): another tool or team using the
same account, in the management account's REGION. A thread of the fake wants
one ModifyInstanceMetadataOptions token every 1/RATE s from the same bucket
imdsguard's calls take from; when the bucket is empty it is throttled too and
tries again every 20 ms until it gets its token (its next one is then due one
period later, never sooner: it does not catch up). What is left for imdsguard
is the refill minus what it actually took (in /_bench/modifies).

The server binds 127.0.0.1 only (there is deliberately no option to change
that) and stops by itself after --max-lifetime seconds.

Usage:
  fakeaws.py --regions us-east-1=400,eu-west-1=300 [--seed 42] [--latency-ms 50]
             [--accounts K] [--suspended-accounts N] [--role-name BenchRole]
             [--external-id X] [--state-only]
             [--trail-bytes N [--trail-days 7] [--trail-bucket B] [--trail-prefix P]
              [--trail-bucket-region R] [--trail-busy-objects 1010] [--trail-now EPOCH]]
             [--burst 100] [--refill 5] [--other-caller REGION=RATE]
             [--ready-file PATH] [--max-lifetime 3600] [shares...]
"""

from __future__ import annotations

import argparse
import base64
import bisect
import collections
import datetime
import copy
import json
import math
import random
import re
import struct
import sys
import threading
import time
import urllib.parse
import zlib
from fnmatch import fnmatchcase
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

import cbor2

# The SigV4 scope, the XML error bodies and the CBOR timestamps are shared with
# the end-to-end tests' proxy (tests/e2e/awsproxy.py) through one module,
# tests/e2e/awsproto.py. bench.py runs this file as a script (so only bench/
# is on sys.path), hence the path entry; awsproto needs nothing but cbor2.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "e2e"))
from awsproto import cbor_timestamp, credential_scope, ec2_error_xml, epoch_seconds, query_error_xml  # noqa: E402

HOST = "127.0.0.1"  # loopback only, by design
ACCOUNT = "123456789012"  # the management account: the base credentials' account
ORG_ID = "o-bench0000001"
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
AUTOSCALING_NS = "http://autoscaling.amazonaws.com/doc/2011-01-01/"
DAY = 86_400

# Regions DescribeRegions lists besides the fleet's; a few are opt-in and not opted in.
OTHER_REGIONS = [
    ("us-east-2", "opt-in-not-required"),
    ("us-west-1", "opt-in-not-required"),
    ("us-west-2", "opt-in-not-required"),
    ("ca-central-1", "opt-in-not-required"),
    ("eu-central-1", "opt-in-not-required"),
    ("eu-west-2", "opt-in-not-required"),
    ("eu-west-3", "opt-in-not-required"),
    ("eu-north-1", "opt-in-not-required"),
    ("ap-northeast-1", "opt-in-not-required"),
    ("ap-northeast-2", "opt-in-not-required"),
    ("ap-south-1", "opt-in-not-required"),
    ("ap-southeast-1", "opt-in-not-required"),
    ("ap-northeast-3", "opt-in-not-required"),
    ("af-south-1", "not-opted-in"),
    ("ap-east-1", "not-opted-in"),
    ("me-south-1", "not-opted-in"),
    ("eu-south-1", "not-opted-in"),
]

# Instance classes. Each instance gets exactly one; counts per region are exact
# quotas (see Fleet), positions are shuffled by the seed.
OPT_INUSE, OPT_READY, OPT_STOPPED, DIS_RUNNING, DIS_STOPPED, REQ_REJECTING, REQ_RUNNING, REQ_STOPPED = range(8)
CLASS_NAMES = [
    "optional/running/v1-calls",
    "optional/running/no-v1-calls",
    "optional/stopped/no-data",
    "disabled/running",
    "disabled/stopped",
    "required/running/v1-rejected",
    "required/running",
    "required/stopped",
]
STOPPED = {OPT_STOPPED, DIS_STOPPED, REQ_STOPPED}
OPTIONAL = {OPT_INUSE, OPT_READY, OPT_STOPPED}
DISABLED = {DIS_RUNNING, DIS_STOPPED}

AMIS = [f"ami-0{zlib.crc32(f'ami{i}'.encode()):08x}{i:08x}" for i in range(8)]
AMI_INDEX = {ami: i for i, ami in enumerate(AMIS)}
TEAMS = ["payments", "search", "platform", "data", "identity", "growth", "ml", "edge"]
PROFILE_COUNT = 25
# DescribeInstances groups instances in reservations of this many (pairs
# launched together, like RunInstances with MinCount 2): idx // RESERVATION.
RESERVATION = 2


def utc(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def has_profile(h: int) -> bool:
    """Whether the instance of this hash has an IAM instance profile (70 %)."""
    return h % 10 < 7


def imds_v2_image(image_id: str) -> bool:
    """Whether DescribeImages says ImdsSupport=v2.0 for this AMI: the fleet's
    even-numbered AMIs do and the odd ones do not (half of them); any other id
    by the parity of its CRC. Fixed per AMI, whatever else a call asks for."""
    i = AMI_INDEX.get(image_id)
    return (i if i is not None else zlib.crc32(image_id.encode())) % 2 == 0


def quotas(n: int, shares: argparse.Namespace) -> list[int]:
    """Exact class counts for a region of n instances."""
    n_opt = round(n * shares.optional_share)
    n_dis = round(n * shares.disabled_share)
    n_req = n - n_opt - n_dis
    inuse = round(n_opt * shares.in_use_share)
    opt_stopped = round(n_opt * shares.stopped_share)
    dis_stopped = round(n_dis * shares.stopped_share)
    rejecting = round(n_req * shares.rejecting_share)
    req_stopped = round(n_req * shares.stopped_share)
    counts = [0] * 8
    counts[OPT_INUSE] = inuse
    counts[OPT_STOPPED] = opt_stopped
    counts[OPT_READY] = n_opt - inuse - opt_stopped
    counts[DIS_STOPPED] = dis_stopped
    counts[DIS_RUNNING] = n_dis - dis_stopped
    counts[REQ_REJECTING] = rejecting
    counts[REQ_STOPPED] = req_stopped
    counts[REQ_RUNNING] = n_req - rejecting - req_stopped
    assert min(counts) >= 0 and sum(counts) == n, counts
    return counts


class Region:
    """One account's fleet in one region. `number` is unique across accounts
    (it is part of every instance id); `salt` is empty for the management
    account, whose fleet is therefore exactly the single-account one."""

    def __init__(self, number: int, name: str, size: int, seed: int, shares: argparse.Namespace,
                 account: str = ACCOUNT, salt: str = ""):
        self.number = number
        self.name = name
        self.size = size
        self.account = account
        self.salt = salt
        self.counts = quotas(size, shares)
        classes = bytearray()
        for cls, count in enumerate(self.counts):
            classes.extend(bytes([cls]) * count)
        order = list(range(size))
        random.Random(f"{seed}:{salt}{name}").shuffle(order)
        self.classes = bytearray(size)
        for pos, idx in enumerate(order):
            self.classes[idx] = classes[pos]
        # The token bucket for mutating calls.
        self.tokens = float(shares.burst)
        self.refilled = time.monotonic()
        # AMI -> instances allowing IMDSv1 that run it (Fleet.v1_images), computed once.
        self.v1_images: dict[str, int] | None = None


class Account:
    def __init__(self, account_id: str, name: str, status: str, shares: argparse.Namespace):
        self.id = account_id
        self.name = name
        self.email = f"aws+{name}@bench.invalid"
        self.status = status  # ACTIVE or SUSPENDED
        self.shares = shares
        self.regions: dict[str, Region] = {}


def member_ids(seed: int, count: int) -> list[str]:
    """`count` distinct 12-digit account ids from the seed, never the management one."""
    rng = random.Random(f"{seed}:accounts")
    out: list[str] = []
    while len(out) < count:
        candidate = f"{rng.randrange(10**11, 10**12):012d}"
        if candidate != ACCOUNT and candidate not in out:
            out.append(candidate)
    return out


def org_sizes(seed: int, account: str, regions: list[str], mean: float) -> dict[str, int]:
    """An organisation member's instances per region, uneven like real estates:
    about 1 account in 8 has none (sandboxes, security, log archive), the rest
    a log-normal count (median about half the mean, a long tail, at most
    4,000) in a home region and 0 to 4 more, every other region empty."""
    rng = random.Random(f"{seed}:org:{account}")
    if rng.random() < 0.125 or mean <= 0:
        return {r: 0 for r in regions}
    sigma = 1.2
    mu = math.log(mean / 0.875) - sigma * sigma / 2  # the accounts with instances carry the mean
    total = min(4000, max(1, int(rng.lognormvariate(mu, sigma))))
    home = regions[0] if rng.random() < 0.6 else rng.choice(regions)
    extra = rng.choices([0, 1, 2, 3, 4], weights=[45, 25, 15, 10, 5])[0]
    used = [home] + rng.sample([r for r in regions if r != home], extra)
    sizes = {r: 0 for r in regions}
    sizes[home] = total
    for r in used[1:]:
        moved = int(sizes[home] * rng.uniform(0.05, 0.3))
        sizes[r] += moved
        sizes[home] -= moved
    return sizes


class Fleet:
    """The generated fleet: attributes are computed from (seed, account, region, idx)."""

    def __init__(self, seed: int, sizes: list[tuple[str, int]], shares: argparse.Namespace,
                 accounts: int = 1, suspended: int = 0, org_instances: int = 0, unassumable: int = 0):
        self.seed = seed
        self.shares = shares
        if accounts < 1 or suspended < 0 or not 0 <= unassumable < accounts:
            raise SystemExit("fakeaws: --accounts must be >= 1, --suspended-accounts >= 0 and "
                             "--unassumable-accounts below --accounts")
        # Instance ids carry the account-region's number: one byte of it and
        # 3 of the index, or (more than 256 account-regions) 2 and 2.
        self.wide = accounts * len(sizes) > 256
        if self.wide and (accounts * len(sizes) > 0xFFFF or (not org_instances and max(n for _, n in sizes) > 0xFFFF)):
            raise SystemExit("fakeaws: at most 65,535 account-regions of at most 65,535 instances each")
        ids = member_ids(seed, accounts - 1 + suspended)
        self.accounts: dict[str, Account] = {ACCOUNT: Account(ACCOUNT, "bench-management", "ACTIVE", shares)}
        # Each member's optional share differs from the management account's
        # and (for up to 20 members) from every other member's.
        shifts = [d / 100.0 for d in range(-10, 11) if d]
        random.Random(f"{seed}:shares").shuffle(shifts)
        for k, account_id in enumerate(ids[: accounts - 1], start=1):
            own = copy.copy(shares)
            shift = shifts[(k - 1) % len(shifts)]
            own.optional_share = min(1.0 - shares.disabled_share, max(0.0, shares.optional_share + shift))
            self.accounts[account_id] = Account(account_id, f"bench-member-{k:02d}", "ACTIVE", own)
        for k, account_id in enumerate(ids[accounts - 1 :], start=1):
            self.accounts[account_id] = Account(account_id, f"bench-suspended-{k:02d}", "SUSPENDED", shares)
        # ACTIVE members whose role cannot be assumed (a missing role, an SCP,
        # a broken trust policy): AssumeRole into them is AccessDenied. They
        # have no fleet the scan could see. Spread over the listing.
        members = ids[: accounts - 1]
        step = max(1, len(members) // (unassumable + 1))
        self.unassumable = {members[(i + 1) * step - 1] for i in range(unassumable)}
        self.by_number: dict[int, Region] = {}
        for k, account in enumerate(a for a in self.accounts.values() if a.status == "ACTIVE"):
            salt = "" if account.id == ACCOUNT else f"{account.id}:"
            own = sizes
            if org_instances:
                mean = org_instances / max(1, accounts - unassumable)
                own = list(org_sizes(seed, account.id, [n for n, _ in sizes], mean).items())
            if account.id in self.unassumable:
                own = [(n, 0) for n, _ in sizes]
            for r, (name, size) in enumerate(own):
                number = k * len(sizes) + r  # the management account's are 0..R-1, as before
                region = Region(number, name, size, seed, account.shares, account.id, salt)
                account.regions[name] = region
                self.by_number[number] = region
        # The management account's regions (the single-account fleet).
        self.regions: dict[str, Region] = self.accounts[ACCOUNT].regions
        # instance id -> options changed by ModifyInstanceMetadataOptions
        self.overrides: dict[str, dict] = {}
        self.lock = threading.Lock()
        self.epoch = 1_700_000_000  # launch times are spread over the 3 years before this

    # ---- identity of an instance -------------------------------------------------
    def hash(self, number: int, idx: int) -> int:
        region = self.by_number.get(number)
        salt = region.salt if region is not None else ""
        return zlib.crc32(f"{self.seed}:{salt}{number}:{idx}".encode())

    def region(self, account: str, name: str):
        """The Region of this account and name, else None."""
        a = self.accounts.get(account)
        return a.regions.get(name) if a is not None else None

    def active_accounts(self) -> list[Account]:
        return [a for a in self.accounts.values() if a.status == "ACTIVE"]

    def instance_id(self, number: int, idx: int) -> str:
        if self.wide:
            return f"i-0{number:04x}{idx:04x}{self.hash(number, idx):08x}"
        return f"i-0{number:02x}{idx:06x}{self.hash(number, idx):08x}"

    def locate(self, instance_id: str):
        """(Region, idx) of an id this fleet generated (in any account), else None."""
        if len(instance_id) != 19 or not instance_id.startswith("i-0"):
            return None
        cut = 7 if self.wide else 5
        try:
            number, idx, h = int(instance_id[3:cut], 16), int(instance_id[cut:11], 16), int(instance_id[11:], 16)
        except ValueError:
            return None
        region = self.by_number.get(number)
        if region is None or idx >= region.size or self.hash(number, idx) != h:
            return None
        return region, idx

    # ---- attributes ----------------------------------------------------------------
    def image_id(self, number: int, idx: int) -> str:
        return AMIS[self.hash(number, idx) % len(AMIS)]

    def v1_image_counts(self, region: Region) -> dict[str, int]:
        """AMI -> generated instances of the region that allow IMDSv1 (HttpTokens
        optional, endpoint enabled: the OPTIONAL classes) and run it: the AMIs a
        scan asks DescribeImages about (the fleet has no launch templates or
        configurations). Before any ModifyInstanceMetadataOptions."""
        if region.v1_images is None:
            counts: collections.Counter = collections.Counter()
            for idx in range(region.size):
                if region.classes[idx] in OPTIONAL:
                    counts[self.image_id(region.number, idx)] += 1
            region.v1_images = dict(sorted(counts.items()))
        return region.v1_images

    def options(self, region: Region, idx: int, instance_id: str) -> dict:
        cls = region.classes[idx]
        h = self.hash(region.number, idx)
        opts = {
            "state": "applied",
            "httpTokens": "optional" if cls in OPTIONAL else "required",
            "httpPutResponseHopLimit": "2" if (h >> 3) % 5 == 0 else "1",
            "httpEndpoint": "disabled" if cls in DISABLED else "enabled",
            "httpProtocolIpv6": "enabled" if (h >> 7) % 20 == 0 else "disabled",
            "instanceMetadataTags": "enabled" if (h >> 9) % 10 == 0 else "disabled",
        }
        if cls in DISABLED:
            # Endpoint off: the posture is "disabled" whatever HttpTokens says.
            mode = self.shares.disabled_tokens
            if mode == "optional" or (mode == "mixed" and (h >> 11) % 2):
                opts["httpTokens"] = "optional"
        override = self.overrides.get(instance_id)
        if override:
            opts.update(override)
        return opts

    def tags(self, region: Region, idx: int, h: int) -> list[tuple[str, str]]:
        tags = [("Name", f"{TEAMS[h % 8]}-{region.name}-{idx}")]
        if (h >> 4) % 10 < 6:
            tags.append(("Owner", TEAMS[(h >> 4) % 8]))
        if (h >> 12) % 10 < 3:
            asg = f"{TEAMS[h % 8]}-asg-{(h >> 16) % 40}"
            tags.append(("aws:autoscaling:groupName", asg))
            tags.append(("aws:ec2launchtemplate:id", f"lt-0{(h >> 16) % 40:016x}"))
            tags.append(("aws:ec2launchtemplate:version", str(1 + (h >> 20) % 9)))
        if (h >> 14) % 20 == 0:
            tags.append(("eks:cluster-name", f"{TEAMS[h % 8]}-k8s"))
            tags.append((f"kubernetes.io/cluster/{TEAMS[h % 8]}-k8s", "owned"))
        if (h >> 18) % 25 == 0:
            tags.append(("aws:cloudformation:stack-name", f"stack-{(h >> 20) % 50}"))
        if (h >> 22) % 3 == 0:
            tags.append(("env", ["prod", "staging", "dev"][(h >> 24) % 3]))
        return tags

    def render_instance(self, region: Region, idx: int) -> str:
        instance_id = self.instance_id(region.number, idx)
        h = self.hash(region.number, idx)
        cls = region.classes[idx]
        stopped = cls in STOPPED
        state = "<code>80</code><name>stopped</name>" if stopped else "<code>16</code><name>running</name>"
        o = self.options(region, idx, instance_id)
        profile = ""
        if has_profile(h):
            p = (h >> 5) % PROFILE_COUNT
            profile = (
                f"<iamInstanceProfile><arn>arn:aws:iam::{region.account}:instance-profile/app-profile-{p}</arn>"
                f"<id>AIPA{p:016d}</id></iamInstanceProfile>"
            )
        tags = "".join(
            f"<item><key>{escape(k)}</key><value>{escape(v)}</value></item>" for k, v in self.tags(region, idx, h)
        )
        launch = utc(self.epoch - (h % (3 * 365 * DAY)))
        az = region.name + "abc"[h % 3]
        return (
            f"<item><instanceId>{instance_id}</instanceId><imageId>{AMIS[h % len(AMIS)]}</imageId>"
            f"<instanceState>{state}</instanceState>"
            f"<privateDnsName>ip-10-{(h >> 8) % 256}-{h % 256}-1.ec2.internal</privateDnsName>"
            f"<dnsName/><reason/><amiLaunchIndex>0</amiLaunchIndex><productCodes/>"
            f"<instanceType>{['t3.micro', 'm5.large', 'c6i.xlarge', 'r6g.large'][h % 4]}</instanceType>"
            f"<launchTime>{launch}</launchTime>"
            f"<placement><availabilityZone>{az}</availabilityZone><groupName/><tenancy>default</tenancy></placement>"
            f"<monitoring><state>disabled</state></monitoring>"
            f"<subnetId>subnet-0{h % 16:016x}</subnetId><vpcId>vpc-0{h % 4:016x}</vpcId>"
            f"<privateIpAddress>10.{(h >> 8) % 256}.{h % 256}.1</privateIpAddress>"
            f"<architecture>x86_64</architecture><rootDeviceType>ebs</rootDeviceType>"
            f"<rootDeviceName>/dev/xvda</rootDeviceName>{profile}"
            f"<tagSet>{tags}</tagSet><virtualizationType>hvm</virtualizationType>"
            f"<metadataOptions><state>{o['state']}</state><httpTokens>{o['httpTokens']}</httpTokens>"
            f"<httpPutResponseHopLimit>{o['httpPutResponseHopLimit']}</httpPutResponseHopLimit>"
            f"<httpEndpoint>{o['httpEndpoint']}</httpEndpoint>"
            f"<httpProtocolIpv6>{o['httpProtocolIpv6']}</httpProtocolIpv6>"
            f"<instanceMetadataTags>{o['instanceMetadataTags']}</instanceMetadataTags></metadataOptions>"
            f"</item>"
        )

    def matches(self, region: Region, idx: int, filters: list[tuple[str, list[str]]]) -> bool:
        if not filters:
            return True
        h = self.hash(region.number, idx)
        for name, values in filters:
            if name == "instance-id":
                ok = self.instance_id(region.number, idx) in values
            elif name == "instance-state-name":
                ok = ("stopped" if region.classes[idx] in STOPPED else "running") in values
            elif name.startswith("tag:"):
                key = name[4:]
                ok = any(k == key and any(fnmatchcase(v, p) for p in values) for k, v in self.tags(region, idx, h))
            elif name == "tag-key":
                ok = any(k in values for k, _ in self.tags(region, idx, h))
            else:
                raise BadRequest("InvalidParameterValue", f"The filter '{name}' is invalid")
            if not ok:
                return False
        return True

    # ---- CloudWatch data -------------------------------------------------------------
    def datapoints(self, account: str, instance_id: str, metric: str, start: float, end: float, period: int):
        """Daily sums for one instance of this account and metric, only where data exists."""
        loc = self.locate(instance_id)
        if loc is None or loc[0].account != account:
            return [], []  # another account's instance: CloudWatch has nothing under this dimension here
        region, idx = loc
        cls = region.classes[idx]
        if cls in STOPPED:
            return [], []  # a stopped instance reports nothing
        h = self.hash(region.number, idx)
        now = time.time()
        period = max(int(period), 60)
        t = int(start) // period * period
        if t < start:
            t += period
        stamps, values = [], []
        last = min(end, now)
        while t < last:
            stamps.append(t)
            day = t // DAY
            v = 0.0
            if metric == "MetadataNoToken" and cls == OPT_INUSE:
                # calls on roughly half the days, always on the latest day
                if (h ^ day) % 2 == 0 or t + period >= last:
                    v = float(1 + (h ^ (day * 2654435761)) % 500)
            elif metric == "MetadataNoTokenRejected" and cls == REQ_REJECTING:
                if (h ^ day) % 3 == 0 or t + period >= last:
                    v = float(1 + (h ^ day) % 40)
            values.append(v)
            t += period
        return stamps, values

    # ---- expected results -------------------------------------------------------------
    def expected(self) -> dict:
        accounts = {
            a.id: {
                "name": a.name,
                "status": a.status,
                "assumable": a.id not in self.unassumable,
                "optional_share": a.shares.optional_share,
                "regions": self.expected_regions(a),
            }
            for a in self.accounts.values()
        }
        return {
            "account_id": ACCOUNT,
            "seed": self.seed,
            "regions": accounts[ACCOUNT]["regions"],
            "accounts": accounts,
        }

    def expected_regions(self, account: Account) -> dict:
        regions = {}
        for r in account.regions.values():
            c = r.counts
            optional = c[OPT_INUSE] + c[OPT_READY] + c[OPT_STOPPED]
            disabled = c[DIS_RUNNING] + c[DIS_STOPPED]
            required = r.size - optional - disabled
            regions[r.name] = {
                "instances": r.size,
                "required": required,
                "optional": optional,
                "disabled": disabled,
                "endpoint_enabled": r.size - disabled,
                "classes": dict(zip(CLASS_NAMES, c)),
                "readiness_usage": {
                    "compliant": c[REQ_RUNNING] + c[REQ_STOPPED],
                    "rejecting-v1": c[REQ_REJECTING],
                    "disabled": disabled,
                    "ready": c[OPT_READY],
                    "in-use": c[OPT_INUSE],
                    "unknown": c[OPT_STOPPED],
                },
                "readiness_no_usage": {
                    "compliant": required,
                    "rejecting-v1": 0,
                    "disabled": disabled,
                    "ready": 0,
                    "in-use": 0,
                    "unknown": optional,
                },
                # The distinct AMIs of the instances that allow IMDSv1, with how
                # many of them run each and whether DescribeImages says v2.0.
                "v1_amis": {
                    ami: {"instances": n, "imds_v2": imds_v2_image(ami)}
                    for ami, n in self.v1_image_counts(r).items()
                },
            }
        return regions

    def state_counts(self, account: str = ACCOUNT) -> dict:
        out = {}
        a = self.accounts.get(account)
        for r in (a.regions.values() if a else []):
            counter = collections.Counter()
            for idx in range(r.size):
                o = self.options(r, idx, self.instance_id(r.number, idx))
                counter[f"{o['httpEndpoint']}/{o['httpTokens']}"] += 1
            out[r.name] = dict(counter)
        return out

    def role_counts(self) -> dict:
        """Per region of the management account: instances, those with an
        instance profile, and of those the ones first in their reservation
        (what a reader of each reservation's first instance alone finds)."""
        out = {}
        for r in self.regions.values():
            with_profile = [idx for idx in range(r.size) if has_profile(self.hash(r.number, idx))]
            out[r.name] = {
                "instances": r.size,
                "with_profile": len(with_profile),
                "with_profile_first_in_reservation": sum(1 for idx in with_profile if idx % RESERVATION == 0),
            }
        return out


# ---------------------------------------------------------------- CloudTrail logs in S3
S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
S3_PAGE = 1000  # S3's largest ListObjectsV2 page (and its default)
TRAIL_REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2", "sa-east-1"]
TRAIL_INSTANCES = 25  # tracked instances per account and region: 2 x 4 x 25 = 200
TRAIL_MARGIN = 3600  # every record is at least this far inside (or outside) the window
TRAIL_CHUNK = 64 * 1024  # uncompressed bytes of records per chunk (at most)
TRAIL_POOL = 8  # distinct chunks per date folder
TRAIL_OBJECT_CHUNKS = (16, 32)  # chunks per large object: 1 to 2 MB of JSON
TRAIL_OUTSIDE_SHARE = 0.3  # records of the window's first date folder dated before the window
# The software of the tracked instances: what fetches role credentials over IMDSv1.
TRAIL_AGENTS = [
    "aws-cli/1.16.100 Python/2.7.16 Linux/4.14.186-146.268.amzn2.x86_64 botocore/1.12.90",
    "aws-cli/1.15.83 Python/2.7.14 Linux/4.14.62-70.117.amzn2.x86_64 botocore/1.10.82",
    "Boto3/1.9.253 Python/3.7.4 Linux/4.14.146-119.123.amzn2.x86_64 Botocore/1.12.253",
    "Boto3/1.26.90 Python/3.9.16 Linux/5.10.173-154.642.amzn2.x86_64 Botocore/1.29.90",
    "aws-cli/2.13.25 Python/3.11.5 Linux/5.10.192-183.736.amzn2.x86_64 exe/x86_64.amzn.2 prompt/off command/s3.cp",
    "aws-sdk-java/1.11.500 Linux/4.14.97-90.72.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/25.201-b09 java/1.8.0_201 vendor/Oracle_Corporation",
]
# Everyone else: people, pipelines, the console, functions.
TRAIL_OTHER_AGENTS = [
    "console.amazonaws.com",
    "aws-cli/2.15.30 Python/3.11.8 Darwin/23.4.0 exe/x86_64 prompt/off command/ec2.describe-instances",
    "APN/1.0 HashiCorp/1.0 Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.43.0",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#5.10.213 md/arch#x86_64 lang/python#3.12.2 cfg/retry-mode#legacy",
    "aws-sdk-go-v2/1.26.0 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.152.0",
    "AWS Internal",
]
TRAIL_EVENTS = [
    ("ec2.amazonaws.com", "DescribeInstances", True),
    ("s3.amazonaws.com", "GetObject", True),
    ("s3.amazonaws.com", "PutObject", False),
    ("sts.amazonaws.com", "GetCallerIdentity", True),
    ("ssm.amazonaws.com", "GetParameter", True),
    ("kms.amazonaws.com", "Decrypt", True),
    ("logs.amazonaws.com", "CreateLogStream", False),
    ("dynamodb.amazonaws.com", "DescribeTable", True),
    ("sqs.amazonaws.com", "ReceiveMessage", True),
    ("secretsmanager.amazonaws.com", "GetSecretValue", True),
]
TRAIL_USERS = ["alice", "bob", "carol", "deploy-bot", "terraform-ci", "backup-operator", "auditor", "dave"]
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"  # deflate, no name, no mtime, Unix


def ct_time(ts: int) -> str:
    """CloudTrail's eventTime: whole seconds, UTC, `Z`."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def day_folder(day: int) -> str:
    return time.strftime("%Y/%m/%d", time.gmtime(day * DAY))


def deflate_piece(raw: bytes, final: bool) -> bytes:
    """Raw deflate blocks of `raw` from a fresh compressor, ending on a byte
    boundary (sync flush) or with the final block: such pieces concatenate
    into one valid deflate stream, and so into one ordinary (single-member)
    gzip file."""
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(raw) + c.flush(zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH)


class TrailTruth:
    """What imdsguard must find in some records: the counts of its JSON and,
    per (account, region, instance), the calls attributed to it."""

    def __init__(self):
        self.counts = collections.Counter()
        # (account, region, instance) -> [calls, role, Counter(agent), first, last]
        self.instances: dict[tuple[str, str, str], list] = {}

    def add(self, other: "TrailTruth", times: int = 1) -> None:
        for k, v in other.counts.items():
            self.counts[k] += v * times
        for key, (calls, role, agents, first, last) in other.instances.items():
            mine = self.instances.get(key)
            if mine is None:
                self.instances[key] = [calls * times, role, collections.Counter({a: n * times for a, n in agents.items()}),
                                       first, last]
                continue
            mine[0] += calls * times
            for a, n in agents.items():
                mine[2][a] += n * times
            mine[3] = min(mine[3], first)
            mine[4] = max(mine[4], last)

    def record(self, key, role: str, agent: str, when: str) -> None:
        t = self.instances.setdefault(key, [0, role, collections.Counter(), when, when])
        t[0] += 1
        t[2][agent] += 1
        t[3] = min(t[3], when)
        t[4] = max(t[4], when)


class TrailFolder:
    """One date folder `.../CloudTrail/REGION/YYYY/MM/DD/` of one account:
    a pool of compressed chunks of records, each with its truth, and a tail
    (the last records and `]}`)."""

    def __init__(self, prefix: str, account: str, region: str, day: int, inside: bool):
        self.prefix, self.account, self.region, self.day, self.inside = prefix, account, region, day, inside
        self.raw: list[bytes] = []  # uncompressed chunks, dropped once the layout's checksums are known
        self.z: list[bytes] = []  # their deflate pieces
        self.truth: list[TrailTruth] = []
        self.tail_raw = b""
        self.tail_z = b""
        self.tail_truth = TrailTruth()
        self.keys: list[str] = []


class TrailObject:
    """One key: a log object (the head, `chunks` of its folder's pool, the
    folder's tail) or a digest (`whole`: its gzip bytes, a few hundred)."""

    __slots__ = ("folder", "chunks", "raw_size", "size", "crc", "kind", "whole")

    def __init__(self, folder: TrailFolder, chunks: tuple[int, ...], kind: str = "log"):
        self.folder, self.chunks, self.kind = folder, chunks, kind
        self.raw_size = self.size = self.crc = 0
        self.whole = b""


class TrailBucket:
    """A CloudTrail bucket, generated from the seed and the start time `now`:

      PREFIX/AWSLogs/MANAGEMENT/CloudTrail/REGION/YYYY/MM/DD/*.json.gz
      PREFIX/AWSLogs/o-ORG/MEMBER/CloudTrail/REGION/YYYY/MM/DD/*.json.gz
      PREFIX/AWSLogs/ACCOUNT/CloudTrail-Digest/REGION/YYYY/MM/DD/*.json.gz (digests: never to be read)

    for 2 accounts x 4 regions: the date folders of the last `days` days up
    to `now` (days + 1 of them: the first one partly before the window) and,
    per account and region, the folder of the day before the window (never
    to be listed). Each window folder holds large objects (1 to 2 MB of JSON)
    until their uncompressed total reaches `target` bytes; the management
    account's us-east-1 folder of the last day also holds `busy` small
    objects (3 records each), so that it takes 2 pages to list.

    An object is never stored: its gzip bytes are put together on request
    from deflate pieces (the `{"Records":[` head, chunks of its folder's
    pool, its folder's tail) precompressed at start-up, so the server holds a
    few MB whatever the volume. The chunks of an object are drawn from its
    folder's pool of 8 by a seeded RNG (records therefore repeat across the
    objects of a folder, event ids included).

    Records (CloudTrail's shape, about 1.3 KB each): about 70 % IAM users, 10 %
    roles of functions (no ec2RoleDelivery), 12 % instance credentials
    delivered over IMDSv2 (ec2RoleDelivery 2.0), 6.5 % over IMDSv1 to one of
    the 200 tracked instances (25 per account and region, each with 1 to 3 of
    TRAIL_AGENTS and one role), 1.5 % over IMDSv1 to a session that is not an
    instance. Every record is at least TRAIL_MARGIN inside the window as
    of `now`, except 30 % of the first folder's, dated at least TRAIL_MARGIN
    before it: so the truth holds for any run that starts within an hour
    of `now` on the same UTC day."""

    def __init__(self, seed: int, now: float, days: int, target: int, bucket: str, prefix: str, region: str,
                 busy: int, member: str):
        self.seed, self.days, self.target, self.bucket, self.region, self.busy = seed, days, target, bucket, region, busy
        self.prefix = prefix.strip("/")
        self.now = int(now)
        self.window = (self.now - days * DAY, self.now)
        self.first_day = self.window[0] // DAY
        self.last_day = self.now // DAY
        self.outside_day = self.first_day - 1
        self.base = base = f"{self.prefix}/AWSLogs/" if self.prefix else "AWSLogs/"
        self.accounts = [(ACCOUNT, f"{base}{ACCOUNT}/"), (member, f"{base}{ORG_ID}/{member}/")]
        self.head_raw = b'{"Records":['
        self.head_z = deflate_piece(self.head_raw, False)
        self.instances: dict[tuple[str, str], list[tuple[str, str, list[str]]]] = {}
        self.folders: list[TrailFolder] = []
        self.objects: dict[str, TrailObject] = {}
        t0 = time.monotonic()
        for account, folder in self.accounts:
            for region in TRAIL_REGIONS:
                self.instances[(account, region)] = self.tracked(account, region)
                for day in [self.outside_day] + list(range(self.first_day, self.last_day + 1)):
                    f = TrailFolder(f"{folder}CloudTrail/{region}/{day_folder(day)}/", account, region, day,
                                    day != self.outside_day)
                    self.fill(f)
                    self.folders.append(f)
        self.layout()
        self.keys = sorted(self.objects)
        self.build_seconds = time.monotonic() - t0
        self.lock = threading.Lock()
        self._expected: dict | None = None
        self.reset()

    # ---- generation ------------------------------------------------------------------
    def tracked(self, account: str, region: str) -> list[tuple[str, str, list[str]]]:
        """The tracked instances of an account and region: (id, role, agents)."""
        rng = random.Random(f"{self.seed}:trail:{account}:{region}")
        out = []
        for k in range(TRAIL_INSTANCES):
            h = zlib.crc32(f"{self.seed}:trail-instance:{account}:{region}:{k}".encode())
            instance_id = f"i-0{h:08x}{TRAIL_REGIONS.index(region):02x}{k:06x}"  # 17 hex digits
            role = f"app-role-{rng.randrange(6)}"
            agents = rng.sample(TRAIL_AGENTS, rng.randint(1, 3))
            out.append((instance_id, role, agents))
        return out

    def record(self, rng: random.Random, f: TrailFolder, when: int, kind: str, truth: TrailTruth | None) -> dict:
        account, region = f.account, f.region
        source, name, read_only = TRAIL_EVENTS[rng.randrange(len(TRAIL_EVENTS))]
        service = source.split(".", 1)[0]
        stamp = ct_time(when)
        ident: dict
        agent = TRAIL_OTHER_AGENTS[rng.randrange(len(TRAIL_OTHER_AGENTS))]
        key_id = f"{rng.getrandbits(64):016X}"
        if kind == "user":
            user = TRAIL_USERS[rng.randrange(len(TRAIL_USERS))]
            ident = {"type": "IAMUser", "principalId": f"AIDA{zlib.crc32(user.encode()):016X}",
                     "arn": f"arn:aws:iam::{account}:user/{user}", "accountId": account,
                     "accessKeyId": f"AKIA{key_id}", "userName": user}
        else:
            if kind in ("v1", "v2") and (kind == "v1" or rng.random() < 0.5):
                instance_id, role, agents = self.instances[(account, region)][rng.randrange(TRAIL_INSTANCES)]
                if kind == "v1":
                    agent = agents[0] if len(agents) == 1 or rng.random() < 0.6 else agents[rng.randrange(len(agents))]
            elif kind == "v2":
                instance_id, role = f"i-0{rng.getrandbits(64):016x}", f"app-role-{rng.randrange(6)}"
            elif kind == "v1-session":
                instance_id, role = f"botocore-session-{rng.randrange(1_700_000_000, 1_800_000_000)}", "batch-role"
                agent = TRAIL_AGENTS[rng.randrange(len(TRAIL_AGENTS))]
            else:  # a function's role
                instance_id, role = f"ingest-fn-{rng.randrange(12)}", f"lambda-role-{rng.randrange(3)}"
            role_id = f"AROA{zlib.crc32(f'{account}:{role}'.encode()):016X}"
            context: dict = {
                "sessionIssuer": {"type": "Role", "principalId": role_id, "arn": f"arn:aws:iam::{account}:role/{role}",
                                  "accountId": account, "userName": role},
                "webIdFederationData": {},
                "attributes": {"creationDate": ct_time(when - rng.randrange(21_600)), "mfaAuthenticated": "false"},
            }
            if kind in ("v1", "v1-session"):
                context["ec2RoleDelivery"] = "1.0"
            elif kind == "v2":
                context["ec2RoleDelivery"] = "2.0"
            ident = {"type": "AssumedRole", "principalId": f"{role_id}:{instance_id}",
                     "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{instance_id}", "accountId": account,
                     "accessKeyId": f"ASIA{key_id}", "sessionContext": context}
            if kind == "v1" and truth is not None:
                truth.record((account, region, instance_id), role, agent, stamp)
        if truth is not None:
            truth.counts["records"] += 1
            if kind == "v1":
                truth.counts["attributed"] += 1
            elif kind == "v2":
                truth.counts["v2"] += 1
            elif kind == "v1-session":
                truth.counts["v1_not_instance"] += 1
        request_id = f"{rng.getrandbits(128):032x}"
        event_id = f"{rng.getrandbits(128):032x}"
        params = {
            "ec2": {"instancesSet": {}, "filterSet": {"items": [{"name": "tag:team", "valueSet": {"items": [{"value": "payments"}]}}]}},
            "s3": {"bucketName": f"app-data-{account}-{rng.randrange(40)}", "Host": f"app-data.s3.{region}.amazonaws.com",
                   "key": f"batch/{rng.randrange(10**8):08d}.parquet"},
            "ssm": {"name": f"/app/{rng.randrange(30)}/config", "withDecryption": True},
            "kms": {"encryptionAlgorithm": "SYMMETRIC_DEFAULT", "keyId": f"arn:aws:kms:{region}:{account}:key/{event_id[:8]}-{event_id[8:12]}-{event_id[12:16]}-{event_id[16:20]}-{event_id[20:]}"},
            "logs": {"logGroupName": f"/app/service-{rng.randrange(20)}", "logStreamName": f"{stamp[:10]}/{event_id[:12]}"},
            "dynamodb": {"tableName": f"orders-{rng.randrange(8)}"},
            "sqs": {"queueUrl": f"https://sqs.{region}.amazonaws.com/{account}/jobs-{rng.randrange(6)}", "maxNumberOfMessages": 10},
            "secretsmanager": {"secretId": f"app/{rng.randrange(10)}/db"},
        }.get(service)
        return {
            "eventVersion": "1.09",
            "userIdentity": ident,
            "eventTime": stamp,
            "eventSource": source,
            "eventName": name,
            "awsRegion": region,
            "sourceIPAddress": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            "userAgent": agent,
            "requestParameters": params,
            "responseElements": None,
            "requestID": request_id,
            "eventID": event_id,
            "readOnly": read_only,
            "eventType": "AwsApiCall",
            "managementEvent": service not in ("s3", "sqs") or name == "ReceiveMessage",
            "recipientAccountId": account,
            "eventCategory": "Management",
            "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                           "clientProvidedHostHeader": f"{service}.{region}.amazonaws.com"},
        }

    def times(self, rng: random.Random, f: TrailFolder) -> tuple[int, bool]:
        """A record time for folder f and whether it is in the window: inside
        by at least TRAIL_MARGIN; in the window's first folder, 30 % outside
        (before it) by at least TRAIL_MARGIN; every record of the folder
        outside the window is on its own day."""
        day_start, day_end = f.day * DAY, f.day * DAY + DAY - 1
        if not f.inside:
            return rng.randint(day_start, day_end), False
        if f.day == self.first_day and rng.random() < TRAIL_OUTSIDE_SHARE:
            hi = self.window[0] - TRAIL_MARGIN
            lo = min(day_start, hi - 2 * 3600)
            return rng.randint(lo, hi), False
        lo, hi = self.window[0] + TRAIL_MARGIN, self.window[1] - TRAIL_MARGIN
        a, b = max(day_start, lo), min(day_end, hi)
        return (rng.randint(a, b) if a <= b else rng.randint(lo, hi)), True

    def kind(self, rng: random.Random) -> str:
        x = rng.random()
        return ("user" if x < 0.70 else "function" if x < 0.80 else "v2" if x < 0.92
                else "v1" if x < 0.985 else "v1-session")

    def fill(self, f: TrailFolder) -> None:
        rng = random.Random(f"{self.seed}:trail-folder:{f.prefix}")
        pool = TRAIL_POOL if f.inside else 2
        for _ in range(pool):
            truth = TrailTruth()
            parts: list[str] = []
            size = 0
            while True:
                when, inside = self.times(rng, f)
                one = TrailTruth()
                rec = self.record(rng, f, when, self.kind(rng), one if inside else None)
                text = json.dumps(rec, separators=(",", ":"))
                if size + len(text) + 1 > TRAIL_CHUNK:
                    break  # the chunk is full: this record is not in it
                parts.append(text)
                size += len(text) + 1
                truth.add(one)
            raw = (",".join(parts) + ",").encode()
            f.raw.append(raw)
            f.z.append(deflate_piece(raw, False))
            f.truth.append(truth)
        # The tail: 3 records (an IAM user, an IMDSv1 and an IMDSv2 delivery) and the end of the document.
        texts = []
        for kind in ("user", "v1", "v2"):
            when, inside = self.times(rng, f)
            texts.append(json.dumps(self.record(rng, f, when, kind, f.tail_truth if inside else None),
                                    separators=(",", ":")))
        f.tail_raw = (",".join(texts) + "]}").encode()
        f.tail_z = deflate_piece(f.tail_raw, True)

    def add_object(self, f: TrailFolder, chunks: tuple[int, ...], rng: random.Random, kind: str = "log") -> TrailObject:
        n = len(f.keys)
        slot = f.day * DAY + (n * 300 + rng.randrange(300)) % DAY
        unique = f"{zlib.crc32(f'{self.seed}:{f.prefix}:{n}'.encode()):08X}{n:08X}"
        if kind == "digest":
            region = f.region
            name = (f"{f.account}_CloudTrail-Digest_{region}_bench-trail_{region}_"
                    f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(slot))}.json.gz")
            key = f.prefix.replace("/CloudTrail/", "/CloudTrail-Digest/") + name
        else:
            key = (f"{f.prefix}{f.account}_CloudTrail_{f.region}_"
                   f"{time.strftime('%Y%m%dT%H%MZ', time.gmtime(slot))}_{unique}.json.gz")
        o = TrailObject(f, chunks, kind)
        if kind == "digest":
            raw = json.dumps({"awsAccountId": f.account, "digestStartTime": ct_time(slot - 3600),
                              "digestEndTime": ct_time(slot), "digestS3Bucket": self.bucket,
                              "logFiles": []}).encode()
            o.whole = GZIP_HEADER + deflate_piece(raw, True) + struct.pack("<II", zlib.crc32(raw), len(raw))
            o.raw_size, o.size = len(raw), len(o.whole)
        else:
            crc = zlib.crc32(self.head_raw)
            raw_size = len(self.head_raw) + len(f.tail_raw)
            size = len(GZIP_HEADER) + len(self.head_z) + len(f.tail_z) + 8
            for c in chunks:
                crc = zlib.crc32(f.raw[c], crc)
                raw_size += len(f.raw[c])
                size += len(f.z[c])
            o.crc, o.raw_size, o.size = zlib.crc32(f.tail_raw, crc), raw_size, size
            f.keys.append(key)
        self.objects[key] = o
        return o

    def layout(self) -> None:
        rng = random.Random(f"{self.seed}:trail-layout")
        inside = [f for f in self.folders if f.inside]
        busy = next(f for f in inside if f.account == ACCOUNT and f.region == "us-east-1" and f.day == self.last_day)
        total = 0
        for _ in range(self.busy):
            total += self.add_object(busy, (), rng).raw_size
        n = 0
        while total < self.target or n < len(inside):  # at least one large object per folder
            f = inside[n % len(inside)]
            chunks = tuple(rng.randrange(TRAIL_POOL) for _ in range(rng.randint(*TRAIL_OBJECT_CHUNKS)))
            total += self.add_object(f, chunks, rng).raw_size
            n += 1
        for f in self.folders:
            if not f.inside:  # two objects a day before the window: never to be listed
                for _ in range(2):
                    self.add_object(f, tuple(rng.randrange(2) for _ in range(TRAIL_OBJECT_CHUNKS[0])), rng)
            else:
                self.add_object(f, (), rng, "digest")
        for f in self.folders:
            f.raw = []  # every checksum is known: only the compressed pieces are served

    # ---- expected results ---------------------------------------------------------------
    def expected(self) -> dict:
        if self._expected is not None:
            return self._expected
        uses: collections.Counter = collections.Counter()  # (folder number, chunk or -1: the tail) -> uses
        number = {id(f): n for n, f in enumerate(self.folders)}
        objects = raw = size = 0
        for o in self.objects.values():
            if o.kind != "log" or not o.folder.inside:
                continue
            objects += 1
            raw += o.raw_size
            size += o.size
            n = number[id(o.folder)]
            for c in o.chunks:
                uses[(n, c)] += 1
            uses[(n, -1)] += 1
        truth = TrailTruth()
        for (n, c), times in sorted(uses.items()):
            f = self.folders[n]
            truth.add(f.tail_truth if c < 0 else f.truth[c], times)
        inside = [f for f in self.folders if f.inside]
        counts = {k: truth.counts.get(k, 0) for k in ("records", "attributed", "v2", "v1_not_instance")}
        counts.update(malformed=0, objects=objects)
        instances = [
            {"account_id": a, "region": r, "instance_id": i, "role_name": t[1], "v1_credential_calls": t[0],
             "first_seen": t[3], "last_seen": t[4], "user_agents": dict(sorted(t[2].items()))}
            for (a, r, i), t in sorted(truth.instances.items())
        ]
        self._expected = {
            "bucket": self.bucket,
            "prefix": self.prefix,
            "region": self.region,
            "days": self.days,
            "now": self.now,
            "margin_seconds": TRAIL_MARGIN,
            "first_day": day_folder(self.first_day),
            "last_day": day_folder(self.last_day),
            "outside_day": day_folder(self.outside_day),
            "accounts": [a for a, _ in self.accounts],
            # listed with a delimiter: AWSLogs/, the organization folder, each account's CloudTrail/
            "listing_folders": [self.base, f"{self.base}{ORG_ID}/"]
            + [f"{folder}CloudTrail/" for _, folder in self.accounts],
            "window_folders": [f.prefix for f in inside],
            "outside_folders": [f.prefix for f in self.folders if not f.inside],
            "busy_folder": next(f.prefix for f in inside if len(f.keys) > S3_PAGE) if self.busy > S3_PAGE else None,
            "objects": objects,
            "bytes_uncompressed": raw,
            "bytes_compressed": size,
            "keys_in_bucket": len(self.objects),
            "counts": counts,
            "instances": instances,
            "tracked_instances": sum(len(v) for v in self.instances.values()),
            # ListObjectsV2: AWSLogs/, the organization folder, each account's CloudTrail/ (one page each),
            # then every window folder's pages.
            "list_minimum": 1 + 1 + len(self.accounts)
            + sum(max(1, math.ceil(len(f.keys) / S3_PAGE)) for f in inside),
            "build_seconds": round(self.build_seconds, 2),
        }
        return self._expected

    # ---- serving ------------------------------------------------------------------------
    def reset(self) -> None:
        with self.lock:
            self.listed: collections.Counter = collections.Counter()  # (prefix, delimiter) -> calls
            self.gets: collections.Counter = collections.Counter()  # key -> calls
            self.get_bytes = 0
            self.get_raw_bytes = 0

    def stats(self) -> dict:
        with self.lock:
            outside = {f.prefix for f in self.folders if not f.inside}
            return {
                "list_calls": sum(self.listed.values()),
                "listed": [{"prefix": p, "delimiter": d, "count": n} for (p, d), n in sorted(self.listed.items())],
                "get_calls": sum(self.gets.values()),
                "distinct_keys_got": len(self.gets),
                "keys_got_twice": sum(1 for n in self.gets.values() if n > 1),
                "gets_outside_window": sum(n for k, n in self.gets.items()
                                           if k in self.objects and self.objects[k].folder.prefix in outside),
                "gets_not_logs": sum(n for k, n in self.gets.items()
                                     if k not in self.objects or self.objects[k].kind != "log"),
                "bytes_served": self.get_bytes,
                "bytes_served_uncompressed": self.get_raw_bytes,
            }

    def list_page(self, prefix: str, delimiter: str, token: str | None, start_after: str, max_keys: int):
        """(keys, common prefixes, next token) of one ListObjectsV2 page."""
        keys = self.keys
        if token:
            try:
                text = base64.urlsafe_b64decode(token.encode()).decode()
                assert text.startswith("bench-s3:")
                i = int(text.split(":", 1)[1])
            except Exception:
                raise BadRequest("InvalidArgument", "The continuation token provided is incorrect", 400)
        else:
            i = bisect.bisect_right(keys, start_after) if start_after else 0
        i = max(i, bisect.bisect_left(keys, prefix))
        contents: list[str] = []
        prefixes: list[str] = []
        while i < len(keys) and keys[i].startswith(prefix):
            if len(contents) + len(prefixes) == max_keys:
                token = base64.urlsafe_b64encode(f"bench-s3:{i}".encode()).decode()
                return contents, prefixes, token
            key = keys[i]
            cut = key.find(delimiter, len(prefix)) if delimiter else -1
            if cut >= 0:
                common = key[: cut + len(delimiter)]
                prefixes.append(common)
                # past every key under it
                i = bisect.bisect_left(keys, common[:-1] + chr(ord(common[-1]) + 1))
            else:
                contents.append(key)
                i += 1
        return contents, prefixes, None

    def body(self, o: TrailObject) -> bytes:
        if o.whole:
            return o.whole
        f = o.folder
        return b"".join([GZIP_HEADER, self.head_z, *(f.z[c] for c in o.chunks), f.tail_z,
                         struct.pack("<II", o.crc, o.raw_size & 0xFFFFFFFF)])


def s3_error(code: str, message: str, status: int, extra: str = "") -> tuple[int, bytes, dict]:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>{extra}"
        f"<RequestId>{request_id().replace('-', '')[-16:].upper()}</RequestId><HostId>bench</HostId></Error>"
    ).encode()
    return status, body, {"Content-Type": "application/xml"}


class BadRequest(Exception):
    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def ec2_error(code: str, message: str, status: int) -> tuple[int, bytes, dict]:
    return status, ec2_error_xml(code, message, request_id()), {"Content-Type": "text/xml;charset=UTF-8"}


def query_error(code: str, message: str, status: int = 400) -> tuple[int, bytes, dict]:
    return status, query_error_xml(code, message, request_id()), {"Content-Type": "text/xml"}


_counter = iter(range(1, 1 << 62))
_counter_lock = threading.Lock()


def request_id() -> str:
    with _counter_lock:
        n = next(_counter)
    return f"00000000-0000-4000-8000-{n:012x}"


def xml_ok(body: str) -> tuple[int, bytes, dict]:
    return 200, ('<?xml version="1.0" encoding="UTF-8"?>\n' + body).encode(), {"Content-Type": "text/xml;charset=UTF-8"}


def ec2_list(params: dict, prefix: str) -> list[str]:
    out, n = [], 1
    while f"{prefix}.{n}" in params:
        out.append(params[f"{prefix}.{n}"])
        n += 1
    return out


def ec2_filters(params: dict) -> list[tuple[str, list[str]]]:
    filters, n = [], 1
    while f"Filter.{n}.Name" in params:
        filters.append((params[f"Filter.{n}.Name"], ec2_list(params, f"Filter.{n}.Value")))
        n += 1
    return filters


def encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"bench-offset:{offset}".encode()).decode()


def decode_token(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        assert text.startswith("bench-offset:")
        return int(text.split(":", 1)[1])
    except Exception:
        raise BadRequest("InvalidParameterValue", f"Invalid value '{token}' for nextToken")


# Kept under its old name; the shared implementation is awsproto.epoch_seconds.
as_epoch = epoch_seconds


def json_error(code: str, message: str, status: int = 400) -> tuple[int, bytes, dict]:
    body = json.dumps({"__type": code, "Message": message}).encode()
    return status, body, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": code}


ASSUMED_KEY = re.compile(r"^ASIA(\d{12})([0-9A-F]{4})$")
ROLE_ARN = re.compile(r"^arn:aws:iam::(\d{12}):role/([\w+=,.@/-]{1,512})$")
SESSION_NAME = re.compile(r"^[\w+=,.@-]{2,64}$")


class Session:
    """Credentials issued by AssumeRole."""

    def __init__(self, account: str, role: str, session_name: str, token: str):
        self.account, self.role, self.session_name, self.token = account, role, session_name, token


class FakeAws:
    def __init__(self, fleet: Fleet, latency: float, burst: float, refill: float,
                 role_name: str = "BenchRole", external_id: str | None = None, state_only: bool = False,
                 trail: TrailBucket | None = None):
        self.fleet = fleet
        self.trail = trail  # the CloudTrail bucket S3 serves, if any
        self.latency = latency
        self.burst = burst
        self.refill = refill
        self.role_name = role_name
        self.external_id = external_id
        self.state_only = state_only
        self.lock = threading.Lock()
        # access key id -> Session; kept across resets, like real STS sessions
        self.sessions: dict[str, Session] = {}
        self.serials: collections.Counter = collections.Counter()
        self.other: tuple[str, float] | None = None  # the second caller's (region, rate), if any
        self.reset()

    def resolve(self, akid: str, token: str | None):
        """(account, Session or None) of an access key id, or None if STS never issued it."""
        m = ASSUMED_KEY.match(akid)
        if m is None:
            if akid.startswith("ASIA"):
                return None
            return ACCOUNT, None  # the base credentials (`bench`): the management account
        with self.lock:
            session = self.sessions.get(akid)
        if session is None or session.account != m.group(1) or session.token != token:
            return None
        return session.account, session

    def reset(self) -> None:
        with self.lock:
            # (service, region, action, account) -> calls
            self.calls: collections.Counter = collections.Counter()
            # target account -> AssumeRole calls into it (the calls themselves
            # count under the caller's account)
            self.assume_role_targets: collections.Counter = collections.Counter()
            self.throttled: collections.Counter = collections.Counter()
            self.errors: collections.Counter = collections.Counter()
            self.modified: collections.Counter = collections.Counter()
            # Per instance, our ModifyInstanceMetadataOptions calls (DryRun
            # ones aside): what "duplicated" is measured from.
            self.mod_sent: collections.Counter = collections.Counter()
            self.mod_landed: collections.Counter = collections.Counter()
            self.mod_changed: collections.Counter = collections.Counter()
            self.mod_after_landed: collections.Counter = collections.Counter()
            self.landed_times: list[float] = []  # monotonic, of every landed call
            self.other_takes: list[float] = []  # monotonic, of the second caller's tokens
            self.other_throttled = 0
            self.first_modify = None
            self.last_modify = None
            self.inflight = 0
            self.busy = 0.0
            self.busy_since = 0.0
            self.max_inflight = 0
            self.inflight_by_action: collections.Counter = collections.Counter()
            self.latency_total = 0.0
            self.started = time.monotonic()
            self.first_call = None
            self.last_call = None
            self.bytes_out = 0
        if self.trail is not None:
            self.trail.reset()

    def stats(self) -> dict:
        with self.lock:
            busy = self.busy + (time.monotonic() - self.busy_since if self.inflight else 0.0)
            return {
                "calls": [
                    {"service": s, "region": r, "action": a, "account": acct, "count": n}
                    for (s, r, a, acct), n in sorted(self.calls.items())
                ],
                "total_calls": sum(self.calls.values()),
                "assume_role_targets": dict(self.assume_role_targets),
                "throttled": dict(self.throttled),
                "errors": [
                    {"region": r, "action": a, "account": acct, "code": c, "count": n}
                    for (r, a, acct, c), n in self.errors.items()
                ],
                "modified": dict(self.modified),
                "modify_span_seconds": (self.last_modify - self.first_modify) if self.first_modify else 0.0,
                "busy_seconds": busy,
                "max_inflight": self.max_inflight,
                "inflight_by_action": {a: n for a, n in self.inflight_by_action.items() if n},
                "latency_seconds_injected": self.latency_total,
                "latency_per_call_seconds": self.latency,
                "calls_span_seconds": (self.last_call - self.first_call) if self.first_call else 0.0,
                # time.monotonic() is CLOCK_MONOTONIC: comparable with the runner's clock.
                "first_call_monotonic": self.first_call,
                "last_call_monotonic": self.last_call,
                "bytes_out": self.bytes_out,
                "s3": self.trail.stats() if self.trail is not None else None,
            }

    def modifies(self) -> dict:
        with self.lock:
            ids = set(self.mod_sent) | set(self.mod_landed)
            return {
                "instances": {
                    i: {
                        "sent": self.mod_sent[i],
                        "landed": self.mod_landed[i],
                        "changed": self.mod_changed[i],
                        "after_landed": self.mod_after_landed[i],
                    }
                    for i in sorted(ids)
                },
                "landed_times": list(self.landed_times),
                "bucket": {"burst": self.burst, "refill": self.refill},
                "other_caller": None if self.other is None else {
                    "region": self.other[0],
                    "rate": self.other[1],
                    "takes": list(self.other_takes),
                    "throttled": self.other_throttled,
                },
            }

    def other_caller(self, region_name: str, rate: float, stop: threading.Event) -> None:
        """The second caller: one token every 1/rate s from the management
        account's bucket in region_name; throttled like anyone when it is
        empty, then trying again every 20 ms until it gets one."""
        period = 1.0 / rate
        due = time.monotonic()
        while not stop.is_set():
            now = time.monotonic()
            if now < due:
                stop.wait(due - now)
                continue
            if self.take_token(ACCOUNT, region_name):
                with self.lock:
                    self.other_takes.append(time.monotonic())
                due += period
                due = max(due, time.monotonic())  # no catching up after a wait
            else:
                with self.lock:
                    self.other_throttled += 1
                stop.wait(0.02)

    # ---- accounting ------------------------------------------------------------------
    def begin(self, key) -> None:
        with self.lock:
            now = time.monotonic()
            self.calls[key] += 1
            self.latency_total += self.latency
            if self.first_call is None:
                self.first_call = now
            if self.inflight == 0:
                self.busy_since = now
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
            self.inflight_by_action[key[2]] += 1

    def end(self, key, nbytes: int) -> None:
        with self.lock:
            self.inflight_by_action[key[2]] -= 1
            now = time.monotonic()
            self.inflight -= 1
            if self.inflight == 0:
                self.busy += now - self.busy_since
            self.last_call = now
            self.bytes_out += nbytes

    def take_token(self, account: str, region_name: str) -> bool:
        region = self.fleet.region(account, region_name)
        if region is None:
            return True
        with self.lock:
            now = time.monotonic()
            region.tokens = min(self.burst, region.tokens + (now - region.refilled) * self.refill)
            region.refilled = now
            if region.tokens >= 1.0:
                region.tokens -= 1.0
                return True
            return False

    # ---- dispatch --------------------------------------------------------------------
    def handle(self, service: str, region: str, action: str, path: str, headers: dict, body: bytes, params: dict,
               account: str | None, session: Session | None):
        try:
            if account is None:
                if service == "s3":
                    return s3_error("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our "
                                    "records.", 403)
                raise BadRequest("InvalidClientTokenId", "The security token included in the request is invalid.", 403)
            if service == "s3":
                return self.s3(region, action, path)
            if service == "sts" and action == "GetCallerIdentity":
                return self.get_caller_identity(account, session)
            if service == "sts" and action == "AssumeRole":
                return self.assume_role(account, session, params)
            if service == "organizations" and action == "ListAccounts":
                return self.list_accounts(account, body)
            if service == "iam" and action == "ListInstanceProfiles":
                return self.list_instance_profiles(account, params)
            if service == "ec2":
                if action == "DescribeRegions":
                    return self.describe_regions(account, params)
                if action == "DescribeInstances":
                    return self.describe_instances(account, region, params)
                if action == "ModifyInstanceMetadataOptions":
                    return self.modify_metadata_options(account, region, params)
                if action == "GetInstanceMetadataDefaults":
                    return self.metadata_defaults()
                if action == "DescribeLaunchTemplateVersions":
                    return self.describe_launch_template_versions(params)
                if action == "DescribeImages":
                    return self.describe_images(account, region, params)
                if action == "DescribeTags":
                    return self.describe_tags(account, region, params)
                return ec2_error("InvalidAction", f"The action {action} is not valid for this web service.", 400)
            if service == "monitoring" and action == "GetMetricData":
                return self.get_metric_data(account, body)
            if service == "monitoring" and action == "GetMetricStatistics":
                return self.get_metric_statistics(account, body)
            if service == "autoscaling" and action == "DescribeAutoScalingGroups":
                return self.describe_autoscaling("DescribeAutoScalingGroups", "AutoScalingGroups", params)
            if service == "autoscaling" and action == "DescribeLaunchConfigurations":
                return self.describe_autoscaling("DescribeLaunchConfigurations", "LaunchConfigurations", params)
            if service == "organizations":
                return json_error("InvalidInputException", f"fakeaws does not implement {service}:{action}")
            return query_error("InvalidAction", f"fakeaws does not implement {service}:{action}", 400)
        except BadRequest as e:
            with self.lock:
                self.errors[(region, action, account or "?", e.code)] += 1
            if service == "ec2":
                return ec2_error(e.code, e.message, e.status)
            if service == "s3":
                return s3_error(e.code, e.message, e.status)
            if service == "monitoring":
                return self.cbor_error(e.code, e.message, e.status)
            if service == "organizations":
                return json_error(e.code, e.message, e.status)
            return query_error(e.code, e.message, e.status)

    # ---- S3: the trail bucket ------------------------------------------------------------
    def s3(self, region: str, action: str, path: str):
        """REST, path-style (`/BUCKET?list-type=2...`, `/BUCKET/KEY`): ListObjectsV2 and
        GetObject of the trail bucket, which lives in its own region."""
        tb = self.trail
        split = urllib.parse.urlsplit(path)
        bucket, _, key = split.path.lstrip("/").partition("/")
        bucket, key = urllib.parse.unquote(bucket), urllib.parse.unquote(key)
        query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        if tb is None or bucket != tb.bucket:
            return s3_error("NoSuchBucket", "The specified bucket does not exist", 404,
                            f"<BucketName>{escape(bucket)}</BucketName>")
        if region != tb.region:
            return s3_error("AuthorizationHeaderMalformed", "The authorization header is malformed; the region "
                            f"'{region}' is wrong; expecting '{tb.region}'", 400, f"<Region>{tb.region}</Region>")
        if action not in ("ListObjectsV2", "GetObject"):
            return s3_error("MethodNotAllowed", "The specified method is not allowed against this resource.", 405)
        if action == "ListObjectsV2":
            if key:
                return s3_error("NoSuchKey", "The specified key does not exist.", 404)
            return self.s3_list(tb, query)
        if not key:
            return s3_error("NotImplemented", "fakeaws serves ListObjectsV2 (list-type=2) only", 501)
        o = tb.objects.get(key)
        if o is None:
            return s3_error("NoSuchKey", "The specified key does not exist.", 404, f"<Key>{escape(key)}</Key>")
        body = tb.body(o)
        with tb.lock:
            tb.gets[key] += 1
            tb.get_bytes += len(body)
            tb.get_raw_bytes += o.raw_size
        modified = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(o.folder.day * DAY + 3600))
        return 200, body, {
            "Content-Type": "application/json",
            "ETag": f'"{o.crc:08x}{o.raw_size:08x}{o.size:016x}"',
            "Last-Modified": modified,
            "Accept-Ranges": "bytes",
            "x-amz-server-side-encryption": "AES256",
        }

    @staticmethod
    def s3_list(tb: TrailBucket, query: dict):
        prefix = query.get("prefix", "")
        delimiter = query.get("delimiter", "")
        raw_max = query.get("max-keys", str(S3_PAGE))
        if not raw_max.isdigit():
            raise BadRequest("InvalidArgument", "Provided max-keys not an integer or within integer range", 400)
        max_keys = min(int(raw_max), S3_PAGE)
        token = query.get("continuation-token")
        contents, prefixes, next_token = tb.list_page(prefix, delimiter, token, query.get("start-after", ""),
                                                      max_keys)
        with tb.lock:
            tb.listed[(prefix, delimiter)] += 1
        parts = [f'<ListBucketResult xmlns="{S3_NS}"><Name>{escape(tb.bucket)}</Name><Prefix>{escape(prefix)}</Prefix>']
        if delimiter:
            parts.append(f"<Delimiter>{escape(delimiter)}</Delimiter>")
        parts.append(f"<MaxKeys>{max_keys}</MaxKeys><KeyCount>{len(contents) + len(prefixes)}</KeyCount>"
                     f"<IsTruncated>{'true' if next_token else 'false'}</IsTruncated>")
        if token:
            parts.append(f"<ContinuationToken>{escape(token)}</ContinuationToken>")
        if next_token:
            parts.append(f"<NextContinuationToken>{next_token}</NextContinuationToken>")
        for key in contents:
            o = tb.objects[key]
            modified = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(o.folder.day * DAY + 3600))
            parts.append(f"<Contents><Key>{escape(key)}</Key><LastModified>{modified}</LastModified>"
                         f'<ETag>&quot;{o.crc:08x}{o.raw_size:08x}{o.size:016x}&quot;</ETag><Size>{o.size}</Size>'
                         "<StorageClass>STANDARD</StorageClass></Contents>")
        for p in prefixes:
            parts.append(f"<CommonPrefixes><Prefix>{escape(p)}</Prefix></CommonPrefixes>")
        parts.append("</ListBucketResult>")
        return 200, ('<?xml version="1.0" encoding="UTF-8"?>\n' + "".join(parts)).encode(), {
            "Content-Type": "application/xml"}

    @staticmethod
    def principal(account: str, session: Session | None) -> tuple[str, str]:
        """(ARN, user id) of the caller."""
        if session is None:
            return f"arn:aws:iam::{account}:user/bench", "AIDABENCHBENCHBENCH00"
        role_id = f"AROA{zlib.crc32(f'{account}:{session.role}'.encode()):016X}"
        return f"arn:aws:sts::{account}:assumed-role/{session.role}/{session.session_name}", f"{role_id}:{session.session_name}"

    def get_caller_identity(self, account: str, session: Session | None):
        arn, user_id = self.principal(account, session)
        return xml_ok(
            f'<GetCallerIdentityResponse xmlns="{STS_NS}">'
            "<GetCallerIdentityResult>"
            f"<Arn>{escape(arn)}</Arn><UserId>{escape(user_id)}</UserId>"
            f"<Account>{account}</Account></GetCallerIdentityResult>"
            f"<ResponseMetadata><RequestId>{request_id()}</RequestId></ResponseMetadata>"
            "</GetCallerIdentityResponse>"
        )

    def assume_role(self, account: str, session: Session | None, params: dict):
        role_arn = params.get("RoleArn", "")
        session_name = params.get("RoleSessionName", "")
        if not SESSION_NAME.match(session_name):
            raise BadRequest("ValidationError", f"1 validation error detected: Value '{session_name}' at "
                             "'roleSessionName' failed to satisfy constraint")
        try:
            duration = int(params.get("DurationSeconds") or 3600)
        except ValueError:
            raise BadRequest("ValidationError", "DurationSeconds must be an integer")
        if not 900 <= duration <= 43_200:
            raise BadRequest("ValidationError", f"1 validation error detected: Value '{duration}' at "
                             "'durationSeconds' failed to satisfy constraint")
        caller_arn, _ = self.principal(account, session)
        denied = BadRequest(
            "AccessDenied",
            f"User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
            403,
        )
        m = ROLE_ARN.match(role_arn)
        if m is None:
            raise BadRequest("ValidationError", f"{role_arn} is invalid")
        target, role = m.group(1), m.group(2)
        with self.lock:
            self.assume_role_targets[target] += 1
        a = self.fleet.accounts.get(target)
        if a is None or a.status != "ACTIVE" or role != self.role_name or target in self.fleet.unassumable:
            raise denied
        if self.external_id is not None and params.get("ExternalId") != self.external_id:
            raise denied
        with self.lock:
            self.serials[target] += 1
            akid = f"ASIA{target}{self.serials[target] % 0x10000:04X}"
            token = base64.b64encode(f"bench-session:{akid}:{request_id()}".encode()).decode()
            self.sessions[akid] = Session(target, role, session_name, token)
        secret = base64.b64encode(zlib.crc32(akid.encode()).to_bytes(4, "big") * 7).decode()[:40]
        new_arn, new_id = self.principal(target, self.sessions[akid])
        expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=duration)
        return xml_ok(
            f'<AssumeRoleResponse xmlns="{STS_NS}"><AssumeRoleResult>'
            f"<AssumedRoleUser><AssumedRoleId>{escape(new_id)}</AssumedRoleId><Arn>{escape(new_arn)}</Arn>"
            "</AssumedRoleUser>"
            f"<Credentials><AccessKeyId>{akid}</AccessKeyId><SecretAccessKey>{secret}</SecretAccessKey>"
            f"<SessionToken>{token}</SessionToken>"
            f"<Expiration>{expires.strftime('%Y-%m-%dT%H:%M:%SZ')}</Expiration></Credentials>"
            "</AssumeRoleResult>"
            f"<ResponseMetadata><RequestId>{request_id()}</RequestId></ResponseMetadata>"
            "</AssumeRoleResponse>"
        )

    def list_accounts(self, account: str, body: bytes):
        if account != ACCOUNT:
            raise BadRequest("AccessDeniedException", "You don't have permissions to access this resource.")
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            raise BadRequest("SerializationException", "the request body is not JSON")
        max_results = req.get("MaxResults")
        if max_results is not None and not (isinstance(max_results, int) and 1 <= max_results <= 20):
            raise BadRequest("InvalidInputException", "MaxResults must be between 1 and 20")
        page_size = max_results or 20
        offset = decode_token(req["NextToken"]) if req.get("NextToken") else 0
        listed = list(self.fleet.accounts.values())
        page = listed[offset : offset + page_size]
        out = []
        for n, a in enumerate(page, start=offset):
            entry = {
                "Id": a.id,
                "Arn": f"arn:aws:organizations::{ACCOUNT}:account/{ORG_ID}/{a.id}",
                "Email": a.email,
                "Name": a.name,
                "State": a.status,
                "JoinedMethod": "INVITED" if a.id == ACCOUNT else "CREATED",
                "JoinedTimestamp": float(self.fleet.epoch - (len(listed) - n) * 30 * DAY),
            }
            if not self.state_only:
                entry["Status"] = a.status
            out.append(entry)
        doc: dict = {"Accounts": out}
        if offset + page_size < len(listed):
            doc["NextToken"] = encode_token(offset + page_size)
        return 200, json.dumps(doc).encode(), {"Content-Type": "application/x-amz-json-1.1"}

    def list_instance_profiles(self, account: str, params: dict):
        max_items = int(params.get("MaxItems", 100))
        start = int(params["Marker"]) if params.get("Marker", "").isdigit() else 0
        page = list(range(start, min(PROFILE_COUNT, start + max_items)))
        truncated = page[-1] + 1 < PROFILE_COUNT if page else False
        members = []
        for p in page:
            created = utc(self.fleet.epoch - p * DAY * 7)
            members.append(
                "<member><Path>/</Path>"
                f"<InstanceProfileName>app-profile-{p}</InstanceProfileName>"
                f"<InstanceProfileId>AIPA{p:016d}</InstanceProfileId>"
                f"<Arn>arn:aws:iam::{account}:instance-profile/app-profile-{p}</Arn>"
                f"<CreateDate>{created}</CreateDate><Roles>"
                f"<member><Path>/</Path><RoleName>app-role-{p}</RoleName><RoleId>AROA{p:016d}</RoleId>"
                f"<Arn>arn:aws:iam::{account}:role/app-role-{p}</Arn><CreateDate>{created}</CreateDate>"
                "<AssumeRolePolicyDocument>%7B%7D</AssumeRolePolicyDocument></member>"
                "</Roles></member>"
            )
        marker = f"<Marker>{page[-1] + 1}</Marker>" if truncated else ""
        return xml_ok(
            '<ListInstanceProfilesResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
            f"<ListInstanceProfilesResult><IsTruncated>{'true' if truncated else 'false'}</IsTruncated>{marker}"
            f"<InstanceProfiles>{''.join(members)}</InstanceProfiles></ListInstanceProfilesResult>"
            f"<ResponseMetadata><RequestId>{request_id()}</RequestId></ResponseMetadata>"
            "</ListInstanceProfilesResponse>"
        )

    def describe_regions(self, account: str, params: dict):
        all_regions = params.get("AllRegions", "false").lower() == "true"
        mine = self.fleet.accounts[account].regions
        items = [(name, "opt-in-not-required") for name in mine]
        items += [(n, s) for n, s in OTHER_REGIONS if n not in mine]
        wanted = set(ec2_list(params, "RegionName"))
        out = []
        for name, status in items:
            if wanted and name not in wanted:
                continue
            if not all_regions and status == "not-opted-in":
                continue
            out.append(
                f"<item><regionName>{name}</regionName><regionEndpoint>ec2.{name}.amazonaws.com</regionEndpoint>"
                f"<optInStatus>{status}</optInStatus></item>"
            )
        return xml_ok(
            f'<DescribeRegionsResponse xmlns="{EC2_NS}"><requestId>{request_id()}</requestId>'
            f"<regionInfo>{''.join(out)}</regionInfo></DescribeRegionsResponse>"
        )

    def describe_instances(self, account: str, region_name: str, params: dict):
        ids = ec2_list(params, "InstanceId")
        if ids and "MaxResults" in params:
            raise BadRequest(
                "InvalidParameterCombination", "The parameter instancesSet cannot be used with the parameter maxResults"
            )
        max_results = int(params.get("MaxResults", 0) or 0)
        if max_results and not 5 <= max_results <= 1000:
            raise BadRequest(
                "InvalidParameterValue", f"Value ( {max_results} ) for parameter maxResults is invalid."
            )
        filters = ec2_filters(params)
        region = self.fleet.region(account, region_name)
        idxs: list[int] = []
        if region is not None:
            id_filter = [v for n, vs in filters if n == "instance-id" for v in vs]
            if ids or id_filter:
                for iid in dict.fromkeys(ids + id_filter):
                    loc = self.fleet.locate(iid)
                    if loc and loc[0] is region:
                        idxs.append(loc[1])
                if ids and len(idxs) < len(set(ids)):
                    missing = [i for i in ids if not (self.fleet.locate(i) and self.fleet.locate(i)[0] is region)]
                    raise BadRequest("InvalidInstanceID.NotFound", f"The instance IDs '{', '.join(missing)}' do not exist")
                idxs.sort()
                idxs = [i for i in idxs if self.fleet.matches(region, i, filters)]
            elif filters:
                idxs = [i for i in range(region.size) if self.fleet.matches(region, i, filters)]
            else:
                idxs = range(region.size)  # type: ignore[assignment]
        offset = decode_token(params["NextToken"]) if params.get("NextToken") else 0
        end = offset + max_results if max_results else len(idxs)
        page = idxs[offset:end]
        next_token = encode_token(end) if end < len(idxs) else None
        # RESERVATION (2) instances per reservation (pairs launched together), like RunInstances with MinCount 2.
        parts = [f'<DescribeInstancesResponse xmlns="{EC2_NS}"><requestId>{request_id()}</requestId><reservationSet>']
        current = None
        for idx in page:
            rid = idx // RESERVATION
            if rid != current:
                if current is not None:
                    parts.append("</instancesSet></item>")
                parts.append(
                    f"<item><reservationId>r-0{region.number:02x}{rid:014x}</reservationId>"
                    f"<ownerId>{account}</ownerId><groupSet/><instancesSet>"
                )
                current = rid
            parts.append(self.fleet.render_instance(region, idx))
        if current is not None:
            parts.append("</instancesSet></item>")
        parts.append("</reservationSet>")
        if next_token:
            parts.append(f"<nextToken>{next_token}</nextToken>")
        parts.append("</DescribeInstancesResponse>")
        return xml_ok("".join(parts))

    def modify_metadata_options(self, account: str, region_name: str, params: dict):
        instance_id = params.get("InstanceId", "")
        dry_run = params.get("DryRun", "false").lower() == "true"
        if not dry_run:
            with self.lock:
                self.mod_sent[instance_id] += 1
                if self.mod_landed[instance_id]:
                    self.mod_after_landed[instance_id] += 1
        if not self.take_token(account, region_name):
            with self.lock:
                self.throttled[region_name] += 1
            return ec2_error("RequestLimitExceeded", "Request limit exceeded.", 503)
        loc = self.fleet.locate(instance_id)
        if loc is None or loc[0].name != region_name or loc[0].account != account:
            raise BadRequest("InvalidInstanceID.NotFound", f"The instance ID '{instance_id}' does not exist")
        if params.get("DryRun", "false").lower() == "true":
            raise BadRequest("DryRunOperation", "Request would have succeeded, but DryRun flag is set.", 412)
        change = {}
        for param, key in [
            ("HttpTokens", "httpTokens"),
            ("HttpPutResponseHopLimit", "httpPutResponseHopLimit"),
            ("HttpEndpoint", "httpEndpoint"),
            ("HttpProtocolIpv6", "httpProtocolIpv6"),
            ("InstanceMetadataTags", "instanceMetadataTags"),
        ]:
            if param in params:
                change[key] = params[param]
        if change.get("httpTokens", "required") not in ("required", "optional"):
            raise BadRequest("InvalidParameterValue", f"Invalid value for HttpTokens: {change['httpTokens']}")
        region, idx = loc
        with self.fleet.lock:
            before = self.fleet.options(region, idx, instance_id)
            self.fleet.overrides.setdefault(instance_id, {}).update(change)
            differs = self.fleet.options(region, idx, instance_id) != before
        with self.lock:
            self.modified[region_name] += 1
            now = time.monotonic()
            self.mod_landed[instance_id] += 1
            self.mod_changed[instance_id] += differs
            self.landed_times.append(now)
            self.first_modify = self.first_modify or now
            self.last_modify = now
        o = self.fleet.options(region, idx, instance_id)
        return xml_ok(
            f'<ModifyInstanceMetadataOptionsResponse xmlns="{EC2_NS}"><requestId>{request_id()}</requestId>'
            f"<instanceId>{instance_id}</instanceId><instanceMetadataOptions>"
            f"<state>applied</state><httpTokens>{o['httpTokens']}</httpTokens>"
            f"<httpPutResponseHopLimit>{o['httpPutResponseHopLimit']}</httpPutResponseHopLimit>"
            f"<httpEndpoint>{o['httpEndpoint']}</httpEndpoint><httpProtocolIpv6>{o['httpProtocolIpv6']}</httpProtocolIpv6>"
            f"<instanceMetadataTags>{o['instanceMetadataTags']}</instanceMetadataTags>"
            "</instanceMetadataOptions></ModifyInstanceMetadataOptionsResponse>"
        )

    def metadata_defaults(self):
        # No account-level defaults set (what a new account answers).
        return xml_ok(
            f'<GetInstanceMetadataDefaultsResponse xmlns="{EC2_NS}"><requestId>{request_id()}</requestId>'
            "<accountLevel/></GetInstanceMetadataDefaultsResponse>"
        )

    def describe_launch_template_versions(self, params: dict):
        """The fleet has no launch templates: every listing is empty, and a
        template asked for by id or name does not exist."""
        max_results = params.get("MaxResults")
        if max_results is not None and not (max_results.isdigit() and 1 <= int(max_results) <= 200):
            raise BadRequest("InvalidParameterValue", f"Value ( {max_results} ) for parameter maxResults is invalid.")
        if params.get("LaunchTemplateId"):
            raise BadRequest("InvalidLaunchTemplateId.NotFound",
                             f"The specified launch template, with template ID {params['LaunchTemplateId']}, "
                             "does not exist.")
        if params.get("LaunchTemplateName"):
            raise BadRequest("InvalidLaunchTemplateName.NotFoundException",
                             "At least one of the launch templates specified in the request does not exist.")
        versions = ec2_list(params, "LaunchTemplateVersion")
        if any(v not in ("$Default", "$Latest") for v in versions):
            raise BadRequest("InvalidParameterValue",
                             "Without a launch template id or name, versions must be $Latest or $Default.")
        if params.get("NextToken"):
            decode_token(params["NextToken"])
        return xml_ok(
            f'<DescribeLaunchTemplateVersionsResponse xmlns="{EC2_NS}"><requestId>{request_id()}</requestId>'
            "<launchTemplateVersionSet/></DescribeLaunchTemplateVersionsResponse>"
        )

    def describe_images(self, account: str, region_name: str, params: dict):
        """One image per id asked (ImageId.N, the image-id filter, or both:
        their intersection); every well-formed ami- id exists. Half of the
        fleet's AMIs have ImdsSupport=v2.0 (imds_v2_image)."""
        ids = ec2_list(params, "ImageId")
        wanted = None
        for name, values in ec2_filters(params):
            if name != "image-id":
                raise BadRequest("InvalidParameterValue", f"The filter '{name}' is invalid")
            wanted = set(values) if wanted is None else wanted & set(values)
        if ids:
            bad = [i for i in ids if not re.fullmatch(r"ami-[0-9a-f]{8,17}", i)]
            if bad:
                raise BadRequest("InvalidAMIID.Malformed", f"Invalid id: \"{bad[0]}\"")
            chosen = [i for i in dict.fromkeys(ids) if wanted is None or i in wanted]
        else:
            chosen = sorted(wanted or ())
        items = []
        for image_id in chosen:
            if not re.fullmatch(r"ami-[0-9a-f]{8,17}", image_id):
                continue  # a filter value that is no AMI id matches nothing
            n = AMI_INDEX.get(image_id, 99)
            imds = "<imdsSupport>v2.0</imdsSupport>" if imds_v2_image(image_id) else ""
            items.append(
                f"<item><imageId>{image_id}</imageId>"
                f"<imageLocation>{account}/bench-image-{n}</imageLocation><imageState>available</imageState>"
                f"<imageOwnerId>{account}</imageOwnerId><creationDate>{utc(self.fleet.epoch - 400 * DAY)}</creationDate>"
                f"<isPublic>false</isPublic><architecture>x86_64</architecture><imageType>machine</imageType>"
                f"<name>bench-image-{n}</name><rootDeviceType>ebs</rootDeviceType>"
                f"<rootDeviceName>/dev/xvda</rootDeviceName><blockDeviceMapping/>"
                f"<virtualizationType>hvm</virtualizationType><hypervisor>xen</hypervisor>{imds}</item>"
            )
        return xml_ok(
            f'<DescribeImagesResponse xmlns="{EC2_NS}"><requestId>{request_id()}</requestId>'
            f"<imagesSet>{''.join(items)}</imagesSet></DescribeImagesResponse>"
        )

    def describe_tags(self, account: str, region_name: str, params: dict):
        """The instances' tags (the only tagged resources of the fake), in
        instance order, each instance's in its own order. A resource-id
        filter is looked up by id, not by walking the region: a caller that
        asks for one instance's tags per call, 10,000 times, costs the fake
        no more than 10,000 small answers."""
        max_results = int(params.get("MaxResults", 0) or 0)
        if max_results and not 5 <= max_results <= 1000:
            raise BadRequest("InvalidParameterValue", f"Value ( {max_results} ) for parameter maxResults is invalid.")
        ids, rest = None, []
        for name, values in ec2_filters(params):
            if name == "resource-id":
                ids = values if ids is None else [i for i in ids if i in values]
            elif name in ("resource-type", "key", "value"):
                rest.append((name, values))
            else:
                raise BadRequest("InvalidParameterValue", f"The filter '{name}' is invalid")
        region = self.fleet.region(account, region_name)
        idxs: list[int] = []
        if region is not None:
            if ids is None:
                idxs = range(region.size)  # type: ignore[assignment]
            else:
                for iid in dict.fromkeys(ids):
                    loc = self.fleet.locate(iid)
                    if loc and loc[0] is region:
                        idxs.append(loc[1])
                idxs.sort()
        items = []
        for idx in idxs:
            h = self.fleet.hash(region.number, idx)
            instance_id = self.fleet.instance_id(region.number, idx)
            for key, value in self.fleet.tags(region, idx, h):
                if all(
                    any(fnmatchcase({"resource-type": "instance", "key": key, "value": value}[name], v) for v in values)
                    for name, values in rest
                ):
                    items.append(
                        f"<item><resourceId>{instance_id}</resourceId><resourceType>instance</resourceType>"
                        f"<key>{escape(key)}</key><value>{escape(value)}</value></item>"
                    )
        offset = decode_token(params["NextToken"]) if params.get("NextToken") else 0
        end = offset + max_results if max_results else len(items)
        token = f"<nextToken>{encode_token(end)}</nextToken>" if end < len(items) else ""
        return xml_ok(
            f'<DescribeTagsResponse xmlns="{EC2_NS}"><requestId>{request_id()}</requestId>'
            f"<tagSet>{''.join(items[offset:end])}</tagSet>{token}</DescribeTagsResponse>"
        )

    def describe_autoscaling(self, action: str, member: str, params: dict):
        """Auto Scaling (awsQuery): the fleet has no groups and no launch
        configurations, so every page is empty."""
        max_records = params.get("MaxRecords")
        if max_records is not None and not (max_records.isdigit() and 1 <= int(max_records) <= 100):
            raise BadRequest("ValidationError", f"1 validation error detected: Value '{max_records}' at "
                             "'maxRecords' failed to satisfy constraint: Member must have value less than or "
                             "equal to 100")
        if params.get("NextToken"):
            decode_token(params["NextToken"])
        return xml_ok(
            f'<{action}Response xmlns="{AUTOSCALING_NS}"><{action}Result><{member}/></{action}Result>'
            f"<ResponseMetadata><RequestId>{request_id()}</RequestId></ResponseMetadata></{action}Response>"
        )

    def get_metric_data(self, account: str, body: bytes):
        req = cbor2.loads(body) if body else {}
        start = as_epoch(req["StartTime"])
        end = as_epoch(req["EndTime"])
        queries = req.get("MetricDataQueries") or []
        if len(queries) > 500:
            return self.cbor_error("ValidationError", "The collection MetricDataQueries must not have a size greater than 500.")
        results = []
        for q in queries:
            stat = q.get("MetricStat") or {}
            metric = stat.get("Metric") or {}
            dims = metric.get("Dimensions") or []
            instance_id = dims[0]["Value"] if dims else ""
            period = int(stat.get("Period") or 60)
            stamps, values = self.fleet.datapoints(account, instance_id, metric.get("MetricName", ""), start, end, period)
            if req.get("ScanBy") == "TimestampDescending":
                stamps, values = stamps[::-1], values[::-1]
            results.append(
                {
                    "Id": q["Id"],
                    "Label": metric.get("MetricName", q["Id"]),
                    "Timestamps": [cbor_timestamp(t) for t in stamps],
                    "Values": values,
                    "StatusCode": "Complete",
                }
            )
        payload = cbor2.dumps({"MetricDataResults": results, "Messages": []})
        return 200, payload, {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"}

    def get_metric_statistics(self, account: str, body: bytes):
        """One metric of one instance (its InstanceId dimension), the Sum of
        each period: the same datapoints GetMetricData gives for it. Other
        statistics are refused rather than made up: the fake keeps period
        sums only."""
        req = json.loads(body) if body else {}
        start, end = float(req["StartTime"]), float(req["EndTime"])  # JSON 1.0: epoch seconds
        period = int(req.get("Period") or 0)
        statistics = req.get("Statistics") or []
        if period < 60 or period % 60:
            return self.json10_error("InvalidParameterValue", "The parameter Period must be a multiple of 60.")
        if req.get("ExtendedStatistics") or set(statistics) != {"Sum"}:
            return self.json10_error("InvalidParameterCombination", "fakeaws serves the Sum statistic only.")
        if (end - start) / period > 1440:
            return self.json10_error("InvalidParameterCombination",
                                     "You have requested up to 1,440 datapoints, which exceeds the limit of 1,440.")
        metric = req.get("MetricName", "")
        dims = {d.get("Name"): d.get("Value") for d in req.get("Dimensions") or []}
        stamps, values = self.fleet.datapoints(account, dims.get("InstanceId", ""), metric, start, end, period)
        points = [{"Timestamp": t, "Sum": v, "Unit": "Count"} for t, v in zip(stamps, values)]
        payload = json.dumps({"Label": metric, "Datapoints": points}).encode()
        return 200, payload, {"Content-Type": "application/x-amz-json-1.0"}

    @staticmethod
    def json10_error(code: str, message: str, status: int = 400):
        """A CloudWatch error in JSON 1.0; botocore also reads the code from
        x-amzn-query-error, which CloudWatch sends to clients in query mode."""
        payload = json.dumps({"__type": f"com.amazonaws.cloudwatch#{code}", "message": message}).encode()
        return status, payload, {"Content-Type": "application/x-amz-json-1.0", "x-amzn-query-error": f"{code};Sender"}

    @staticmethod
    def cbor_error(code: str, message: str, status: int = 400):
        payload = cbor2.dumps({"__type": f"com.amazonaws.cloudwatch#{code}", "message": message})
        return status, payload, {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"}


def parse_scope(auth: str) -> tuple[str, str, str]:
    """(service, region, access key id) of `Credential=AKID/20250101/us-east-1/ec2/aws4_request`."""
    akid, region, service = credential_scope(auth)
    return service, region, akid


class Headers(dict):
    """A request's headers, keys lowercased: what the handler and
    http.server read (`get`, `items`), without the email parser."""

    def get(self, key, default=None):
        return dict.get(self, key.lower(), default)


def parse_headers(fp, _class=None) -> Headers:
    """http.client.parse_headers for this server's requests. The standard one
    runs every request's header block through email.parser, the largest part
    of the fake's own time per call once a client keeps 200 calls in flight;
    SigV4-signed requests have plain `Name: value` lines."""
    out = Headers()
    while True:
        line = fp.readline(65537)
        if line in (b"\r\n", b"\n", b""):
            return out
        name, _, value = line.decode("iso-8859-1").partition(":")
        out[name.strip().lower()] = value.strip()


def make_server(fake: FakeAws, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # A reply goes out as two writes (headers, then body). With Nagle's
        # algorithm a small body waits for the client's delayed ACK of the
        # headers, about 40 ms on Linux: a stall no AWS endpoint has, which
        # one-call-at-a-time clients with small answers (botocore asking
        # GetMetricStatistics per instance) would pay on every call. The bytes
        # sent are the same either way.
        disable_nagle_algorithm = True

        def log_message(self, *args):
            pass

        def reply(self, status: int, body: bytes, headers: dict) -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("x-amzn-RequestId", request_id())
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def bench(self, body: bytes) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/_bench/stats":
                out = fake.stats()
            elif path == "/_bench/modifies":
                out = fake.modifies()
            elif path == "/_bench/fleet":
                out = fake.fleet.expected()
            elif path == "/_bench/trail":
                out = fake.trail.expected() if fake.trail is not None else None
            elif path == "/_bench/roles":
                out = fake.fleet.role_counts()
            elif path == "/_bench/state":
                query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
                out = fake.fleet.state_counts(query.get("account", ACCOUNT))
            elif path == "/_bench/lookup" and self.command == "POST":
                ids = json.loads(body or b"[]")
                out = {}
                for iid in ids:
                    loc = fake.fleet.locate(iid)
                    out[iid] = fake.fleet.options(loc[0], loc[1], iid) if loc else None
            elif path == "/_bench/owners" and self.command == "POST":
                ids = json.loads(body or b"[]")
                out = {}
                for iid in ids:
                    loc = fake.fleet.locate(iid)
                    out[iid] = {"account": loc[0].account, "region": loc[0].name} if loc else None
            elif path == "/_bench/reset" and self.command == "POST":
                fake.reset()
                out = {"ok": True}
            elif path == "/_bench/shutdown" and self.command == "POST":
                out = {"ok": True}
                threading.Thread(target=self.server.shutdown, daemon=True).start()
            else:
                self.reply(404, b'{"error":"unknown bench endpoint"}', {"Content-Type": "application/json"})
                return
            self.reply(200, json.dumps(out).encode(), {"Content-Type": "application/json"})

        def handle_any(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.path.startswith("/_bench/"):
                self.bench(body)
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            service, region, akid = parse_scope(headers.get("authorization", ""))
            resolved = fake.resolve(akid, headers.get("x-amz-security-token"))
            account, session = resolved if resolved else (None, None)
            params: dict = {}
            action = ""
            if service == "s3":  # REST: the action is in the method and the query
                listing = "list-type=2" in urllib.parse.urlsplit(self.path).query.split("&")
                action = "ListObjectsV2" if listing and self.command == "GET" else \
                    "GetObject" if self.command == "GET" else f"{self.command.title()}Object"
            elif "/operation/" in self.path:
                action = self.path.split("?", 1)[0].rsplit("/operation/", 1)[-1]
            elif headers.get("x-amz-target"):
                action = headers["x-amz-target"].rsplit(".", 1)[-1]
            else:
                raw = body.decode() if body else urllib.parse.urlsplit(self.path).query
                params = dict(urllib.parse.parse_qsl(raw, keep_blank_values=True))
                action = params.get("Action", "")
            key = (service, region, action, account or "?")
            fake.begin(key)
            nbytes = 0
            try:
                # A fixed network/service latency on top of the fake's own work.
                if fake.latency > 0:
                    time.sleep(fake.latency)
                status, out, out_headers = fake.handle(
                    service, region, action, self.path, headers, body, params, account, session
                )
                nbytes = len(out)
                self.reply(status, out, out_headers)
            finally:
                fake.end(key, nbytes)

        do_GET = do_POST = do_PUT = do_DELETE = handle_any

    class Server(ThreadingHTTPServer):
        # socketserver's listen backlog is 5: a client opening a hundred
        # connections at once (an organisation scan) had SYNs dropped and
        # waited out TCP's 1 s, 3 s, 7 s retransmissions with nothing in
        # flight, a stall no AWS endpoint has.
        request_queue_size = 1024

    import http.client

    http.client.parse_headers = parse_headers  # this process serves; it is no HTTP client
    server = Server((HOST, port), Handler)
    server.daemon_threads = True
    return server


def parse_sizes(text: str) -> list[tuple[str, int]]:
    out = []
    for part in text.split(","):
        name, _, n = part.partition("=")
        out.append((name.strip(), int(n)))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--regions", required=True, help="REGION=N,REGION=N: instances per region")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--accounts", type=int, default=1,
                    help="accounts in the organization, the management account included (default 1)")
    ap.add_argument("--suspended-accounts", type=int, default=0,
                    help="extra SUSPENDED accounts ListAccounts shows, with no fleet (default 0)")
    ap.add_argument("--org-instances", type=int, default=0,
                    help="instead of the --regions sizes, give every active account an uneven fleet "
                         "(org_sizes) with about this many instances in all (default 0: the sizes)")
    ap.add_argument("--unassumable-accounts", type=int, default=0,
                    help="ACTIVE members whose role cannot be assumed (AccessDenied), with no fleet (default 0)")
    ap.add_argument("--role-name", default="BenchRole", help="the role AssumeRole grants in every account")
    ap.add_argument("--external-id", help="the ExternalId AssumeRole requires (default: none)")
    ap.add_argument("--state-only", action="store_true",
                    help="ListAccounts without the retired Status field (State only)")
    ap.add_argument("--latency-ms", type=float, default=50.0, help="fixed latency per AWS call (default 50)")
    ap.add_argument("--port", type=int, default=0, help="loopback port (default: a free one)")
    ap.add_argument("--ready-file", help="write the endpoint URL here once listening")
    ap.add_argument("--max-lifetime", type=float, default=3600.0, help="stop by itself after this many seconds")
    ap.add_argument("--optional-share", type=float, default=0.30, help="HttpTokens=optional share (default 0.30)")
    ap.add_argument("--disabled-share", type=float, default=0.05, help="endpoint-disabled share (default 0.05)")
    ap.add_argument("--in-use-share", type=float, default=0.10, help="optional ones with MetadataNoToken > 0")
    ap.add_argument("--stopped-share", type=float, default=0.10, help="stopped share of each posture (no metric data)")
    ap.add_argument("--rejecting-share", type=float, default=0.03, help="required ones with MetadataNoTokenRejected > 0")
    ap.add_argument(
        "--disabled-tokens",
        choices=["mixed", "optional", "required"],
        default="mixed",
        help="HttpTokens of endpoint-disabled instances (default: half each)",
    )
    ap.add_argument("--trail-bytes", type=float, default=0,
                    help="serve a CloudTrail bucket over S3 whose window holds at least this many bytes of "
                         "uncompressed log JSON (default 0: no bucket)")
    ap.add_argument("--trail-days", type=int, default=7, help="the bucket's window: the last N days (default 7)")
    ap.add_argument("--trail-bucket", default="bench-org-trail", help="the bucket's name")
    ap.add_argument("--trail-prefix", default="cloudtrail", help="the trail's key prefix")
    ap.add_argument("--trail-bucket-region", default="us-east-1", help="the bucket's region")
    ap.add_argument("--trail-busy-objects", type=int, default=1010,
                    help="small objects added to one window folder (more than 1,000: 2 pages to list; default 1010)")
    ap.add_argument("--trail-now", type=float, help="the epoch the window ends at (default: now)")
    ap.add_argument("--burst", type=float, default=100.0, help="token bucket size for mutating calls, per region")
    ap.add_argument("--refill", type=float, default=5.0, help="token bucket refill per second, per region")
    ap.add_argument("--other-caller", metavar="REGION=RATE",
                    help="a second caller taking RATE ModifyInstanceMetadataOptions tokens per second from the "
                         "management account's bucket in REGION (default: none)")
    args = ap.parse_args(argv)

    fleet = Fleet(args.seed, parse_sizes(args.regions), args, args.accounts, args.suspended_accounts,
                  args.org_instances, args.unassumable_accounts)
    trail = None
    if args.trail_bytes > 0:
        trail = TrailBucket(args.seed, args.trail_now if args.trail_now is not None else time.time(), args.trail_days,
                            int(args.trail_bytes), args.trail_bucket, args.trail_prefix, args.trail_bucket_region,
                            args.trail_busy_objects, member_ids(args.seed, 1)[0])
        trail.expected()  # computed once, before the first call
    fake = FakeAws(fleet, args.latency_ms / 1000.0, args.burst, args.refill, args.role_name, args.external_id,
                   args.state_only, trail)
    stop_other = threading.Event()
    if args.other_caller:
        other_region, _, other_rate = args.other_caller.partition("=")
        if fleet.region(ACCOUNT, other_region) is None or not other_rate or float(other_rate) <= 0:
            raise SystemExit("fakeaws: --other-caller needs REGION=RATE, a region of --regions and a rate > 0")
        fake.other = (other_region, float(other_rate))
        threading.Thread(target=fake.other_caller, args=(other_region, float(other_rate), stop_other),
                         daemon=True).start()
    server = make_server(fake, args.port)
    url = f"http://{HOST}:{server.server_address[1]}"
    timer = threading.Timer(args.max_lifetime, server.shutdown)
    timer.daemon = True
    timer.start()
    if args.ready_file:
        with open(args.ready_file + ".tmp", "w") as f:
            f.write(url + "\n")
        import os

        os.replace(args.ready_file + ".tmp", args.ready_file)
    total = sum(r.size for r in fleet.by_number.values())
    print(f"fakeaws listening on {url} ({total} instances in {len(fleet.active_accounts())} account(s))", file=sys.stderr)
    if trail is not None:
        e = trail.expected()
        print(f"fakeaws: s3://{trail.bucket}/{trail.prefix}: {e['objects']} log objects in the window, "
              f"{e['bytes_uncompressed'] / 1e9:.2f} GB of JSON ({e['bytes_compressed'] / 1e6:.0f} MB gzip), "
              f"built in {e['build_seconds']:.1f} s", file=sys.stderr)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        stop_other.set()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
