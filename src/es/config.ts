/**
 * How to reach Elasticsearch: `ES_URL` plus exactly one credential. Without `ES_URL` the server runs
 * standalone: nothing is mirrored and nothing is ingested.
 */
export interface EsConfig {
  url: string;
  /** The value of the Authorization header. */
  authorization: string;
}

export interface EsEnv {
  ES_URL?: string;
  ES_SERVICE_TOKEN?: string;
  ES_API_KEY?: string;
  ES_USERNAME?: string;
  ES_PASSWORD?: string;
}

export function esConfig(env: EsEnv): EsConfig | null {
  const url = env.ES_URL?.trim();
  if (!url) return null;
  if (!/^https?:\/\//.test(url)) throw new Error(`configuration: ES_URL=${JSON.stringify(url)} must start with http:// or https://`);
  const base = url.replace(/\/+$/, "");
  if (env.ES_SERVICE_TOKEN) return { url: base, authorization: `Bearer ${env.ES_SERVICE_TOKEN}` };
  if (env.ES_API_KEY) return { url: base, authorization: `ApiKey ${env.ES_API_KEY}` };
  if (env.ES_USERNAME && env.ES_PASSWORD) return { url: base, authorization: `Basic ${btoa(`${env.ES_USERNAME}:${env.ES_PASSWORD}`)}` };
  throw new Error("configuration: ES_URL is set but no credential: set ES_SERVICE_TOKEN, ES_API_KEY or ES_USERNAME and ES_PASSWORD");
}
