// Benchmark-only entry module (serve.mjs --count): wraps the project's bundle to count what
// Cloudflare bills, so a benchmark can print what a fleet costs (scripts/bench/cost-model.mjs).
// It is copied beside the bundle (.wrangler/bench-bundle/) and imports it; nothing of it is deployed.
//
// Counted: Worker requests; per Durable Object class, requests (RPC calls, fetches incl. WebSocket
// upgrades, alarms), WebSocket messages received and closes, object starts (a wake-up from
// hibernation or a first start), SQLite rows read and written (the cursor's rowsRead/rowsWritten,
// what Cloudflare bills, plus one row written per setAlarm()), and events per object (the busiest objects, for the scale table),
// rows per object, and each object's calls in flight (a parked poll keeps its shard busy: billed duration),
// and events per object per wall-clock second (an object's peak rate during a fan-out: docs/scale.md §3's pacing).
// GET /__bench/counts answers the totals so far, with the per-second counts; code in the same isolate
// (sim-entry.mjs) reads them without those as globalThis.__benchCounts().
import * as bundle from "./index.js";

const counts = { worker_requests: 0, classes: {} };
/** Events (requests and WebSocket messages) per object (class/name), to find the busiest object of each kind. */
const perObject = new Map();
/** SQLite rows read and written per object. */
const perObjectRows = new Map();
/** Calls an object has started and not yet answered (parked polls among them). */
const inFlight = new Map();
/** Events per object per wall-clock second (class/name → second → events). */
const perObjectSecond = new Map();

/** A benchmark's own probes, not traffic a fleet makes: not counted. */
const UNCOUNTED = new Set(["parkedCount"]);

const LIFECYCLE = new Set(["constructor", "fetch", "alarm", "webSocketMessage", "webSocketClose", "webSocketError"]);

function classCounts(name) {
  return (counts.classes[name] ??= {
    requests: 0, rpc: 0, fetch: 0, alarm: 0, ws_messages: 0, ws_closes: 0, starts: 0, rows_read: 0, rows_written: 0, set_alarms: 0, objects: 0, methods: {},
    rows_written_by_table: {},
  });
}

/** Every method an instance answers (RPC, fetch, alarm, WebSocket handlers), up to the runtime's base class. */
function methodNames(Base) {
  const names = new Set();
  for (let proto = Base.prototype; proto && proto !== Object.prototype && proto.constructor.name !== "DurableObject"; proto = Object.getPrototypeOf(proto)) {
    for (const key of Object.getOwnPropertyNames(proto)) {
      const d = Object.getOwnPropertyDescriptor(proto, key);
      if (key !== "constructor" && typeof d.value === "function") names.add(key);
    }
  }
  return names;
}

function wrapClass(className, Base) {
  const c = classCounts(className);
  class Counted extends Base {
    constructor(ctx, env) {
      c.starts++;
      const objectKey = `${className}/${ctx.id.name ?? ctx.id.toString()}`;
      if (!perObject.has(objectKey)) {
        perObject.set(objectKey, 0);
        c.objects++;
      }
      if (!perObjectRows.has(objectKey)) perObjectRows.set(objectKey, { read: 0, written: 0 });
      countSql(ctx.storage.sql, c, perObjectRows.get(objectKey));
      // Cloudflare bills each setAlarm() as one row written.
      const setAlarm = ctx.storage.setAlarm.bind(ctx.storage);
      ctx.storage.setAlarm = (...args) => {
        c.rows_written++;
        perObjectRows.get(objectKey).written++;
        c.set_alarms++;
        return setAlarm(...args);
      };
      super(ctx, env);
      this.__benchKey = objectKey;
    }
  }
  for (const name of methodNames(Base)) {
    const kind = name === "fetch" ? "fetch" : name === "alarm" ? "alarm" : name === "webSocketMessage" ? "ws_messages" : name === "webSocketClose" || name === "webSocketError" ? "ws_closes" : "rpc";
    // Private helpers are not reachable over RPC; public methods other than the lifecycle ones are RPC.
    if (kind === "rpc" && (LIFECYCLE.has(name) || UNCOUNTED.has(name))) continue;
    const original = Base.prototype[name] ?? findMethod(Base, name);
    Object.defineProperty(Counted.prototype, name, {
      configurable: true,
      writable: true,
      value: function (...args) {
        c[kind]++;
        c.methods[name] = (c.methods[name] ?? 0) + 1;
        // WebSocket messages are billed apart from requests (20:1), closes not at all; an object's
        // load (the scale table) is every event it handles.
        if (kind !== "ws_messages" && kind !== "ws_closes") c.requests++;
        const key = this.__benchKey;
        if (kind !== "ws_closes") {
          perObject.set(key, (perObject.get(key) ?? 0) + 1);
          let seconds = perObjectSecond.get(key);
          if (!seconds) perObjectSecond.set(key, (seconds = new Map()));
          const second = Math.floor(Date.now() / 1000);
          seconds.set(second, (seconds.get(second) ?? 0) + 1);
        }
        inFlight.set(key, (inFlight.get(key) ?? 0) + 1);
        const settled = () => inFlight.set(key, inFlight.get(key) - 1);
        let result;
        try {
          result = original.apply(this, args);
        } catch (err) {
          settled();
          throw err;
        }
        if (result && typeof result.then === "function") return result.finally(settled);
        settled();
        return result;
      },
    });
  }
  Object.defineProperty(Counted, "name", { value: className });
  return Counted;
}

