import { z } from "zod";

/** Ids that end up in R2 keys and URLs. */
export const FileId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,255}$/, { message: "letters, digits, _ . - (at most 256)" });

const sha256 = z
  .string()
  .regex(/^[0-9a-fA-F]{64}$/, { message: "64 hex characters" })
  .transform((value) => value.toLowerCase());
const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, { message: "standard base64" });

/**
 * `PUT /api/fleet/artifacts/{identifier}`: one `.fleet-artifacts` document as Kibana writes it, body
 * base64 (the encoded bytes, e.g. zlib-compressed JSON).
 */
export const ArtifactPut = z.object({
  identifier: z.string().optional(),
  compression_algorithm: z.enum(["none", "zlib"]),
  encryption_algorithm: z.literal("none"),
  encoded_sha256: sha256,
  encoded_size: z.number().int().nonnegative(),
  decoded_sha256: sha256,
  decoded_size: z.number().int().nonnegative(),
  created: z.iso.datetime({ offset: true }).optional(),
  package_name: z.string().max(256).optional(),
  body: base64,
});
export type ArtifactPut = z.infer<typeof ArtifactPut>;

/** `PUT /api/fleet/files/{fileId}`: a file for the listed agents to fetch from `/api/fleet/file/{fileId}`. */
export const DeliveryPut = z.object({
  name: z.string().min(1).max(256),
  mime_type: z.string().max(256).optional(),
  target_agents: z.array(z.string().min(1).max(256)).min(1).max(10_000),
  /** Optional: verified against the body when given. */
  sha256: sha256.optional(),
  body: base64.refine((value) => value.length > 0, { message: "the file must not be empty" }),
});
export type DeliveryPut = z.infer<typeof DeliveryPut>;

/** `PUT /api/fleet/pgp_public_key`: an armored public key. */
export const PgpKeyPut = z.object({
  key: z
    .string()
    .max(1 << 20)
    .refine((text) => text.includes("-----BEGIN PGP PUBLIC KEY BLOCK-----") && text.includes("-----END PGP PUBLIC KEY BLOCK-----"), {
      message: "an armored PGP public key block",
    }),
});

export function decodeBase64(text: string): Uint8Array | null {
  if (text.length % 4 === 1) return null;
  try {
    const binary = atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  } catch {
    return null;
  }
}

/** Undoes an artifact's compression (`zlib` is RFC 1950, what DecompressionStream calls "deflate"). */
export async function decodeArtifactBody(bytes: Uint8Array, compression: "none" | "zlib"): Promise<Uint8Array | null> {
  if (compression === "none") return bytes;
  try {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch {
    return null;
  }
}
