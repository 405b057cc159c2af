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
from sparrow.commands._help import MAX_WIDTH, Group, use_plain_help
from sparrow.ui import UsageError, err_console, print_error

app = typer.Typer(
    name="sparrow",
    help="Build video-LLMs data-efficiently: synthesize pseudo-videos from text, sample real videos by "
    "fps and clips, train in stages, evaluate and curate benchmarks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help (sparrow.commands._help): rich's panels cut option names and defaults at 80 columns.
    rich_markup_mode=None,
    cls=Group,
    context_settings={"max_content_width": MAX_WIDTH},
)

# The line each command gets in `sparrow --help` (at most 57 characters: one line at 80 columns); the
# command's docstring is its own --help. A command may instead pass short_help to app.command().
SUMMARIES = {
    "consistency": "R² of variant scores between two model sizes",
    "curate": "Curate a benchmark the ApolloBench way",
    "demo": "Run the whole pipeline on the embedded world",
    "diversity": "Instruction diversity: Vendi score, duplicates, 2-D map",
    "eval": "Evaluate a checkpoint on a multiple-choice benchmark",
    "experiment": "Train and evaluate recipe variants over several seeds",
    "flywheel": "Caption flywheel: refine transcripts, train, re-caption",
    "flywheel-losses": "Compare training losses on the flywheel's captioner",
    "flywheel-pairs": "Narrated caption pairs of a world's training videos",
    "frames": "Extract frames of many videos at a fixed fps",
    "lmms-task": "Write an lmms-eval task folder for a benchmark file",
    "mix": "Draw a seeded training mix from several sources",
    "models": "List (and --prepare) the packaged pretrained parts",
    "probe": "Linear probes of a frozen vision tower's features",
    "refine": "Turn transcripts into timed captions with an LLM",
    "sample": "Print or save the frames a sampling strategy picks",
    "serve": "Serve a checkpoint over an OpenAI-compatible API",
    "synth": "Render long-context text records as pseudo-videos",
    "train": "Train a video-LLM in stages from a recipe",
    "trinity": "Caption statistics, and metrics against a reference",
    "world": "Generate the procedural world: videos, questions, text",
}


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
    for info in app.registered_commands:
        if info.short_help is None and info.name in SUMMARIES:
            info.short_help = SUMMARIES[info.name]
    use_plain_help(app.registered_commands)


_register_commands()


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the app and turns exceptions into one-line errors unless --debug."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        rv = app(args=args, prog_name="sparrow", standalone_mode=False)
    except (click.exceptions.Exit, typer.Exit) as e:
        sys.exit(e.exit_code)
    except (click.exceptions.Abort, typer.Abort):
        err_console.print("aborted")
        sys.exit(130)
    # typer >= 0.25 raises the usage errors of its own copy of click (TyperException subclasses).
    except (click.ClickException, typer.TyperException) as e:
        if hasattr(e, "show"):
            e.show()
        else:
            print_error(e.format_message())
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
