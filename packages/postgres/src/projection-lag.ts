import type { ProjectionKey } from '@causeway/core';
import { partitionOf } from './postgres-checkpoint-store.js';
import { schemaNames } from './schema.js';
import type { SqlExecutor } from './sql-executor.js';

/** One measurement of a projection against its store's log, in one statement. */
export interface ProjectionLagMeasurement {
  /** The stored checkpoint as `tx/seq`; null when no runner ever started this projection (version, partition). */
  readonly checkpoint: string | null;
  /** Events the checkpoint counter has moved past. */
  readonly applied: number;
  /** The newest event in scope as `tx/seq` (the high-water mark); null on an empty log. */
  readonly head: string | null;
  /** Committed events after the checkpoint (all of the scope's log when never started). */
  readonly eventsBehind: number;
  /** Age of the oldest event after the checkpoint, seconds on the database clock; 0 when none. */
  readonly secondsBehind: number;
  /** Seconds since the checkpoint last moved; null when never started. */
  readonly checkpointIdleSeconds: number | null;
  /**
   * The oldest waiting event belongs to a transaction at or above the read horizon (an older
   * transaction is still open), so no runner can read it yet.
   */
  readonly blocked: boolean;
}

interface LagRow {
  checkpoint: string | null;
  applied: string;
  head: string | null;
  behind: string;
  oldest_age: number | null;
  idle: number | null;
  blocked: boolean | null;
}

/**
 * Measures how far `key` is behind the log of `schema` (the tenant's events only when the key is
 * a tenant partition). Counting is an index range scan of the waiting events, so measuring a
 * projection far behind (a rebuild) costs in proportion; `count: false` only asks whether any wait.
 */
export async function measureProjectionLag(
  db: SqlExecutor,
  schema: string,
  key: ProjectionKey,
  options: { readonly count?: boolean } = {},
): Promise<ProjectionLagMeasurement> {
  const s = schemaNames(schema).schema;
  const scope = `($4::text IS NULL OR ev.tenant_id = $4::text)`;
  const waiting = `SELECT 1 FROM ${s}.events ev WHERE (ev.tx, ev.seq) > (cp.position_tx, cp.position_seq) AND ${scope}`;
  // Without `count`, eventsBehind is only 0 or 1 (something waits): cheap enough to run every second.
  const countSql = options.count === false ? `(SELECT count(*) FROM (${waiting} LIMIT 1) w)` : `(SELECT count(*) FROM (${waiting}) w)`;
  const { rows } = await db.query<LagRow>(
    `WITH found AS (
       SELECT position_tx, position_seq, applied, updated_at FROM ${s}.projection_checkpoints
        WHERE name = $1 AND version = $2 AND tenant_id = $3
     ), cp AS (
       SELECT position_tx, position_seq, applied, updated_at FROM found
       UNION ALL SELECT '0'::xid8, 0::bigint, 0::bigint, NULL::timestamptz WHERE NOT EXISTS (SELECT 1 FROM found)
     )
     SELECT CASE WHEN cp.updated_at IS NULL THEN NULL ELSE cp.position_tx::text || '/' || cp.position_seq::text END AS checkpoint,
            cp.applied::text AS applied,
            h.tx::text || '/' || h.seq::text AS head,
            ${countSql}::text AS behind,
            extract(epoch FROM clock_timestamp() - o.recorded_at)::float8 AS oldest_age,
            extract(epoch FROM clock_timestamp() - cp.updated_at)::float8 AS idle,
            o.tx >= pg_snapshot_xmin(pg_current_snapshot()) AS blocked
       FROM cp
       LEFT JOIN LATERAL (SELECT ev.tx, ev.recorded_at FROM ${s}.events ev
                           WHERE (ev.tx, ev.seq) > (cp.position_tx, cp.position_seq) AND ${scope}
                           ORDER BY ev.tx, ev.seq LIMIT 1) o ON true
       LEFT JOIN LATERAL (SELECT ev.tx, ev.seq FROM ${s}.events ev WHERE ${scope} ORDER BY ev.tx DESC, ev.seq DESC LIMIT 1) h ON true`,
    [key.name, key.version, partitionOf(key), key.tenantId ?? null],
  );
  const r = rows[0] as LagRow;
  const behind = Number(r.behind);
  return {
    checkpoint: r.checkpoint,
    applied: Number(r.applied),
    head: r.head,
    eventsBehind: behind,
    secondsBehind: behind === 0 ? 0 : Math.max(0, r.oldest_age ?? 0),
    checkpointIdleSeconds: r.idle,
    blocked: behind > 0 && r.blocked === true,
  };
}
