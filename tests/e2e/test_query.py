"""`query` (read-only SQL over the database) and `history`."""

from __future__ import annotations

import csv
import io
import sqlite3

import fleet


def test_query_and_history(run, account):
    ec2 = account.client("ec2", "us-east-1")
    fleet.launch(ec2, 3)
    fleet.launch(ec2, 1, tokens="required")
    assert run("scan", "--regions", "us-east-1", "--no-usage").code == 0
    fleet.launch(ec2, 4, tokens="required")
    assert run("scan", "--regions", "us-east-1", "--no-usage").code == 0

    sql = "SELECT http_tokens, COUNT(*) AS n FROM instances WHERE scan_id = 2 GROUP BY http_tokens ORDER BY 1"
    r = run("query", sql, "--format", "json")
    assert r.code == 0, r.stderr
    doc = r.json()
    assert doc["kind"] == "query" and doc["columns"] == ["http_tokens", "n"]
    assert doc["rows"] == [{"http_tokens": "optional", "n": 3}, {"http_tokens": "required", "n": 5}]

    r = run("query", sql, "--format", "csv")
    assert list(csv.reader(io.StringIO(r.stdout))) == [["http_tokens", "n"], ["optional", "3"], ["required", "5"]]
    r = run("query", sql)
    assert "(2 rows)" in r.stdout and "optional" in r.stdout

    r = run("history", "--format", "json")
    assert r.code == 0, r.stderr
    rows = r.json()["rows"]
    assert [(x["scan"], x["instances"], x["required"], x["percent_enforced"]) for x in rows] == [
        (1, 4, 1, 25.0),
        (2, 8, 5, 62.5),
    ]


def test_query_refuses_writes_and_bad_sql(run, account):
    fleet.launch(account.client("ec2", "us-east-1"), 1)
    assert run("scan", "--regions", "us-east-1", "--no-usage").code == 0
    for sql, needle in [
        ("DELETE FROM scans", "only reads"),
        ("DROP TABLE instances", "only reads"),
        ("UPDATE instances SET owner = 'x'", "only reads"),
        ("SELECT * FROM nosuchtable", "SQL error: no such table: nosuchtable"),
        ("SELEC 1", "SQL error"),
        ("SELECT 1; DELETE FROM scans", "SQL error"),
    ]:
        r = run("query", sql)
        assert r.code == 2, (sql, r.stderr)
        assert needle in r.stderr, (sql, r.stderr)
        assert "help: tables:" in r.stderr or "help: use SELECT" in r.stderr
    db = sqlite3.connect(run.db)
    assert db.execute("SELECT COUNT(*) FROM scans").fetchone()[0] == 1
    assert db.execute("SELECT COUNT(*) FROM instances").fetchone()[0] == 1


def test_query_without_a_database(run):
    r = run("query", "SELECT 1")
    assert r.code == 1 and "no database at" in r.stderr and "imdsguard scan" in r.stderr
    assert not run.db.exists()
