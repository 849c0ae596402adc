"""The demo fleet behind `scripts/demo`: the test fleet of fleet.py plus
CloudWatch usage, served through the CBOR shim so the real binary's
CloudWatch client can talk to moto.

Run as a script, it starts the shim in front of the moto at argv[1],
seeds a fresh account, writes the shim's URL and the account's credentials
to argv[2] (shell `export` lines), and serves until killed.
"""

from __future__ import annotations

import sys
import time

import conftest
import fleet
from awsproxy import AwsProxy


def seed_demo(account: conftest.Account) -> fleet.Seeded:
    """The fleet, with 14 days of IMDSv1 metrics: most instances that allow
    v1 made none (ready), the batch group made some (in-use), stopped ones
    have no data (unknown), and one enforced group has refused calls."""
    seeded = fleet.seed(account)
    now = time.time()
    for region in dict.fromkeys(r for r, _ in seeded.instances.values()):
        live = [i for i, (r, g) in seeded.instances.items() if r == region and not g.stopped and g.endpoint != "disabled"]
        tags = {i: seeded.instances[i][1].tags for i in live}
        in_use = [i for i in live if tags[i].get("Name") == "batch" or tags[i].get("owner") == "dave"]
        rejecting = [i for i in live if tags[i].get("Name") == "api"]
        fleet.put_metrics(account, [i for i in live if i not in in_use], region=region, now=now)
        fleet.put_metrics(
            account, in_use, value=lambda d: float(3 + d % 4) if d % 3 == 0 else 0.0, region=region, now=now
        )
        # Refused v1 calls on the last two days.
        fleet.put_metrics(
            account, rejecting, days=2, value=2.0, metric="MetadataNoTokenRejected", region=region, now=now
        )
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
