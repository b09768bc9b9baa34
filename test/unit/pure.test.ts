import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FLUSHED_BY_MS, holdEnd } from "../../durable/agent-effects";
import { CHECKIN_FLUSH_MS } from "../../durable/checkin-journal";
import { agentIdOfAccessKey, newAccessKeyId } from "../../src/auth/access-key";
import { parseApiKeyHeader } from "../../src/auth/api-key";
import { hashReplaceToken, verifyReplaceToken } from "../../src/auth/replace-token";
import { pollDuration } from "../../src/checkin/poll-duration";
import { RevisionCache } from "../../src/checkin/revision-cache";
import { shardCountFor } from "../../src/checkin/shard-count";
import { FleetError } from "../../src/errors";
import { ERROR_TABLE } from "../../src/http/error-table";
import { fleetConfig, type Env } from "../../src/config";
import { withFleetHosts } from "../../src/policy/fleet-hosts";
import { effectiveRevision } from "../../src/policy/revision-claim";
import { parsePolicyActionId } from "../../src/protocol/ack";
import { shapeActionData } from "../../src/protocol/action";
import { unhealthyReason } from "../../src/protocol/agent-doc";
import { parseGoDuration } from "../../src/protocol/duration";
import { normaliseTags } from "../../src/protocol/enroll";
import { checkUserAgent } from "../../src/protocol/user-agent";

const server = { number: "9.6.0", major: 9, minor: 6, buildHash: "x", buildTime: "x" };
const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    return err instanceof FleetError ? err.code : "other";
  }
  return undefined;
};

describe("parseGoDuration", () => {
  it.each([
    ["5m", 300_000],
    ["30s", 30_000],
    ["1h30m", 5_400_000],
    ["1.5s", 1_500],
    ["300ms", 300],
    ["0", 0],
    ["-1m", -60_000],
  ])("%s is %d ms", (text, ms) => expect(parseGoDuration(text)).toBe(ms));
  it.each(["abc", "5", "", "1d", "m"])("%s is not a duration", (text) => expect(parseGoDuration(text)).toBeNull());
});

describe("pollDuration (fleet-server calcPollDuration)", () => {
  const timings = { longPollMs: 300_000, jitterMs: 30_000, minPollMs: 60_000, maxPollMs: 3_600_000 };
  it.each([
    ["default, no jitter drawn", undefined, 0, 0, 300_000],
    ["default minus jitter", undefined, 0, 0.5, 285_000],
    ["poll_timeout 3m → 1m floor", 180_000, 0, 0, 60_000],
    ["poll_timeout 30s → 1m floor", 30_000, 0, 0, 60_000],
    ["poll_timeout 10m → 8m", 600_000, 0, 0, 480_000],
    ["poll_timeout 5h → 1h ceiling", 18_000_000, 0, 0, 3_600_000],
    ["setup time is subtracted", undefined, 10_000, 0, 290_000],
    ["setup longer than the hold → 1 ms", 30_000, 70_000, 0, 1],
  ])("%s", (_name, pollTimeout, elapsed, random, expected) => {
    expect(pollDuration(timings, pollTimeout, elapsed, () => random)).toBe(expected);
  });
  it("skips a jitter that is not smaller than the hold", () => {
    expect(pollDuration({ ...timings, longPollMs: 10_000 }, undefined, 0, () => 0.9)).toBe(10_000);
  });
});

describe("checkUserAgent", () => {
  it.each([
    ["Elastic Agent v9.6.0", "9.6.0"],
    ["elastic agent 8.6.0-SNAPSHOT", "8.6.0"],
    ["Elastic Agent v7.13.0", "7.13.0"],
    ["Elastic Agent v9.7.0-SNAPSHOT", "9.7.0"],
  ])("accepts %s", (ua, version) => expect(checkUserAgent(ua, server)).toBe(version));
  it.each([
    ["elastic-agent 9.0.0", "InvalidUserAgent"],
    [undefined, "InvalidUserAgent"],
    ["Elastic Agent vX", "InvalidUserAgent"],
    ["Elastic Agent v9.7.0", "UnsupportedVersion"],
    ["Elastic Agent v10.0.0", "UnsupportedVersion"],
    ["Elastic Agent v7.12.9", "UnsupportedVersion"],
  ])("rejects %s with %s", (ua, code) => expect(codeOf(() => checkUserAgent(ua, server))).toBe(code));
});

