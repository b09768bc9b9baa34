// Enrollment keys: create (the secret shown once, with a copyable install command), list, revoke.
import { api } from "./api.js";
import { el, field, replace, table, when } from "./dom.js";

export function render(main, _param, { tell }) {
  const list = el("div", { "aria-busy": "true" }, "Loading…");
  const created = el("div", { "aria-live": "polite" });
  const policy = el("select", { name: "policy_id", required: true });
  const name = el("input", { name: "name", placeholder: "e.g. prod-linux" });
  const expiration = el("input", { name: "expiration", type: "datetime-local" });

  async function load() {
    try {
      const [{ items, total }, policies] = await Promise.all([api("GET", "/api/fleet/enrollment_api_keys?perPage=100"), api("GET", "/api/fleet/agent_policies?perPage=100")]);
      if (!policy.options.length) replace(policy, policies.items.map((p) => el("option", { value: p.id }, `${p.name} (${p.id})`)));
      list.setAttribute("aria-busy", "false");
      replace(
        list,
        table(
          `Enrollment keys (${total})`,
          ["Name", "Policy", "Created", "Expires", "State", ""],
          items.map((k) =>
            el(
              "tr",
              {},
              el("td", {}, k.name),
              el("td", {}, el("a", { href: `#/policies/${encodeURIComponent(k.policy_id)}` }, k.policy_id)),
              el("td", {}, when(k.created_at)),
              el("td", {}, k.expire_at ? when(k.expire_at) : "never"),
              el("td", {}, k.active ? "active" : "revoked"),
              el(
                "td",
                {},
                k.active
                  ? el(
                      "button",
                      {
                        type: "button",
                        onclick: async () => {
                          if (!confirm(`Revoke enrollment key ${k.name}? Agents can no longer enroll with it.`)) return;
                          try {
                            await api("DELETE", `/api/fleet/enrollment_api_keys/${encodeURIComponent(k.id)}`);
                            tell(`Key ${k.name} revoked.`, "ok");
                            await load();
                          } catch (err) {
                            tell(`Could not revoke: ${err.message}`);
                          }
                        },
                      },
                      "Revoke",
                    )
                  : null,
              ),
            ),
          ),
        ),
      );
    } catch (err) {
      tell(`Could not load enrollment keys: ${err.message}`);
    }
  }

  const form = el(
    "form",
    {
      class: "card",
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          const body = { policy_id: policy.value, ...(name.value ? { name: name.value } : {}), ...(expiration.value ? { expiration: new Date(expiration.value).toISOString() } : {}) };
          const { item } = await api("POST", "/api/fleet/enrollment_api_keys", body);
          showSecret(item);
          event.target.reset();
          await load();
        } catch (err) {
          tell(`Could not create the key: ${err.message}`);
        }
      },
    },
    el("h2", {}, "Create an enrollment key"),
    el("div", { class: "row" }, field("Policy", policy), field("Name", name), field("Expires (optional)", expiration)),
    el("button", { type: "submit" }, "Create key"),
  );

  function showSecret(item) {
    const command = `sudo elastic-agent install --url=${location.origin} --enrollment-token=${item.api_key}`;
    const copy = (text, label) =>
      el(
        "button",
        {
          type: "button",
          onclick: async () => {
            try {
              await navigator.clipboard.writeText(text);
              tell(`${label} copied.`, "ok");
            } catch {
              tell("Copying is not allowed here: select the text and copy it.");
            }
          },
        },
        `Copy ${label.toLowerCase()}`,
      );
    replace(
      created,
      el(
        "section",
        { class: "card secret" },
        el("h2", {}, `Key ${item.name} created`),
        el("p", {}, "The token is shown this once: copy it now."),
        field("Enrollment token", el("input", { readonly: true, value: item.api_key, "data-secret": "token", class: "code" })),
        copy(item.api_key, "Token"),
        field("Install command", el("textarea", { readonly: true, rows: 2, "data-secret": "command", class: "code" }, command)),
        copy(command, "Command"),
        el("button", { type: "button", class: "link", onclick: () => replace(created) }, "Hide"),
      ),
    );
  }

  replace(main, el("h1", {}, "Enrollment keys"), created, form, list);
  void load();
}
