"""Tables computed in a cell and shown on the page as HTML (the book renders Markdown output
as CommonMark, which has no tables)."""

from __future__ import annotations

import html
from collections.abc import Sequence

from IPython.display import HTML


def html_table(header: Sequence[str], rows: Sequence[Sequence[object]],
               code_columns: Sequence[int] = (), numeric_columns: Sequence[int] = ()) -> HTML:
    """An HTML table of ``rows`` under ``header``; cells are escaped.

    Columns in ``code_columns`` are set as code, those in ``numeric_columns`` right-aligned.
    """
    def cell(tag: str, i: int, value: object) -> str:
        text = html.escape(str(value))
        if i in code_columns:
            text = f"<code>{text}</code>"
        align = ' style="text-align: right"' if i in numeric_columns else ""
        return f"<{tag}{align}>{text}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(r)) + "</tr>"
                   for r in rows)
    return HTML(f'<table class="table losslab-table"><thead><tr>{head}</tr></thead>'
                f"<tbody>{body}</tbody></table>")
