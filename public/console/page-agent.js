// One agent: its record, components and units with their health, upgrade details, tags, pending
// actions, uploaded diagnostics (downloaded with the credential in a header), and the operations.
import { api, request } from "./api.js";
import { ago, badge, bytes, el, field, replace, table, when } from "./dom.js";
import { onCountsChange, refresh } from "./live.js";

export function render(main, agentId, { tell }) {
  const base = `/api/fleet/agents/${encodeURIComponent(agentId)}`;
  const heading = el("h1", {}, "Agent");
  const body = el("div", { "aria-busy": "true" }, "Loading…");

  async function load() {
    try {
      const [{ item: a }, uploads, policies] = await Promise.all([
        api("GET", base),
        api("GET", `${base}/uploads`).catch(() => ({ items: [] })),
        api("GET", "/api/fleet/agent_policies?perPage=100"),
      ]);
      replace(heading, "Agent ", el("span", { class: "hostname" }, a.hostname ?? a.id));
      body.setAttribute("aria-busy", "false");
      replace(body, details(a), history(a), components(a), opampOf(a), upgrade(a), actionsOf(a), uploadsOf(uploads.items), operations(a, policies.items));
    } catch (err) {
      replace(body, `Could not load agent ${agentId}: ${err.message}`);
    }
  }

  function details(a) {
    const tags = el("input", { name: "tags", value: a.tags.join(", "), spellcheck: "false" });
    return el(
      "section",
      { class: "card" },
      el(
        "dl",
        { class: "facts" },
        fact("Status", badge(a.status)),
        fact("Id", el("code", {}, a.id)),
        fact("Hostname", el("span", { class: "hostname" }, a.hostname ?? "—")),
        fact("Type", a.type === "OPAMP" ? "OpenTelemetry collector (OpAMP)" : `Elastic Agent (${a.type})`),
        fact("Policy", el("a", { href: `#/policies/${encodeURIComponent(a.policy_id)}` }, a.policy_id)),
        fact("Revision", `${a.policy_revision} (latest ${a.latest_policy_revision})`),
        fact("Version", a.agent.version ?? "—"),
        fact("Enrolled", when(a.enrolled_at)),
        fact("Last check-in", `${ago(a.last_checkin)} (${a.last_checkin_status ?? "no status"})`),
        fact("Message", a.last_checkin_message ?? "—"),
        a.unhealthy_reason?.length ? fact("Unhealthy", a.unhealthy_reason.join(", ")) : null,
        a.unenrolled_at ? fact("Unenrolled", when(a.unenrolled_at)) : null,
        a.audit_unenrolled_reason ? fact("Uninstall reason", a.audit_unenrolled_reason) : null,
      ),
      el(
        "form",
        {
          class: "row",
          onsubmit: async (event) => {
            event.preventDefault();
            try {
              await api("PUT", base, { tags: tags.value.split(",").map((t) => t.trim()).filter(Boolean) });
              tell("Tags saved.", "ok");
              await load();
            } catch (err) {
              tell(`Could not save tags: ${err.message}`);
            }
          },
        },
        field("Tags (comma-separated)", tags),
        el("button", { type: "submit" }, "Save tags"),
      ),
    );
  }

  function history(a) {
    return el(
      "section",
      { class: "card" },
      el("h2", {}, "Status history"),
      el("p", { class: "hint" }, "Changes of the status the agent reports, newest first (the latest 20)."),
      a.status_history.length
        ? el("ol", { class: "history" }, a.status_history.map((h) => el("li", {}, badge(h.status), ` ${when(h.at)}`, h.message ? ` — ${h.message}` : "")))
        : el("p", {}, "No status reported yet."),
    );
  }

  function components(a) {
    const rows = [];
    for (const component of a.components ?? []) {
      rows.push(
        el(
          "tr",
          { class: "component" },
          el("td", {}, String(component.id ?? "")),
          el("td", {}, String(component.type ?? "")),
          el("td", {}, badge(String(component.status ?? "").toLowerCase())),
          el("td", {}, String(component.message ?? "")),
        ),
      );
      for (const unit of Array.isArray(component.units) ? component.units : []) {
        rows.push(
          el(
            "tr",
            { class: "unit" },
            el("td", {}, `↳ ${unit.id ?? ""}`),
            el("td", {}, String(unit.type ?? "")),
            el("td", {}, badge(String(unit.status ?? "").toLowerCase())),
            el("td", {}, String(unit.message ?? "")),
          ),
        );
      }
    }
    return el("section", { class: "card" }, el("h2", {}, "Components and units"), table("Components and their units", ["Id", "Type", "Health", "Message"], rows));
  }

  /** A collector's OpAMP state: health, the config it reported, and its effective config (redacted by the server). */
  function opampOf(a) {
    const o = a.opamp;
    if (!o) return null;
    const status = o.remote_config_status;
    return el(
      "section",
      { class: "card" },
      el("h2", {}, "OpenTelemetry collector"),
      el(
        "dl",
        { class: "facts" },
        fact("Health", o.health ? `${o.health.healthy ? "healthy" : "unhealthy"} (${o.health.status || "no status"})${o.health.last_error ? `: ${o.health.last_error}` : ""}` : "not reported"),
        fact("Remote config", status ? `${status.status} (${status.hash})${status.error_message ? `: ${status.error_message}` : ""}` : "not reported"),
        fact("Own credential in use", o.credential_used ? "yes" : "no"),
        o.restart_requested_at ? fact("Restart requested", when(o.restart_requested_at)) : null,
      ),
      Object.entries(o.effective_config ?? {}).map(([name, file]) => el("details", {}, el("summary", {}, `Effective config: ${name} (${file.content_type || "no content type"})`), el("pre", {}, file.body))),
    );
  }

  function upgrade(a) {
    const d = a.upgrade_details;
    return el(
      "section",
      { class: "card" },
      el("h2", {}, "Upgrade"),
      d
        ? el("dl", { class: "facts" }, Object.entries(d).map(([k, v]) => fact(k, typeof v === "object" ? JSON.stringify(v) : String(v))))
        : el("p", {}, a.upgraded_at ? `Last upgraded ${when(a.upgraded_at)}.` : "No upgrade in progress."),
    );
  }

  function actionsOf(a) {
    return el(
      "section",
      { class: "card" },
      el("h2", {}, "Actions"),
      table(
        "Actions waiting for this agent",
        ["Action", "Type", "Created", "Expires"],
        a.pending_actions.map((x) => el("tr", {}, el("td", {}, el("code", {}, x.id)), el("td", {}, x.type), el("td", {}, when(x.created_at)), el("td", {}, when(x.expiration)))),
      ),
      table(
        "Its latest action results",
        ["Action", "Type", "Answered", "Result"],
        a.latest_action_results.map((r) =>
          el(
            "tr",
            {},
            el("td", {}, el("code", {}, r.action_id)),
            el("td", {}, r.type),
            el("td", {}, when(r.created_at)),
            el("td", {}, r.error ? el("span", { class: "error" }, `failed: ${r.error}`) : "done"),
          ),
        ),
      ),
      el("p", {}, `${a.action_results} results in all. Progress of every action: `, el("a", { href: "#/actions" }, "the actions page"), "."),
    );
  }

  function uploadsOf(items) {
    return el(
      "section",
      { class: "card" },
      el("h2", {}, "Uploaded diagnostics"),
      table(
        "Files this agent uploaded",
        ["File", "Uploaded", "Size", "Status", ""],
        items.map((u) =>
          el(
            "tr",
            {},
            el("td", {}, u.name),
            el("td", {}, when(u.createTime)),
            el("td", {}, bytes(u.size)),
            el("td", {}, u.status),
            el("td", {}, u.status === "READY" ? el("button", { type: "button", onclick: () => download(u) }, "Download") : "—"),
          ),
        ),
      ),
    );
  }

  async function download(upload) {
    try {
      const response = await request("GET", upload.filePath);
      const url = URL.createObjectURL(await response.blob());
      const link = el("a", { href: url, download: upload.name });
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (err) {
      tell(`Download failed: ${err.message}`);
    }
  }

  function operations(a, policies) {
    const target = el("select", { name: "policy_id" }, policies.filter((p) => p.id !== a.policy_id).map((p) => el("option", { value: p.id }, p.name)));
    const version = el("input", { name: "version", placeholder: "9.6.1", pattern: "\\d+\\.\\d+\\.\\d+(-SNAPSHOT)?" });
    const revoke = el("input", { type: "checkbox", name: "revoke" });
    const op = (label, path, body, confirmText) =>
      el(
        "button",
        {
          type: "button",
          disabled: !a.active,
          onclick: async () => {
            const payload = body();
            if (!payload || (confirmText && !confirm(confirmText))) return;
            try {
              await api("POST", `${base}/${path}`, payload);
              tell(`${label}: sent.`, "ok");
              refresh();
              await load();
            } catch (err) {
              tell(`${label} failed: ${err.message}`);
            }
          },
        },
        label,
      );
    return el(
      "section",
      { class: "card" },
      el("h2", {}, "Operations"),
      el("div", { class: "row" }, field("Move to policy", target), op("Reassign", "reassign", () => (target.value ? { policy_id: target.value } : null))),
      el("div", { class: "row" }, field("Upgrade to version", version), op("Upgrade", "upgrade", () => (version.reportValidity() && version.value ? { version: version.value } : null))),
      el(
        "div",
        { class: "row" },
        op("Request diagnostics", "request_diagnostics", () => ({})),
        el("label", { class: "check" }, revoke, " revoke at once"),
        op("Unenroll", "unenroll", () => ({ revoke: revoke.checked }), "Unenroll this agent?"),
      ),
    );
  }

  replace(main, heading, body);
  void load();
  return onCountsChange(() => void load());
}

function fact(label, value) {
  return el("div", {}, el("dt", {}, label), el("dd", {}, value));
}
