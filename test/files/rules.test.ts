import { describe, expect, it } from "vitest";
import { FleetError } from "../../src/errors";
import type { JsonObject } from "../../src/protocol/parse";
import { parseRange } from "../../src/protocol/range";
import { CHUNK_SIZE, transitHashOf, validateBegin, verifyChunks } from "../../src/protocol/upload";
import { policyHasArtifact } from "../../src/routes/artifacts";

const payload = () => ({ action_id: "a", agent_id: "b", src: "agent", file: { name: "n", mime_type: "m", size: 10 } });
const opts = (maxFileSize: number | null) => ({ maxFileSize, namespaces: ["ns"], uploadId: "u", now: 1_700_000_000_000 });

describe("upload begin rules", () => {
  it("honours the size limit: 0 disables uploads, above the limit is ErrFileSizeTooLarge", () => {
    expect(() => validateBegin(payload(), opts(0))).toThrow(new FleetError("FileFeatureDisabled"));
    expect(() => validateBegin(payload(), opts(9))).toThrow(new FleetError("FileSizeTooLarge"));
    expect(validateBegin(payload(), opts(10)).size).toBe(10);
  });

  it("enriches the document like fleet-server", () => {
    expect(validateBegin(payload(), opts(null)).doc).toEqual({
      action_id: "a",
      agent_id: "b",
      src: "agent",
      file: { name: "n", mime_type: "m", size: 10, ChunkSize: 4194304, Status: "AWAITING_UPLOAD" },
      upload_id: "u",
      upload_start: 1_700_000_000_000,
      "@timestamp": 1_700_000_000_000,
      namespaces: ["ns"],
    });
  });
});

describe("upload completion rules", () => {
  const digest = (n: number) => n.toString(16).padStart(64, "0");
  it("needs every position, exact sizes and last flags, and the transit hash", async () => {
    const chunks = [
      { pos: 0, sha2: digest(1), size: CHUNK_SIZE, last: false },
      { pos: 1, sha2: digest(2), size: 5, last: true },
    ];
    const transit = await transitHashOf([digest(1), digest(2)]);
    expect(await verifyChunks(chunks, CHUNK_SIZE + 5, transit)).toBe("ok");
    expect(await verifyChunks(chunks, CHUNK_SIZE + 5, transit.toUpperCase())).toBe("ok");
    expect(await verifyChunks([chunks[1]!], CHUNK_SIZE + 5, transit)).toBe("missing");
    expect(await verifyChunks([chunks[0]!, { ...chunks[1]!, pos: 2 }], CHUNK_SIZE + 5, transit)).toBe("missing");
    expect(await verifyChunks([{ ...chunks[0]!, last: true }, chunks[1]!], CHUNK_SIZE + 5, transit)).toBe("invalid");
    expect(await verifyChunks([chunks[0]!, { ...chunks[1]!, last: false }], CHUNK_SIZE + 5, transit)).toBe("invalid");
    expect(await verifyChunks([chunks[0]!, { ...chunks[1]!, size: 0 }], CHUNK_SIZE + 5, transit)).toBe("invalid");
    expect(await verifyChunks(chunks, CHUNK_SIZE + 5, digest(3))).toBe("invalid");
    // The chunks must add up to the declared size: 100 bytes sent for a declared 10 is invalid.
    expect(await verifyChunks([{ pos: 0, sha2: digest(1), size: 100, last: true }], 10, await transitHashOf([digest(1)]))).toBe("invalid");
  });
});

describe("Range parsing (Go's net/http rules)", () => {
  it.each([
    [undefined, { kind: "none" }],
    ["bytes=0-9", { kind: "ranges", ranges: [{ start: 0, length: 10 }] }],
    ["bytes=90-", { kind: "ranges", ranges: [{ start: 90, length: 10 }] }],
    ["bytes=-200", { kind: "ranges", ranges: [{ start: 0, length: 100 }] }],
    ["bytes=0-1, 3-4", { kind: "ranges", ranges: [{ start: 0, length: 2 }, { start: 3, length: 2 }] }],
    ["bytes=100-", { kind: "invalid" }],
    ["bytes=100-,0-1", { kind: "ranges", ranges: [{ start: 0, length: 2 }] }],
    ["bytes=-0", { kind: "invalid" }],
    ["bytes=5", { kind: "invalid" }],
    ["bits=0-1", { kind: "invalid" }],
    ["bytes=", { kind: "ranges", ranges: [] }],
  ])("%s", (header, expected) => {
    expect(parseRange(header, 100)).toEqual(expected);
  });
});

describe("artifact authorization", () => {
  const policy: JsonObject = {
    outputs: {},
    inputs: [{ id: "x" }, { artifact_manifest: { artifacts: { "endpoint-a": { decoded_sha256: "abc" } } } }],
  };
  it("matches identifier and decoded sha256 exactly", () => {
    expect(policyHasArtifact(policy, "endpoint-a", "abc")).toBe(true);
    expect(policyHasArtifact(policy, "endpoint-a", "ABC")).toBe(false);
    expect(policyHasArtifact(policy, "endpoint-b", "abc")).toBe(false);
    expect(policyHasArtifact(policy, "__proto__", "abc")).toBe(false);
    expect(policyHasArtifact({ outputs: {} }, "endpoint-a", "abc")).toBe(false);
  });
});
