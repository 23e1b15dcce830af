// Build-time picture of each figure, drawn by the live plot's own code (lossplot.js).
// Reads {"items": [{"state": <widget state>, "uid": "..."}, ...]} as JSON on stdin and
// writes the list of markup strings as JSON on stdout. Run by losslab.engine.first_paint.
import { readFileSync } from "node:fs";

const source = readFileSync(new URL("./lossplot.js", import.meta.url), "utf8");
// Imported from its text, so Node reads it as an ES module whatever the folder's settings.
const plot = await import("data:text/javascript;base64," + Buffer.from(source).toString("base64"));

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const request = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const out = [];
for (const [i, { state, uid }] of request.items.entries()) {
  try {
    out.push(plot.staticMarkup(state, uid));
  } catch (err) {
    // The message only: a stack into a data: URL says nothing useful.
    process.stderr.write(`figure ${i} (${uid}): ${err.message}\n`);
    process.exit(1);
  }
}
process.stdout.write(JSON.stringify(out));
