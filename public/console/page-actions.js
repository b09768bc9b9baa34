// Actions: every action and bulk operation with its progress, latest errors, and cancel.
import { api } from "./api.js";
import { el, replace, table, when } from "./dom.js";
import { onCountsChange, refresh } from "./live.js";

export function render(main, _param, { tell }) {
  const list = el("div", { "aria-busy": "true" }, "Loading…");
  replace(main, el("h1", {}, "Actions"), list);

  async function load() {
    try {
      const { items, total } = await api("GET", "/api/fleet/agents/action_status?perPage=50");
      list.setAttribute("aria-busy", "false");
      replace(
        list,
        table(
          `Actions, newest first (${total})`,
          ["Action", "Type", "Status", "Progress", "Failed", "Created", "By", "Latest errors", ""],
          items.map((a) => {
            const done = a.nbAgentsAck + a.nbAgentsFailed;
            const of = Math.max(a.nbAgentsActioned, 1);
            return el(
              "tr",
              { "data-action": a.actionId },
              el("td", {}, el("code", {}, a.actionId)),
              el("td", {}, a.type),
              el("td", {}, el("span", { class: `badge action-${a.status.toLowerCase()}` }, a.status)),
              el(
                "td",
                {},
                el("progress", { max: of, value: done, "aria-label": `${done} of ${a.nbAgentsActioned} agents answered` }),
                ` ${a.nbAgentsAck}/${a.nbAgentsActioned} acked`,
              ),
              el("td", {}, String(a.nbAgentsFailed)),
              el("td", {}, when(a.creationTime)),
              el("td", {}, a.createdBy),
              el("td", {}, a.latestErrors.length ? el("ul", { class: "errors" }, a.latestErrors.map((e) => el("li", {}, el("code", {}, e.agentId), `: ${e.error}`))) : "—"),
              el(
                "td",
                {},
                a.status === "IN_PROGRESS" && a.type !== "CANCEL"
                  ? el(
                      "button",
                      {
                        type: "button",
                        onclick: async () => {
                          try {
                            await api("POST", `/api/fleet/agents/actions/${encodeURIComponent(a.actionId)}/cancel`);
                            tell(`Cancel sent for ${a.actionId}.`, "ok");
                            refresh();
                            await load();
                          } catch (err) {
                            tell(`Cancel failed: ${err.message}`);
                          }
                        },
                      },
                      "Cancel",
                    )
                  : null,
              ),
            );
          }),
        ),
      );
    } catch (err) {
      tell(`Could not load actions: ${err.message}`);
    }
  }

  void load();
  // Acks move the fleet's counts; reload the progress when the overview changes.
  return onCountsChange(() => void load());
}
