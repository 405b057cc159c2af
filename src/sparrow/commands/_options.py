"""Command-line options generated from a config dataclass, the way HfArgumentParser does it: one option per
field, whose default is the field's default and whose help is the field's comment (its first sentence and
the one giving the default; the why and how go in the docs), so the command line and the library cannot
drift apart and each setting is described in one place."""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import linecache
import re
import sys
import types
import typing
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any, TypeVar

import typer

from sparrow.ui import UsageError

F = TypeVar("F", bound=Callable[..., Any])

# What an option can hold; anything else (tuples, dicts, nested configs) is declared by hand.
_SCALARS = (str, int, float, bool, Path)


def config_flags(
    config: type,
    *,
    param: str = "cfg",
    skip: Collection[str] = (),
    flags: Mapping[str, tuple[str, ...]] | None = None,
    paths: Collection[str] = (),
    minimum: Mapping[str, float] | None = None,
) -> Callable[[F], F]:
    """Replace the parameter ``param`` of a typer command with one option per field of the dataclass
    ``config`` (all but ``skip``), and call the command with ``param`` set to the config built from them.

    An option is ``--field-name`` (``--flag/--no-flag`` for a bool); its type is the field's with ``| None``
    dropped, its default the field's (none: the option is required) and its help the first sentence of
    the field's comment (``field_help``, ``option_help``). ``flags`` gives a field other flags (a short one is added to ``--field-name``, a long
    one replaces it); ``paths`` are str fields taken as paths; ``minimum`` bounds numbers. The options take
    ``param``'s place in the command's ``--help``. A value the config rejects is a usage error."""
    flags, minimum = flags or {}, minimum or {}

    def decorate(command: F) -> F:
        signature = inspect.signature(command)
        if param not in signature.parameters:
            raise TypeError(f"{command.__name__} has no parameter {param!r} to fill from {config.__name__}")
        fields = [f for f in dataclasses.fields(config) if f.init and f.name not in skip]
        taken = set(signature.parameters) & {f.name for f in fields}
        if taken:
            raise TypeError(f"{command.__name__}: {sorted(taken)} are both parameters and config fields")
        helps = field_help(config)
        options = {
            f.name: _option(config, f, flags.get(f.name, ()), helps.get(f.name), f.name in paths, minimum)
            for f in fields
        }
        params: list[inspect.Parameter] = []
        for p in signature.parameters.values():  # keyword-only: typer calls a command by keyword
            params += options.values() if p.name == param else [p.replace(kind=p.KEYWORD_ONLY)]

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            values = {name: kwargs.pop(name) for name in options}
            values.update({k: str(values[k]) for k in paths if values.get(k) is not None})
            try:
                kwargs[param] = config(**values)
            except ValueError as e:  # a config that validates itself on construction
                raise UsageError(str(e)) from e
            return command(**kwargs)

        wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        # typer resolves the command's own (postponed) annotations; ``param``'s is never needed
        wrapper.__annotations__ = {p.name: p.annotation for p in params if p.annotation is not p.empty}
        return wrapper  # type: ignore[return-value]

    return decorate


def _option(
    config: type,
    f: dataclasses.Field,
    flags: tuple[str, ...],
    help: str | None,
    path: bool,
    minimum: Mapping[str, float],
) -> inspect.Parameter:
    """The keyword parameter typer reads as the option of field ``f``."""
    kind = Path if path else _scalar(config, f)
    long = f"--{f.name.replace('_', '-')}"
    if kind is bool and not any(x.startswith("--") for x in flags):
        long = f"{long}/--no-{long[2:]}"
    names = flags if any(x.startswith("--") for x in flags) else (long, *flags)
    if f.default is not dataclasses.MISSING:
        default = f.default
    elif f.default_factory is not dataclasses.MISSING:
        default = f.default_factory()
    else:
        default = ...
    bounds = {"min": minimum[f.name]} if f.name in minimum else {}
    option = typer.Option(default, *names, help=option_help(help) if help else None, **bounds)
    return inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind)


