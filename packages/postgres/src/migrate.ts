import { MIGRATIONS } from './migrations.js';
import { schemaNames } from './schema.js';
import type { SqlDatabase } from './sql-executor.js';

export interface MigrateOptions {
  /** Schema holding Causeway's tables. Default 'causeway'. */
  readonly schema?: string;
}

export interface MigrateResult {
  /** Versions applied by this call (empty when the schema was already current). */
  readonly applied: readonly number[];
  readonly current: number;
}

/**
 * Brings the schema to the newest version. Idempotent and safe to run from many processes at
 * once: an advisory lock serialises migrators, and the pending versions apply in one transaction
 * together with their bookkeeping rows, so a failed migration leaves the schema as it was.
 */
export async function migrate(db: SqlDatabase, options: MigrateOptions = {}): Promise<MigrateResult> {
  const names = schemaNames(options.schema ?? 'causeway');
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`causeway.migrate.${names.raw}`]);
    await tx.query(`CREATE SCHEMA IF NOT EXISTS ${names.schema}`);
    await tx.query(
      `CREATE TABLE IF NOT EXISTS ${names.schema}.migrations (
         version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT clock_timestamp())`,
    );
    const { rows } = await tx.query<{ version: number }>(`SELECT version FROM ${names.schema}.migrations`);
    const done = new Set(rows.map((r) => r.version));
    const applied: number[] = [];
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      for (const statement of m.statements(names)) await tx.query(statement);
      await tx.query(`INSERT INTO ${names.schema}.migrations (version, name) VALUES ($1, $2)`, [m.version, m.name]);
      applied.push(m.version);
    }
    return { applied, current: Math.max(0, ...MIGRATIONS.map((m) => m.version)) };
  });
}
