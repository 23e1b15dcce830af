"""The reference page's table (``chapters/reference.md``): every loss of ``torch.nn``, run."""

from __future__ import annotations

import html
import re
from pathlib import Path

from IPython.display import HTML

from ..losses import catalog

CHAPTERS = Path(__file__).resolve().parents[2] / "chapters"
COLUMNS = ["loss", "functional", "input", "target", "options", "reduction", "formula",
           "example value", "taught in"]


def reference_rows() -> list[list[str]]:
    """One row of plain text per loss; runs each example and raises if its three ways differ."""
    rows = []
    for entry in catalog.CATALOG.values():
        value, gap = catalog.run_example(entry)
        rows.append([f"nn.{entry.name}", entry.functional, entry.input, entry.target,
                     entry.options, entry.reductions, entry.formula,
                     f"{value:.6f} (gap {gap:.0e})", entry.chapter])
    return rows


def chapter_title(chapter: str) -> str:
    """The first heading of ``chapters/<name>.md``, for a chapter path ``chapters/<name>``."""
    text = (CHAPTERS.parent / f"{chapter}.md").read_text()
    return re.search(r"^# (.+)$", text, re.M).group(1)


def reference_table() -> HTML:
    """The table as HTML; the last column links each loss to the chapter that teaches it."""
    titles = {e.chapter: chapter_title(e.chapter) for e in catalog.CATALOG.values()}

    def cell(i: int, text: str) -> str:
        safe = html.escape(text)
        if i in (0, 1):
            return f"<td><code>{safe}</code></td>"
        if i == len(COLUMNS) - 1:
            page = text.split("/")[-1]
            return f'<td><a href="{page}.html">{html.escape(titles[text])}</a></td>'
        return f"<td>{safe}</td>"

    head = "".join(f'<th scope="col">{html.escape(c)}</th>' for c in COLUMNS)
    body = "".join("<tr>" + "".join(cell(i, v) for i, v in enumerate(row)) + "</tr>"
                   for row in reference_rows())
    return HTML('<div class="losslab-reference" style="overflow-x: auto">'
                '<table class="table losslab-table"><caption>Every loss module of torch.nn, '
                'each example run when this page was built</caption>'
                f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")
