"""`imdsguard completions SHELL` and `imdsguard man`: generated from the
command line's definition, offline (no credentials, no database, no AWS)."""

from __future__ import annotations

import pytest

from conftest import Runner


@pytest.fixture
def offline(tmp_path) -> Runner:
    # No account: no credentials anywhere; the database path's directory does
    # not exist, so a command that opened it would fail.
    r = Runner(tmp_path, None)
    r.base_env["IMDSGUARD_DB"] = str(tmp_path / "absent" / "imdsguard.db")
    return r


# What each shell's script looks like, beyond naming the subcommands.
MARKERS = {
    "bash": "complete -F _imdsguard",
    "zsh": "#compdef imdsguard",
    "fish": "complete -c imdsguard",
    "powershell": "Register-ArgumentCompleter",
}


@pytest.mark.parametrize("shell", sorted(MARKERS))
def test_completion_script_for_each_shell(offline, tmp_path, shell):
    r = offline("completions", shell, endpoint="http://127.0.0.1:9")
    assert r.code == 0, r.stderr
    assert r.stderr == ""
    assert MARKERS[shell] in r.stdout
    for sub in ("scan", "rollback", "completions"):
        assert sub in r.stdout, (shell, sub)
    assert not (tmp_path / "absent").exists()


def test_completions_rejects_an_unknown_shell(offline):
    r = offline("completions", "tcsh")
    assert r.code == 2
    assert "tcsh" in r.stderr and "bash, zsh, fish, powershell" in r.stderr


def test_man_page_is_roff(offline, tmp_path):
    r = offline("man", endpoint="http://127.0.0.1:9")
    assert r.code == 0, r.stderr
    assert "\n.TH imdsguard 1" in r.stdout
    assert ".SH SYNOPSIS" in r.stdout and ".SH SUBCOMMANDS" in r.stdout
    assert "imdsguard\\-scan(1)" in r.stdout
    assert not (tmp_path / "absent").exists()


def test_man_dir_writes_every_referenced_page(offline, tmp_path):
    out = tmp_path / "man" / "man1"
    r = offline("man", "--dir", str(out))
    assert r.code == 0, r.stderr
    pages = sorted(p.name for p in out.iterdir())
    assert "imdsguard.1" in pages and "imdsguard-scan.1" in pages and "imdsguard-show-usage.1" in pages
    main = (out / "imdsguard.1").read_text()
    # Every subcommand the main page refers to has its page.
    for line in main.splitlines():
        if line.startswith("imdsguard\\-") and line.endswith("(1)"):
            name = line[: -len("(1)")].replace("\\-", "-") + ".1"
            assert name in pages, name
    title = next(line for line in (out / "imdsguard-scan.1").read_text().splitlines() if line.startswith(".TH"))
    # The page's name, section, and the program (with its version) it belongs to.
    assert title.startswith(".TH imdsguard-scan 1") and '"imdsguard ' in title, title
