import { base64Url, constantTimeEqual, fromBase64Url } from "./secrets";

/**
 * Replace tokens are hashed in fleet-server's format `$pbkdf2-sha512$<iterations>$<salt>$<key>`
 * (unpadded base64). workerd caps PBKDF2 at 100,000 iterations, so we hash with that many;
 * fleet-server's default is 210,000, which is why a hash imported from it cannot be verified here.
 */
const ITERATIONS = 100_000;
const SALT_BYTES = 64;
const KEY_BYTES = 32;

export async function hashReplaceToken(token: string): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
  const key = await derive(token, salt, ITERATIONS);
  return `$pbkdf2-sha512$${ITERATIONS}$${b64(salt)}$${b64(key)}`;
}

export async function verifyReplaceToken(token: string, stored: string): Promise<boolean> {
  const parts = stored.split("$");
  if (parts.length !== 5 || parts[1] !== "pbkdf2-sha512") return false;
  const iterations = Number(parts[2]);
  const salt = unb64(parts[3]!);
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > ITERATIONS || !salt) return false;
  const key = await derive(token, salt, iterations);
  return constantTimeEqual(b64(key), parts[4]!);
}

async function derive(token: string, salt: Uint8Array, iterations: number): Promise<Uint8Array> {
  const material = await crypto.subtle.importKey("raw", new TextEncoder().encode(token), "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-512", salt, iterations }, material, KEY_BYTES * 8);
  return new Uint8Array(bits);
}

// Standard (not url-safe) unpadded base64, as Go's base64.RawStdEncoding.
const b64 = (bytes: Uint8Array): string => base64Url(bytes).replaceAll("-", "+").replaceAll("_", "/");
const unb64 = (text: string): Uint8Array | null => fromBase64Url(text.replaceAll("+", "-").replaceAll("/", "_"));
