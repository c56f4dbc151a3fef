// Small SVG charts drawn here (no library): a bar chart over time buckets (the series come
// from stats.js).

import { h, svg } from "./dom.js";

const W = 600;
const H = 160;
const PAD = 24;

/** Bars for ``points`` ([{t: Date, v: number}]), with the maximum and the time span labelled. */
export function barChart(title, points, unit) {
  const max = Math.max(1, ...points.map((p) => p.v));
  const width = (W - PAD) / Math.max(1, points.length);
  const chart = svg("svg", {
    viewBox: `0 0 ${W} ${H}`,
    class: "chart",
    role: "img",
    "aria-label": title,
  });
  chart.append(
    svg("line", { x1: PAD, y1: H - PAD, x2: W, y2: H - PAD, class: "axis" }),
    svg("text", { x: PAD, y: 12, class: "label", text: `max ${max} ${unit}` }),
  );
  points.forEach((p, i) => {
    const height = ((H - 2 * PAD) * p.v) / max;
    const bar = svg("rect", {
      x: PAD + i * width,
      y: H - PAD - height,
      width: Math.max(1, width - 1),
      height,
      class: "bar",
    });
    bar.append(svg("title", { text: `${p.t.toLocaleTimeString([], { hour12: false })}: ${p.v} ${unit}` }));
    chart.append(bar);
  });
  if (points.length) {
    const fmt = (d) => d.toLocaleString([], { hour12: false });
    chart.append(
      svg("text", { x: PAD, y: H - 6, class: "label", text: fmt(points[0].t) }),
      svg("text", { x: W, y: H - 6, class: "label end", text: fmt(points[points.length - 1].t) }),
    );
  }
  return h("figure", { class: "chart-box" }, h("figcaption", { text: title }), chart);
}
