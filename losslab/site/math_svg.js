// Typesets TeX to SVG at build time with MathJax 3 (npm `mathjax`, the package the site
// already pins), so pages carry their formulas drawn and load no MathJax in the browser.
//
// Usage: node math_svg.js NODE_MODULES
// Protocol, one JSON object a line: the first line written is {"css": ...}, MathJax's own
// stylesheet for its SVG output; then each request {"tex": "...", "display": bool} read on
// stdin is answered by {"html": "<mjx-container ...>"} or {"error": "..."}.
// Each formula carries its MathML (assistive-mml) for screen readers, and no tab stop.
"use strict";
const path = require("path");
const readline = require("readline");

const nodeModules = process.argv[2];
if (!nodeModules) {
  process.stderr.write("usage: node math_svg.js NODE_MODULES\n");
  process.exit(2);
}

const write = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

require(path.join(nodeModules, "mathjax"))
  .init({
    loader: { load: ["input/tex", "output/svg", "a11y/assistive-mml"] },
    tex: {
      // An unknown macro is an error too (noundefined would draw it in red instead).
      packages: { "[+]": ["ams"], "[-]": ["noundefined"] },
      // A TeX error fails the request instead of drawing a red box into the page.
      formatError: (jax, err) => {
        throw err;
      },
    },
    svg: { fontCache: "local" },
    options: { enableAssistiveMml: true },
    startup: { typeset: false },
  })
  .then((MathJax) => {
    const adaptor = MathJax.startup.adaptor;
    write({ css: adaptor.textContent(MathJax.svgStylesheet()) });
    const lines = readline.createInterface({ input: process.stdin, terminal: false });
    lines.on("line", (line) => {
      let request;
      try {
        request = JSON.parse(line);
      } catch (err) {
        write({ error: `expected one JSON request a line, got ${line.slice(0, 80)}` });
        return;
      }
      try {
        const node = MathJax.tex2svg(String(request.tex), { display: Boolean(request.display) });
        write({ html: adaptor.outerHTML(node) });
      } catch (err) {
        write({ error: String((err && err.message) || err) });
      }
    });
    lines.on("close", () => process.exit(0));
  })
  .catch((err) => {
    process.stderr.write(`MathJax failed to start: ${err}\n`);
    process.exit(1);
  });