def _scalar(config: type, f: dataclasses.Field) -> type:
    """The type of field ``f`` without ``| None``; a TypeError for a field no option can hold."""
    hint: Any = f.type
    if isinstance(hint, str):  # postponed annotations: resolve in the config's module, as typing does
        hint = eval(hint, vars(sys.modules[config.__module__]))
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = args[0] if len(args) == 1 else hint
    if hint not in _SCALARS:
        raise TypeError(f"{config.__name__}.{f.name}: no option for {hint}; skip it and declare it by hand")
    return hint


# A sentence ends at . ! or ? before a capital or an opening bracket, but not in "e.g." or "i.e.".
_SENTENCE_END = re.compile(r"(?<!e\.g\.)(?<!i\.e\.)(?<=[.!?])\s+(?=[A-Z(`'])")


def option_help(comment: str) -> str:
    """An option's help from its field's comment: the first sentence, and a sentence that gives the
    default; why and how go in the command's docs page, so that --help stays a short line per option."""
    first, *rest = _SENTENCE_END.split(comment.strip())
    return " ".join([first, *(s for s in rest if s.lower().startswith("default"))])


@functools.cache
def field_help(config: type) -> dict[str, str]:
    """Each field's comment, by field name: the comment lines right above the field and the comments on its
    own lines (also when the formatter wrapped it), joined. Empty when the source cannot be read."""
    try:
        lines, cls = _class_source(config)
    except (OSError, TypeError, SyntaxError, ValueError, StopIteration):
        return {}
    helps = {}
    after = cls.lineno  # comment lines above a field count from the end of the statement before it
    for node in cls.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            text = " ".join(c for c in _comments(lines, node, after) if c)
            if text:
                helps[node.target.id] = text
        after = node.end_lineno or node.lineno
    return helps


def _class_source(config: type) -> tuple[list[str], ast.ClassDef]:
    """The lines and syntax tree of the block of a top-level class, found by its ``class`` line in its
    module's file: inspect.getsource parses the whole module, too slow for every command at start-up."""
    lines = linecache.getlines(inspect.getsourcefile(config) or "")
    head = re.compile(rf"class\s+{re.escape(config.__name__)}\b")
    start = next(i for i, line in enumerate(lines) if head.match(line))
    # The block ends at the next line that starts in column 0 with code.
    end = next((j for j in range(start + 1, len(lines)) if lines[j][:1] not in " \t\r\n#)"), len(lines))
    cls = ast.parse("".join(lines[start:end])).body[0]
    if not isinstance(cls, ast.ClassDef):
        raise ValueError(f"no class {config.__name__} at line {start + 1}")
    return lines[start:end], cls


def _comments(lines: list[str], node: ast.stmt, after: int) -> list[str]:
    """The comment lines right above ``node`` (below line ``after``) and the comments on its own lines."""
    first = node.lineno
    while first - 1 > after and lines[first - 2].lstrip().startswith("#"):
        first -= 1
    found = [lines[n - 1].strip() for n in range(first, node.lineno)]
    # A line's code ends where the last syntax node ending on it ends: after that come only brackets,
    # commas and a comment ("#" in a string that ends on the line lies within a node). Offsets are bytes.
    ends: dict[int, int] = {}
    for sub in ast.walk(node):
        end_line, end_col = getattr(sub, "end_lineno", None), getattr(sub, "end_col_offset", None)
        if end_line is not None and end_col is not None:
            ends[end_line] = max(ends.get(end_line, 0), end_col)
    for n in range(node.lineno, (node.end_lineno or node.lineno) + 1):
        rest = lines[n - 1].encode()[ends.get(n, 0) :].decode(errors="replace")
        if "#" in rest:
            found.append(rest[rest.index("#") :])
    return [c.lstrip("#").strip() for c in found]


def out_option(help: str) -> Any:
    """The required ``--out`` / ``-o`` folder of a command that writes files."""
    return typer.Option(..., "--out", "-o", help=help)


def unset_option(*flags: str, help: str) -> Any:
    """An option that stays None unless given, so that the library's default (or a config file) decides."""
    return typer.Option(None, *flags, help=help)


def required_argument(help: str) -> Any:
    """A required positional argument (a path or several)."""
    return typer.Argument(..., help=help, show_default=False)
