/** Keys whose values are secrets in a collector config (exporter headers, auth extensions, TLS keys). */
const SECRET_KEY = /(pass(word)?|secret|token|api[_-]?key|authorization|credential|private[_-]?key|bearer)["']?\s*:/i;
/** A config longer than this is stored cut short (it is for an admin to read, not to re-apply). */
const MAX_STORED_CONFIG = 256 * 1024;

export const REDACTED = "[REDACTED]";

/**
 * A collector's effective config as stored and shown to admins: every `key: value` line whose key
 * looks like a secret keeps its key and loses its value, as fleet-server redacts its OpAMP
 * effective configs. Line-based, so it works on YAML and on JSON written one key per line.
 */
export function redactConfig(config: string): string {
  const lines = config.slice(0, MAX_STORED_CONFIG).split("\n");
  return lines
    .map((line) => {
      const match = SECRET_KEY.exec(line);
      if (!match) return line;
      const end = match.index + match[0].length;
      const rest = line.slice(end).trim();
      // A key that opens a block (`auth:` with nested lines) keeps its shape; nested secrets match on their own lines.
      if (rest === "" || rest === "{" || rest === "[") return line;
      return `${line.slice(0, end)} ${JSON.stringify(REDACTED)}${rest.endsWith(",") ? "," : ""}`;
    })
    .join("\n");
}
