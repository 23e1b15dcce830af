// Loss Functions, Live: the plot widget's front end (an anywidget ES module).
// It draws precomputed curves as SVG and redraws when a linked control moves, so it
// needs no kernel: the same code runs in JupyterLab and on the static site.
//
// It also makes the figure usable without sight: each panel says in words what it plots
// and, at the current setting, each curve's key values; a polite live region announces
// them after a control moves; and the ipywidgets controls beside the plot get their
// visible label as accessible name and announce the value they show.
// The markup matches losslab.engine.svg, which draws the same figure at build time for
// the first paint; the live plot then replaces it in place.

const NAN_CODE = 65535;
const POS_INF_CODE = 65534;
const NEG_INF_CODE = 65533;
const FINITE_MAX = 65532;
const SVG_NS = "http://www.w3.org/2000/svg";
const VIEW_W = 360;
const VIEW_H = 250;
const MARGIN = { left: 52, right: 12, top: 10, bottom: 40 };
const ANNOUNCE_DELAY_MS = 600;

function decodeCodes(text) {
  const bin = atob(text || "");
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  // Little-endian uint16, read by hand so the byte order never depends on the machine.
  const codes = new Uint16Array(bytes.length >> 1);
  for (let i = 0; i < codes.length; i++) codes[i] = bytes[2 * i] | (bytes[2 * i + 1] << 8);
  return codes;
}

function valueOf(code, block) {
  if (code === NAN_CODE) return NaN;
  if (code === POS_INF_CODE) return Infinity;
  if (code === NEG_INF_CODE) return -Infinity;
  return block.lo + (code / FINITE_MAX) * (block.hi - block.lo);
}

function niceTicks(lo, hi, count, categorical) {
  if (categorical) {
    const ticks = [];
    for (let t = Math.ceil(lo); t <= Math.floor(hi); t++) ticks.push(t);
    return ticks;
  }
  const span = hi - lo;
  if (!(span > 0)) return [lo];
  const raw = span / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const ticks = [];
  for (let t = Math.ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step) {
    ticks.push(Math.abs(t) < step * 1e-9 ? 0 : t);
  }
  return ticks;
}

function fmt(v) {
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e4 || a < 1e-3)) return v.toExponential(0);
  return String(Number(v.toPrecision(4)));
}

// Numbers read aloud: three significant digits and a real minus sign.
function say(v) {
  if (!Number.isFinite(v)) return Number.isNaN(v) ? "not a number" : (v > 0 ? "infinity" : "minus infinity");
  const a = Math.abs(v);
  const text = a !== 0 && (a >= 1e5 || a < 1e-3) ? v.toExponential(2) : String(Number(v.toPrecision(3)));
  return text.replace("-", "\u2212");
}

function el(name, attrs, parent) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

// Key values of one drawn series, in words (the same sentence as losslab.engine.svg).
function describeSeries(s, xs, ys, xname) {
  let lo = -1, hi = -1, count = 0;
  for (let i = 0; i < xs.length; i++) {
    if (!Number.isFinite(xs[i]) || !Number.isFinite(ys[i])) continue;
    count++;
    if (lo < 0 || ys[i] < ys[lo]) lo = i;
    if (hi < 0 || ys[i] > ys[hi]) hi = i;
  }
  if (!count) return `${s.label}: no finite value at this setting`;
  if (s.kind === "points" && count <= 6) {
    const pts = [];
    for (let i = 0; i < xs.length; i++) {
      if (Number.isFinite(xs[i]) && Number.isFinite(ys[i])) pts.push(`${say(ys[i])} at ${say(xs[i])}`);
    }
    return `${s.label}: ${pts.join(", ")}`;
  }
  const broken = xs.length - count;
  const gaps = broken ? `; ${broken} of ${xs.length} values not finite` : "";
  return `${s.label}: lowest ${say(ys[lo])} at ${xname} = ${say(xs[lo])}, ` +
    `highest ${say(ys[hi])} at ${xname} = ${say(xs[hi])}${gaps}`;
}

let uid = 0;

