"""`sparrow --help` and every command's --help read well at 80 and 120 columns: nothing is cut, names and
defaults stay whole, descriptions get a usable width, the command list is one line per command; and
`sparrow models` prints whole paths. Rendered in a child process, as a terminal of that width would."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import typer.main

from sparrow.cli import app

# One child per width renders the main help and every command's help, each after a "=== name" line.
_RENDER = """
from sparrow.cli import app, main
for name in [""] + sorted(c.name for c in app.registered_commands if not c.hidden):
    print("=== " + name, flush=True)
    try:
        main([name, "--help"] if name else ["--help"])
    except SystemExit:
        pass
"""


def _child(width: int, code: str) -> str:
    env = {**os.environ, "COLUMNS": str(width), "LINES": "50"}
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert res.returncode == 0, res.stderr
    return res.stdout


@pytest.fixture(scope="module", params=[80, 120])
def helps(request) -> tuple[int, dict[str, str]]:
    out = _child(request.param, _RENDER)
    parts = re.split(r"^=== (.*)\n", out, flags=re.M)[1:]
    return request.param, dict(zip(parts[::2], parts[1::2], strict=True))


def _commands():
    group = typer.main.get_command(app)
    return {name: cmd for name, cmd in group.commands.items() if not cmd.hidden}


def test_no_line_is_wider_than_the_terminal_and_nothing_is_cut(helps):
    width, texts = helps
    assert set(texts) == {"", *_commands()}
    for name, text in texts.items():
        assert "Usage: sparrow" in text, name
        for line in text.splitlines():
            assert len(line) <= width, (name, line)
            assert "…" not in line, (name, line)  # rich's mark of a cut name, default or path
            # a [default: ...] / [required] note is never split over two lines
            assert line.count("[") == line.count("]"), (name, line)


def test_every_option_name_and_default_is_shown_whole(helps):
    _, texts = helps
    for name, cmd in _commands().items():
        words = set(re.split(r"[\s,/]+", texts[name]))
        for param in cmd.params:
            for flag in (*param.opts, *param.secondary_opts):
                if flag.startswith("-"):
                    assert flag in words, (name, flag)
        for default in re.findall(r"\[default: ([^\]]*)\]", texts[name]):
            assert "\n" not in default and "…" not in default


def test_descriptions_get_a_usable_width(helps):
    width, texts = helps
    for name, text in texts.items():
        body = text.split("Options:", 1)[-1].split("Commands:", 1)[0]
        for line in body.splitlines():
            if line.startswith("  -") and "  " in line.strip():
                start = len(line) - len(line.strip().split("  ", 1)[1].lstrip())
                # names take at most 30 columns; the description starts by column 34 (rich put it at ~58)
                assert start <= 34, (name, line)
    synth = texts["synth"].splitlines()
    # 189 lines in rich's table at 80 columns; a line or two per option here
    assert len(synth) < (100 if width == 80 else 70)
    if width == 120:
        assert max(len(line) for line in synth) > 100  # the wider terminal is used


def test_the_command_list_has_one_line_per_command(helps):
    _, texts = helps
    section = texts[""].split("Commands:\n", 1)[1]
    lines = [line for line in section.splitlines() if line.strip()]
    names = [line.split()[0] for line in lines]
    assert sorted(names) == sorted(_commands())
    for line in lines:
        assert re.match(r"^  \S+ {2,}\S", line), line  # a name, then its summary on the same line
        assert not line.endswith("..."), line  # click's mark of a summary cut to fit


def test_models_prints_whole_paths():
    from sparrow.pretrained import PARTS, part_status

    out = _child(80, "from sparrow.cli import main\nmain(['models'])")
    lines = out.splitlines()
    for name in PARTS:
        status = part_status(name)
        assert any(line.startswith(f"{name}: ") for line in lines), out
        if status.path is not None:
            assert any(line.strip() == f"path:  {status.path}" for line in lines), out
