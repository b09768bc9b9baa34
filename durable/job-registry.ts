export interface JobEntry {
  id: string;
  type: string;
  created_at: string;
  created_by: string;
}

/** The fleet's bulk jobs by id (the `jobs` table of the Directory), newest first; each job's state lives in its own object. */
export class JobRegistry {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  register(job: JobEntry): void {
    this.#sql.exec("INSERT OR IGNORE INTO jobs (id, type, created_at, created_by) VALUES (?, ?, ?, ?)", job.id, job.type, job.created_at, job.created_by);
  }

  list(limit: number, offset: number): { items: JobEntry[]; total: number } {
    const total = this.#sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM jobs").one().n;
    const items = this.#sql.exec<JobEntry & Record<string, SqlStorageValue>>("SELECT * FROM jobs ORDER BY created_at DESC, id LIMIT ? OFFSET ?", limit, offset).toArray();
    return { items, total };
  }
}
