import { describe, expect, it, vi } from "vitest";
import { StoredKey } from "../../durable/stored-key";
import * as secrets from "../../src/auth/secrets";

describe("StoredKey", () => {
  it("holds the secret that hashes to it, hashing a repeat of a verified secret no more", async () => {
    const key = new StoredKey(await secrets.sha256Hex("the-secret"));
    const hashing = vi.spyOn(secrets, "sha256");
    try {
      expect(await key.holds("the-secret")).toBe(true);
      expect(await key.holds("the-secret")).toBe(true);
      expect(await key.holds("the-secret")).toBe(true);
      expect(hashing).toHaveBeenCalledTimes(1);
      // A wrong secret is hashed and refused, every time, and does not displace the verified one.
      expect(await key.holds("the-secreT")).toBe(false);
      expect(await key.holds("the-secreT")).toBe(false);
      expect(hashing).toHaveBeenCalledTimes(3);
      expect(await key.holds("the-secret")).toBe(true);
      expect(hashing).toHaveBeenCalledTimes(3);
    } finally {
      hashing.mockRestore();
    }
  });

  it("forgets the verified secret when the key is replaced or revoked", async () => {
    const key = new StoredKey(await secrets.sha256Hex("old"));
    expect(await key.holds("old")).toBe(true);
    key.hash = await secrets.sha256Hex("new");
    expect(await key.holds("old")).toBe(false);
    expect(await key.holds("new")).toBe(true);
    key.hash = null;
    expect(await key.holds("new")).toBe(false);
  });
});