function render({ model, el: root }) {
  const spec = model.get("spec");
  const codes = decodeCodes(model.get("data"));
  const controls = spec.controls;
  const nControls = controls.length;
  const id = `ll${++uid}-${Math.random().toString(36).slice(2, 8)}`;

  const wrap = document.createElement("div");
  wrap.className = "losslab-plot";
  wrap.setAttribute("role", "group");
  wrap.setAttribute("aria-label", spec.title || "loss plot");
  root.appendChild(wrap);
  const panelsBox = document.createElement("div");
  panelsBox.className = "ll-panels";
  wrap.appendChild(panelsBox);
  const readout = document.createElement("p");
  readout.className = "ll-readout";
  wrap.appendChild(readout);
  // Announced after the reader stops moving a control, not on every step of a drag.
  const live = document.createElement("p");
  live.className = "ll-sr-only";
  live.setAttribute("aria-live", "polite");
  wrap.appendChild(live);

  const panels = spec.panels.map((panel, p) => {
    const fig = document.createElement("figure");
    fig.className = "ll-figure";
    panelsBox.appendChild(fig);
    const descId = `${id}-desc-${p}`;
    const svg = el("svg", {
      viewBox: `0 0 ${VIEW_W} ${VIEW_H}`,
      class: "ll-panel",
      role: "img",
      "aria-label": `${panel.title}: ${panel.ylabel} against ${panel.xlabel}`,
      "aria-describedby": descId,
    }, fig);
    const px0 = MARGIN.left, px1 = VIEW_W - MARGIN.right;
    const py0 = VIEW_H - MARGIN.bottom, py1 = MARGIN.top;
    svg.dataset.xrange = `${px0},${px1}`;
    svg.dataset.yrange = `${py0},${py1}`;
    const clipId = `${id}-clip-${p}`;
    const clip = el("clipPath", { id: clipId }, el("defs", {}, svg));
    el("rect", { x: px0, y: py1, width: px1 - px0, height: py0 - py1 }, clip);
    const axes = el("g", { class: "ll-axes" }, svg);
    const plot = el("g", { "clip-path": `url(#${clipId})` }, svg);
    const series = panel.series.map((s) => {
      const cls = `ll-series ll-c${s.color} ll-${s.style}`;
      const node = s.kind === "points"
        ? el("g", { class: `${cls} ll-points`, "data-label": s.label }, plot)
        : el("path", { class: cls, "data-label": s.label, fill: "none" }, plot);
      return { s, node };
    });
    const cap = document.createElement("figcaption");
    cap.className = "ll-caption";
    const title = document.createElement("span");
    title.className = "ll-title";
    title.textContent = panel.title;
    cap.appendChild(title);
    for (const { s } of series) {
      const item = document.createElement("span");
      item.className = `ll-key ll-c${s.color} ll-${s.style}`;
      const sw = document.createElement("span");
      sw.className = s.kind === "points" ? "ll-swatch ll-dot" : "ll-swatch";
      sw.setAttribute("aria-hidden", "true");
      item.appendChild(sw);
      const text = document.createElement("span");
      text.className = "ll-key-text";
      text.textContent = s.label;
      item.appendChild(text);
      cap.appendChild(item);
    }
    const desc = document.createElement("p");
    desc.className = "ll-sr-only ll-desc";
    desc.id = descId;
    cap.appendChild(desc);
    fig.appendChild(cap);
    return { panel, series, svg, axes, desc, px0, px1, py0, py1, limitsKey: null };
  });

  function indices() {
    const idx = [];
    for (let i = 0; i < nControls; i++) {
      let v = model.get(`c${i}`);
      if (typeof v === "boolean") v = v ? 1 : 0;
      v = Math.round(Number(v));
      const n = controls[i].n;
      idx.push(Number.isFinite(v) ? Math.min(n - 1, Math.max(0, v)) : 0);
    }
    return idx;
  }

  function frameOf(dims, idx) {
    let f = 0;
    for (const d of dims) f = f * controls[d].n + idx[d];
    return f;
  }

  function columnValues(ref, s, frame) {
    if (ref.linspace) {
      const [a, b, n] = ref.linspace;
      return Array.from({ length: n }, (_, i) => (n === 1 ? a : a + ((b - a) * i) / (n - 1)));
    }
    const block = spec.blocks[ref.block];
    const start = block.offset + (ref.perFrame ? frame * s.n : 0);
    const out = new Array(s.n);
    for (let i = 0; i < s.n; i++) out[i] = valueOf(codes[start + i], block);
    return out;
  }

  // The axis limits at this setting: fixed for the panel, or one pair per setting of the
  // controls the panel follows (computed in Python, see widgets._panel_limits).
  function limitsAt(panel, idx) {
    const f = panel.follow ? frameOf(panel.follow.dims, idx) : 0;
    const xlim = panel.follow && panel.follow.x ? panel.follow.x[f] : panel.xlim;
    const ylim = panel.follow && panel.follow.y ? panel.follow.y[f] : panel.ylim;
    return [xlim, ylim];
  }

  function drawAxes(P, xlim, ylim) {
    const { panel, svg, axes, px0, px1, py0, py1 } = P;
    const [x0, x1] = xlim;
    const [y0, y1] = ylim;
    svg.dataset.xdomain = `${x0},${x1}`;
    svg.dataset.ydomain = `${y0},${y1}`;
    P.sx = (x) => px0 + ((x - x0) / (x1 - x0)) * (px1 - px0);
    P.sy = (y) => py0 + ((y - y0) / (y1 - y0)) * (py1 - py0);
    const key = `${x0},${x1},${y0},${y1}`;
    if (P.limitsKey === key) return;
    P.limitsKey = key;
    const { sx, sy } = P;
    axes.replaceChildren();
    for (const t of niceTicks(x0, x1, 6, panel.categorical)) {
      const x = sx(t).toFixed(1);
      el("line", { x1: x, x2: x, y1: py0, y2: py1, class: "ll-grid" }, axes);
      el("text", { x, y: py0 + 14, "text-anchor": "middle", class: "ll-tick" }, axes).textContent = fmt(t);
    }
    for (const t of niceTicks(y0, y1, 5, false)) {
      const y = sy(t).toFixed(1);
      el("line", { x1: px0, x2: px1, y1: y, y2: y, class: "ll-grid" }, axes);
      el("text", { x: px0 - 5, y: Number(y) + 4, "text-anchor": "end", class: "ll-tick" }, axes).textContent = fmt(t);
    }
    if (y0 < 0 && y1 > 0) el("line", { x1: px0, x2: px1, y1: sy(0), y2: sy(0), class: "ll-zero" }, axes);
    if (x0 < 0 && x1 > 0) el("line", { x1: sx(0), x2: sx(0), y1: py0, y2: py1, class: "ll-zero" }, axes);
    el("rect", { x: px0, y: py1, width: px1 - px0, height: py0 - py1, class: "ll-frame" }, axes);
    el("text", { x: (px0 + px1) / 2, y: VIEW_H - 6, "text-anchor": "middle", class: "ll-label" }, axes).textContent = panel.xlabel;
    el("text", {
      x: 0, y: 0, "text-anchor": "middle", class: "ll-label",
      transform: `translate(12 ${(py0 + py1) / 2}) rotate(-90)`,
    }, axes).textContent = panel.ylabel;
  }

  function settingsText(idx) {
    return controls.map((c, i) => `${c.label}: ${c.labels[idx[i]]}`).join("; ");
  }

  let announceTimer = null;

  function draw(announce) {
    const idx = indices();
    wrap.dataset.frame = idx.join(",");
    wrap.dataset.values = JSON.stringify(Object.fromEntries(controls.map((c, i) => [c.label, c.labels[idx[i]]])));
    const said = [];
    for (const P of panels) {
      const [xlim, ylim] = limitsAt(P.panel, idx);
      drawAxes(P, xlim, ylim);
      const { sx, sy } = P;
      const sentences = [];
      for (const { s, node } of P.series) {
        const frame = frameOf(s.dims, idx);
        const xs = columnValues(s.x, s, frame);
        const ys = columnValues(s.y, s, frame);
        sentences.push(describeSeries(s, xs, ys, P.panel.xname));
        if (s.kind === "points") {
          const kids = [];
          for (let i = 0; i < s.n; i++) {
            if (!Number.isFinite(xs[i]) || !Number.isFinite(ys[i])) continue;
            const c = document.createElementNS(SVG_NS, "circle");
            c.setAttribute("cx", sx(xs[i]).toFixed(2));
            c.setAttribute("cy", sy(ys[i]).toFixed(2));
            c.setAttribute("r", "3");
            kids.push(c);
          }
          node.replaceChildren(...kids);
        } else {
          let d = "";
          let pen = false;
          for (let i = 0; i < s.n; i++) {
            if (!Number.isFinite(xs[i]) || !Number.isFinite(ys[i])) { pen = false; continue; }
            d += `${pen ? "L" : "M"}${sx(xs[i]).toFixed(2)},${sy(ys[i]).toFixed(2)}`;
            pen = true;
          }
          node.setAttribute("d", d);
        }
      }
      const text = `${P.panel.title}. ${sentences.join(". ")}.`;
      P.desc.textContent = text;
      said.push(text);
    }
    readout.textContent = nControls ? `Showing ${settingsText(idx)}.` : "";
    if (announce) {
      clearTimeout(announceTimer);
      announceTimer = setTimeout(() => {
        live.textContent = `${settingsText(idx)}. ${said.join(" ")}`;
      }, ANNOUNCE_DELAY_MS);
    }
    for (const t of tied) t.update(idx);
  }

  // --- the ipywidgets controls beside the plot ------------------------------------------
  // They are ipywidgets so that a learner can read and set them from Python; here they get
  // what their own views lack: an accessible name equal to the visible label, the shown
  // value as aria-valuetext (the handle's own aria-valuenow is the option's index), and a
  // readout that is plain text instead of an editable box that edits nothing.
  const tied = [];
  const figureBox = () => root.closest(".losslab-figure");

  function tieControl(node, i) {
    const c = controls[i];
    const label = node.querySelector(".widget-label");
    if (label && !label.id) label.id = `${id}-label-${i}`;
    if (node.classList.contains("widget-hslider")) {
      const handle = node.querySelector(".noUi-handle");
      const readoutBox = node.querySelector(".widget-readout");
      if (!handle) return null;
      if (label) handle.setAttribute("aria-labelledby", label.id);
      else handle.setAttribute("aria-label", c.label);
      if (readoutBox) {
        readoutBox.setAttribute("contenteditable", "false");
        readoutBox.removeAttribute("tabindex");
        readoutBox.setAttribute("aria-hidden", "true");
      }
      let shown = null;
      const keep = new MutationObserver(() => {
        if (shown !== null && handle.getAttribute("aria-valuetext") !== shown) {
          handle.setAttribute("aria-valuetext", shown);
        }
      });
      keep.observe(handle, { attributes: true, attributeFilter: ["aria-valuetext"] });
      return {
        update(idx) {
          shown = c.labels[idx[i]];
          handle.setAttribute("aria-valuetext", shown);
        },
        stop() { keep.disconnect(); },
      };
    }
    if (node.classList.contains("widget-dropdown")) {
      const select = node.querySelector("select");
      if (!select) return null;
      if (label) select.setAttribute("aria-labelledby", label.id);
      else select.setAttribute("aria-label", c.label);
    }
    return { update() {}, stop() {} };
  }

  let watcher = null;

  function tieControls() {
    const box = figureBox();
    if (!box || !nControls) return true;
    const nodes = box.querySelectorAll(".widget-hslider, .widget-dropdown, .widget-checkbox");
    if (nodes.length < nControls) return false;
    for (let i = 0; i < nControls; i++) {
      const t = tieControl(nodes[i], i);
      if (!t) { for (const u of tied.splice(0)) u.stop(); return false; }
      tied.push(t);
    }
    return true;
  }

  function goLive() {
    // The page's build-time picture of this figure (losslab.engine.svg) steps aside.
    const slot = root.closest(".ll-slot");
    if (slot) slot.classList.add("ll-live");
  }

  draw(false);
  if (tieControls()) {
    draw(false);
    goLive();
  } else {
    const box = figureBox();
    watcher = new MutationObserver(() => {
      if (tieControls()) {
        watcher.disconnect();
        watcher = null;
        draw(false);
        goLive();
      }
    });
    watcher.observe(box, { childList: true, subtree: true });
    // Controls that never render (a viewer without them) must not keep the picture hidden.
    setTimeout(goLive, 3000);
  }

  const handlers = [];
  for (let i = 0; i < nControls; i++) {
    const h = () => draw(true);
    model.on(`change:c${i}`, h);
    handlers.push([`change:c${i}`, h]);
  }
  return () => {
    for (const [name, h] of handlers) model.off(name, h);
    for (const t of tied) t.stop();
    if (watcher) watcher.disconnect();
    clearTimeout(announceTimer);
  };
}

export default { render };
