// Overview: agents by status (Kibana's statuses), by version and by policy; check-ins per minute;
// the Elasticsearch mirror; the server's version. Pushed by the live channel as the hubs report changes.
import { barChart, sparkline } from "./charts.js";
import { el, replace, table } from "./dom.js";
import { onOverview } from "./live.js";

export const STATUSES = ["online", "offline", "degraded", "error", "updating", "enrolling", "unenrolling", "unenrolled"];

export function render(main) {
  const body = el("div", { class: "overview", "aria-busy": "true" }, el("p", {}, "Waiting for the first update…"));
  replace(main, el("h1", {}, "Overview"), body);
  return onOverview((overview) => {
    body.setAttribute("aria-busy", "false");
    replace(body, ...view(overview));
  });
}

function view(o) {
  const mirror = o.mirror;
  return [
    el(
      "dl",
      { class: "tiles" },
      tile("Active agents", o.results.active, "active"),
      tile(
        "Check-ins per minute",
        o.checkins_last_minute,
        "checkins",
        el("small", {}, "this minute so far: ", el("span", { "data-checkins-now": "" }, String(o.checkins_this_minute))),
        sparkline("Check-ins per minute, the last 30 minutes", o.checkins_per_minute.map((m) => m.count)),
      ),
      tile("Policies", o.by_policy.length + o.policies_omitted, "policies"),
      tile("Server version", o.server.version, "version", el("small", {}, `build ${o.server.build_hash}`)),
      tile(
        "Elasticsearch mirror",
        mirror.mode === "standalone" ? "standalone" : mirror.failing_objects > 0 ? "failing" : "healthy",
        "mirror",
        mirror.mode === "standalone"
          ? el("small", {}, "no mirror configured")
          : el("small", {}, `${mirror.pending} pending, lag ${mirror.lag_seconds} s`, mirror.last_error ? ` · last error: ${mirror.last_error}` : ""),
      ),
    ),
    el(
      "section",
      { class: "grid" },
      el(
        "div",
        { class: "card" },
        el("h2", {}, "Agents by status"),
        barChart(
          "Agents by status",
          STATUSES.map((status) => ({ label: status, value: o.results[status], className: `status-${status}` })),
        ),
        el(
          "dl",
          { class: "counts", "aria-label": "Agents by status" },
          STATUSES.map((status) => [
            el("dt", {}, el("a", { href: `#/agents?status=${status}` }, status)),
            el("dd", { "data-status": status }, String(o.results[status])),
          ]),
        ),
      ),
      el(
        "div",
        { class: "card" },
        el("h2", {}, "Agents by version"),
        barChart(
          "Active agents by version",
          o.by_version.slice(0, 12).map((v) => ({ label: v.version, value: v.agents })),
        ),
      ),
    ),
    el(
      "section",
      { class: "card" },
      el("h2", {}, "Agents by policy"),
      table(
        "Agents by policy",
        ["Policy", "Revision", "Active", "Online", "Updating", "Error", "Degraded", "Offline", "Check-ins (last minute)"],
        o.by_policy.map((p) =>
          el(
            "tr",
            {},
            el("td", {}, el("a", { href: `#/policies/${encodeURIComponent(p.policy_id)}` }, p.name)),
            el("td", {}, String(p.revision)),
            el("td", {}, el("a", { href: `#/agents?policy_id=${encodeURIComponent(p.policy_id)}` }, String(p.active))),
            el("td", {}, String(p.online)),
            el("td", {}, String(p.updating)),
            el("td", {}, String(p.error)),
            el("td", {}, String(p.degraded)),
            el("td", {}, String(p.offline)),
            el("td", {}, String(p.checkins_last_minute)),
          ),
        ),
      ),
      o.policies_omitted > 0 ? el("p", {}, `${o.policies_omitted} more policies are not shown.`) : null,
    ),
  ];
}

function tile(label, value, name, ...extras) {
  return el("div", { class: "tile" }, el("dt", {}, label), el("dd", { "data-tile": name }, String(value)), extras.map((extra) => el("dd", {}, extra)));
}
