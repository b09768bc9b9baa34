// Charts as plain SVG built with DOM calls (no library, no markup strings). Every chart is also
// given a text summary (aria-label) and the pages show the same numbers in a table or list.
import { el, svg } from "./dom.js";

/** Horizontal bars: rows [{ label, value, className? }]; the value is printed after each bar. */
export function barChart(title, rows) {
  const rowHeight = 26;
  const labelWidth = 130;
  const width = 520;
  const barSpace = width - labelWidth - 70;
  const max = Math.max(1, ...rows.map((r) => r.value));
  const height = Math.max(rowHeight, rows.length * rowHeight);
  const summary = rows.map((r) => `${r.label}: ${r.value}`).join(", ");
  return el(
    "figure",
    { class: "chart" },
    svg(
      "svg",
      { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `${title}. ${summary || "no data"}`, preserveAspectRatio: "xMinYMin meet" },
      rows.map((row, i) => {
        const y = i * rowHeight;
        const w = row.value > 0 ? Math.max(2, (row.value / max) * barSpace) : 0;
        return svg(
          "g",
          {},
          svg("text", { x: labelWidth - 8, y: y + 17, "text-anchor": "end", class: "chart-label" }, truncate(row.label, 18)),
          svg("rect", { x: labelWidth, y: y + 5, width: w, height: rowHeight - 10, rx: 3, class: `bar ${row.className ?? ""}` }),
          svg("text", { x: labelWidth + w + 6, y: y + 17, class: "chart-value" }, String(row.value)),
        );
      }),
    ),
    el("figcaption", {}, title),
  );
}

/** A small line of the last samples (e.g. check-ins per minute as updates arrive). */
export function sparkline(title, values) {
  const width = 240;
  const height = 48;
  const max = Math.max(1, ...values);
  const step = values.length > 1 ? width / (values.length - 1) : width;
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(height - 4 - (v / max) * (height - 8)).toFixed(1)}`).join(" ");
  return svg(
    "svg",
    { viewBox: `0 0 ${width} ${height}`, class: "sparkline", role: "img", "aria-label": `${title}: ${values.join(", ") || "no samples yet"}` },
    values.length > 1 ? svg("polyline", { points, class: "spark" }) : null,
  );
}

/**
 * A staged rollout over time: for each stage, its acked, failed and pending agents as lines from its
 * samples (the counts hold between samples, so the lines are steps), stages separated by a rule
 * with their percent on top. samples: [{ stage, at (ms), members, acked, failed }], oldest first;
 * labels: the stages' labels by index.
 */
export function rolloutChart(title, samples, labels) {
  const width = 640;
  const height = 240;
  const top = 24;
  const bottom = 30;
  const left = 40;
  const right = 8;
  const plot = height - top - bottom;
  const t0 = Math.min(...samples.map((s) => s.at));
  const t1 = Math.max(...samples.map((s) => s.at));
  const span = Math.max(1, t1 - t0);
  const max = Math.max(1, ...samples.map((s) => s.members));
  const x = (t) => left + ((t - t0) / span) * (width - left - right);
  const y = (n) => top + plot - (n / max) * plot;
  const stages = [...new Set(samples.map((s) => s.stage))];
  const series = [
    ["acked", (s) => s.acked],
    ["failed", (s) => s.failed],
    ["pending", (s) => pending(s)],
  ];
  const last = samples[samples.length - 1];
  const summary = stages
    .map((stage) => {
      const end = samples.filter((s) => s.stage === stage).pop();
      return `${labels[stage] ?? `stage ${stage + 1}`}: ${end.acked} acked, ${end.failed} failed, ${pending(end)} pending of ${end.members}`;
    })
    .join("; ");
  return el(
    "figure",
    { class: "chart wide" },
    svg(
      "svg",
      { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `${title}. ${summary}` },
      svg("line", { x1: left, x2: width - right, y1: top + plot, y2: top + plot, class: "axis" }),
      svg("line", { x1: left, x2: left, y1: top, y2: top + plot, class: "axis" }),
      svg("text", { x: left - 4, y: top + 4, "text-anchor": "end", class: "chart-value" }, String(max)),
      svg("text", { x: left - 4, y: top + plot, "text-anchor": "end", class: "chart-value" }, "0"),
      svg("text", { x: left, y: height - 8, class: "chart-value" }, clock(t0)),
      svg("text", { x: width - right, y: height - 8, "text-anchor": "end", class: "chart-value" }, clock(last.at)),
      stages.map((stage) => {
        const points = samples.filter((s) => s.stage === stage);
        const x0 = x(points[0].at);
        return svg(
          "g",
          { "data-stage": String(stage) },
          svg("line", { x1: x0, x2: x0, y1: top - 4, y2: top + plot, class: "stage-rule" }),
          svg("text", { x: x0 + 3, y: top - 8, class: "chart-label" }, labels[stage] ?? `stage ${stage + 1}`),
          series.map(([name, value]) =>
            svg("polyline", {
              points: steps(points.map((p) => [x(p.at), y(value(p))])),
              class: `series series-${name}`,
              "data-series": name,
              "data-points": String(points.length),
            }),
          ),
        );
      }),
    ),
    el(
      "figcaption",
      {},
      title,
      " ",
      el("span", { class: "key key-acked" }, "acked"),
      " ",
      el("span", { class: "key key-failed" }, "failed"),
      " ",
      el("span", { class: "key key-pending" }, "pending"),
    ),
  );
}

/** Points of a step line: each value holds until the next point's time. */
function steps(points) {
  const out = [];
  points.forEach(([px, py], i) => {
    if (i > 0) out.push([px, points[i - 1][1]]);
    out.push([px, py]);
  });
  if (out.length === 1) out.push([out[0][0] + 2, out[0][1]]);
  return out.map(([px, py]) => `${px.toFixed(1)},${py.toFixed(1)}`).join(" ");
}

function pending(stage) {
  return Math.max(0, stage.members - stage.acked - stage.failed);
}

function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function truncate(text, n) {
  const s = String(text);
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}
