import { digestsEqual, hexBytes, sha256 } from "../src/auth/secrets";

/**
 * An agent's access key as stored: the SHA-256 of its secret (null once revoked), compared in
 * constant time. The digest's bytes are decoded once: every check-in compares digests.
 */
export class StoredKey {
  #hash: string | null;
  #digest: Uint8Array | null = null;

  constructor(hash: string | null) {
    this.#hash = hash;
  }

  get hash(): string | null {
    return this.#hash;
  }

  set hash(hash: string | null) {
    if (hash !== this.#hash) this.#digest = null;
    this.#hash = hash;
  }

  /** The secret hashes to the stored hash (never, when revoked). */
  async holds(secret: string): Promise<boolean> {
    const digest = await sha256(secret);
    // Read after the await: the key may have been revoked or replaced meanwhile.
    if (this.#hash === null) return false;
    this.#digest ??= hexBytes(this.#hash);
    return this.#digest !== null && digestsEqual(digest, this.#digest);
  }
}
