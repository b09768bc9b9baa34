export interface IndexedUpload {
  upload_id: string;
  action_id: string;
  created_at: string;
}

/**
 * One agent's uploads (the `agent_uploads` table of an `Uploads` object named `agent:<agentId>`):
 * the index behind the admin listing, so it needs no search over every upload object.
 */
export class AgentUploadIndex {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  add(uploadId: string, actionId: string, createdAt: string): void {
    this.#sql.exec("INSERT OR IGNORE INTO agent_uploads (upload_id, action_id, created_at) VALUES (?, ?, ?)", uploadId, actionId, createdAt);
  }

  /** The agent's uploads, newest first. */
  newest(limit: number): IndexedUpload[] {
    return this.#sql
      .exec<{ upload_id: string; action_id: string; created_at: string }>(
        "SELECT upload_id, action_id, created_at FROM agent_uploads ORDER BY created_at DESC, upload_id LIMIT ?",
        limit,
      )
      .toArray()
      .map((row) => ({ upload_id: row.upload_id, action_id: row.action_id, created_at: row.created_at }));
  }
}