describe("parseApiKeyHeader", () => {
  it("splits at the first colon", () => {
    expect(parseApiKeyHeader(`ApiKey ${btoa("id:se:cret")}`)).toEqual({ id: "id", secret: "se:cret" });
  });
  it.each([
    [undefined, "NoAuthHeader"],
    ["", "NoAuthHeader"],
    ["apikey abc", "MalformedHeader"],
    ["Bearer abc", "MalformedHeader"],
    ["ApiKey !!!", "InvalidToken"],
    [`ApiKey ${btoa("\xff\xfe:x")}`, "InvalidToken"],
    [`ApiKey ${btoa("no-colon")}`, "MalformedToken"],
    [`ApiKey ${btoa(":secret")}`, "MalformedToken"],
  ])("%s → %s", (header, code) => expect(codeOf(() => parseApiKeyHeader(header))).toBe(code));
  it("reads any UTF-8 id and secret, ASCII (read without a decoder) or not, as written", () => {
    const part = fc.string({ unit: "binary", minLength: 1 }).filter((s) => !s.includes(":"));
    fc.assert(
      fc.property(part, fc.string({ unit: "binary", minLength: 1 }), (id, secret) => {
        const bytes = new TextEncoder().encode(`${id}:${secret}`);
        const header = `ApiKey ${btoa(String.fromCharCode(...bytes))}`;
        // A leading BOM is the one thing UTF-8 decoding drops.
        const expected = `${id}:${secret}`.replace(/^\uFEFF/, "");
        const colon = expected.indexOf(":");
        if (colon <= 0) return;
        expect(parseApiKeyHeader(header)).toEqual({ id: expected.slice(0, colon), secret: expected.slice(colon + 1) });
      }),
      { numRuns: 500 },
    );
  });
});

describe("access key ids", () => {
  it.each(["5f7c2a4e-9b1d-4c3e-8a6f-2d1e0b9c7a35", "host:with.dots", "ü"])("name their agent %s", (id) => {
    expect(agentIdOfAccessKey(newAccessKeyId(id))).toBe(id);
  });
  it("are never confused with enrollment key ids", () => {
    expect(agentIdOfAccessKey("Dwv7B-tfX7WFGkciMwuf")).toBeNull();
  });
});

describe("replace tokens", () => {
  it("verify only the original token", async () => {
    const hash = await hashReplaceToken("t1");
    expect(await verifyReplaceToken("t1", hash)).toBe(true);
    expect(await verifyReplaceToken("t2", hash)).toBe(false);
    expect(await verifyReplaceToken("t1", "plain")).toBe(false);
  });
});

describe("effectiveRevision (processPolicyDetails)", () => {
  it.each([
    ["no report: the acked revision", { stored: 3 }, 5, 3],
    ["reported revision", { stored: 1, reported: { policyId: "p", revision: 4 } }, 5, 4],
    ["reassigned: another policy", { stored: 1, reported: { policyId: "q", revision: 4 } }, 5, 0],
    ["newer than known", { stored: 1, reported: { policyId: "p", revision: 9 } }, 5, 0],
  ])("%s", (_name, claim, latest, expected) => expect(effectiveRevision(claim, "p", latest)).toBe(expected));
});

