// Charts drawn with uPlot (vendored from npm): listeners over time, and bars for rankings and
// markets. Each chart is an image to assistive technology with a one-line summary; the numbers
// themselves are always in a list or table beside it.

import uPlot from "../vendor/uPlot.esm.js";
import { h } from "./dom.js";

const HEIGHT = 220;

function cssColor(name, fallback) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

function axis() {
  const grid = cssColor("--line", "#2e2e3d");
  return { stroke: cssColor("--text-2", "#aaa"), grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
}

/** A chart in its box, sized to the box and resized with it. */
class Chart {
  constructor(summary) {
    this.element = h("figure", { class: "chart", role: "img", "aria-label": summary });
    this.plot = null;
    this.resize = new ResizeObserver(() => this.plot?.setSize(this.#size()));
    this.resize.observe(this.element);
  }

  #size() {
    return { width: Math.max(240, this.element.clientWidth), height: HEIGHT };
  }

  draw(options, data, summary) {
    this.element.setAttribute("aria-label", summary);
    this.plot?.destroy();
    this.plot = new uPlot({ ...this.#size(), ...options }, data, this.element);
  }

  destroy() {
    this.resize.disconnect();
    this.plot?.destroy();
  }
}

/** Listeners over time: `samples` are {at (ms), listeners}. */
export class ListenersChart extends Chart {
  constructor() {
    super("Listeners over time: no data yet");
  }

  show(samples) {
    const times = samples.map((s) => s.at / 1000);
    const counts = samples.map((s) => s.listeners);
    const peak = Math.max(0, ...counts);
    const accent = cssColor("--accent", "#7c5cff");
    this.draw(
      {
        legend: { show: false },
        scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
        axes: [axis(), { ...axis(), size: 50 }],
        series: [{}, { label: "Listeners", stroke: accent, width: 2, fill: `${accent}33` }],
      },
      [times, counts],
      `Listeners over time: ${samples.length} samples, peak ${peak}`,
    );
  }
}

/** Bars with a label each: `rows` are {label, value}. */
export class BarChart extends Chart {
  constructor(what) {
    super(`${what}: no data yet`);
    this.what = what;
  }

  show(rows) {
    const labels = rows.map((r) => r.label);
    const accent = cssColor("--accent", "#7c5cff");
    this.draw(
      {
        legend: { show: false },
        scales: { x: { time: false, range: [-0.5, Math.max(0.5, rows.length - 0.5)] }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
        axes: [
          { ...axis(), splits: () => labels.map((_l, i) => i), values: (_u, splits) => splits.map((i) => labels[i] ?? "") },
          { ...axis(), size: 60 },
        ],
        series: [{}, { label: this.what, fill: accent, stroke: accent, paths: uPlot.paths.bars({ size: [0.7, 60] }), points: { show: false } }],
      },
      [rows.map((_r, i) => i), rows.map((r) => r.value)],
      `${this.what}: ${rows.map((r) => `${r.label} ${r.value}`).join(", ") || "none"}`,
    );
  }
}
