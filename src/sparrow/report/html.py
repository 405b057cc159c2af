"""A self-contained HTML report: sections of text, tables and PNG figures embedded as data URIs.

Reports are built from files the jobs already wrote (metrics JSON, PNG plots), so a report never holds
numbers that disagree with the files next to it.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparrow.io import atomic_write_text

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
     padding:0 1em;color:#1d1d1f;line-height:1.45}
h1{font-size:1.8em;margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.8em 0;font-size:.92em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right} th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}
figure{display:inline-block;margin:.5em 1em .5em 0;vertical-align:top}
figure img{max-width:100%;border:1px solid #ddd} figcaption{font-size:.85em;color:#555;max-width:520px}
.note{background:#fff8e1;border-left:4px solid #f5b400;padding:.6em 1em;margin:1em 0}
.muted{color:#666;font-size:.9em}
"""


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


@dataclass
class Figure:
    path: Path
    caption: str = ""
    width: int | None = None


@dataclass
class Section:
    title: str
    blocks: list[str] = field(default_factory=list)

    def text(self, text: str) -> Section:
        self.blocks.append(f"<p>{html.escape(text)}</p>")
        return self

    def note(self, text: str) -> Section:
        self.blocks.append(f'<div class="note">{html.escape(text)}</div>')
        return self

    def table(self, columns: Sequence[str], rows: Sequence[Sequence[Any]], caption: str = "") -> Section:
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in r) + "</tr>" for r in rows
        )
        cap = f"<caption class='muted'>{html.escape(caption)}</caption>" if caption else ""
        self.blocks.append(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        return self

    def figures(self, figures: Sequence[Figure]) -> Section:
        for fig in figures:
            self.blocks.append(_figure_html(fig))
        return self


def _figure_html(fig: Figure) -> str:
    data = Path(fig.path).read_bytes()
    mime = "image/png" if fig.path.suffix.lower() == ".png" else "image/jpeg"
    uri = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    width = f' width="{fig.width}"' if fig.width else ""
    alt = html.escape(fig.caption or fig.path.name)
    return (
        f'<figure><img src="{uri}" alt="{alt}"{width} data-source="{html.escape(fig.path.name)}">'
        f"<figcaption>{html.escape(fig.caption)}</figcaption></figure>"
    )


@dataclass
class Report:
    title: str
    intro: str = ""
    sections: list[Section] = field(default_factory=list)

    def section(self, title: str) -> Section:
        s = Section(title)
        self.sections.append(s)
        return s

    def to_html(self) -> str:
        parts = [
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body>",
            f"<h1>{html.escape(self.title)}</h1>",
        ]
        if self.intro:
            parts.append(f"<p class='muted'>{html.escape(self.intro)}</p>")
        for s in self.sections:
            parts.append(f"<section><h2>{html.escape(s.title)}</h2>{''.join(s.blocks)}</section>")
        parts.append("</body></html>")
        return "\n".join(parts)

    def write(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        atomic_write_text(path, self.to_html())
        return path
