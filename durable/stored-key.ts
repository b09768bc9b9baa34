import { constantTimeEqual, digestsEqual, hexBytes, sha256 } from "../src/auth/secrets";

/**
 * An agent's access key as stored: the SHA-256 of its secret (null once revoked), compared in
 * constant time. The digest's bytes are decoded once: every check-in compares digests.
 */
export class StoredKey {
  #hash: string | null;
  #digest: Uint8Array | null = null;
  /**
   * The secret last seen to hash to the stored hash, in memory only (never stored or logged): an
   * agent presents the same secret on every request, and comparing with it in constant time
   * spares a SHA-256 per check-in. fleet-server likewise caches the API keys it has verified.
   * Forgotten whenever the hash changes (re-enrollment, revocation).
   */
  #verified: string | null = null;

  constructor(hash: string | null) {
    this.#hash = hash;
  }

  get hash(): string | null {
    return this.#hash;
  }

  set hash(hash: string | null) {
    if (hash !== this.#hash) {
      this.#digest = null;
      this.#verified = null;
    }
    this.#hash = hash;
  }

  /** The secret hashes to the stored hash (never, when revoked). */
  async holds(secret: string): Promise<boolean> {
    if (this.#hash !== null && this.#verified !== null && constantTimeEqual(secret, this.#verified)) return true;
    const hash = this.#hash;
    const digest = await sha256(secret);
    // Read after the await: the key may have been revoked or replaced meanwhile.
    if (this.#hash === null) return false;
    this.#digest ??= hexBytes(this.#hash);
    const holds = this.#digest !== null && digestsEqual(digest, this.#digest);
    if (holds && this.#hash === hash) this.#verified = secret;
    return holds;
  }
}
