// Policies: the list (with each policy's agents and latest revision) and a form to create one.
import { api } from "./api.js";
import { el, field, replace, table, when } from "./dom.js";

const STARTER = { outputs: { default: { type: "elasticsearch", hosts: ["https://elasticsearch.example:9200"] } }, inputs: [] };

export function render(main, _param, { tell }) {
  const list = el("div", { "aria-busy": "true" }, "Loading…");
  replace(main, el("h1", {}, "Policies"), list, createForm(tell, () => load(list, tell)));
  void load(list, tell);
}

async function load(list, tell) {
  try {
    const { items, total } = await api("GET", "/api/fleet/agent_policies?perPage=100");
    list.setAttribute("aria-busy", "false");
    replace(
      list,
      table(
        `Agent policies (${total})`,
        ["Name", "Id", "Namespace", "Revision", "Agents", "Updated"],
        items.map((p) =>
          el(
            "tr",
            {},
            el("td", {}, el("a", { href: `#/policies/${encodeURIComponent(p.id)}` }, p.name)),
            el("td", {}, el("code", {}, p.id)),
            el("td", {}, p.namespace),
            el("td", {}, String(p.revision)),
            el("td", {}, String(p.agents ?? 0)),
            el("td", {}, when(p.updated_at)),
          ),
        ),
      ),
      total > items.length ? el("p", {}, `Showing the first ${items.length} of ${total}.`) : null,
    );
  } catch (err) {
    tell(`Could not load policies: ${err.message}`);
  }
}

function createForm(tell, reload) {
  const id = el("input", { name: "id", pattern: "[A-Za-z0-9_.\\-]{1,128}", placeholder: "generated when empty", spellcheck: "false" });
  const name = el("input", { name: "name", required: true });
  const namespace = el("input", { name: "namespace", value: "default" });
  const content = el("textarea", { name: "policy", rows: 8, spellcheck: "false", class: "code" });
  content.value = JSON.stringify(STARTER, null, 2);
  return el(
    "form",
    {
      class: "card",
      onsubmit: async (event) => {
        event.preventDefault();
        let policy;
        try {
          policy = JSON.parse(content.value);
        } catch (err) {
          return tell(`The policy is not valid JSON: ${err.message}`);
        }
        try {
          const { item } = await api("POST", "/api/fleet/agent_policies", { ...(id.value ? { id: id.value } : {}), name: name.value, namespace: namespace.value || "default", policy });
          tell(`Policy ${item.name} created (revision ${item.revision}).`, "ok");
          event.target.reset();
          content.value = JSON.stringify(STARTER, null, 2);
          await reload();
        } catch (err) {
          tell(`Could not create the policy: ${err.message}`);
        }
      },
    },
    el("h2", {}, "Create a policy"),
    el("div", { class: "row" }, field("Id", id), field("Name", name), field("Namespace", namespace)),
    field("Policy (JSON: outputs, inputs, agent…)", content),
    el("button", { type: "submit" }, "Create policy"),
  );
}
