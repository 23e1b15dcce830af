"""Call the figures' front end (``losslab/engine/static/lossplot.js``) from a test, in Node."""

from __future__ import annotations

import json
import subprocess

from losslab.engine import first_paint

LOSSPLOT = first_paint.RENDERER.with_name("lossplot.js")

_SCRIPT = """
import { readFileSync } from "node:fs";
const src = readFileSync(process.argv[1], "utf8");
const m = await import("data:text/javascript;base64," + Buffer.from(src).toString("base64"));
const calls = JSON.parse(readFileSync(0, "utf8"));
const out = calls.map(([name, args]) => {
  if (name === "describe") {
    const [state, idx] = args;
    const fig = m.prepare(state);
    return fig.spec.panels.map((_, p) => m.panelText(fig, p, idx));
  }
  if (name === "announce") {
    const [state, i, idx] = args;
    return m.announcement(m.prepare(state), i, idx);
  }
  return m[name](...args);
});
process.stdout.write(JSON.stringify(out));
"""


def calls(*items: tuple[str, list]) -> list:
    """Run ``(export name, [arguments])`` calls in one Node process; return their results.

    Two helpers beside the exports: ``describe`` ``(state, idx)`` gives each panel's text
    alternative at the setting ``idx``, ``announce`` ``(state, i, idx)`` what is said after
    control ``i`` moved to ``idx``.
    """
    proc = subprocess.run(
        [first_paint.node_path(), "--input-type=module", "-e", _SCRIPT, str(LOSSPLOT)],
        input=json.dumps(list(items)), capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def state_of(fig, idx=None) -> dict:
    """A figure's widget state (what the page embeds), at ``idx`` if given."""
    state = {"spec": fig.plot.spec, "data": fig.plot.data, "summary": fig.plot.summary}
    n = len(fig.plot.spec["controls"])
    for i in range(n):
        state[f"c{i}"] = int(getattr(fig.plot, f"c{i}")) if idx is None else int(idx[i])
    return state
