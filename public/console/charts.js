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
 * A staged rollout over time: one band per stage from its start to its end (or now), the stage's
 * members split into acked, failed and pending as a stacked column, the stage's percent on top.
 * stages: [{ label, start, end, members, acked, failed }] with times in ms (end null: still open).
 */
export function stageChart(title, stages, now) {
  const width = 640;
  const height = 220;
  const top = 24;
  const bottom = 36;
  const left = 8;
  const plot = height - top - bottom;
  const t0 = Math.min(...stages.map((s) => s.start));
  const t1 = Math.max(now, ...stages.map((s) => s.end ?? now));
  const span = Math.max(1, t1 - t0);
  const x = (t) => left + ((t - t0) / span) * (width - 2 * left);
  const summary = stages.map((s) => `${s.label}: ${s.acked} acked, ${s.failed} failed, ${pending(s)} pending of ${s.members}`).join("; ");
  // A stage's start time is printed unless it would overlap the previous one (the table has them all).
  let lastLabelEnd = -Infinity;
  return el(
    "figure",
    { class: "chart wide" },
    svg(
      "svg",
      { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `${title}. ${summary}` },
      stages.map((stage) => {
        const x0 = x(stage.start);
        const w = Math.max(24, x(stage.end ?? now) - x0 - 2);
        const showTime = x0 >= lastLabelEnd;
        if (showTime) lastLabelEnd = x0 + 72;
        const total = Math.max(1, stage.members);
        const parts = [
          ["acked", stage.acked],
          ["failed", stage.failed],
          ["pending", pending(stage)],
        ];
        let y = top + plot;
        return svg(
          "g",
          {},
          parts.map(([name, value]) => {
            const h = stage.members === 0 ? 0 : (value / total) * plot;
            y -= h;
            return svg("rect", { x: x0, y, width: w, height: h, class: `seg seg-${name}` });
          }),
          stage.members === 0 ? svg("rect", { x: x0, y: top, width: w, height: plot, class: "seg seg-empty" }) : null,
          svg("text", { x: x0 + 2, y: top - 8, class: "chart-label" }, stage.label),
          showTime ? svg("text", { x: x0 + 2, y: height - bottom + 16, class: "chart-value" }, clock(stage.start)) : null,
        );
      }),
      svg("line", { x1: left, x2: width - left, y1: top + plot, y2: top + plot, class: "axis" }),
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
