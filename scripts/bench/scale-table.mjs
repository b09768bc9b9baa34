#!/usr/bin/env node
// Per-object load across benchmark runs of growing fleets (the check of docs/scale.md): for each run,
// the busiest object of each kind and the events (requests and WebSocket messages) it handled while
// every agent sent one steady-state heartbeat (and what that is per second at production's
// heartbeat interval), and during the last fan-out round.
//
//   node scripts/bench/scale-table.mjs bench-results/run-2500-….json bench-results/run-5000-….json …
//
// If the design scales, the busiest shard's load stays flat when shards grow with the fleet, a
// store's grows with agents ÷ 64 (a fixed count), and the hub's calls stay flat (batched per store
// flush) while the rows it writes grow with its agents.
import { readFileSync } from "node:fs";
import path from "node:path";

const rows = [];
for (const file of process.argv.slice(2)) {
  const run = JSON.parse(readFileSync(file, "utf8"));
  const project = run.runs?.project ?? run;
  const counts = project.counts ?? {};
  const agents = project.phases?.connect?.agents ?? run.agents;
  const rounds = Object.keys(counts).filter((k) => k.startsWith("fanout"));
  for (const label of ["poll_heartbeat", "socket_heartbeat", rounds.at(-1)].filter(Boolean)) {
    const c = counts[label];
    if (!c?.per_object) continue;
    const busiest = {};
    const objects = {};
    for (const [key, n] of Object.entries(c.per_object)) {
      if (n <= 0) continue;
      const cls = key.slice(0, key.indexOf("/"));
      objects[cls] = (objects[cls] ?? 0) + 1;
      if (!busiest[cls] || n > busiest[cls]) busiest[cls] = n;
    }
    rows.push({ file: path.basename(file), agents, shards: objects.HubShard ?? run.policy_hub_shards, label, events: c.events, busiest, objects, peak: c.peak_per_second ?? {}, rows_written: Object.fromEntries(Object.entries(c.classes ?? {}).map(([k, v]) => [k, v.rows_written])) });
  }
}

// One heartbeat per agent is what production spreads over a long poll (5 min − 15 s + 1.25 s) or a
// socket's 4 minutes: the busiest object's events over that interval are its requests per second.
const interval = { poll_heartbeat: 286.25, socket_heartbeat: 240 };
const classes = ["AgentStore", "HubShard", "PolicyHub", "Directory"];
console.log(`| agents | shards/policy | phase (events) | ${classes.map((c) => `busiest ${c} (objects)`).join(" | ")} | hub rows written | peak events in one second: AgentStore / HubShard |`);
console.log(`|---|---|---|${classes.map(() => "---").join("|")}|---|---|`);
for (const r of rows) {
  const perSecond = (n) => (interval[r.label] ? `, ${(n / interval[r.label]).toFixed(2)}/s` : "");
  console.log(`| ${r.agents} | ${r.shards} | ${r.label} (${r.events}) | ${classes.map((c) => (r.busiest[c] ? `${r.busiest[c]}${perSecond(r.busiest[c])} (${r.objects[c]})` : "–")).join(" | ")} | ${r.rows_written.PolicyHub ?? 0} | ${r.peak.AgentStore?.events ?? "–"} / ${r.peak.HubShard?.events ?? "–"} |`);
}
