"""The demo fleet of `scripts/demo` (tests/e2e/demo.py) shows every verdict."""

import demo


def test_demo_fleet_shows_every_verdict(run, account):
    demo.seed_demo(account)
    r = run("scan", "--regions", "us-east-1,eu-west-1,ap-southeast-2", "--format", "json")
    assert r.code == 0, r.stderr
    counts = r.json()["summary"]["total"]["readiness"]
    assert all(counts[v] > 0 for v in ("compliant", "rejecting-v1", "disabled", "ready", "in-use", "unknown")), counts
