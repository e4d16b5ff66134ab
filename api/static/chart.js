// Inline SVG charts without a library: a stacked bar chart over time buckets and
// horizontal count bars. Both scale with their container (viewBox + CSS width 100%).

import { h, svg } from "./dom.js";
import { formatShort } from "./format.js";

const W = 600;
const H = 180;
const PAD = { top: 10, right: 8, bottom: 4, left: 34 };

/**
 * Stacked bars per bucket: failed (bottom, red), completed, then the rest (running,
 * cancelled, lost). `buckets`: [{start, total, completed, failed}].
 */
export function bucketChart(buckets, { label = "Jobs over time" } = {}) {
  const max = Math.max(1, ...buckets.map((b) => b.total));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const step = plotW / Math.max(1, buckets.length);
  const barW = Math.max(1, step * 0.8);
  const y = (n) => PAD.top + plotH - (n / max) * plotH;
  const bars = [];
  buckets.forEach((b, i) => {
    const x = PAD.left + i * step + (step - barW) / 2;
    const other = b.total - b.completed - b.failed;
    let base = 0;
    for (const [cls, n] of [["failed", b.failed], ["completed", b.completed], ["other", other]]) {
      if (n <= 0) continue;
      bars.push(svg("rect", {
        class: `bar bar-${cls}`, x: x.toFixed(2), width: barW.toFixed(2),
        y: y(base + n).toFixed(2), height: (y(base) - y(base + n)).toFixed(2),
      }, svg("title", {}, `${formatShort(b.start)}: ${n} ${cls}`)));
      base += n;
    }
  });
  const failed = buckets.reduce((n, b) => n + b.failed, 0);
  const chart = svg("svg", {
    class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": `${label}: ${buckets.length} buckets, ${failed} failed jobs in all`,
    preserveAspectRatio: "none",
  },
    svg("line", { class: "axis-line", x1: PAD.left, x2: W - PAD.right, y1: y(0), y2: y(0) }),
    svg("line", { class: "grid-line", x1: PAD.left, x2: W - PAD.right, y1: y(max), y2: y(max) }),
    bars,
  );
  // Axis text is HTML: the SVG stretches to its box, which would distort SVG text.
  const labels = [];
  const every = Math.max(1, Math.ceil(buckets.length / 4));
  buckets.forEach((b, i) => {
    if (i % every !== 0) return;
    labels.push(h("span", { style: { left: `${((PAD.left + i * step) / W) * 100}%` } }, formatShort(b.start)));
  });
  return h("figure", { class: "chart-box" },
    h("span", { class: "y-max", style: { top: `${(y(max) / H) * 100}%` } }, String(max)),
    h("span", { class: "y-zero", style: { top: `${(y(0) / H) * 100}%` } }, "0"),
    chart,
    h("div", { class: "x-labels", "aria-hidden": "true" }, labels),
  );
}

/** Horizontal bars: [[label, count, className?], ...] with the count as text. */
export function countBars(entries, { emptyText = "Nothing yet.", linkFor } = {}) {
  if (!entries.length) return h("p", { class: "muted" }, emptyText);
  const max = Math.max(1, ...entries.map(([, n]) => n));
  return h("ul", { class: "count-bars" },
    entries.map(([label, n, cls]) => h("li", { dataset: { key: label } },
      h("span", { class: "count-label" }, linkFor ? h("a", { href: linkFor(label) }, label) : label),
      h("span", { class: "count-track" }, h("span", { class: `count-fill ${cls || ""}`, style: { width: `${(n / max) * 100}%` } })),
      h("span", { class: "count-value" }, n.toLocaleString()),
    )),
  );
}
