#!/usr/bin/env node
// CPU-profiles workerd (V8 inspector) while fleet-sim's check-in throughput phase runs: the method
// behind BENCHMARKS.md's "Where the time goes".
//
//   node scripts/bench/profile.mjs [--agents 500] [--throughput-seconds 8] [--accept-encoding identity]
//        [--interval-us 200] [--inspector-port 9231] [--out bench-results/throughput.cpuprofile] [--direct]
//        [--phase throughput|enroll]
//
// --phase enroll profiles the enrollment phase instead (from the simulator's start to its
// "enrollment: …" line; the policy PUT before it is one request) into <out> and stops there.
//
// The profile opens in Chrome DevTools (Performance panel, "Load profile"); the bundle it names is
// .wrangler/bench-bundle/index.js (not minified, with its source map beside it). A summary of self
// time by function is printed when it is saved.
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "./args.mjs";
import { startServer, startSimulator } from "./server-process.mjs";

// Node 20 has a WebSocket client only behind a flag.
if (typeof WebSocket === "undefined") {
  const child = spawn(process.execPath, ["--experimental-websocket", ...process.argv.slice(1)], { stdio: "inherit" });
  child.on("exit", (code) => process.exit(code ?? 1));
} else {
  await main();
}

async function main() {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const root = path.resolve(here, "../..");
  const args = parseArgs(process.argv.slice(2));
  const inspectorPort = Number(args["inspector-port"] ?? 9231);
  const out = path.resolve(root, args.out ?? "bench-results/throughput.cpuprofile");
  mkdirSync(path.dirname(out), { recursive: true });

  const port = Number(args.port ?? 18400);
  const { server, ready } = await startServer(["--port", String(port), "--storage", "memory", "--inspector-port", String(inspectorPort),
    "--var", "CHECKIN_LONG_POLL=30m", "--var", "CHECKIN_JITTER=1s", "--var", "CHECKIN_MIN_POLL=500ms", "--var", "FLEET_MAX_AGENTS=max", "--max-seconds", "900",
    ...(args.direct ? ["--direct-port", String(port + 100)] : [])]);

  // workerd lists one target per isolate; the project's Worker and objects share the user one.
  const targets = await (await fetch(`http://127.0.0.1:${inspectorPort}/json/list`)).json();
  const target = targets.find((t) => !/internal|loopback|entry/i.test(t.id ?? "")) ?? targets[0];
  const inspector = await connect(target.webSocketDebuggerUrl.replace("localhost", "127.0.0.1"));
  await inspector.call("Profiler.enable");
  await inspector.call("Profiler.setSamplingInterval", { interval: Number(args["interval-us"] ?? 200) });

  const sim = startSimulator(["--url", ready.directUrl ?? ready.url, "--admin-token", "bench-admin-token", "--server-pids", ready.workerdPids.join(","),
    "--out", `${out}.fleet-sim.json`, "--agents", String(args.agents ?? 500), "--rounds", "1", "--throughput-seconds", String(args["throughput-seconds"] ?? 8),
    "--accept-encoding", String(args["accept-encoding"] ?? "gzip")], { stdin: "ignore" });
  // fleet-sim logs "throughput: start <route>" when a route's run begins and "throughput: <n>/s <route> (…)"
  // when it ends: the answered check-in (checkin_throughput) and the parked one (checkin_parked), one
  // profile each (the parked one in <out>.parked.cpuprofile).
  const enrollOnly = args.phase === "enroll";
  if (enrollOnly) await inspector.call("Profiler.start");
  for await (const line of createInterface({ input: sim.stderr })) {
    process.stderr.write(`${line}\n`);
    if (enrollOnly) {
      if (!/\] enrollment: \d+ in /.test(line)) continue;
      const { profile } = await inspector.call("Profiler.stop");
      writeFileSync(out, JSON.stringify(profile));
      console.error(`[profile] enroll: ${out}\n${selfTimeSummary(profile, 30)}\n[profile] enroll: self time by source file\n${bySourceFile(profile, path.join(root, ".wrangler/bench-bundle/index.js"), 25)}`);
      sim.kill();
      break;
    }
    if (/throughput\] throughput: start \w+$/.test(line)) await inspector.call("Profiler.start");
    const ended = /throughput\] throughput: [\d.]+\/s (\w+)/.exec(line);
    if (ended) {
      const { profile } = await inspector.call("Profiler.stop");
      const file = ended[1] === "checkin_parked" ? out.replace(/\.cpuprofile$/, ".parked.cpuprofile") : out;
      writeFileSync(file, JSON.stringify(profile));
      console.error(`[profile] ${ended[1]}: ${file}\n${selfTimeSummary(profile, 30)}\n[profile] ${ended[1]}: self time by source file\n${bySourceFile(profile, path.join(root, ".wrangler/bench-bundle/index.js"), 25)}`);
    }
  }
  inspector.close();
  server.stdin.end();
}

/** A Chrome DevTools protocol session over the inspector's WebSocket. */
async function connect(url) {
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => {
    ws.addEventListener("open", resolve, { once: true });
    ws.addEventListener("error", reject, { once: true });
  });
  const pending = new Map();
  let next = 1;
  ws.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    pending.get(message.id)?.(message.result);
    pending.delete(message.id);
  });
  return {
    call: (method, params = {}) =>
      new Promise((resolve) => {
        const id = next++;
        pending.set(id, resolve);
        ws.send(JSON.stringify({ id, method, params }));
      }),
    close: () => ws.close(),
  };
}

/**
 * Self time per source file of the bundle (esbuild marks each with a `// path` line), plus the
 * runtime's own categories: which step of a check-in the CPU went to.
 */
function bySourceFile(profile, bundlePath, top) {
  const lines = readFileSync(bundlePath, "utf8").split("\n");
  const starts = [];
  lines.forEach((line, i) => {
    const m = /^\/\/ ((?:src|durable|node_modules)\/\S+)$/.exec(line);
    if (m) starts.push([i, m[1].replace(/^node_modules\/((?:@[^/]+\/)?[^/]+).*/, "node_modules/$1")]);
  });
  const fileOf = (line) => {
    let lo = 0;
    let hi = starts.length - 1;
    let found = "(bundle preamble)";
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (starts[mid][0] <= line) {
        found = starts[mid][1];
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  };
  return shareOfSamples(profile, top, ({ functionName, url, lineNumber }) =>
    url && url.endsWith("index.js") ? fileOf(lineNumber) : `${functionName || "(anonymous)"} (native)`,
  );
}

/** Self time per function (name, bundle file:line), from the profile's samples. */
function selfTimeSummary(profile, top) {
  return shareOfSamples(profile, top, ({ functionName, url, lineNumber }) =>
    `${functionName || "(anonymous)"} ${url ? `${path.basename(url)}:${lineNumber + 1}` : "(native)"}`,
  );
}

/** The `top` keys by their share of the profile's samples; `keyOf` names a sample's call frame. */
function shareOfSamples(profile, top, keyOf) {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const ticks = new Map();
  for (const id of profile.samples) {
    const key = keyOf(nodes.get(id).callFrame);
    ticks.set(key, (ticks.get(key) ?? 0) + 1);
  }
  const total = profile.samples.length;
  return [...ticks]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([key, n]) => `${((100 * n) / total).toFixed(1).padStart(5)}%  ${key}`)
    .join("\n");
}
