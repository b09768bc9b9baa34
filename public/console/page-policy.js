// One policy: publish a revision, the revision history with each revision's diff, how far the latest
// revision has reached, and the staged rollout (stages over time, with its commands).
import { api, ApiError } from "./api.js";
import { barChart, rolloutChart } from "./charts.js";
import { bytes, el, field, replace, table, when } from "./dom.js";
import { onOverview, refresh } from "./live.js";

export function render(main, policyId, { tell }) {
  const base = `/api/fleet/agent_policies/${encodeURIComponent(policyId)}`;
  const heading = el("h1", {}, "Policy ", el("code", {}, policyId));
  const summary = el("div", { class: "card" }, "Loading…");
  const reach = el("section", { class: "card" });
  const staged = el("section", { class: "card", id: "staged-rollout" });
  const revisions = el("section", { class: "card" });
  const editor = el("textarea", { name: "policy", rows: 12, spellcheck: "false", class: "code" });
  let current = null;
  let shownRevisions = "";
  // Revisions whose diff is open: kept open when the history is drawn again.
  const expanded = new Set();

  async function load() {
    try {
      const [{ item }, full, rollout, history, stagedRollout] = await Promise.all([
        api("GET", base),
        api("GET", `${base}/full`),
        api("GET", `${base}/rollout`),
        api("GET", `${base}/revisions`),
        api("GET", `${base}/rollouts/current`).catch((err) => (err instanceof ApiError && err.status === 404 ? null : Promise.reject(err))),
      ]);
      const { id: _id, revision: _revision, ...content } = full.item;
      if (!current || current.revision !== item.revision) editor.value = JSON.stringify(content, null, 2);
      current = item;
      replace(heading, "Policy ", item.name);
      replace(
        summary,
        el(
          "dl",
          { class: "facts" },
          fact("Id", el("code", {}, item.id)),
          fact("Namespace", item.namespace),
          fact("Latest revision", String(item.revision), "latest-revision"),
          fact("Active agents", String(item.agents ?? 0)),
          fact("Updated", when(item.updated_at)),
        ),
      );
      showReach(rollout.item);
      showStaged(stagedRollout?.item ?? null);
      showRevisions(history.items);
    } catch (err) {
      tell(`Could not load policy ${policyId}: ${err.message}`);
    }
  }

  function showReach(r) {
    replace(
      reach,
      el("h2", {}, "Reach of the latest revision"),
      el("p", { "data-reach": `${r.agents_on_latest}/${r.agents_total}` }, `${r.agents_on_latest} of ${r.agents_total} active agents run revision ${r.latest_revision}.`),
      barChart(
        "Active agents per acknowledged revision",
        r.revisions.map((x) => ({ label: `revision ${x.revision}`, value: x.agents, className: x.revision >= r.latest_revision ? "status-online" : "status-updating" })),
      ),
      r.failing.length
        ? table(
            "Agents behind the latest revision that report trouble",
            ["Agent", "Revision", "Status", "Message"],
            r.failing.map((a) =>
              el("tr", {}, el("td", {}, el("a", { href: `#/agents/${encodeURIComponent(a.id)}` }, a.id)), el("td", {}, String(a.revision)), el("td", {}, a.status ?? ""), el("td", {}, a.message ?? "")),
            ),
          )
        : null,
    );
  }

  function showStaged(s) {
    if (!s) {
      replace(staged, el("h2", {}, "Staged rollout"), el("p", { "data-rollout-status": "none" }, "No staged rollout for this policy."), rolloutForm());
      return;
    }
    const stages = s.history.map((h) => ({ label: `${h.percent}%`, start: Date.parse(h.started_at), end: Date.parse(h.ended_at), members: h.members, acked: h.acked, failed: h.failed, outcome: h.outcome }));
    const open = ["running", "paused", "held"].includes(s.status);
    // A finished rollout's last stage is in its history already.
    if (s.current && open) stages.push({ label: `${s.current.percent}%`, start: Date.parse(s.stage_started_at), end: null, members: s.current.members, acked: s.current.acked, failed: s.current.failed, outcome: s.status });
    if (stages.length === 0) stages.push({ label: `${s.stages[0]}%`, start: Date.parse(s.stage_started_at), end: Date.parse(s.stage_started_at), members: 0, acked: 0, failed: 0, outcome: s.status });
    const command = (name, label, confirmText) =>
      el(
        "button",
        {
          type: "button",
          "data-command": name,
          disabled: !open || (name === "pause" && s.status !== "running") || (name === "resume" && s.status === "running"),
          onclick: async () => {
            if (confirmText && !confirm(confirmText)) return;
            try {
              await api("POST", `${base}/rollouts/current/${name}`);
              tell(`Rollout: ${name} done.`, "ok");
              refresh();
              await load();
            } catch (err) {
              tell(`Rollout ${name} failed: ${err.message}`);
            }
          },
        },
        label,
      );
    replace(
      staged,
      el("h2", {}, "Staged rollout"),
      el(
        "dl",
        { class: "facts" },
        fact("Status", s.status, "rollout-status"),
        fact("Revision", `${s.previous} → ${s.target}`),
        fact("Stage", `${s.stage + 1} of ${s.stages.length} (${s.stages.join("%, ")}%)`, "rollout-stage"),
        fact("Criteria", `≥ ${s.criteria.min_acked_percent}% acked, ≤ ${s.criteria.max_failed_percent}% failed, within ${s.criteria.window_seconds} s`),
        fact("Started", `${when(s.created_at)} by ${s.created_by}`),
        s.reason ? fact("Reason", s.reason) : null,
      ),
      rolloutChart("Stages over time: acked, failed and pending agents of each stage", progressPoints(s, open), s.stages.map((p) => `${p}%`)),
      table(
        "Stages",
        ["Stage", "Started", "Ended", "Members", "Acked", "Failed", "Pending", "Outcome"],
        stages.map((st) =>
          el(
            "tr",
            {},
            el("td", {}, st.label),
            el("td", {}, new Date(st.start).toLocaleTimeString()),
            el("td", {}, st.end ? new Date(st.end).toLocaleTimeString() : "—"),
            el("td", {}, String(st.members)),
            el("td", {}, String(st.acked)),
            el("td", {}, String(st.failed)),
            el("td", {}, String(Math.max(0, st.members - st.acked - st.failed))),
            el("td", {}, st.outcome),
          ),
        ),
      ),
      el(
        "div",
        { class: "buttons" },
        command("pause", "Pause"),
        command("resume", "Resume"),
        command("promote", "Promote to next stage"),
        command("abort", "Abort", "Abort the rollout? Every agent gets the previous content back as a new revision."),
      ),
      open ? null : rolloutForm(),
    );
  }

  function rolloutForm() {
    const stages = el("input", { name: "stages", value: "10, 50, 100", pattern: "[0-9., ]+" });
    const acked = el("input", { name: "min_acked_percent", type: "number", min: 0, max: 100, value: 90 });
    const failed = el("input", { name: "max_failed_percent", type: "number", min: 0, max: 100, value: 5 });
    const windowSeconds = el("input", { name: "window_seconds", type: "number", min: 1, value: 1800 });
    return el(
      "form",
      {
        class: "subform",
        onsubmit: async (event) => {
          event.preventDefault();
          const policy = parsePolicy(tell);
          if (!policy) return;
          try {
            await api("POST", `${base}/rollouts`, {
              policy,
              stages: stages.value.split(",").map((s) => Number(s.trim())).filter((n) => n > 0),
              min_acked_percent: Number(acked.value),
              max_failed_percent: Number(failed.value),
              window_seconds: Number(windowSeconds.value),
            });
            tell("Staged rollout started.", "ok");
            refresh();
            await load();
          } catch (err) {
            tell(`Could not start the rollout: ${err.message}`);
          }
        },
      },
      el("h3", {}, "Start a staged rollout of the content in the editor below"),
      el("div", { class: "row" }, field("Stages (cumulative %)", stages), field("Promote at acked %", acked), field("Hold above failed %", failed), field("Window (s)", windowSeconds)),
      el("button", { type: "submit" }, "Start staged rollout"),
    );
  }

  function parsePolicy() {
    try {
      return JSON.parse(editor.value);
    } catch (err) {
      tell(`The policy is not valid JSON: ${err.message}`);
      return null;
    }
  }

  function showRevisions(items) {
    const key = JSON.stringify(items) + String(current?.revision);
    if (key === shownRevisions) return;
    shownRevisions = key;
    replace(
      revisions,
      el("h2", {}, "Revisions"),
      table(
        "Revision history, newest first",
        ["Revision", "Published", "By", "Size", "Changed paths", ""],
        items.map((r) => {
          const diff = el("td", { colspan: 6, class: "diff" });
          const diffRow = el("tr", { hidden: true }, diff);
          const expandedBefore = expanded.has(r.revision);
          if (expandedBefore) {
            diffRow.hidden = false;
            void showDiff(diff, r.revision);
          }
          const toggle = el(
            "button",
            {
              type: "button",
              class: "link",
              "aria-expanded": String(expandedBefore),
              "data-diff": String(r.revision),
              onclick: async () => {
                const open = toggle.getAttribute("aria-expanded") === "true";
                toggle.setAttribute("aria-expanded", String(!open));
                diffRow.hidden = open;
                if (open) expanded.delete(r.revision);
                else expanded.add(r.revision);
                if (!open && !diff.hasChildNodes()) await showDiff(diff, r.revision);
              },
            },
            "Diff",
          );
          const rollback = el(
            "button",
            {
              type: "button",
              class: "link",
              disabled: current && r.revision === current.revision,
              onclick: async () => {
                if (!confirm(`Publish revision ${r.revision}'s content as a new revision?`)) return;
                try {
                  const { item } = await api("POST", `${base}/revisions/${r.revision}/rollback`);
                  tell(`Published revision ${item.revision}.`, "ok");
                  await load();
                } catch (err) {
                  tell(`Rollback failed: ${err.message}`);
                }
              },
            },
            "Roll back to this",
          );
          return [
            el(
              "tr",
              {},
              el("td", {}, String(r.revision)),
              el("td", {}, when(r.created_at)),
              el("td", {}, r.created_by),
              el("td", {}, bytes(r.size_bytes)),
              el("td", {}, String(r.changed_paths)),
              el("td", {}, toggle, " ", rollback),
            ),
            diffRow,
          ];
        }),
      ),
    );
  }

  async function showDiff(cell, revision) {
    try {
      const { item } = await api("GET", `${base}/revisions/${revision}/diff`);
      replace(
        cell,
        el("p", {}, item.previous === null ? `Revision ${item.revision} (the first): everything it set.` : `Revision ${item.previous} → ${item.revision}:`),
        el(
          "ul",
          { class: "changes" },
          item.changes.map((c) =>
            el(
              "li",
              {},
              el("code", { class: "path" }, c.path),
              " ",
              "before" in c ? el("del", {}, show(c.before)) : el("span", { class: "added" }, "added"),
              " → ",
              "after" in c ? el("ins", {}, show(c.after)) : el("span", { class: "removed" }, "removed"),
            ),
          ),
        ),
        item.omitted > 0 ? el("p", {}, `…and ${item.omitted} more changes.`) : null,
        item.changes.length === 0 ? el("p", {}, "No content change (the name or namespace only).") : null,
      );
    } catch (err) {
      replace(cell, `Could not load the diff: ${err.message}`);
    }
  }

  const publish = el(
    "form",
    {
      class: "card",
      onsubmit: async (event) => {
        event.preventDefault();
        const policy = parsePolicy();
        if (!policy || !current) return;
        try {
          const { item, changed } = await api("PUT", base, {
            name: current.name,
            namespace: current.namespace,
            ...(current.description !== undefined ? { description: current.description } : {}),
            policy,
          });
          tell(changed ? `Published revision ${item.revision}.` : "No change: the content equals the latest revision.", "ok");
          refresh();
          await load();
        } catch (err) {
          tell(`Could not publish: ${err.message}`);
        }
      },
    },
    el("h2", {}, "Publish a new revision"),
    field("Policy content (JSON), prefilled with the latest revision", editor),
    el("button", { type: "submit" }, "Publish revision"),
  );

  replace(main, heading, summary, reach, staged, publish, revisions);
  void load();
  // Agents acking or a rollout moving change the overview's counts for this policy: reload then.
  let seen = "";
  return onOverview((overview) => {
    const mine = overview.by_policy.find((p) => p.policy_id === policyId);
    // Check-in counts move all the time; statuses, revision and rollout state are what this page shows.
    const { checkins_last_minute: _last, checkins_this_minute: _now, ...relevant } = mine ?? {};
    const key = JSON.stringify(relevant);
    if (seen && key !== seen) void load();
    seen = key;
  });
}

/** The rollout's samples, and while it runs the current stage's counts now (read with the page). */
function progressPoints(s, open) {
  const points = s.samples.map((p) => ({ ...p, at: Date.parse(p.at) }));
  if (open && s.current) points.push({ stage: s.stage, at: Date.now(), members: s.current.members, acked: s.current.acked, failed: s.current.failed });
  if (points.length === 0) points.push({ stage: s.stage, at: Date.parse(s.stage_started_at), members: 0, acked: 0, failed: 0 });
  return points;
}

function fact(label, value, name) {
  return el("div", {}, el("dt", {}, label), el("dd", name ? { [`data-${name}`]: "" } : {}, value));
}

function show(value) {
  return JSON.stringify(value) ?? "undefined";
}
