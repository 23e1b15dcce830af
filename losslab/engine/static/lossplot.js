// Loss Functions, Live: a figure's front end (an anywidget ES module), and its only renderer.
//
// One figure is one widget: its controls are the model's traits c0..c3 (the index of each
// control's value), drawn here as native <input type=range>, <select> and checkbox
// elements; its curves are precomputed and drawn as SVG, redrawn when a control moves. The
// same code runs in three places:
// - in JupyterLab (anywidget), where the traits are synced with the kernel, so a learner
//   reads and sets the controls from Python;
// - on the static site, where the site's small runtime (widget-loader.js) gives it a model
//   read from the widget state the page embeds;
// - at build time under Node (render-static.mjs), where `figureMarkup` writes the figure
//   that is on the page before any script runs; the live figure then takes its place.
// Everything drawn is built as markup text by the functions below, so the three agree by
// construction. What the text alternative says (lowest, highest and marked values) comes
// from the float64 curves, computed in Python and shipped exactly (`summary`), not from the
// 16-bit codes the curves are drawn from.

const NAN_CODE = 65535;
const POS_INF_CODE = 65534;
const NEG_INF_CODE = 65533;
const FINITE_MAX = 65532;
const VIEW_W = 360;
const VIEW_H = 250;
const MARGIN = { left: 58, right: 12, top: 10, bottom: 44 };
const ANNOUNCE_DELAY_MS = 500;
// A "points" series with at most this many points is described point by point.
const POINTS_SAID = 6;

function bytesOf(text) {
  const bin = atob(text || "");
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes;
}

// Little-endian uint16 codes, read byte by byte so the order never depends on the machine.
export function decodeCodes(text) {
  const bytes = bytesOf(text);
  const codes = new Uint16Array(bytes.length >> 1);
  for (let i = 0; i < codes.length; i++) codes[i] = bytes[2 * i] | (bytes[2 * i + 1] << 8);
  return codes;
}

// Little-endian float64 values (the summary the text alternative reads), exact.
export function decodeFloats(text) {
  const bytes = bytesOf(text);
  const view = new DataView(bytes.buffer);
  const out = new Float64Array(bytes.length >> 3);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat64(8 * i, true);
  return out;
}

function valueOf(code, block) {
  if (code === NAN_CODE) return NaN;
  if (code === POS_INF_CODE) return Infinity;
  if (code === NEG_INF_CODE) return -Infinity;
  return block.lo + (code / FINITE_MAX) * (block.hi - block.lo);
}

export function niceTicks(lo, hi, count, categorical) {
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
  const first = Math.ceil(lo / step - 1e-9);
  for (let k = first; k * step <= hi + step * 1e-9; k++) {
    const t = k * step;
    ticks.push(Math.abs(t) < step * 1e-9 ? 0 : t);
  }
  return ticks;
}

// A tick label: short, with a real minus sign.
export function fmt(v) {
  const a = Math.abs(v);
  const text = a !== 0 && (a >= 1e4 || a < 1e-3) ? v.toExponential(0) : String(Number(v.toPrecision(4)));
  return text.replace(/-/g, "\u2212");
}

// Numbers read aloud: three significant digits and a real minus sign.
export function say(v) {
  if (!Number.isFinite(v)) return Number.isNaN(v) ? "not a number" : (v > 0 ? "infinity" : "minus infinity");
  const a = Math.abs(v);
  const text = a !== 0 && (a >= 1e5 || a < 1e-3) ? v.toExponential(2) : String(Number(v.toPrecision(3)));
  return text.replace(/-/g, "\u2212");
}

