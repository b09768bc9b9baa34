/**
 * Idempotent schema migrations for a SQLite-backed Durable Object. `PRAGMA user_version` is not
 * available there, so applied steps are recorded in `schema_migrations`. Run from the constructor
 * inside `blockConcurrencyWhile` (`migrateOnStart`); each step runs in one synchronous transaction.
 */
export function migrateSchema(storage: DurableObjectStorage, steps: readonly string[]): void {
  const sql = storage.sql;
  sql.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)");
  const row = sql.exec<{ v: number | null }>("SELECT MAX(version) AS v FROM schema_migrations").one();
  const applied = row.v ?? 0;
  for (let version = applied + 1; version <= steps.length; version++) {
    storage.transactionSync(() => {
      sql.exec(steps[version - 1]!);
      sql.exec("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", version, new Date().toISOString());
    });
  }
}

/**
 * Migrates from an object's constructor, which cannot await: the runtime delivers no event to the
 * object until this settles, and resets the object if it throws. `started` runs after the migration,
 * for start-up work that reads the tables.
 */
export function migrateOnStart(ctx: DurableObjectState, steps: readonly string[], started?: () => void): void {
  void ctx.blockConcurrencyWhile(async () => {
    migrateSchema(ctx.storage, steps);
    started?.();
  });
}
