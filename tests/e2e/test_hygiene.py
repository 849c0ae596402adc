"""Hostile strings from AWS and careful files: tag values that would drive a
terminal or start a spreadsheet formula, `--out` through a planted symlink,
`query` reaching for another database, read-only views that must not
create a database."""

from __future__ import annotations

import csv
import io
import os
import sqlite3

import fleet

REGION = "us-east-1"
# Legal in EC2's XML answers, and dangerous: a C1 control sequence introducer
# (recolours text on many terminals), a right-to-left override (reorders
# what is shown), a newline (fakes a row).
EVIL_NAME = "web\u009b31mred\u202eflow\nFAKE ROW"
FORMULA_OWNER = "=HYPERLINK(\"http://evil.example\",\"click\")"
FORMULA_NAME = "@SUM(1+1)*cmd|' /C calc'!A0"


def seed(account):
    ec2 = account.client("ec2", REGION)
    fleet.launch(ec2, 1, tags={"Name": EVIL_NAME, "owner": "team\u202ex"})
    fleet.launch(ec2, 1, tags={"Name": FORMULA_NAME, "owner": FORMULA_OWNER})
    fleet.launch(ec2, 1, tags={"Name": "-2+3", "owner": "+1-800"})


def test_terminal_output_shows_control_characters_escaped(run, account):
    seed(account)
    r = run("scan", "--regions", REGION, "--no-usage", "--color", "always")
    assert r.code == 0, r.stderr
    for raw in ("\u009b", "\u202e", "FAKE ROW\n", "\nFAKE"):
        assert raw not in r.stdout, repr(raw)
    assert "web\\x9b31mred\\u{202e}flow\\nFAKE ROW" in r.stdout
    # Our own colours still work around the escaped text.
    assert "\x1b[1m" in r.stdout
    # Machine formats keep the exact value.
    doc = run("show", "instances", "--format", "json").json()
    assert EVIL_NAME in {i["name"] for i in doc["instances"]}
    r = run("show", "owners")
    assert r.code == 0 and "\u202e" not in r.stdout and "team\\u{202e}x" in r.stdout


def test_csv_cells_that_would_start_a_formula_are_defused(run, account, tmp_path):
    seed(account)
    r = run("scan", "--regions", REGION, "--no-usage", "--format", "csv")
    assert r.code == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    names = {row["name"] for row in rows}
    owners = {row["owner"] for row in rows}
    assert "'" + FORMULA_NAME in names and FORMULA_NAME not in names
    assert "'" + FORMULA_OWNER in owners
    assert "'-2+3" in names and "'+1-800" in owners
    assert EVIL_NAME in names, "CSV quotes other text exactly"
    # Every CSV imdsguard writes goes through the same writer.
    for args in (["show", "owners", "--format", "csv"], ["query", "SELECT owner FROM instances", "--format", "csv"]):
        r = run(*args)
        assert r.code == 0, r.stderr
        cells = {c for row in csv.reader(io.StringIO(r.stdout)) for c in row}
        assert "'" + FORMULA_OWNER in cells and FORMULA_OWNER not in cells, args
    # Plain numbers are not touched.
    r = run("query", "SELECT -5 AS n, -1.5 AS x", "--format", "csv")
    assert list(csv.reader(io.StringIO(r.stdout)))[1] == ["-5", "-1.5"]


def test_out_never_writes_through_a_planted_symlink(run, account, tmp_path):
    seed(account)
    out = tmp_path / "report.csv"
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    # The temporary name an older imdsguard used, planted by someone else.
    os.symlink(victim, tmp_path / "report.imdsguard-tmp")
    r = run("scan", "--regions", REGION, "--no-usage", "--format", "csv", "--out", str(out))
    assert r.code == 0, r.stderr
    assert victim.read_text() == "keep me"
    assert out.read_text().startswith("account_id,")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".imdsguard-")], "no temp file left"
    assert oct(out.stat().st_mode & 0o777) != oct(0o600), "the mode of a normal file, not a temp file's"


def test_query_cannot_attach_another_database(run, account, tmp_path):
    seed(account)
    assert run("scan", "--regions", REGION, "--no-usage").code == 0
    secret = tmp_path / "other.db"
    db = sqlite3.connect(secret)
    db.execute("CREATE TABLE secrets (v TEXT)")
    db.execute("INSERT INTO secrets VALUES ('s3cr3t')")
    db.commit()
    db.close()
    r = run("query", f"ATTACH '{secret}' AS o")
    assert r.code == 2
    assert "ATTACH and DETACH are refused" in r.stderr and "help:" in r.stderr
    r = run("query", "SELECT v FROM o.secrets")
    assert r.code == 2 and "s3cr3t" not in r.stdout


def test_read_only_views_need_a_database_and_never_create_one(run, tmp_path):
    db = tmp_path / "nowhere" / "imdsguard.db"
    for args in (
        ["show", "instances"],
        ["show", "usage"],
        ["runs"],
        ["runs", "1"],
        ["report", "--format", "html"],
        ["history"],
        ["query", "SELECT 1"],
    ):
        r = run("--db", str(db), *args)
        assert r.code == 1, (args, r.stderr)
        assert f"no database at {db}" in r.stderr and "help:" in r.stderr, args
    assert not db.parent.exists()


def test_quiet_prints_nothing_but_errors(run, account, tmp_path):
    fleet.launch(account.client("ec2", REGION), 2)
    plan = tmp_path / "plan.json"
    r = run("-q", "plan", "--regions", REGION, "--action", "require-v2", "--no-usage", "--include-unknown",
            "--out", str(plan))
    assert r.code == 0 and r.stderr == "", r.stderr
    r = run("-q", "apply", str(plan), "--yes")
    assert r.code == 0 and r.stderr == "", r.stderr
    assert "Run 1 done" in r.stdout
    r = run("-q", "apply", str(plan), "--yes", "--rate", "0")
    assert r.code == 2 and "error:" in r.stderr, "errors still show"
