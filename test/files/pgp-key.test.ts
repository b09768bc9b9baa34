import { SELF, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Env } from "../../src/config";
import { FleetError } from "../../src/errors";
import { currentPgpKey } from "../../src/routes/pgp-key";
import { BASE, adminRequest } from "../helpers";

const CONFIGURED = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nconfigured-test-key\n-----END PGP PUBLIC KEY BLOCK-----\n";
const UPLOADED = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nadmin-uploaded-key\n-----END PGP PUBLIC KEY BLOCK-----\n";

const getKey = (version = "9.6.0", scheme = "https") =>
  SELF.fetch(`${scheme}://fleet.example.internal/api/agents/upgrades/${version}/pgp-public-key`, { headers: { "User-Agent": "Elastic Agent v9.6.0" } });

describe("GET /api/agents/upgrades/{major}.{minor}.{patch}/pgp-public-key", () => {
  it("serves the configured key without auth over TLS; an admin-uploaded key takes precedence", async () => {
    const res = await getKey();
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    expect(res.headers.get("elastic-api-version")).toBe("2023-06-01");
    expect(await res.text()).toBe(CONFIGURED);

    const put = await adminRequest("PUT", "/api/fleet/pgp_public_key", { key: UPLOADED });
    expect(put.status).toBe(200);
    expect(await (await getKey("8.17.4")).text()).toBe(UPLOADED);
    expect(await (await adminRequest("GET", "/api/fleet/pgp_public_key")).json()).toEqual({ item: { source: "admin", key: UPLOADED } });
    expect((await adminRequest("DELETE", "/api/fleet/pgp_public_key")).status).toBe(200);
    expect(await (await getKey()).text()).toBe(CONFIGURED);
    expect(await (await adminRequest("GET", "/api/fleet/pgp_public_key")).json()).toEqual({ item: { source: "PGP_PUBLIC_KEY", key: CONFIGURED } });

    const bad = await adminRequest("PUT", "/api/fleet/pgp_public_key", { key: "not a key" });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ statusCode: 400, error: "BadRequest", message: "key: an armored PGP public key block" });
    expect((await adminRequest("PUT", "/api/fleet/pgp_public_key", { key: UPLOADED }, "wrong")).status).toBe(401);
  });

  it("answers 501 ErrTLSRequired over plain HTTP, as fleet-server without TLS", async () => {
    const res = await SELF.fetch(`${BASE}/api/agents/upgrades/9.6.0/pgp-public-key`);
    expect(res.status).toBe(501);
    expect(await res.json()).toEqual({ statusCode: 501, error: "ErrTLSRequired", message: "server must run with tls to use this endpoint" });
  });

  it("validates the version (fleet-server: 500 from its parameter binder) and 404s other shapes", async () => {
    const res = await getKey("9.x.0");
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      statusCode: 400,
      error: "BadRequest",
      message: 'Invalid format for parameter minor: error binding string parameter: strconv.ParseInt: parsing "x": invalid syntax',
    });
    const shape = await getKey("9.6");
    expect(shape.status).toBe(404);
    expect(await shape.json()).toEqual({ statusCode: 404, error: "NotFound", message: "not found" });
  });

  it("is 503 when no key is stored, configured or fetchable", async () => {
    await env.FILES.delete("pgp/default.pgp");
    const bare = { FILES: env.FILES, PGP_UPSTREAM_URL: "" } as unknown as Env;
    await expect(currentPgpKey(bare)).rejects.toEqual(new FleetError("PGPKeyUnavailable", "no PGP key configured: set PGP_PUBLIC_KEY or upload one"));
  });
});