function esc(text) {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

function attrs(obj) {
  return Object.entries(obj).map(([k, v]) => `${k}="${esc(v)}"`).join(" ");
}

function tag(name, a, text) {
  return text === undefined ? `<${name} ${attrs(a)}/>` : `<${name} ${attrs(a)}>${esc(text)}</${name}>`;
}

// --- a figure's data, decoded once ------------------------------------------------------

export function prepare(state) {
  const spec = state.spec;
  if (!spec || !Array.isArray(spec.panels) || !Array.isArray(spec.controls)) {
    throw new Error("losslab figure: expected a state with spec.panels and spec.controls; got " +
      JSON.stringify(Object.keys(spec || {})));
  }
  return { spec, codes: decodeCodes(state.data), summary: decodeFloats(state.summary) };
}

export function indicesOf(spec, get) {
  return spec.controls.map((c, i) => {
    let v = get(`c${i}`);
    if (typeof v === "boolean") v = v ? 1 : 0;
    v = Math.round(Number(v));
    return Number.isFinite(v) ? Math.min(c.n - 1, Math.max(0, v)) : 0;
  });
}

function frameOf(controls, dims, idx) {
  let f = 0;
  for (const d of dims) f = f * controls[d].n + idx[d];
  return f;
}

function columnValues(fig, ref, s, frame) {
  if (ref.linspace) {
    const [a, b, n] = ref.linspace;
    return Array.from({ length: n }, (_, i) => (n === 1 ? a : a + ((b - a) * i) / (n - 1)));
  }
  const block = fig.spec.blocks[ref.block];
  const start = block.offset + (ref.perFrame ? frame * s.n : 0);
  const out = new Array(s.n);
  for (let i = 0; i < s.n; i++) out[i] = valueOf(fig.codes[start + i], block);
  return out;
}

// The axis limits at this setting: fixed for the panel, or one pair per setting of the
// controls the panel follows (computed in Python, see widgets._follow).
export function limitsAt(controls, panel, idx) {
  const f = panel.follow ? frameOf(controls, panel.follow.dims, idx) : 0;
  const xlim = panel.follow && panel.follow.x ? panel.follow.x[f] : panel.xlim;
  const ylim = panel.follow && panel.follow.y ? panel.follow.y[f] : panel.ylim;
  return [xlim, ylim];
}

// --- words ------------------------------------------------------------------------------

// One series' key values at this setting, in words, from its exact float64 summary:
// a few points are named one by one; a curve by its lowest and highest value.
function describeSeries(fig, s, frame, xname) {
  const k = s.summary;
  const at = k.offset + frame * k.width;
  const v = fig.summary;
  if (k.points) {
    const pts = [];
    for (let i = 0; i < k.points; i++) {
      const x = v[at + 2 * i], y = v[at + 2 * i + 1];
      if (Number.isFinite(x) && Number.isFinite(y)) pts.push(`${say(y)} at ${xname} = ${say(x)}`);
    }
    return pts.length ? `${s.label}: ${pts.join(", ")}` : `${s.label}: no finite value at this setting`;
  }
  const [ylo, xlo, yhi, xhi, broken] = [v[at], v[at + 1], v[at + 2], v[at + 3], v[at + 4]];
  if (!Number.isFinite(ylo)) return `${s.label}: no finite value at this setting`;
  const gaps = broken ? `; ${broken} of ${s.n} values not finite` : "";
  return `${s.label}: lowest ${say(ylo)} at ${xname} = ${say(xlo)}, ` +
    `highest ${say(yhi)} at ${xname} = ${say(xhi)}${gaps}`;
}

function panelSentences(fig, panel, idx) {
  return panel.series.map((s) => describeSeries(fig, s, frameOf(fig.spec.controls, s.dims, idx), panel.xname));
}

export function panelText(fig, p, idx) {
  const panel = fig.spec.panels[p];
  return `${panel.title}. ${panelSentences(fig, panel, idx).join(". ")}.`;
}

// What a screen reader hears after a control moves: the new value, then the marked points
// that moved with it (the "points" series of one or two points that depend on the control;
// failing those, the first "points" series that does), not every curve.
export function announcement(fig, i, idx) {
  const c = fig.spec.controls[i];
  const parts = [`${c.label} ${c.labels[idx[i]]}`];
  const moved = [];
  for (const panel of fig.spec.panels) {
    for (const s of panel.series) {
      if (s.summary.points && s.dims.includes(i)) moved.push([panel, s]);
    }
  }
  const markers = moved.filter(([, s]) => s.summary.points <= 2);
  for (const [panel, s] of markers.length ? markers : moved.slice(0, 1)) {
    const frame = frameOf(fig.spec.controls, s.dims, idx);
    parts.push(`${panel.title}, ${describeSeries(fig, s, frame, panel.xname)}`);
  }
  return parts.join(". ") + ".";
}

export function valuesAt(spec, idx) {
  return Object.fromEntries(spec.controls.map((c, i) => [c.label, c.labels[idx[i]]]));
}

// --- markup -----------------------------------------------------------------------------

const PX0 = MARGIN.left, PX1 = VIEW_W - MARGIN.right;
const PY0 = VIEW_H - MARGIN.bottom, PY1 = MARGIN.top;

// The x-axis label, centred under the plot. The figure is drawn at build time with no
// text layout to measure, so the length is judged by its characters: a label that would
// run past the picture's right edge (more than X_LABEL_CHARS, about 6.7 units a character
// at 13 px, with 157 units right of the centre) is set in two lines at 12 px (11.5 units
// apart, clear of the tick numbers), broken at the space that keeps the longer line
// shortest, inside the same bottom margin.
const X_LABEL_CHARS = 44;
export function xLabelLines(text) {
  const label = String(text);
  if (label.length <= X_LABEL_CHARS) return [label];
  let best = null;
  for (let i = label.indexOf(" "); i > 0; i = label.indexOf(" ", i + 1)) {
    const longer = Math.max(i, label.length - i - 1);
    if (!best || longer < best[0]) best = [longer, i];
  }
  return best ? [label.slice(0, best[1]), label.slice(best[1] + 1)] : [label];
}

function xLabel(text) {
  const x = (PX0 + PX1) / 2;
  const lines = xLabelLines(text);
  if (lines.length === 1) {
    return tag("text", { x, y: VIEW_H - 6, "text-anchor": "middle", class: "ll-label" }, lines[0]);
  }
  // The space between the lines stays in the text, so the label reads as one phrase.
  const spans = lines.map((line, k) => `<tspan ${attrs({ x, y: VIEW_H - 13 + 11.5 * k })}>` +
    `${esc(k < lines.length - 1 ? line + " " : line)}</tspan>`).join("");
  return `<text ${attrs({ "text-anchor": "middle", class: "ll-label ll-label-2" })}>${spans}</text>`;
}

// The inside of one panel's <svg> at a setting: axes, then the clipped curves.
export function panelInner(fig, p, idx, uid) {
  const panel = fig.spec.panels[p];
  const [[x0, x1], [y0, y1]] = limitsAt(fig.spec.controls, panel, idx);
  const sx = (x) => PX0 + ((x - x0) / (x1 - x0)) * (PX1 - PX0);
  const sy = (y) => PY0 + ((y - y0) / (y1 - y0)) * (PY1 - PY0);
  const out = [];
  const clipId = `${uid}-clip-${p}`;
  out.push(`<defs><clipPath id="${esc(clipId)}">${tag("rect", { x: PX0, y: PY1, width: PX1 - PX0, height: PY0 - PY1 })}</clipPath></defs>`);
  out.push('<g class="ll-axes">');
  for (const t of niceTicks(x0, x1, 5, panel.categorical)) {
    const x = sx(t).toFixed(1);
    out.push(tag("line", { x1: x, x2: x, y1: PY0, y2: PY1, class: "ll-grid" }));
    out.push(tag("text", { x, y: PY0 + 16, "text-anchor": "middle", class: "ll-tick" }, fmt(t)));
  }
  for (const t of niceTicks(y0, y1, 5, false)) {
    const y = sy(t).toFixed(1);
    out.push(tag("line", { x1: PX0, x2: PX1, y1: y, y2: y, class: "ll-grid" }));
    out.push(tag("text", { x: PX0 - 5, y: (Number(y) + 4.5).toFixed(1), "text-anchor": "end", class: "ll-tick" }, fmt(t)));
  }
  if (y0 < 0 && y1 > 0) out.push(tag("line", { x1: PX0, x2: PX1, y1: sy(0).toFixed(1), y2: sy(0).toFixed(1), class: "ll-zero" }));
  if (x0 < 0 && x1 > 0) out.push(tag("line", { x1: sx(0).toFixed(1), x2: sx(0).toFixed(1), y1: PY0, y2: PY1, class: "ll-zero" }));
  out.push(tag("rect", { x: PX0, y: PY1, width: PX1 - PX0, height: PY0 - PY1, class: "ll-frame" }));
  out.push(xLabel(panel.xlabel));
  out.push(tag("text", { x: 0, y: 0, "text-anchor": "middle", class: "ll-label", transform: `translate(13 ${(PY0 + PY1) / 2}) rotate(-90)` }, panel.ylabel));
  out.push("</g>");
  out.push(`<g clip-path="url(#${esc(clipId)})">`);
  for (const s of panel.series) {
    const frame = frameOf(fig.spec.controls, s.dims, idx);
    const xs = columnValues(fig, s.x, s, frame);
    const ys = columnValues(fig, s.y, s, frame);
    const cls = `ll-series ll-c${s.color} ll-${s.style}`;
    if (s.kind === "points") {
      let dots = "";
      for (let i = 0; i < s.n; i++) {
        if (!Number.isFinite(xs[i]) || !Number.isFinite(ys[i])) continue;
        dots += `<circle cx="${sx(xs[i]).toFixed(2)}" cy="${sy(ys[i]).toFixed(2)}" r="3.5"/>`;
      }
      out.push(`<g ${attrs({ class: `${cls} ll-points`, "data-label": s.label })}>${dots}</g>`);
    } else {
      let d = "";
      let pen = false;
      for (let i = 0; i < s.n; i++) {
        if (!Number.isFinite(xs[i]) || !Number.isFinite(ys[i])) { pen = false; continue; }
        d += `${pen ? "L" : "M"}${sx(xs[i]).toFixed(2)},${sy(ys[i]).toFixed(2)}`;
        pen = true;
      }
      out.push(tag("path", { class: cls, "data-label": s.label, fill: "none", d }));
    }
  }
  out.push("</g>");
  return { inner: out.join(""), xdomain: `${x0},${x1}`, ydomain: `${y0},${y1}` };
}

function controlMarkup(c, i, shown, uid, live) {
  const id = `${uid}-c${i}`;
  const off = live ? {} : { disabled: "" };
  if (c.kind === "toggle") {
    const a = { type: "checkbox", id, "data-control": i, ...off };
    if (shown) a.checked = "";
    return `<div class="ll-control ll-toggle"><input ${attrs(a)}/><label for="${esc(id)}">${esc(c.label)}</label></div>`;
  }
  const label = `<label class="ll-control-label" for="${esc(id)}">${esc(c.label)}</label>`;
  if (c.kind === "dropdown") {
    const options = c.labels.map((l, k) => `<option value="${k}"${k === shown ? " selected" : ""}>${esc(l)}</option>`).join("");
    return `<div class="ll-control ll-dropdown">${label}<select ${attrs({ id, "data-control": i, ...off })}>${options}</select></div>`;
  }
  const a = { type: "range", id, min: 0, max: c.n - 1, step: 1, value: shown, "aria-valuetext": c.labels[shown], "data-control": i, ...off };
  return `<div class="ll-control ll-slider">${label}<input ${attrs(a)}/>` +
    `<output class="ll-value" for="${esc(id)}" aria-hidden="true">${esc(c.labels[shown])}</output></div>`;
}

// The whole figure at a setting: its controls, then its panels. `live` leaves the
// controls enabled and adds the live region; without it (the build-time picture) the
// controls are shown disabled until the live figure takes its place.
export function figureMarkup(fig, idx, uid, live) {
  const spec = fig.spec;
  const controls = spec.controls.map((c, i) => controlMarkup(c, i, idx[i], uid, live)).join("");
  const figures = spec.panels.map((panel, p) => {
    const { inner, xdomain, ydomain } = panelInner(fig, p, idx, uid);
    const descId = `${uid}-desc-${p}`;
    const svg = {
      viewBox: `0 0 ${VIEW_W} ${VIEW_H}`, class: "ll-panel", role: "img",
      "aria-label": `${panel.title}: ${panel.ylabel} against ${panel.xlabel}`,
      "aria-describedby": descId, "data-xname": panel.xname,
      "data-xdomain": xdomain, "data-ydomain": ydomain,
      "data-xrange": `${PX0},${PX1}`, "data-yrange": `${PY0},${PY1}`,
      xmlns: "http://www.w3.org/2000/svg",
    };
    const keys = panel.series.map((s) => `<span class="ll-key ll-c${s.color} ll-${s.style}">` +
      `<span class="${s.kind === "points" ? "ll-swatch ll-dot" : "ll-swatch"}" aria-hidden="true"></span>` +
      `<span class="ll-key-text">${esc(s.label)}</span></span>`).join("");
    // The description is hidden from reading: it is read once, as the picture's description.
    return `<figure class="ll-figure"><svg ${attrs(svg)}>${inner}</svg>` +
      `<figcaption class="ll-caption"><span class="ll-title">${esc(panel.title)}</span>${keys}</figcaption>` +
      `<p class="ll-desc" id="${esc(descId)}" hidden>${esc(panelText(fig, p, idx))}</p></figure>`;
  }).join("");
  const plot = {
    class: "losslab-plot", role: "group", "aria-label": spec.title || "loss plot",
    "data-frame": idx.join(","), "data-values": JSON.stringify(valuesAt(spec, idx)),
  };
  const liveRegion = live ? '<p class="ll-sr-only ll-announce" aria-live="polite"></p>' : "";
  // JupyterLab's notebook shortcuts (an arrow key moves between cells) stay out of the
  // controls, so the keys move the control that has focus.
  const controlBox = controls ? `<div class="ll-controls" data-lm-suppress-shortcuts="true">${controls}</div>` : "";
  return `${controlBox}<div ${attrs(plot)}><div class="ll-panels">${figures}</div>${liveRegion}</div>`;
}

// The build-time picture of a figure from its widget state (what render-static.mjs writes).
export function staticMarkup(state, uid) {
  const fig = prepare(state);
  const idx = indicesOf(fig.spec, (k) => state[k]);
  return `<div class="ll-static">${figureMarkup(fig, idx, uid, false)}</div>`;
}

// --- the live figure ----------------------------------------------------------------------

let uidCount = 0;

function render({ model, el: host }) {
  const fig = prepare({ spec: model.get("spec"), data: model.get("data"), summary: model.get("summary") });
  const spec = fig.spec;
  const uid = `ll${++uidCount}-${Math.random().toString(36).slice(2, 8)}`;
  let idx = indicesOf(spec, (k) => model.get(k));

  const root = document.createElement("div");
  root.className = "losslab-figure";
  root.innerHTML = figureMarkup(fig, idx, uid, true);
  host.appendChild(root);
  const plot = root.querySelector(".losslab-plot");
  const live = root.querySelector(".ll-announce");
  const svgs = Array.from(root.querySelectorAll("svg.ll-panel"));
  const descs = Array.from(root.querySelectorAll(".ll-desc"));
  const inputs = spec.controls.map((_, i) => root.querySelector(`[data-control="${i}"]`));
  const outputs = spec.controls.map((_, i) => inputs[i].parentNode.querySelector("output"));

  function draw() {
    idx = indicesOf(spec, (k) => model.get(k));
    for (let p = 0; p < svgs.length; p++) {
      const { inner, xdomain, ydomain } = panelInner(fig, p, idx, uid);
      svgs[p].innerHTML = inner;
      svgs[p].dataset.xdomain = xdomain;
      svgs[p].dataset.ydomain = ydomain;
      descs[p].textContent = panelText(fig, p, idx);
    }
    spec.controls.forEach((c, i) => {
      const input = inputs[i];
      if (c.kind === "toggle") input.checked = Boolean(idx[i]);
      else if (c.kind === "dropdown") input.value = String(idx[i]);
      else {
        input.value = String(idx[i]);
        input.setAttribute("aria-valuetext", c.labels[idx[i]]);
        outputs[i].textContent = c.labels[idx[i]];
      }
    });
    plot.dataset.frame = idx.join(",");
    plot.dataset.values = JSON.stringify(valuesAt(spec, idx));
  }

  let announceTimer = null;
  function announce(i) {
    clearTimeout(announceTimer);
    announceTimer = setTimeout(() => { live.textContent = announcement(fig, i, idx); }, ANNOUNCE_DELAY_MS);
  }

  // A key pressed on a control is the control's: a page or notebook handler further up
  // (JupyterLab moves between cells on arrow keys) never hears it.
  const listeners = [];
  const box = root.querySelector(".ll-controls");
  if (box) {
    const keep = (e) => e.stopPropagation();
    box.addEventListener("keydown", keep);
    listeners.push(() => box.removeEventListener("keydown", keep));
  }
  // A control moved here: set the trait (synced to the kernel where there is one).
  spec.controls.forEach((c, i) => {
    const input = inputs[i];
    const onInput = () => {
      const v = c.kind === "toggle" ? (input.checked ? 1 : 0) : Number(input.value);
      model.set(`c${i}`, v);
      model.save_changes();
    };
    const event = c.kind === "slider" ? "input" : "change";
    input.addEventListener(event, onInput);
    listeners.push(() => input.removeEventListener(event, onInput));
  });
  // A trait changed, here or from Python: redraw, then say what changed.
  const handlers = spec.controls.map((_, i) => {
    const h = () => { draw(); announce(i); };
    model.on(`change:c${i}`, h);
    return [`change:c${i}`, h];
  });

  // The page's build-time picture of this figure steps aside.
  const slot = host.closest ? host.closest(".ll-slot") : null;
  if (slot) slot.classList.add("ll-live");

  return () => {
    for (const [name, h] of handlers) model.off(name, h);
    for (const off of listeners) off();
    clearTimeout(announceTimer);
    root.remove();
  };
}

export default { render };
