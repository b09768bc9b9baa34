// Agents: the admin API's list with its filters, cursor paging (each page is one indexed query per
// policy however deep, so it stays fast at 100,000 agents), and bulk operations on the selection.
import { api, query } from "./api.js";
import { ago, badge, el, field, replace, select, table } from "./dom.js";
import { refresh } from "./live.js";
import { STATUSES } from "./page-overview.js";

const PER_PAGE = 50;

export function render(main, _param, { tell }) {
  const params = new URLSearchParams(location.hash.split("?")[1] ?? "");
  const state = { cursors: [undefined], page: 0, items: [], selected: new Set(), policyFilter: "" };
  const kuery = el("input", { name: "kuery", type: "search", value: params.get("kuery") ?? "", placeholder: "hostname or id", spellcheck: "false" });
  const status = select("status", [["", "any"], ...STATUSES.map((s) => [s, s])], params.get("status") ?? "");
  const policy = select("policy_id", [["", "any"]], params.get("policy_id") ?? "");
  const tag = el("input", { name: "tag", value: params.get("tag") ?? "" });
  const version = el("input", { name: "version", value: params.get("version") ?? "", placeholder: "9.6.0" });
  const sort = select(
    "sort",
    [
      ["enrolled_at:desc", "newest enrolled"],
      ["last_checkin:desc", "latest check-in"],
      ["hostname:asc", "hostname A–Z"],
      ["version:desc", "version"],
      ["agent_id:asc", "agent id"],
    ],
    params.get("sort") ?? "enrolled_at:desc",
  );
  const results = el("div", { "aria-live": "polite" });
  const pager = el("div", { class: "pager" });
  const bulk = el("div", { class: "card" });

  const filters = el(
    "form",
    {
      class: "card filters",
      role: "search",
      onsubmit: (event) => {
        event.preventDefault();
        const next = new URLSearchParams();
        for (const [name, control] of [["kuery", kuery], ["status", status], ["policy_id", policy], ["tag", tag], ["version", version], ["sort", sort]]) {
          if (control.value) next.set(name, control.value);
        }
        const hash = `#/agents${next.toString() ? `?${next}` : ""}`;
        if (location.hash === hash) void load(0);
        else location.hash = hash;
      },
    },
    el("div", { class: "row" }, field("Search", kuery), field("Status", status), field("Policy", policy), field("Tag", tag), field("Version", version), field("Sort", sort)),
    el("button", { type: "submit" }, "Apply filters"),
  );

  async function load(page) {
    const [sortField, sortOrder] = sort.value.split(":");
    const q = query({
      perPage: PER_PAGE,
      sortField,
      sortOrder,
      kuery: kuery.value,
      status: status.value,
      policy_id: policy.value,
      tag: tag.value,
      version: version.value,
      // Unenrolled agents are listed only on request (Kibana's showInactive).
      showInactive: status.value === "unenrolled" ? "true" : undefined,
      searchAfter: state.cursors[page],
    });
    try {
      results.setAttribute("aria-busy", "true");
      const list = await api("GET", `/api/fleet/agents${q}`);
      state.page = page;
      state.items = list.items;
      state.cursors[page + 1] = list.nextSearchAfter;
      state.policyFilter = policy.value;
      state.selected.clear();
      showList(list);
    } catch (err) {
      tell(`Could not list agents: ${err.message}`);
    } finally {
      results.setAttribute("aria-busy", "false");
    }
  }

  function showList(list) {
    const all = el("input", {
      type: "checkbox",
      "aria-label": "Select every agent on this page",
      onchange: () => {
        for (const box of results.querySelectorAll("input[data-agent]")) {
          box.checked = all.checked;
          if (all.checked) state.selected.add(box.dataset.agent);
          else state.selected.delete(box.dataset.agent);
        }
        showBulk();
      },
    });
    replace(
      results,
      table(
        `Agents ${state.page * PER_PAGE + 1}–${state.page * PER_PAGE + list.items.length} of ${list.total}`,
        [all, "Host", "Status", "Policy", "Version", "Last check-in", "Tags"],
        list.items.map((a) =>
          el(
            "tr",
            { "data-agent-row": a.id },
            el(
              "td",
              {},
              el("input", {
                type: "checkbox",
                "data-agent": a.id,
                "aria-label": `Select ${a.hostname ?? a.id}`,
                onchange: (event) => {
                  if (event.target.checked) state.selected.add(a.id);
                  else state.selected.delete(a.id);
                  showBulk();
                },
              }),
            ),
            el(
              "td",
              {},
              el("a", { href: `#/agents/${encodeURIComponent(a.id)}`, class: "hostname" }, a.hostname ?? a.id),
              a.type === "OPAMP" ? el("span", { class: "tag", title: "OpenTelemetry collector (OpAMP)" }, "collector") : null,
            ),
            el("td", {}, badge(a.status)),
            el("td", {}, el("a", { href: `#/policies/${encodeURIComponent(a.policy_id)}` }, a.policy_id), ` (rev ${a.policy_revision})`),
            el("td", {}, a.agent.version ?? "—"),
            el("td", { title: a.last_checkin ?? "" }, ago(a.last_checkin)),
            el("td", {}, a.tags.map((t) => el("span", { class: "tag" }, t))),
          ),
        ),
        { id: "agents-table" },
      ),
    );
    replace(
      pager,
      el("button", { type: "button", disabled: state.page === 0, onclick: () => load(0) }, "First page"),
      el("button", { type: "button", disabled: state.page === 0, onclick: () => load(state.page - 1) }, "Previous"),
      el("span", {}, `Page ${state.page + 1}`),
      el("button", { type: "button", disabled: !state.cursors[state.page + 1], onclick: () => load(state.page + 1) }, "Next"),
    );
    showBulk();
  }

  function showBulk() {
    const ids = [...state.selected];
    // With a policy filter, an operation can target the whole policy (the server pages through it),
    // however many agents it has: a selection is at most one page. Reassign takes a list only.
    const wholePolicy = el("input", { type: "checkbox", name: "whole_policy", disabled: !state.policyFilter, onchange: () => refreshButtons() });
    const buttons = [];
    const target = el("select", { name: "policy_id" }, [...policy.options].filter((o) => o.value).map((o) => el("option", { value: o.value }, o.textContent)));
    const upgradeVersion = el("input", { name: "version", placeholder: "9.6.1", pattern: "\\d+\\.\\d+\\.\\d+(-SNAPSHOT)?" });
    const tagsAdd = el("input", { name: "tagsToAdd", placeholder: "prod, eu" });
    const tagsRemove = el("input", { name: "tagsToRemove" });
    const revoke = el("input", { type: "checkbox", name: "revoke" });
    const refreshButtons = () => {
      for (const [button, listOnly] of buttons) button.disabled = wholePolicy.checked ? listOnly : ids.length === 0;
    };
    const run = (label, path, body, confirmText, listOnly = false) => {
      const button = el(
        "button",
        {
          type: "button",
          onclick: async () => {
            const targets = wholePolicy.checked ? { policy_id: state.policyFilter } : { agents: ids };
            const what = wholePolicy.checked ? `every agent of policy ${state.policyFilter}` : `${ids.length} agents`;
            if (confirmText && !confirm(`${confirmText} (${what})`)) return;
            try {
              const payload = body();
              if (!payload) return;
              const { actionId } = await api("POST", path, { ...targets, ...payload });
              tell(`${label}: started for ${what} (action ${actionId}). Follow it under Actions.`, "ok");
              refresh();
              await load(state.page);
            } catch (err) {
              tell(`${label} failed: ${err.message}`);
            }
          },
        },
        label,
      );
      buttons.push([button, listOnly]);
      return button;
    };
    const csv = (input) => input.value.split(",").map((t) => t.trim()).filter(Boolean);
    replace(
      bulk,
      el("h2", {}, `Bulk operations (${ids.length} selected)`),
      el(
        "label",
        { class: "check" },
        wholePolicy,
        state.policyFilter
          ? ` instead, every active agent of policy ${state.policyFilter}, whatever the other filters (not for reassign)`
          : " every agent of a policy: filter by policy first",
      ),
      el("div", { class: "row" }, field("Move to policy", target), run("Reassign", "/api/fleet/agents/bulk_reassign", () => ({ policy_id: target.value }), undefined, true)),
      el(
        "div",
        { class: "row" },
        field("Upgrade to version", upgradeVersion),
        run("Upgrade", "/api/fleet/agents/bulk_upgrade", () => (upgradeVersion.reportValidity() && upgradeVersion.value ? { version: upgradeVersion.value } : null)),
      ),
      el(
        "div",
        { class: "row" },
        field("Add tags", tagsAdd),
        field("Remove tags", tagsRemove),
        run("Update tags", "/api/fleet/agents/bulk_update_agent_tags", () => ({ tagsToAdd: csv(tagsAdd), tagsToRemove: csv(tagsRemove) })),
      ),
      el(
        "div",
        { class: "row" },
        run("Request diagnostics", "/api/fleet/agents/bulk_request_diagnostics", () => ({})),
        el("label", { class: "check" }, revoke, " revoke at once"),
        run("Unenroll", "/api/fleet/agents/bulk_unenroll", () => ({ revoke: revoke.checked }), "Unenroll these agents?"),
      ),
    );
    refreshButtons();
  }

  replace(main, el("h1", {}, "Agents"), filters, results, pager, bulk);
  void (async () => {
    try {
      const { items } = await api("GET", "/api/fleet/agent_policies?perPage=100");
      const chosen = params.get("policy_id") ?? "";
      replace(policy, el("option", { value: "" }, "any"), items.map((p) => el("option", { value: p.id, selected: p.id === chosen }, p.name)));
    } catch (err) {
      tell(`Could not load policies: ${err.message}`);
    }
    await load(0);
  })();
}