describe("action data", () => {
  it("drops unknown keys per type", () => {
    expect(shapeActionData("SETTINGS", { log_level: "debug", junk: 1 })).toEqual({ ok: true, data: { log_level: "debug" } });
    expect(shapeActionData("UNENROLL", { anything: 1 })).toEqual({ ok: true, data: null });
    expect(shapeActionData("REQUEST_DIAGNOSTICS", undefined)).toEqual({ ok: true, data: null });
    expect(shapeActionData("INPUT_ACTION", { query: "x" })).toEqual({ ok: true, data: { query: "x" } });
  });
  it("refuses data that does not fit, and undelivered types", () => {
    expect(shapeActionData("POLICY_REASSIGN", {})).toMatchObject({ ok: false });
    expect(shapeActionData("SETTINGS", { log_level: "loud" })).toMatchObject({ ok: false });
    expect(shapeActionData("FORCE_UNENROLL", null)).toMatchObject({ ok: false });
  });
});

describe("small protocol helpers", () => {
  it("parse policy action ids of 3 and 4 segments", () => {
    expect(parsePolicyActionId("policy:p1:3")).toEqual({ policyId: "p1", revision: 3 });
    expect(parsePolicyActionId("policy:p1:3:1")).toEqual({ policyId: "p1", revision: 3 });
    expect(parsePolicyActionId("policy:p1")).toBeNull();
    expect(parsePolicyActionId("policy:p1:x")).toBeNull();
  });
  it("normalise tags", () => expect(normaliseTags([" b", "a", "b", ""])).toEqual(["a", "b"]));
  it("derive unhealthy reasons", () => {
    const units = [
      { id: "o", type: "output", status: "FAILED" },
      { id: "i", type: "input", status: "HEALTHY" },
    ];
    expect(unhealthyReason([{ id: "c", units }], "error")).toEqual(["output"]);
    expect(unhealthyReason(null, "DEGRADED")).toEqual(["other"]);
    expect(unhealthyReason(null, "online")).toBeNull();
  });
});

describe("error table", () => {
  it("gives each agent-facing error name one status", () => {
    const statusByName = new Map<string, number>();
    for (const row of Object.values(ERROR_TABLE)) {
      const seen = statusByName.get(row.name);
      if (seen !== undefined) expect({ name: row.name, status: row.status }).toEqual({ name: row.name, status: seen });
      statusByName.set(row.name, row.status);
    }
  });
});

describe("fleet.hosts (withFleetHosts, FLEET_SERVER_HOSTS)", () => {
  const hosts = ["https://fleet.example.com", "https://fleet-eu.example.com:443"];
  const outputs = { default: { type: "elasticsearch", hosts: ["https://es:9200"] } };

  it("adds the server's hosts to a policy that names none, keeping the rest of `fleet`", () => {
    expect(withFleetHosts({ outputs }, hosts)).toEqual({ outputs, fleet: { hosts } });
    const ssl = { certificate_authorities: ["/etc/ca.pem"] };
    expect(withFleetHosts({ outputs, fleet: { ssl } }, hosts)).toEqual({ outputs, fleet: { ssl, hosts } });
  });

  it("keeps a policy's own hosts, and adds nothing when none are configured", () => {
    const own = { outputs, fleet: { hosts: ["https://other:8220"] } };
    expect(withFleetHosts(own, hosts)).toBe(own);
    const bare = { outputs };
    expect(withFleetHosts(bare, [])).toBe(bare);
  });

  it("reads FLEET_SERVER_HOSTS as a comma-separated list of http(s) URLs", () => {
    const config = (value: string) => fleetConfig({ FLEET_SERVER_HOSTS: value } as unknown as Env).serverHosts;
    expect(config(" https://a.example.com , http://10.0.0.5:8220,")).toEqual(["https://a.example.com", "http://10.0.0.5:8220"]);
    expect(config("")).toEqual([]);
    expect(() => config("fleet.example.com:8220")).toThrow('configuration: FLEET_SERVER_HOSTS has "fleet.example.com:8220", which is not an http(s) URL');
    expect(() => config("ftp://fleet.example.com")).toThrow("not an http(s) URL");
  });
});