function findMethod(Base, name) {
  for (let proto = Base.prototype; proto; proto = Object.getPrototypeOf(proto)) {
    const d = Object.getOwnPropertyDescriptor(proto, name);
    if (d && typeof d.value === "function") return d.value;
  }
  return undefined;
}

/**
 * The table a statement writes (its first INSERT, REPLACE, UPDATE or DELETE), so the cost model can
 * tell a heartbeat's own rows from a flush window's (scripts/bench/cost-model.mjs); rows written by
 * triggers count with the statement that fired them.
 */
const WRITES = /^\s*(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|REPLACE\s+INTO|UPDATE(?:\s+OR\s+\w+)?|DELETE\s+FROM)\s+(\w+)/i;
const tableOf = (query) => WRITES.exec(query)?.[1] ?? "other";

/**
 * Counts the rows each statement read and wrote. A cursor's counts are final once it is consumed,
 * which a caller does before its next statement (cursors do not outlive an await), so each
 * statement's counts are added when the next one starts, or when the totals are read.
 */
const pendingCursors = new Set();
function settle(entry) {
  if (!pendingCursors.delete(entry)) return;
  const { cursor, c, rows } = entry;
  c.rows_read += cursor.rowsRead;
  c.rows_written += cursor.rowsWritten;
  rows.read += cursor.rowsRead;
  rows.written += cursor.rowsWritten;
  if (cursor.rowsWritten > 0) c.rows_written_by_table[entry.table] = (c.rows_written_by_table[entry.table] ?? 0) + cursor.rowsWritten;
}
function countSql(sql, c, rows) {
  const exec = sql.exec.bind(sql);
  let last = null;
  sql.exec = (query, ...bindings) => {
    if (last) settle(last);
    const cursor = exec(query, ...bindings);
    last = { cursor, c, rows, table: tableOf(query) };
    pendingCursors.add(last);
    return cursor;
  };
}

function snapshot(withSeconds = false) {
  for (const entry of [...pendingCursors]) settle(entry);
  const busiest = {};
  for (const [key, n] of perObject) {
    const cls = key.slice(0, key.indexOf("/"));
    if (!busiest[cls] || n > busiest[cls].events) busiest[cls] = { object: key.slice(cls.length + 1), events: n };
  }
  return {
    ...counts,
    classes: structuredClone(counts.classes),
    per_object: Object.fromEntries([...perObject].filter(([, n]) => n > 0)),
    per_object_rows: Object.fromEntries([...perObjectRows].filter(([, r]) => r.read > 0 || r.written > 0).map(([k, r]) => [k, { ...r }])),
    in_flight: Object.fromEntries([...inFlight].filter(([, n]) => n > 0)),
    ...(withSeconds ? { per_object_seconds: Object.fromEntries([...perObjectSecond].map(([key, seconds]) => [key, Object.fromEntries(seconds)])) } : {}),
    busiest,
  };
}
globalThis.__benchCounts = () => snapshot();

const wrapped = {};
for (const [name, value] of Object.entries(bundle)) {
  if (name === "default") continue;
  wrapped[name] = typeof value === "function" && value.prototype && methodNames(value).size > 0 ? wrapClass(name, value) : value;
}

// serve.mjs replaces the next line with `export const { <the classes of wrangler.toml's bindings> } = wrapped;`.
// EXPORT_CLASSES

export default {
  ...bundle.default,
  async fetch(request, env, ctx) {
    if (new URL(request.url).pathname === "/__bench/counts") {
      return new Response(JSON.stringify(snapshot(true)), { headers: { "Content-Type": "application/json" } });
    }
    counts.worker_requests++;
    return bundle.default.fetch(request, env, ctx);
  },
};
