import { CausewayError, InvalidOptionsError } from '@causeway/core';
import { projectionLeaseName } from './projection-health.js';
import { schemaNames } from './schema.js';
import type { SqlDatabase, SqlExecutor } from './sql-executor.js';

/**
 * Blue/green by version: `<schema>.projection_live_versions` (migration 8) records which version
 * of each projection queries should read. Queries read it (cache it for a moment if they like);
 * a switch is one row write, so every query after it reads the new version's tables.
 */
export interface ProjectionVersionOptions {
  readonly schema?: string;
  readonly name: string;
}

/** The live version of `name`, or null when no version was ever switched live. */
export async function readLiveProjectionVersion(db: SqlExecutor, options: ProjectionVersionOptions): Promise<number | null> {
  const { rows } = await db.query<{ version: number }>(
    `SELECT version FROM ${schemaNames(options.schema ?? 'causeway').schema}.projection_live_versions WHERE name = $1`,
    [options.name],
  );
  return rows[0]?.version ?? null;
}

/** Makes `version` the live one; returns the version that was live before (null if none). */
export async function setLiveProjectionVersion(db: SqlExecutor, options: ProjectionVersionOptions & { readonly version: number }): Promise<number | null> {
  checkVersion(options.version);
  const s = schemaNames(options.schema ?? 'causeway').schema;
  const { rows } = await db.query<{ previous: number | null }>(
    `WITH before AS (SELECT version FROM ${s}.projection_live_versions WHERE name = $1)
     INSERT INTO ${s}.projection_live_versions AS l (name, version, previous_version)
     VALUES ($1, $2, (SELECT version FROM before))
     ON CONFLICT (name) DO UPDATE SET previous_version = l.version, version = excluded.version, switched_at = clock_timestamp()
       WHERE l.version <> excluded.version
     RETURNING (SELECT version FROM before) AS previous`,
    [options.name, options.version],
  );
  // No row back: the version was live already.
  return rows[0] === undefined ? options.version : (rows[0].previous ?? null);
}

/** Retiring a version that is live, or whose runner still holds its lease, is refused. Nothing was changed. */
export class ProjectionVersionInUseError extends CausewayError {
  constructor(message: string) {
    super('PROJECTION_VERSION_IN_USE', message);
  }
}

/**
 * Forgets an old version once its runners are stopped: deletes its checkpoints (every tenant
 * partition) and skipped-event records, and runs `cleanup(tx)` (e.g. DROP TABLE of its read
 * model) in the same transaction. Refused while the version is live or its lease is held.
 */
export async function retireProjectionVersion(
  db: SqlDatabase,
  options: ProjectionVersionOptions & { readonly version: number; readonly cleanup?: (tx: SqlExecutor) => Promise<void> },
): Promise<void> {
  checkVersion(options.version);
  const s = schemaNames(options.schema ?? 'causeway').schema;
  await db.transaction(async (tx) => {
    // Lock the live record so a concurrent switch to this version waits for the retirement.
    const { rows: live } = await tx.query<{ version: number }>(`SELECT version FROM ${s}.projection_live_versions WHERE name = $1 FOR UPDATE`, [options.name]);
    if (live[0]?.version === options.version) {
      throw new ProjectionVersionInUseError(`projection "${options.name}" v${options.version} is the live version; switch another version live first`);
    }
    const prefix = projectionLeaseName({ name: options.name, version: options.version });
    const { rows: held } = await tx.query<{ name: string; holder: string }>(
      `SELECT name, holder FROM ${s}.leases WHERE (name = $1 OR starts_with(name, $1 || ':')) AND expires_at > clock_timestamp()`,
      [prefix],
    );
    if (held.length > 0) {
      throw new ProjectionVersionInUseError(`projection "${options.name}" v${options.version} still has a runner: lease ${held[0]?.name} is held by ${held[0]?.holder}; stop it first`);
    }
    await tx.query(`DELETE FROM ${s}.projection_checkpoints WHERE name = $1 AND version = $2`, [options.name, options.version]);
    await tx.query(`DELETE FROM ${s}.projection_skipped_events WHERE name = $1 AND version = $2`, [options.name, options.version]);
    await options.cleanup?.(tx);
  });
}

function checkVersion(version: number): void {
  if (!Number.isInteger(version) || version < 1 || version > 2 ** 31 - 1) throw new InvalidOptionsError(`projection version must be an integer >= 1; got ${String(version)}`);
}
