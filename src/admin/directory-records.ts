/** The Directory's records (durable/directory.ts) as its callers see them; secrets only where noted. */

/** An admin API key as listed; the secret is shown once, at creation. */
export interface AdminKeyRecord {
  id: string;
  name: string;
  created_at: string;
  revoked_at?: string;
  api_key?: string;
}

/** A policy as the catalogue lists it: enough to page through policies without waking their hubs. */
export interface PolicySummary {
  id: string;
  name: string;
  namespace: string;
  revision: number;
  updated_at: string;
}

/** An enrollment key as admins see it; `api_key` (the secret) only in the answer that creates it. */
export interface EnrollmentKeyRecord {
  id: string;
  api_key_id: string;
  api_key?: string;
  name: string;
  policy_id: string;
  active: boolean;
  created_at: string;
  expire_at?: string;
}
