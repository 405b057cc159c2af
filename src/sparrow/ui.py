"""Terminal output for the CLI: progress bars, summary tables, one-line errors.

Only the CLI uses this module; the library itself never prints. Text from users and the library (paths,
messages, names) is never parsed as rich markup: a message like "pip install 'sparrow-vllm[ray]'" keeps
its "[ray]".
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeVar

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

console = Console()
err_console = Console(stderr=True)

T = TypeVar("T")


class UsageError(Exception):
    """A fatal problem with the command line or its inputs: printed as one line, exit code 2."""


def print_error(message: str) -> None:
    """The one line a fatal error prints on stderr."""
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)


def make_progress(transient: bool = False) -> Progress:
    return Progress(
        SpinnerColumn(),
        # Descriptions and rates hold names and numbers, never markup (a stage's "[connector+lm]" stays).
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}", markup=False),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=transient,
    )


def track(items: Iterable[T], description: str, total: int | None = None, unit: str = "items") -> Iterator[T]:
    """Iterate with a progress bar showing items/s (on stderr, so stdout stays parseable)."""
    import time

    with make_progress() as progress:
        task = progress.add_task(description, total=total, rate="")
        start = time.perf_counter()
        for n, item in enumerate(items, 1):
            yield item
            elapsed = max(time.perf_counter() - start, 1e-9)
            progress.update(task, advance=1, rate=f"{n / elapsed:.1f} {unit}/s")


def summary_table(title: str, rows: Mapping[str, Any]) -> None:
    """Print the two-column summary every long command ends with."""
    table = Table(title=Text(title), show_header=False, title_justify="left")
    # A narrow terminal folds a long value (a path) onto more lines; it is never cut with an ellipsis.
    table.add_column("what", style="bold", overflow="fold")
    table.add_column("value", justify="right", overflow="fold")
    for key, value in rows.items():
        if isinstance(value, float):
            value = f"{value:,.3f}" if abs(value) < 100 else f"{value:,.1f}"
        table.add_row(Text(str(key)), Text(str(value)))
    console.print(table)


def rows_table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    """Print a table with a header row; floats with three decimals."""
    table = Table(title=Text(title), title_justify="left")
    for c in columns:
        table.add_column(Text(c), overflow="fold")  # never cut with an ellipsis
    for r in rows:
        table.add_row(*[Text(f"{x:.3f}" if isinstance(x, float) else str(x)) for x in r])
    console.print(table)


def record_list(title: str, records: Iterable[tuple[str, Mapping[str, str]]]) -> None:
    """Print each record as a heading line and indented ``key: value`` lines. Lines are never wrapped
    or cut by rich (the terminal wraps them), so a long path stays whole and can be copied."""
    console.print(title, markup=False, highlight=False, soft_wrap=True)
    for heading, fields in records:
        console.print(heading, markup=False, highlight=False, soft_wrap=True)
        pad = max((len(k) for k in fields), default=0) + 1
        for key, value in fields.items():
            console.print(f"  {key + ':':<{pad}} {value}", markup=False, highlight=False, soft_wrap=True)