describe("roster shards per policy (FLEET_MAX_AGENTS, AGENTS_PER_ROSTER_SHARD)", () => {
  const shards = (vars: Record<string, string>) => fleetConfig(vars as unknown as Env).rosterShards;

  it("lays a policy out for the whole declared fleet, 50,000 rows a shard by default", () => {
    expect(shards({})).toBe(1);
    expect(shards({ FLEET_MAX_AGENTS: "50000" })).toBe(1);
    expect(shards({ FLEET_MAX_AGENTS: "50001" })).toBe(2);
    expect(shards({ FLEET_MAX_AGENTS: "1000000" })).toBe(20);
    expect(shards({ FLEET_MAX_AGENTS: "max" })).toBe(20);
    expect(shards({ FLEET_MAX_AGENTS: "1000000", AGENTS_PER_ROSTER_SHARD: "1000000" })).toBe(1);
    expect(shards({ FLEET_MAX_AGENTS: "100000000", AGENTS_PER_ROSTER_SHARD: "1" })).toBe(256);
  });

  it("refuses a shard size that is not a positive whole number", () => {
    expect(() => shards({ AGENTS_PER_ROSTER_SHARD: "0" })).toThrow('configuration: AGENTS_PER_ROSTER_SHARD="0" is not a positive whole number');
    expect(() => shards({ AGENTS_PER_ROSTER_SHARD: "lots" })).toThrow("AGENTS_PER_ROSTER_SHARD");
  });
});

describe("how far a policy's views may lag heartbeats (CHECKIN_VIEW_LAG)", () => {
  const lag = (vars: Record<string, string>) => fleetConfig(vars as unknown as Env).checkinViewLagMs;

  it("is a tenth of AGENT_OFFLINE_AFTER by default (a minute), any duration shorter than it otherwise", () => {
    expect(lag({})).toBe(60_000);
    expect(lag({ AGENT_OFFLINE_AFTER: "3s" })).toBe(300);
    expect(lag({ CHECKIN_VIEW_LAG: "0s" })).toBe(0);
    expect(lag({ CHECKIN_VIEW_LAG: "9m59s" })).toBe(599_000);
  });

  it("ends a hold 12 s past the next multiple of the lag, when every check-in before that multiple is flushed", () => {
    const minute = Date.UTC(2026, 11, 2, 10, 0);
    expect(holdEnd(minute + 20_000, 60_000)).toBe(minute + 72_000);
    expect(holdEnd(minute + 11_999, 60_000)).toBe(minute + 12_000);
    expect(holdEnd(minute + 12_000, 60_000)).toBe(minute + 72_000);
    expect(holdEnd(minute + 5_000, 30_000)).toBe(minute + 12_000);
    expect(holdEnd(minute + 20_000, 30_000)).toBe(minute + 42_000);
    expect(holdEnd(minute + 20_000, 0)).toBe(minute + 20_000);
    // Past the store's flush window: a check-in of the span is flushed before its send.
    expect(FLUSHED_BY_MS).toBeGreaterThan(CHECKIN_FLUSH_MS);
  });

  it("refuses a lag at which agents that check in would look offline, or no duration", () => {
    expect(() => lag({ CHECKIN_VIEW_LAG: "10m" })).toThrow('configuration: CHECKIN_VIEW_LAG="10m" must be shorter than AGENT_OFFLINE_AFTER');
    expect(() => lag({ CHECKIN_VIEW_LAG: "2m", AGENT_OFFLINE_AFTER: "90s" })).toThrow("shorter than AGENT_OFFLINE_AFTER");
    expect(() => lag({ CHECKIN_VIEW_LAG: "soon" })).toThrow('CHECKIN_VIEW_LAG="soon" is not a duration');
  });
});

