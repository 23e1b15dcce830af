// Loss Functions, Live: the plot widget's front end (an anywidget ES module).
// It draws precomputed curves as SVG and redraws when a linked control moves, so it
// needs no kernel: the same code runs in JupyterLab and on the static site.

const NAN_CODE = 65535;
const POS_INF_CODE = 65534;
const NEG_INF_CODE = 65533;
const FINITE_MAX = 65532;
const SVG_NS = "http://www.w3.org/2000/svg";
const VIEW_W = 360;
const VIEW_H = 250;
const MARGIN = { left: 52, right: 12, top: 10, bottom: 40 };

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

function niceTicks(lo, hi, count) {
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

function el(name, attrs, parent) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

let uid = 0;

function render({ model, el: root }) {
  const spec = model.get("spec");
  const codes = decodeCodes(model.get("data"));
  const controls = spec.controls;
  const nControls = controls.length;
  const id = `ll${++uid}`;

  const wrap = document.createElement("div");
  wrap.className = "losslab-plot";
  wrap.setAttribute("role", "group");
  wrap.setAttribute("aria-label", spec.title || "loss plot");
  root.appendChild(wrap);
  const live = document.createElement("p");
  live.className = "ll-readout";
  live.setAttribute("aria-live", "polite");
  const panelsBox = document.createElement("div");
  panelsBox.className = "ll-panels";
  wrap.appendChild(panelsBox);
  wrap.appendChild(live);

  const panels = spec.panels.map((panel, p) => {
    const fig = document.createElement("figure");
    fig.className = "ll-figure";
    panelsBox.appendChild(fig);
    const svg = el("svg", {
      viewBox: `0 0 ${VIEW_W} ${VIEW_H}`,
      class: "ll-panel",
      role: "img",
      "aria-label": `${panel.title}: ${panel.ylabel} against ${panel.xlabel}`,
    }, fig);
    const [x0, x1] = panel.xlim;
    const [y0, y1] = panel.ylim;
    const px0 = MARGIN.left, px1 = VIEW_W - MARGIN.right;
    const py0 = VIEW_H - MARGIN.bottom, py1 = MARGIN.top;
    svg.dataset.xdomain = `${x0},${x1}`;
    svg.dataset.ydomain = `${y0},${y1}`;
    svg.dataset.xrange = `${px0},${px1}`;
    svg.dataset.yrange = `${py0},${py1}`;
    const sx = (x) => px0 + ((x - x0) / (x1 - x0)) * (px1 - px0);
    const sy = (y) => py0 + ((y - y0) / (y1 - y0)) * (py1 - py0);
    const clipId = `${id}-clip-${p}`;
    const clip = el("clipPath", { id: clipId }, el("defs", {}, svg));
    el("rect", { x: px0, y: py1, width: px1 - px0, height: py0 - py1 }, clip);
    const axes = el("g", { class: "ll-axes" }, svg);
    for (const t of niceTicks(x0, x1, 6)) {
      const x = sx(t).toFixed(1);
      el("line", { x1: x, x2: x, y1: py0, y2: py1, class: "ll-grid" }, axes);
      el("text", { x, y: py0 + 14, "text-anchor": "middle", class: "ll-tick" }, axes).textContent = fmt(t);
    }
    for (const t of niceTicks(y0, y1, 5)) {
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
    fig.appendChild(cap);
    return { panel, series, sx, sy };
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

  function frameOf(s, idx) {
    let f = 0;
    for (const d of s.dims) f = f * controls[d].n + idx[d];
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

  function draw() {
    const idx = indices();
    wrap.dataset.frame = idx.join(",");
    wrap.dataset.values = JSON.stringify(Object.fromEntries(controls.map((c, i) => [c.label, c.labels[idx[i]]])));
    for (const { series, sx, sy } of panels) {
      for (const { s, node } of series) {
        const frame = frameOf(s, idx);
        const xs = columnValues(s.x, s, frame);
        const ys = columnValues(s.y, s, frame);
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
    }
    live.textContent = controls.length
      ? controls.map((c, i) => `${c.label}: ${c.labels[idx[i]]}`).join("; ")
      : "";
  }

  draw();
  const handlers = [];
  for (let i = 0; i < nControls; i++) {
    const h = () => draw();
    model.on(`change:c${i}`, h);
    handlers.push([`change:c${i}`, h]);
  }
  return () => {
    for (const [name, h] of handlers) model.off(name, h);
  };
}

export default { render };
