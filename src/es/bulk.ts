import type { EsConfig } from "./config";
import { esRequest } from "./client";

export interface BulkOperation {
  op: "index" | "create" | "delete";
  index: string;
  id: string;
  /** External version: Elasticsearch keeps the highest, so retries and reordering cannot regress a document. */
  version?: number;
  body?: unknown;
}

export interface BulkItemResult {
  status: number;
  error?: string;
}

/**
 * One `_bulk` request. Returns a result per operation, in order. A version conflict (409) means a
 * newer or identical write already landed, and a `create` conflict means the document exists: both
 * count as delivered.
 */
export async function bulk(config: EsConfig, operations: BulkOperation[]): Promise<BulkItemResult[]> {
  const lines: string[] = [];
  for (const op of operations) {
    const meta: Record<string, unknown> = { _index: op.index, _id: op.id };
    if (op.version !== undefined && op.op !== "create") {
      meta.version = op.version;
      meta.version_type = "external";
    }
    lines.push(JSON.stringify({ [op.op]: meta }));
    if (op.op !== "delete") lines.push(JSON.stringify(op.body ?? {}));
  }
  const { body } = await esRequest<{ items: Array<Record<string, { status: number; error?: { type?: string; reason?: string } }>> }>(config, {
    method: "POST",
    path: "/_bulk",
    ndjson: `${lines.join("\n")}\n`,
  });
  return body.items.map((item) => {
    const result = Object.values(item)[0]!;
    const error = result.error ? `${result.error.type ?? ""}: ${result.error.reason ?? ""}` : undefined;
    return error ? { status: result.status, error } : { status: result.status };
  });
}

/** Delivered, or superseded by a newer version already in the index. A delete of a missing document is done too. */
export function isDelivered(op: BulkOperation["op"], result: BulkItemResult): boolean {
  if (result.status >= 200 && result.status < 300) return true;
  if (result.status === 409) return true;
  return op === "delete" && result.status === 404;
}
