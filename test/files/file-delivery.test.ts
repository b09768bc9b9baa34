import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { adminRequest, createEnrollmentKey, enrolledAgent } from "../helpers";
import { sha256Hex } from "../support/artifact-fixture";
import { bytesOf } from "../support/test-bytes";
import { errorHeaders, getFile, publishFile } from "./file-helpers";

describe("GET /api/fleet/file/{id}", () => {
  it("serves a file to its target agent with fleet-server's headers, and single ranges as 206", async () => {
    const agent = await enrolledAgent("fd-ok");
    const body = bytesOf(1000, 11);
    const published = await publishFile("fd-file-1", body, [agent.id, "someone-else"], { mime_type: "application/x-tar" });
    expect(published).toEqual({
      item: { id: "fd-file-1", name: "fd-file-1.bin", mime_type: "application/x-tar", size: 1000, sha256: await sha256Hex(body), created: expect.any(String), target_agents: [agent.id, "someone-else"].sort() },
    });
    const res = await getFile(agent.key, "fd-file-1");
    expect(res.status).toBe(200);
    expect(res.headers.get("accept-ranges")).toBe("bytes");
    expect(res.headers.get("content-type")).toBe("application/x-tar");
    expect(res.headers.get("content-length")).toBe("1000");
    expect(res.headers.get("x-file-sha2")).toBe(await sha256Hex(body));
    expect(res.headers.get("elastic-api-version")).toBe("2023-06-01");
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(body);

    const cases: Array<[string, number, number]> = [
      ["bytes=0-99", 0, 100],
      ["bytes=900-", 900, 100],
      ["bytes=-10", 990, 10],
      ["bytes=995-5000", 995, 5],
    ];
    for (const [range, start, length] of cases) {
      const part = await getFile(agent.key, "fd-file-1", { Range: range });
      expect(part.status, range).toBe(206);
      expect(part.headers.get("content-range")).toBe(`bytes ${start}-${start + length - 1}/1000`);
      expect(part.headers.get("content-length")).toBe(String(length));
      expect(part.headers.get("accept-ranges")).toBe("bytes");
      expect(part.headers.get("x-file-sha2")).toBe(await sha256Hex(body));
      expect(new Uint8Array(await part.arrayBuffer())).toEqual(body.subarray(start, start + length));
    }
    // Ranges adding up to more than the file are ignored: the whole file.
    const greedy = await getFile(agent.key, "fd-file-1", { Range: "bytes=0-999,0-999" });
    expect(greedy.status).toBe(200);
    expect(new Uint8Array(await greedy.arrayBuffer())).toEqual(body);
  });

  it("answers 416 ErrRangeNotSatisfiable for a bad or multi-part range", async () => {
    const agent = await enrolledAgent("fd-range");
    await publishFile("fd-file-2", bytesOf(100, 2), [agent.id]);
    for (const range of ["bytes=200-300", "bytes=5-2", "items=0-1", "bytes=x-1"]) {
      const res = await getFile(agent.key, "fd-file-2", { Range: range });
      expect(res.status, range).toBe(416);
      expect(res.headers.get("content-range")).toBe("bytes */100");
      expect(Object.fromEntries(res.headers)).toMatchObject(errorHeaders);
      expect(await res.json()).toEqual({ statusCode: 416, error: "ErrRangeNotSatisfiable", message: "range not satisfiable" });
    }
    const multi = await getFile(agent.key, "fd-file-2", { Range: "bytes=0-1,5-6" });
    expect(multi.status).toBe(416);
    expect(multi.headers.get("content-range")).toBeNull();
    expect(await multi.json()).toEqual({ statusCode: 416, error: "ErrRangeNotSatisfiable", message: "Multipart ranges not satisfiable" });
  });

  it("is 404 ErrNoFile for another agent's file and for an unknown file", async () => {
    const owner = await enrolledAgent("fd-other");
    const stranger = await enrolledAgent("fd-other", { id: "fd-other-stranger" });
    await publishFile("fd-file-3", bytesOf(10, 3), [owner.id]);
    expect((await getFile(owner.key, "fd-file-3")).status).toBe(200);
    for (const [key, id] of [
      [stranger.key, "fd-file-3"],
      [owner.key, "fd-no-such-file"],
    ] as const) {
      const res = await getFile(key, id);
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({ statusCode: 404, error: "ErrNoFile", message: "file not found" });
    }
    // Re-publishing with another target list moves access.
    await publishFile("fd-file-3", bytesOf(10, 3), [stranger.id]);
    expect((await getFile(owner.key, "fd-file-3")).status).toBe(404);
    expect((await getFile(stranger.key, "fd-file-3")).status).toBe(200);
    // Deleting removes it for everyone.
    const del = await adminRequest("DELETE", "/api/fleet/files/fd-file-3");
    expect(del.status).toBe(200);
    expect((await getFile(stranger.key, "fd-file-3")).status).toBe(404);
    expect((await env.FILES.list({ prefix: "deliveries/fd-file-3/" })).objects).toEqual([]);
    expect((await adminRequest("DELETE", "/api/fleet/files/fd-file-3")).status).toBe(404);
  });

  it("gates library files (?source=) on the product origin", async () => {
    const agent = await enrolledAgent("fd-library");
    const noOrigin = await getFile(agent.key, "f", {}, "?source=archive");
    expect(noOrigin.status).toBe(403);
    expect(await noOrigin.json()).toEqual({ statusCode: 403, error: "ErrClientFileForbidden", message: "client forbidden" });
    const unknown = await getFile(agent.key, "f", { "X-elastic-product-origin": "kibana" }, "?source=archive");
    expect(unknown.status).toBe(403);
    const endpoint = await getFile(agent.key, "f", { "X-elastic-product-origin": "Endpoint-Security" }, "?source=archive");
    expect(endpoint.status).toBe(404);
    expect(await endpoint.json()).toEqual({ statusCode: 404, error: "ErrNoFile", message: "file not found" });
  });

  it("finds the agent by its key", async () => {
    await enrolledAgent("fd-auth");
    const enrollment = await createEnrollmentKey("fd-auth");
    const res = await getFile(enrollment.api_key, "anything");
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ statusCode: 404, error: "AgentNotFound", message: "agent could not be found" });
    const forged = await getFile(btoa("nobody:secret"), "anything");
    expect(forged.status).toBe(401);
    expect(await forged.json()).toEqual({ statusCode: 401, error: "ErrUnauthorized", message: "unauthorized" });
  });

  it("validates what admins publish", async () => {
    const put = (body: unknown, id = "fd-admin") => adminRequest("PUT", `/api/fleet/files/${id}`, body);
    const cases: Array<[unknown, string]> = [
      [{ name: "x", target_agents: [], body: "AAAA" }, "target_agents: Too small: expected array to have >=1 items"],
      [{ name: "x", target_agents: ["a"], body: "" }, "body: the file must not be empty"],
      [{ name: "x", target_agents: ["a"], body: "AAAA", sha256: "0".repeat(64) }, "sha256: the body's sha256 is 709e80c88487a2411e1ee4dfb9f22a861492d20c4765150c0c794abd70f8147c"],
    ];
    for (const [body, message] of cases) {
      const res = await put(body);
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({ statusCode: 400, error: "BadRequest", message });
    }
    expect((await put({ name: "x", target_agents: ["a"], body: "AAAA" }, "bad id!")).status).toBe(400);
    expect((await adminRequest("PUT", "/api/fleet/files/fd-admin", { name: "x", target_agents: ["a"], body: "AAAA" }, "wrong")).status).toBe(401);
  });
});
