import type { EsConfig } from "./config";
import { esRequest } from "./client";

export interface SeqHit<T> {
  _id: string;
  _seq_no: number;
  _source: T;
}

/** A policy revision as Kibana writes it to `.fleet-policies`. */
export interface KibanaPolicyDoc {
  policy_id?: string;
  revision_idx?: number;
  "@timestamp"?: string;
  data?: Record<string, unknown>;
}

/** An action as Kibana writes it to `.fleet-actions`. */
export interface KibanaActionDoc {
  action_id?: string;
  agents?: string[];
  type?: string;
  data?: unknown;
  "@timestamp"?: string;
  expiration?: string;
  start_time?: string;
  input_type?: string;
  timeout?: number;
}

/** An enrollment key as Kibana writes it to `.fleet-enrollment-api-keys`. */
export interface KibanaEnrollmentKeyDoc {
  api_key_id?: string;
  api_key?: string;
  active?: boolean;
  policy_id?: string;
  name?: string;
  created_at?: string;
  expire_at?: string;
}

const PAGE = 1000;

/**
 * The documents of `index` written after `checkpoint` (its `_seq_no`), oldest first. Polls `_search`
 * with a `_seq_no` range, which works on any Elasticsearch; fleet-server long-polls
 * `_fleet/global_checkpoints` instead, which only the Fleet plugin provides. A missing index has no
 * documents yet.
 */
export async function documentsAfter<T>(config: EsConfig, index: string, checkpoint: number): Promise<SeqHit<T>[]> {
  const { status, body } = await esRequest<{ hits?: { hits: SeqHit<T>[] } }>(config, {
    method: "POST",
    path: `/${encodeURIComponent(index)}/_search`,
    body: {
      size: PAGE,
      seq_no_primary_term: true,
      query: { range: { _seq_no: { gt: checkpoint } } },
      sort: [{ _seq_no: "asc" }],
    },
    accept: [404],
  });
  return status === 404 ? [] : (body.hits?.hits ?? []);
}

export const INGEST_PAGE = PAGE;

/** Clusters (by URL) found without the Fleet plugin's checkpoint API, so it is not asked again. */
const withoutFleetPlugin = new Set<string>();

/**
 * The index's global checkpoint from the Fleet plugin (`GET /<index>/_fleet/global_checkpoints`),
 * where the cluster has it (Elastic's stack with Kibana's Fleet does): a cheap way to learn that
 * nothing changed since `checkpoint` without searching. Null when the plugin is absent or the index
 * does not exist yet; the caller then searches as usual.
 */
export async function globalCheckpoint(config: EsConfig, index: string): Promise<number | null> {
  if (withoutFleetPlugin.has(config.url)) return null;
  const { status, body } = await esRequest<{ global_checkpoints?: number[] }>(config, {
    method: "GET",
    path: `/${encodeURIComponent(index)}/_fleet/global_checkpoints`,
    accept: [400, 404, 405],
  });
  if (status === 400 || status === 405) {
    // "no handler found": a cluster without the Fleet plugin (OpenSearch, a bare Elasticsearch).
    withoutFleetPlugin.add(config.url);
    return null;
  }
  return status === 200 ? (body.global_checkpoints?.[0] ?? null) : null;
}
