// Loss Functions, Live: the site's widget runtime (an ES module, no loader, no framework).
//
// myst-nb embeds each page's widget state (application/vnd.jupyter.widget-state+json) and
// marks where each widget goes with a widget-view script. Every widget on the site is a
// losslab figure: one anywidget whose front end (lossplot.js, served beside this file)
// draws its own native controls and keeps them tied to its plot. So a figure comes alive
// here from its state alone: this module gives the front end the small model it asks for
// (get, set, on, off, save_changes) and calls its render, in the place myst-nb marked.
// With a kernel (JupyterLab, Binder) anywidget gives it the synced model instead.
import lossplot from "./lossplot.js";

const STATE = "application/vnd.jupyter.widget-state+json";
const VIEW = "application/vnd.jupyter.widget-view+json";

// A model held in the page: set() changes a value and tells who listens, as a synced
// model does; there is no kernel to save to.
function pageModel(values) {
  const state = { ...values };
  const listeners = new Map();
  return {
    get: (name) => state[name],
    set(name, value) {
      if (state[name] === value) return;
      state[name] = value;
      for (const cb of [...(listeners.get(`change:${name}`) || [])]) cb(value);
    },
    on(event, cb) {
      if (!listeners.has(event)) listeners.set(event, new Set());
      listeners.get(event).add(cb);
    },
    off(event, cb) {
      if (listeners.has(event)) listeners.get(event).delete(cb);
    },
    save_changes() {},
    send() {},
  };
}

function pageState() {
  const script = document.querySelector(`script[type="${STATE}"]`);
  if (!script) return {};
  return JSON.parse(script.textContent).state || {};
}

function isFigure(model) {
  const spec = model && model.state && model.state.spec;
  return Boolean(spec && spec.panels && spec.controls);
}

export function renderAll() {
  const state = pageState();
  for (const view of document.querySelectorAll(`script[type="${VIEW}"]`)) {
    if (view.dataset.llRendered) continue;
    const id = JSON.parse(view.textContent).model_id;
    const model = state[id];
    if (!isFigure(model)) {
      console.warn(`losslab: widget ${id} is not a losslab figure; it stays as drawn at build time`);
      continue;
    }
    const host = document.createElement("div");
    host.className = "widget-subarea";
    view.after(host);
    view.dataset.llRendered = "1";
    lossplot.render({ model: pageModel(model.state), el: host });
  }
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", renderAll, { once: true });
} else {
  renderAll();
}
