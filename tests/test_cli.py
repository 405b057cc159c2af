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


def test_usage_errors_exit_2_with_the_usage():
    # typer >= 0.25 raises the usage errors of its own copy of click, not the click package's.
    res = run("sample", "--no-such-flag")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "Usage: sparrow sample" in res.stderr and "No such option: --no-such-flag" in res.stderr


def test_errors_keep_bracketed_text(tmp_path):
    # Library errors (a missing file) and usage errors both reach the terminal through rich: text in
    # square brackets must print as written, not vanish as a markup tag.
    missing = tmp_path / "clip[ray].mp4"
    res = run("sample", str(missing), "--fps", "1")
    assert res.returncode == 1 and "clip[ray].mp4" in res.stderr
    res = run("sample", str(missing), "--fps", "1", "--out", str(tmp_path / "f"), "--size", "[ray]")
    assert res.returncode == 2 and "got '[ray]'" in res.stderr


def test_error_printer_keeps_pip_extras(capsys):
    from sparrow.cli import main
    from sparrow.ui import UsageError

    @app.command(name="_bracket-error", hidden=True)
    def _fail() -> None:
        raise UsageError("Ray is not installed: pip install 'sparrow-vllm[ray]'")

    try:
        with pytest.raises(SystemExit) as e:
            main(["_bracket-error"])
    finally:
        app.registered_commands.pop()
    assert e.value.code == 2
    assert "pip install 'sparrow-vllm[ray]'" in capsys.readouterr().err


def test_tables_keep_bracketed_text(monkeypatch):
    import io

    from rich.console import Console

    from sparrow import ui

    buf = io.StringIO()
    monkeypatch.setattr(ui, "console", Console(file=buf, width=200))
    ui.summary_table("run [a]", {"install [b]": "pip install 'sparrow-vllm[ray]'", "loss": 0.5})
    ui.rows_table("rows [c]", ["col [d]"], [["[bold]x[/bold]"]])
    text = buf.getvalue()
    for s in (
        "run [a]",
        "install [b]",
        "sparrow-vllm[ray]",
        "rows [c]",
        "col [d]",
        "[bold]x[/bold]",
        "0.500",
    ):
        assert s in text, s


def test_refine_see_video_reaches_the_config(tmp_path):
    # --see-video is documented; the hf backend reads text only, so the flag must arrive and be refused.
    caps = tmp_path / "caption.json"
    caps.write_text('{"v0": {"start": [0], "end": [2], "text": ["hello there"]}}')
    (tmp_path / "videos").mkdir()
    res = run("refine", str(caps), "--videos", str(tmp_path / "videos"), "--out", str(tmp_path / "o"),
              "--backend", "hf", "--see-video")  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert "the hf backend reads text only" in res.stderr
