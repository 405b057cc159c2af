"""lmms-eval task folders for Sparrow benchmark files.

``sparrow_world/`` is the template: five task variants (``sparrow_world`` video + generation,
``_frame``, ``_text``, ``_swap``, ``_mc`` log-likelihood) sharing ``_default_template_yaml`` and
``utils.py``. ``write_task`` copies it for one benchmark file with its absolute path filled in, and
writes ``swap_videos.json`` (the swap condition's pairing, ``sparrow.eval.conditions.swap_videos``), so
the folder works with ``lmms-eval --include_path FOLDER`` from anywhere.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from sparrow.eval.bench import read_bench
from sparrow.eval.conditions import swap_videos

TEMPLATE = Path(__file__).resolve().parent / "sparrow_world"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def write_task(
    bench: str | Path, out_dir: str | Path, name: str = "sparrow_world", swap_seed: int = 0
) -> list[Path]:
    """Write ``out_dir/<name>/`` (YAMLs, utils.py, swap_videos.json) for ``bench``; returns the files
    written. ``swap_seed``: the swap condition's derangement, as ``sparrow eval --swap-seed``."""
    if not _NAME.match(name):
        raise ValueError(
            f"task name must be letters, digits and underscores, starting with a letter: {name!r}"
        )
    bench = Path(bench).resolve()
    if not bench.is_file():
        raise ValueError(f"benchmark file not found: {bench}")
    dest = Path(out_dir) / name
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for src in sorted(TEMPLATE.iterdir()):
        if src.name == "utils.py":
            shutil.copyfile(src, dest / "utils.py")
            written.append(dest / "utils.py")
            continue
        if not (src.suffix == ".yaml" or src.name == "_default_template_yaml"):
            continue
        text = src.read_text(encoding="utf-8")
        text = text.replace("test: bench_test.jsonl", f"test: {_quote(str(bench))}")
        text = text.replace('bench_root: "."', f"bench_root: {_quote(str(bench.parent))}")
        target_name = src.name.replace("sparrow_world", name)
        text = re.sub(r"^task: sparrow_world", f"task: {name}", text, flags=re.M)
        (dest / target_name).write_text(text, encoding="utf-8")
        written.append(dest / target_name)
    rows, _ = read_bench(bench)
    swap = swap_videos(rows, swap_seed) if sum(1 for r in rows if r.video) >= 2 else {}
    (dest / "swap_videos.json").write_text(json.dumps(swap, indent=1) + "\n", encoding="utf-8")
    written.append(dest / "swap_videos.json")
    return written


def _quote(s: str) -> str:
    """A YAML double-quoted scalar."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
