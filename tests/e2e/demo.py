"""The demo fleet behind `scripts/demo`: the test fleet of fleet.py plus
CloudWatch usage, served through the CBOR shim so the real binary's
CloudWatch client can talk to moto.

Run as a script, it starts the shim in front of the moto at argv[1],
seeds a fresh account, writes the shim's URL and the account's credentials
to argv[2] (shell `export` lines), and serves until killed.
"""

from __future__ import annotations

import datetime
import sys
import time

import conftest
import fleet
from awsproxy import AwsProxy

DAY = 86400


def seed_demo(account: conftest.Account) -> fleet.Seeded:
    """The fleet, with 14 days of IMDSv1 metrics: most instances that allow
    v1 made none (ready), the batch group made some (in-use), stopped ones
    have no data (unknown), and one enforced group has refused calls."""
    seeded = fleet.seed(account)
    now = time.time()
    per_region: dict[str, list] = {}
    for iid, (region, g) in seeded.instances.items():
        if g.stopped or g.endpoint == "disabled":
            continue
        in_use = g.tags.get("Name") == "batch" or g.tags.get("owner") == "dave"
        rejecting = g.tags.get("Name") == "api"
        for d in range(14):
            t = min(int(now) // DAY * DAY - d * DAY + 3600, int(now) - 60)
            stamp = datetime.datetime.fromtimestamp(t, tz=datetime.timezone.utc)
            dims = [{"Name": "InstanceId", "Value": iid}]
            value = float(3 + d % 4) if in_use and d % 3 == 0 else 0.0
            per_region.setdefault(region, []).append(
                {"MetricName": "MetadataNoToken", "Dimensions": dims, "Timestamp": stamp, "Value": value}
            )
            if rejecting and d < 2:
                per_region[region].append(
                    {"MetricName": "MetadataNoTokenRejected", "Dimensions": dims, "Timestamp": stamp, "Value": 2.0}
                )
    for region, data in per_region.items():
        cw = account.client("cloudwatch", region)
        for i in range(0, len(data), 500):
            cw.put_metric_data(Namespace="AWS/EC2", MetricData=data[i : i + 500])
    return seeded


def main() -> None:
    moto, env_file = sys.argv[1], sys.argv[2]
    shim = AwsProxy(moto, cbor_shim=True).__enter__()
    conftest.ENDPOINT = shim.url
    account = conftest.new_account()
    seed_demo(account)
    with open(env_file + ".tmp", "w") as f:
        for k, v in {**account.env(), "AWS_ENDPOINT_URL": shim.url}.items():
            f.write(f"export {k}='{v}'\n")
    import os

    os.replace(env_file + ".tmp", env_file)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
