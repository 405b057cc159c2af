"""The `sparrow` command itself: every subcommand has --help, errors are one line unless --debug."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sparrow.cli import app

COMMANDS = sorted(c.name for c in app.registered_commands)


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sparrow", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_every_expected_command_is_registered():
    expected = {"synth", "diversity", "sample", "frames", "world", "train", "eval", "curate", "consistency"}
    assert expected <= set(COMMANDS)


def test_top_level_help_lists_commands():
    res = run("--help")
    assert res.returncode == 0
    for name in COMMANDS:
        assert name in res.stdout


@pytest.mark.parametrize("name", COMMANDS)
def test_each_command_has_help(name):
    res = run(name, "--help")
    assert res.returncode == 0, res.stderr
    assert "Usage" in res.stdout and "--help" in res.stdout


def test_fatal_error_is_one_line_and_debug_shows_traceback(tmp_path):
    missing = tmp_path / "nope.mp4"
    res = run("sample", str(missing), "--fps", "1")
    assert res.returncode != 0
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "error" in lines[0].lower() and "nope.mp4" in lines[0]
    assert "Traceback" not in res.stderr
    res = run("--debug", "sample", str(missing), "--fps", "1")
    assert res.returncode != 0
    assert "Traceback" in res.stderr
