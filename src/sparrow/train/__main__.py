"""``python -m sparrow.train CONFIG --out DIR ...``: the entry point torchrun launches.

    torchrun --nproc_per_node 2 -m sparrow.train configs/tiny/apollo-3stage.yaml --out runs/a --data-root world

Same flags as ``sparrow train`` (it is the same command); every process runs it, rank 0 draws the
progress and writes the files.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    from sparrow.cli import main as cli_main

    cli_main(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
