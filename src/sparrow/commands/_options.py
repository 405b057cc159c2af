"""Typer options whose defaults come from a config dataclass, so the command line and the library
cannot drift apart."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import typer

from sparrow.commands import default

T = TypeVar("T")


def config_options(config: type) -> Callable[..., Any]:
    """An option factory for one config dataclass: ``option("max_frames", "-m", help=...)`` is the option
    ``--max-frames`` / ``-m`` with the field's default; a long flag among ``flags`` replaces ``--max-frames``."""

    def option(name: str, *flags: str, **kwargs: Any) -> Any:
        if not any(f.startswith("--") for f in flags):
            flags = (f"--{name.replace('_', '-')}", *flags)
        return typer.Option(default(config, name), *flags, **kwargs)

    return option


def out_option(help: str) -> Any:
    """The required ``--out`` / ``-o`` folder of a command that writes files."""
    return typer.Option(..., "--out", "-o", help=help)


def unset_option(*flags: str, help: str) -> Any:
    """An option that stays None unless given, so that the library's default (or a config file) decides."""
    return typer.Option(None, *flags, help=help)


def required_argument(help: str) -> Any:
    """A required positional argument (a path or several)."""
    return typer.Argument(..., help=help, show_default=False)


def config_from(config: type[T], options: Mapping[str, Any], **values: Any) -> T:
    """``config`` built from the command's ``options`` (its ``locals()`` on entry) that share a field's name,
    with ``values`` for the fields whose option is named otherwise or needs parsing."""
    names = {f.name for f in dataclasses.fields(config)}
    return config(**{**{k: v for k, v in options.items() if k in names}, **values})
