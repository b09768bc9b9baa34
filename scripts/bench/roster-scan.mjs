#!/usr/bin/env node
// What the roster's reads cost without an index on the check-in time (docs/cost.md, "Cut: the
// check-in time's index"): the real AgentRoster (durable/agent-roster.ts) in workerd, one roster part
// of --rows agents (default 50,000, a part of a 1M-agent policy), timed with and without the dropped
// `roster_last_checkin` index. Each read is one RPC; the table shows the best of --reps per read
// minus the best of an empty RPC, and the rows each statement read and wrote. "touch" is a
// heartbeat's time journaled; then, once, the fold of a half hour of the part's heartbeats
// ("Cut: the roster row per heartbeat").
//
//   node scripts/bench/roster-scan.mjs [--rows 50000] [--reps 15]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "./args.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const args = parseArgs(process.argv.slice(2));
const rows = Number(args.rows ?? 50_000);
const reps = Number(args.reps ?? 15);

const { build } = await import(path.join(root, "node_modules/esbuild/lib/main.js"));
const { Miniflare } = await import(path.join(root, "node_modules/miniflare/dist/src/index.js"));

// The object under test: a roster part migrated as a RosterShard is, filled with --rows agents
// whose last check-ins spread over the last 5.3 minutes, 2% of them offline (silent for 12+ minutes).
const ENTRY = `
import { DurableObject } from "cloudflare:workers";
import { AgentRoster, ROSTER_SCHEMA_STEPS } from "./durable/agent-roster";
import { migrateSchema } from "./durable/sql-schema";

const OFFLINE_AFTER_MS = 600_000;

export class Part extends DurableObject {
  version = 1;
  fill(n, indexed, now) {
    migrateSchema(this.ctx.storage, ROSTER_SCHEMA_STEPS);
    const roster = new AgentRoster(this.ctx.storage.sql);
    this.ctx.storage.transactionSync(() => {
      for (let i = 0; i < n; i++) {
        const silent = i % 50 === 0 ? 720_000 : 0;
        roster.upsert({
          agent_id: "agent-" + i, active: true, enrolled_at: new Date(now - 86_400_000).toISOString(),
          last_checkin: new Date(now - silent - ((i * 7919) % 320_000)).toISOString(), last_checkin_status: "online",
          last_checkin_message: null, hostname: "host-" + i, version: "9.5.2", tags: [], policy_revision_idx: 2,
          upgrading: false, unenrolling: false, unhealthy_reason: null, type: "PERMANENT",
        }, 1);
      }
    });
    if (indexed) this.ctx.storage.sql.exec("CREATE INDEX roster_last_checkin ON roster (last_checkin)");
  }
  noop() {}
  read(name, now) {
    const stats = { rowsRead: 0, rowsWritten: 0 };
    const sql = this.ctx.storage.sql;
    const counted = new Proxy(sql, { get: (target, prop) => prop !== "exec" ? Reflect.get(target, prop, target) : (...a) => {
      const cursor = target.exec(...a);
      const rows = cursor.toArray();
      stats.rowsRead += cursor.rowsRead;
      stats.rowsWritten += cursor.rowsWritten;
      return { toArray: () => rows, one: () => rows[0], rowsRead: cursor.rowsRead, rowsWritten: cursor.rowsWritten };
    } });
    const roster = new AgentRoster(counted);
    const context = { now, offlineAfterMs: OFFLINE_AFTER_MS, latestRevision: 2 };
    let result;
    if (name === "counts") result = roster.counts(context).offline;
    else if (name === "oldestLiveCheckin") result = roster.oldestLiveCheckin(new Date(now - OFFLINE_AFTER_MS).toISOString());
    else if (name === "touch") {
      roster.apply({ upserts: [], removes: [], touches: [{ agentId: "agent-777", lastCheckin: new Date(now).toISOString(), version: ++this.version }] }, now);
    } else if (name === "fold") roster.fold();
    return { result, ...stats };
  }
  /** A half hour's journal of the whole part: every agent's 6 heartbeats, in batches of a store's minute at 1M (156 times). */
  journalHalfHour(n, now) {
    const roster = new AgentRoster(this.ctx.storage.sql);
    const touches = [];
    for (let beat = 0; beat < 6; beat++) {
      for (let i = 0; i < n; i++) touches.push({ agentId: "agent-" + i, lastCheckin: new Date(now + beat * 300_000).toISOString(), version: ++this.version });
    }
    for (let i = 0; i < touches.length; i += 156) {
      this.ctx.storage.transactionSync(() => roster.apply({ upserts: [], removes: [], touches: touches.slice(i, i + 156) }, now));
    }
    return this.ctx.storage.sql.exec("SELECT COUNT(*) AS rows, SUM(n) AS times FROM roster_touches").one();
  }
}
export default { fetch() { return new Response("roster-scan"); } };
`;

const dir = mkdtempSync(path.join(tmpdir(), "roster-scan-"));
try {
  const bundled = await build({
    stdin: { contents: ENTRY, resolveDir: root, loader: "js" },
    bundle: true,
    format: "esm",
    platform: "neutral",
    external: ["cloudflare:workers"],
    write: false,
  });
  const mf = new Miniflare({
    modules: true,
    script: bundled.outputFiles[0].text,
    compatibilityDate: "2026-04-01",
    durableObjects: { PART: { className: "Part", useSQLite: true } },
    durableObjectsPersist: path.join(dir, "do"),
  });
  const ns = await mf.getDurableObjectNamespace("PART");
  const now = Date.now();
  const best = async (call) => {
    let ms = Infinity;
    let last;
    for (let i = 0; i < reps; i++) {
      const start = performance.now();
      last = await call();
      ms = Math.min(ms, performance.now() - start);
    }
    return { ms, last };
  };
  console.log(`| ${rows.toLocaleString("en-US")} rows | read | ms (best of ${reps}, minus an empty call) | rows read | rows written | answer |`);
  console.log("|---|---|---|---|---|---|");
  for (const indexed of [true, false]) {
    const part = ns.get(ns.idFromName(indexed ? "indexed" : "unindexed"));
    await part.fill(rows, indexed, now);
    const empty = await best(() => part.noop());
    for (const name of ["counts", "oldestLiveCheckin", "touch"]) {
      const { ms, last } = await best(() => part.read(name, now));
      console.log(`| ${indexed ? "with the index" : "without (today)"} | ${name} | ${Math.max(0, ms - empty.ms).toFixed(2)} | ${last.rowsRead} | ${last.rowsWritten} | ${last.result ?? ""} |`);
    }
    if (indexed) continue;
    // Once, not best of: a fold empties the journal it reads.
    const journal = await part.journalHalfHour(rows, now);
    const start = performance.now();
    const folded = await part.read("fold", now);
    const ms = performance.now() - start - empty.ms;
    console.log(`| without (today) | fold of a half hour's journal (${journal.times.toLocaleString("en-US")} times in ${journal.rows} rows) | ${ms.toFixed(2)} | ${folded.rowsRead} | ${folded.rowsWritten} | |`);
  }
  await mf.dispose();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
