"""The Sphinx extension's work on a page with figures: the embedded state is slimmed and
each figure's view gets its build-time picture, drawn by the live front end under Node."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import lossplot_js

from losslab.engine import widgets
from losslab.site import sphinx_ext


def _page_with(fig, title_extra=""):
    state = {"version_major": 2, "version_minor": 0, "state": {
        fig.model_id: {"model_name": "AnyModel", "state": {
            **lossplot_js.state_of(fig), "_esm": "export default {}", "_css": ".x{}",
            "_anywidget_id": "losslab.engine.widgets.Figure"}},
        "other": {"model_name": "LayoutModel", "state": {"_esm": "kept: not a figure"}}}}
    js = SimpleNamespace(attributes={"type": sphinx_ext.WIDGET_STATE,
                                     "body": json.dumps(state)})
    view = json.dumps({"version_major": 2, "version_minor": 0, "model_id": fig.model_id})
    body = (f'<p>before</p><script type="application/vnd.jupyter.widget-view+json">{view}'
            f"</script><p>after{title_extra}</p>")
    return js, body


def test_state_is_slimmed_and_each_view_gets_its_picture():
    x = [0.0, 1.0, 2.0]
    fig = widgets.figure([widgets.Panel("p", "x", "y", [widgets.Series(
        "k·x </script>", x, lambda k: [k * v for v in x], ("k",))])],
        [widgets.slider("k", [1.0, 2.0], value=2.0)], title="a test figure")
    js, body = _page_with(fig)
    state = sphinx_ext._slim_state(js)
    kept = json.loads(js.attributes["body"])["state"]
    assert "</" not in js.attributes["body"]  # a label cannot end the script early
    assert not {"_esm", "_css", "_anywidget_id"} & set(kept[fig.model_id]["state"])
    assert kept["other"]["state"]["_esm"] == "kept: not a figure"
    out = sphinx_ext._first_paint(body, state, "chapters/a page")
    slot = re.search(r'<div class="ll-slot"><div class="ll-static">(.*?)</div>'
                     r'<script type="application/vnd.jupyter.widget-view\+json">', out, re.S)
    assert slot and out.startswith("<p>before</p>") and out.endswith("<p>after</p>")
    picture = slot.group(1)
    assert 'id="llstatic-chapters-a-page-1-c0"' in picture
    assert 'aria-valuetext="2"' in picture and 'aria-label="a test figure"' in picture
    assert re.search(r'<path class="ll-series[^"]*" data-label="k·x &lt;/script&gt;"', picture)