describe("fan-out shard counts and the rollout rate (docs/scale.md §3, §4)", () => {
  const config = (vars: Record<string, string>) => fleetConfig(vars as unknown as Env);

  it("reads POLICY_HUB_SHARDS as auto (the default) or a fixed count, with a power-of-two maximum", () => {
    expect(config({}).hubShards).toEqual({ fixed: null, max: 256, agentsPerShard: 5000 });
    expect(config({ POLICY_HUB_SHARDS: "4" }).hubShards).toEqual({ fixed: 4, max: 4, agentsPerShard: 5000 });
    expect(config({ POLICY_HUB_SHARDS: "auto", POLICY_HUB_SHARDS_MAX: "64", POLICY_HUB_SHARD_AGENTS: "2000" }).hubShards).toEqual({ fixed: null, max: 64, agentsPerShard: 2000 });
    expect(() => config({ POLICY_HUB_SHARDS: "many" })).toThrow('configuration: POLICY_HUB_SHARDS="many" must be "auto" or a whole number from 1 to 256');
    expect(() => config({ POLICY_HUB_SHARDS: "300" })).toThrow("must be \"auto\" or a whole number from 1 to 256");
    expect(() => config({ POLICY_HUB_SHARDS_MAX: "200" })).toThrow('configuration: POLICY_HUB_SHARDS_MAX="200" must be a power of two from 1 to 256');
    expect(() => config({ POLICY_HUB_SHARD_AGENTS: "0" })).toThrow('configuration: POLICY_HUB_SHARD_AGENTS="0" must be a whole number from 1 to 32768');
  });

  it("reads ROLLOUT_RATE in agents per second, 16,000 by default", () => {
    expect(config({}).rolloutRate).toBe(16_000);
    expect(config({ ROLLOUT_RATE: "500" }).rolloutRate).toBe(500);
    expect(config({ ROLLOUT_RATE: "0.5" }).rolloutRate).toBe(0.5);
    for (const bad of ["0", "-3", "fast", ""]) {
      expect(() => config({ ROLLOUT_RATE: bad })).toThrow(`configuration: ROLLOUT_RATE=${JSON.stringify(bad)} must be a number of agents per second from 0.01 to 10000000`);
    }
  });

  it("grows a policy's shard count to ceil(agents / 5,000) rounded up to a power of two, at most the maximum", () => {
    const auto = { fixed: null, max: 256, agentsPerShard: 5000 };
    expect(shardCountFor(auto, 0, 1)).toBe(1);
    expect(shardCountFor(auto, 5000, 1)).toBe(1);
    expect(shardCountFor(auto, 5001, 1)).toBe(2);
    expect(shardCountFor(auto, 10_001, 2)).toBe(4);
    expect(shardCountFor(auto, 15_000, 2)).toBe(4);
    expect(shardCountFor(auto, 1_000_000, 1)).toBe(256);
    expect(shardCountFor({ ...auto, max: 64 }, 1_000_000, 1)).toBe(64);
    // A fixed count is every policy's, whatever its roster.
    expect(shardCountFor({ fixed: 4, max: 4, agentsPerShard: 5000 }, 1_000_000, 1)).toBe(4);
  });

  it("shrinks only once the roster fits in half of the smaller count, so a policy at a boundary does not flap", () => {
    const auto = { fixed: null, max: 256, agentsPerShard: 5000 };
    // 2 shards hold 5,001–10,000 agents; back at 5,000 or 2,501 they stay 2, at 2,500 they become 1.
    expect(shardCountFor(auto, 5000, 2)).toBe(2);
    expect(shardCountFor(auto, 2501, 2)).toBe(2);
    expect(shardCountFor(auto, 2500, 2)).toBe(1);
    expect(shardCountFor(auto, 100, 256)).toBe(1);
    expect(shardCountFor(auto, 300_000, 256)).toBe(128);
    // A lowered maximum applies at once.
    expect(shardCountFor({ ...auto, max: 8 }, 1_000_000, 256)).toBe(8);
  });

  it("remembers each policy's shard count as its shards last named it", () => {
    const cache = new RevisionCache(1);
    expect(cache.shardsOf("p")).toBeUndefined();
    cache.learnShards("p", 2);
    cache.learnShards("q", 8);
    expect([cache.shardsOf("p"), cache.shardsOf("q")]).toEqual([2, 8]);
    cache.learnShards("p", 4);
    expect(cache.shardsOf("p")).toBe(4);
  });
});
