"""The ``sparrow`` command. Thin: each subcommand parses flags and calls the library.

Subcommands live in ``sparrow/commands/<name>.py``; each module has ``register(app)``. Heavy imports
(torch, transformers, av) happen inside the command functions so ``sparrow --help`` stays fast.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import click
import typer

from sparrow import commands
from sparrow.ui import UsageError, err_console, print_error

app = typer.Typer(
    name="sparrow",
    help="Build video-LLMs data-efficiently: synthesize pseudo-videos from text, sample real videos by "
    "fps and clips, train in stages, evaluate and curate benchmarks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    """Sparrow: data-efficient video-LLM toolkit."""


def _register_commands() -> None:
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"sparrow.commands.{info.name}")
        module.register(app)


_register_commands()


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the app and turns exceptions into one-line errors unless --debug."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        rv = app(args=args, prog_name="sparrow", standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted; re-run the same command to resume")
        sys.exit(130)
    except UsageError as e:
        if debug:
            raise
        print_error(str(e))
        sys.exit(2)
    except Exception as e:
        if debug:
            raise
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print_error(msg)
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
