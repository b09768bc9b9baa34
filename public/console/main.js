// The console's shell: sign-in, navigation (hash routes, so the page is the only document), the live
// indicator and messages. Each page module renders into <main> and may return a cleanup function.
import { credential, onSignedOut, signIn, signOut } from "./api.js";
import { el, field, replace } from "./dom.js";
import { connect, disconnect, onLiveState } from "./live.js";
import * as actions from "./page-actions.js";
import * as agent from "./page-agent.js";
import * as agents from "./page-agents.js";
import * as keys from "./page-keys.js";
import * as overview from "./page-overview.js";
import * as policies from "./page-policies.js";
import * as policy from "./page-policy.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const signOutButton = document.getElementById("sign-out");
const live = document.getElementById("live");
const notice = document.getElementById("notice");
let cleanup = null;

const ROUTES = [
  [/^#\/overview$/, overview, "Overview"],
  [/^#\/policies$/, policies, "Policies"],
  [/^#\/policies\/([^/?]+)$/, policy, "Policy"],
  [/^#\/agents(?:\?.*)?$/, agents, "Agents"],
  [/^#\/agents\/([^/?]+)$/, agent, "Agent"],
  [/^#\/actions$/, actions, "Actions"],
  [/^#\/keys$/, keys, "Enrollment keys"],
];

/** Shows a message in the banner (errors, confirmations); text only. */
export function tell(message, kind = "error") {
  notice.className = `notice notice-${kind}`;
  notice.hidden = false;
  replace(notice, message, " ", el("button", { type: "button", class: "link", onclick: () => (notice.hidden = true) }, "Dismiss"));
}

function route() {
  if (typeof cleanup === "function") cleanup();
  cleanup = null;
  notice.hidden = true;
  if (!credential()) return showSignIn();
  nav.hidden = false;
  signOutButton.hidden = false;
  connect();
  const hash = location.hash || "#/overview";
  const match = ROUTES.find(([pattern]) => pattern.test(hash));
  if (!match) {
    location.replace("#/overview");
    return;
  }
  const [pattern, page, title] = match;
  const param = pattern.exec(hash)[1];
  document.title = `${title} · Fleet console`;
  for (const link of nav.querySelectorAll("a")) {
    if (hash.startsWith(link.getAttribute("href"))) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  replace(main);
  cleanup = page.render(main, param === undefined ? undefined : decodeURIComponent(param), { tell });
  main.focus({ preventScroll: true });
}

function showSignIn() {
  nav.hidden = true;
  signOutButton.hidden = true;
  disconnect();
  document.title = "Sign in · Fleet console";
  const secret = el("input", { type: "password", name: "credential", autocomplete: "current-password", required: true, spellcheck: "false" });
  const error = el("p", { class: "error", role: "alert" });
  const form = el(
    "form",
    {
      class: "card signin",
      onsubmit: async (event) => {
        event.preventDefault();
        let problem;
        try {
          problem = await signIn(secret.value);
        } catch (err) {
          problem = `Sign-in failed: ${err.message}`;
        }
        if (problem) return void replace(error, problem);
        // Into the page the address names (a bookmark), else the overview.
        route();
      },
    },
    el("h1", {}, "Sign in"),
    el("p", {}, "Use the server's admin token (FLEET_ADMIN_TOKEN) or an admin API key. It is kept in this tab only (session storage) and sent as a header, never in a URL."),
    field("Admin token or admin API key", secret),
    el("button", { type: "submit" }, "Sign in"),
    error,
  );
  replace(main, form);
  secret.focus();
}

signOutButton.addEventListener("click", () => signOut());
onSignedOut(() => {
  if (typeof cleanup === "function") cleanup();
  cleanup = null;
  showSignIn();
});
onLiveState((state) => {
  live.textContent = state === "live" ? "● Live" : state === "connecting" ? "Connecting…" : "○ Not live";
  live.className = `live live-${state}`;
});
window.addEventListener("hashchange", route);
route();
