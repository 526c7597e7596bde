// Builds the dashboard's chart assets into the Python package (src/tuxai/ui/static/dist/), from the
// npm packages package-lock.json pins. Run by `make ui-assets` before a wheel is built or the browser
// tier runs; the output is git-ignored (never a vendored copy in the tree) and shipped in the wheel.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const uplot = join(here, "node_modules", "uplot");
const out = join(here, "..", "src", "tuxai", "ui", "static", "dist");
const version = JSON.parse(readFileSync(join(uplot, "package.json"), "utf8")).version;

mkdirSync(out, { recursive: true });
copyFileSync(join(uplot, "dist", "uPlot.iife.min.js"), join(out, "uplot.js"));
copyFileSync(join(uplot, "dist", "uPlot.min.css"), join(out, "uplot.css"));
copyFileSync(join(uplot, "LICENSE"), join(out, "uplot.LICENSE"));
writeFileSync(join(out, "BUILT"), `uplot ${version}\n`);
console.log(`built ${out}: uplot ${version}`);
