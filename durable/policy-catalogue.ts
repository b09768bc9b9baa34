import type { PolicySummary } from "../src/admin/directory-records";

/**
 * The fleet's agent policies by id, name and latest revision (the `policies` table of the
 * Directory). The hubs own the revisions; the catalogue is kept in step by the admin routes.
 */
export class PolicyCatalogue {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  register(policy: PolicySummary): void {
    this.#sql.exec(
      `INSERT INTO policies (id, name, namespace, revision, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET name = excluded.name, namespace = excluded.namespace,
         revision = MAX(revision, excluded.revision), updated_at = excluded.updated_at`,
      policy.id,
      policy.name,
      policy.namespace,
      policy.revision,
      policy.updated_at,
    );
  }

  get(id: string): PolicySummary | null {
    return this.#sql.exec<PolicySummary & Record<string, SqlStorageValue>>("SELECT * FROM policies WHERE id = ?", id).toArray()[0] ?? null;
  }

  list(limit: number, offset: number): { items: PolicySummary[]; total: number } {
    const total = this.#sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM policies").one().n;
    const items = this.#sql
      .exec<PolicySummary & Record<string, SqlStorageValue>>("SELECT * FROM policies ORDER BY name, id LIMIT ? OFFSET ?", limit, offset)
      .toArray();
    return { items, total };
  }

  /** Every policy id (the fleet has at most about a thousand policies). */
  ids(): string[] {
    return this.#sql.exec<{ id: string }>("SELECT id FROM policies ORDER BY id").toArray().map((row) => row.id);
  }

  remove(id: string): void {
    this.#sql.exec("DELETE FROM policies WHERE id = ?", id);
  }
}
