"""Options generated from a config dataclass (sparrow.commands._options.config_flags) and the lazy package
exports (sparrow.lazy)."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import pytest
import typer
from typer.testing import CliRunner

from sparrow.commands._help import Command, Group
from sparrow.commands._options import config_flags, field_help, option_help
from sparrow.ui import UsageError


@dataclass(frozen=True)
class _Settings:
    count: int = 3  # How many things.
    # A help that the formatter
    # wrapped over two lines.
    name: str | None = None
    fast: bool = False  # Go fast.
    folder: str | None = (
        None  # Where things go, a comment so long that the formatter wraps its field over lines.
    )
    ratio: float = 0.5
    mark: str = "#é"  # A mark (after a "#" in a string).
    pairs: tuple[int, ...] = ()  # no option can hold it: skipped

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError("count must be >= 0")


def _app(seen: list) -> typer.Typer:
    app = typer.Typer(rich_markup_mode=None, cls=Group)  # the help layout of the sparrow command

    @app.command(cls=Command)
    @config_flags(_Settings, skip=("pairs",), paths=("folder",), flags={"count": ("-c",)})
    def cmd(label: str = typer.Option("x", "--label"), *, cfg: _Settings) -> None:
        seen.append((label, cfg))

    return app


def _help() -> str:
    res = CliRunner().invoke(_app([]), ["--help"], env={"COLUMNS": "250"}, terminal_width=250)
    assert res.exit_code == 0, res.output
    return re.sub(r"[\s│]+", " ", res.output)


def test_help_comes_from_the_dataclass():
    text = _help()
    assert "-c, --count <int> How many things. [default: 3]" in text
    assert "A help that the formatter wrapped over two lines." in text
    assert "--fast / --no-fast Go fast." in text
    assert "Where things go, a comment so long that the formatter wraps its field over lines." in text
    assert "--ratio" in text and "[default: 0.5]" in text
    assert 'A mark (after a "#" in a string). [default: #é]' in text
    assert "--pairs" not in text and "--cfg" not in text


def test_option_help_is_the_first_sentence_and_the_default():
    comment = (
        "Drop records over N words, e.g. 500 for LongAlpaca (i.e. the paper's filter). Why: short "
        "questions. Default: the preset's. See docs/synth.md."
    )
    assert option_help(comment) == (
        "Drop records over N words, e.g. 500 for LongAlpaca (i.e. the paper's filter). Default: the preset's."
    )
    assert option_help("One sentence (default: 3).") == "One sentence (default: 3)."
    assert option_help("Sections [system] and [user]. Kept as written.") == "Sections [system] and [user]."


def test_defaults_build_the_dataclass_defaults():
    seen: list = []
    res = CliRunner().invoke(_app(seen), [])
    assert res.exit_code == 0, res.output
    assert seen == [("x", _Settings())]
    assert seen[0][1].name is None and seen[0][1].folder is None


def test_flags_build_the_same_config_as_the_dataclass():
    seen: list = []
    args = ["-c", "5", "--name", "n", "--fast", "--folder", "a/b", "--ratio", "0.25", "--label", "y"]
    res = CliRunner().invoke(_app(seen), args)
    assert res.exit_code == 0, res.output
    assert seen == [("y", _Settings(count=5, name="n", fast=True, folder="a/b", ratio=0.25))]
    assert isinstance(seen[0][1].folder, str)  # a path on the command line, text in the config
    res = CliRunner().invoke(_app(seen), ["--no-fast"])
    assert res.exit_code == 0 and seen[-1][1].fast is False


def test_a_rejected_value_is_a_usage_error():
    res = CliRunner().invoke(_app([]), ["--count", "-1"])
    assert isinstance(res.exception, UsageError) and "count must be >= 0" in str(res.exception)


def test_fields_no_option_can_hold_must_be_skipped():
    with pytest.raises(TypeError, match="pairs"):

        @config_flags(_Settings)
        def cmd(*, cfg: _Settings) -> None: ...

    with pytest.raises(TypeError, match="both parameters and config fields"):

        @config_flags(_Settings, skip=("pairs",))
        def cmd2(count: int = 1, *, cfg: _Settings) -> None: ...


def test_no_source_means_no_help_but_working_options():
    made = dataclasses.make_dataclass("Made", [("size", int, dataclasses.field(default=2))])
    assert field_help(made) == {}
    seen: list = []
    app = typer.Typer()

    @app.command()
    @config_flags(made)
    def cmd(*, cfg: made) -> None:  # type: ignore[valid-type]
        seen.append(cfg)

    assert CliRunner().invoke(app, ["--size", "7"]).exit_code == 0
    assert seen == [made(size=7)]


def test_refine_help_is_read_from_refine_config():
    from sparrow.cli import app

    res = CliRunner().invoke(app, ["refine", "--help"], env={"COLUMNS": "250"}, terminal_width=250)
    text = re.sub(r"[\s│]+", " ", res.output)
    assert "--concurrency <int> openai: requests in flight. [default: 4]" in text
    assert "(with [system] and [user] sections)" in text  # markup-looking text is escaped
    assert "--see-video / --no-see-video" in text
    assert "--top-p" not in text  # skipped: not an option today


def test_lazy_exports_load_on_first_use():
    import importlib
    import sys

    import sparrow.serve

    assert "ServeConfig" in sparrow.serve.__all__ and "parse_messages" in sparrow.serve.__all__
    from sparrow.serve import ServeConfig

    assert ServeConfig is importlib.import_module("sparrow.serve.config").ServeConfig
    assert "sparrow.serve.config" in sys.modules
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        sparrow.serve.nope  # noqa: B018
    import sparrow.train

    assert set(sparrow.train.__all__) >= {"train", "Recipe", "RunOptions", "read_metrics", "AdaTaiLr"}
