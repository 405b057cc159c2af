"""How ``sparrow ... --help`` is laid out: click's plain two-column help instead of typer's rich panels.

Rich's option table has six columns (required mark, long and short names, their negations, type, help)
and shrinks them all to fit, so at 80 columns the description got ~20 characters and option names and
defaults were cut with an ellipsis. Here the names take the width they need (a name longer than 30
characters puts its description on the next line), the description takes the rest, and text wraps
only between words: an option name, a path or a ``[default: ...]`` is never cut or hyphen-split.
The help uses the terminal's width up to ``MAX_WIDTH``.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Sequence

from typer.core import TyperCommand, TyperGroup

MAX_WIDTH = 120
_NBSP = "\xa0"
# Bracketed notes click and typer append to a help ("[default: x]", "[required]", "[x>=1]"): one word.
_NOTE = re.compile(r"\[[^\[\]]*\]")


def wrap(text: str, width: int) -> list[str]:
    """``text`` as lines of at most ``width`` characters, broken between words only (a word longer than
    ``width`` stays whole on a line of its own); a bracketed note stays on one line."""
    glued = _NOTE.sub(lambda m: m.group(0).replace(" ", _NBSP), text)
    # textwrap splits at ASCII whitespace only, so the glued note is one word.
    lines = textwrap.wrap(glued, width, break_long_words=False, break_on_hyphens=False)
    return [line.replace(_NBSP, " ") for line in lines]


# typer's own click (typer >= 0.25 vendors one; the click package's classes would be ignored by it).
_Context = TyperCommand.context_class


class HelpFormatter(_Context.formatter_class):
    """click's formatter, wrapping only between words (see the module docstring)."""

    def write_text(self, text: str) -> None:
        indent = " " * self.current_indent
        width = max(self.width - self.current_indent, 20)
        for n, paragraph in enumerate(p for p in re.split(r"\n\s*\n", text) if p.strip()):
            if n:
                self.write("\n")
            lines = paragraph.splitlines()
            if lines[0].strip() == "\b":  # click's mark for a block kept as written
                self.write("".join(f"{indent}{line}\n" for line in lines[1:]))
            else:
                self.write("".join(f"{indent}{line}\n" for line in wrap(" ".join(lines), width)))

    def write_dl(self, rows: Sequence[tuple[str, str]], col_max: int = 30, col_spacing: int = 2) -> None:
        rows = list(rows)
        names = min(max((len(name) for name, _ in rows), default=0), col_max)
        column = self.current_indent + names + col_spacing  # where descriptions start
        for name, text in rows:
            start, lines = column, wrap(text, max(self.width - column, 20)) if text else []
            if any(len(line) > self.width - column for line in lines):
                # A word wider than the column (a long example value): this description goes under its
                # name, indented a little, rather than past the right edge.
                start = self.current_indent + 4
                lines = wrap(text, max(self.width - start, 20))
            self.write(" " * self.current_indent + name)
            if lines and start == column and len(name) <= names:
                self.write(" " * (column - self.current_indent - len(name)) + lines.pop(0))
            self.write("\n")
            self.write("".join(" " * start + line + "\n" for line in lines))


class HelpContext(_Context):
    formatter_class = HelpFormatter


class Command(TyperCommand):
    context_class = HelpContext


class Group(TyperGroup):
    context_class = HelpContext


def use_plain_help(commands: Iterable[object]) -> None:
    """Give every registered typer command (``app.registered_commands``) that has typer's default class
    the plain help layout."""
    for info in commands:
        if getattr(info, "cls", None) in (None, TyperCommand):
            info.cls = Command  # type: ignore[attr-defined]
