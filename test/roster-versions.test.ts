import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { policyHub } from "../src/durable-stubs";
import { orThrow } from "../src/errors";
import { agentSummary } from "./helpers";

/**
 * Roster rows arrive as an agent store's effects: in order, but a delivery may be retried after it
 * landed. The version (the store's effect sequence) keeps a repeated or older effect from undoing
 * a newer one, whatever its kind.
 */
describe("roster effects are applied idempotently by version", () => {
  it("ignores older rows, times and removals, and applies newer ones", async () => {
    const hub = policyHub(env, "versions-p");
    const row = async () =>
      orThrow(await hub.listAgents("versions-p", { sortField: "agent_id", sortOrder: "asc", limit: 10, offset: 0, includeInactive: true }, 600_000)).items.map(
        ({ agent_id, last_checkin, last_checkin_status }) => ({ agent_id, last_checkin, last_checkin_status }),
      );
    const none = { upserts: [], removes: [], touches: [] };
    await hub.applyRoster("versions-p", { ...none, upserts: [{ summary: agentSummary("versioned-agent"), version: 5 }] });
    // A retried older time, an older row and an older removal change nothing.
    await hub.applyRoster("versions-p", { ...none, touches: [{ agentId: "versioned-agent", lastCheckin: "2026-01-01T00:00:30.000Z", version: 4 }] });
    await hub.applyRoster("versions-p", { ...none, upserts: [{ summary: agentSummary("versioned-agent", { last_checkin_status: "error" }), version: 3 }] });
    await hub.applyRoster("versions-p", { ...none, removes: [{ agentId: "versioned-agent", version: 2 }] });
    expect(await row()).toEqual([{ agent_id: "versioned-agent", last_checkin: "2026-01-01T00:01:00.000Z", last_checkin_status: "online" }]);
    // A newer time moves only the time; the same batch delivered twice is the same.
    const touch = { ...none, touches: [{ agentId: "versioned-agent", lastCheckin: "2026-01-01T00:02:00.000Z", version: 6 }] };
    await hub.applyRoster("versions-p", touch);
    await hub.applyRoster("versions-p", touch);
    expect(await row()).toEqual([{ agent_id: "versioned-agent", last_checkin: "2026-01-01T00:02:00.000Z", last_checkin_status: "online" }]);
    // A row written before that time (version 5, retried) does not take it back; a newer removal removes.
    await hub.applyRoster("versions-p", { ...none, upserts: [{ summary: agentSummary("versioned-agent"), version: 5 }] });
    expect((await row())[0]!.last_checkin).toBe("2026-01-01T00:02:00.000Z");
    await hub.applyRoster("versions-p", { ...none, removes: [{ agentId: "versioned-agent", version: 7 }] });
    expect(await row()).toEqual([]);
  });
});
