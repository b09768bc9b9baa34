import type { ArtifactMeta } from "./source";

/** An artifact's metadata from loosely typed fields (R2 custom metadata, a `.fleet-artifacts` document). */
export function artifactMeta(fields: Partial<Record<keyof ArtifactMeta, string | number>>): ArtifactMeta {
  return {
    identifier: String(fields.identifier ?? ""),
    decoded_sha256: String(fields.decoded_sha256 ?? ""),
    decoded_size: Number(fields.decoded_size ?? 0),
    encoded_sha256: String(fields.encoded_sha256 ?? ""),
    encoded_size: Number(fields.encoded_size ?? 0),
    compression_algorithm: String(fields.compression_algorithm ?? "none"),
    encryption_algorithm: String(fields.encryption_algorithm ?? "none"),
    created: String(fields.created ?? ""),
    ...(fields.package_name !== undefined ? { package_name: String(fields.package_name) } : {}),
  };
}
