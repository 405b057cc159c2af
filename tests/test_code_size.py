"""The size limits of the library: no module over 500 lines and no function body over 80 lines, so
each file stays one concept and each function reads on one screen."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

MAX_FILE_LINES = 500
MAX_BODY_LINES = 80


def modules() -> list[Path]:
    return sorted((REPO / "src" / "sparrow").rglob("*.py"))


def long_functions(source: str) -> list[tuple[int, str, int]]:
    """(line, name, body lines) of each function whose body, docstring included, is over the limit."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.end_lineno - node.body[0].lineno + 1
            if body > MAX_BODY_LINES:
                found.append((node.lineno, node.name, body))
    return found


def test_the_limits_are_checked_on_the_library():
    assert len(modules()) > 50
    assert long_functions("def f():\n" + "    x = 1\n" * MAX_BODY_LINES) == []
    assert long_functions("def f():\n" + "    x = 1\n" * (MAX_BODY_LINES + 1)) == [(1, "f", 81)]


def test_no_module_over_the_line_limit():
    sizes = {str(p.relative_to(REPO)): len(p.read_text(encoding="utf-8").splitlines()) for p in modules()}
    assert not {p: n for p, n in sizes.items() if n > MAX_FILE_LINES}


def test_no_function_body_over_the_line_limit():
    found = [
        f"{p.relative_to(REPO)}:{line} {name} ({n} lines)"
        for p in modules()
        for line, name, n in long_functions(p.read_text(encoding="utf-8"))
    ]
    assert not found
