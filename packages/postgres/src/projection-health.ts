import { InvalidOptionsError, projectionLabel, validateProjectionTenant, type ProjectionKey } from '@causeway/core';
import { readLease, type LeaseRow } from './lease.js';
import { measureProjectionLag, type ProjectionLagMeasurement } from './projection-lag.js';
import type { SqlDatabase, SqlExecutor } from './sql-executor.js';

/** The lease a runner of `key` holds: `projection:<name>:<version>`, plus `:<tenant>` for a partition. */
export function projectionLeaseName(key: ProjectionKey): string {
  return `projection:${key.name}:${key.version}${key.tenantId === undefined ? '' : `:${key.tenantId}`}`;
}

/** The open transaction that holds the read horizon back (the oldest with a transaction id), from pg_stat_activity. */
export interface HorizonHolder {
  readonly pid: number;
  readonly applicationName: string;
  readonly user: string | null;
  readonly database: string | null;
  /** 'active', 'idle in transaction', ... */
  readonly state: string | null;
  readonly xactStart: string | null;
  readonly queryStart: string | null;
  /** Seconds the transaction has been open. */
  readonly openSeconds: number;
  /** The start of its current (or last) statement, at most 200 characters. */
  readonly query: string;
}

const TS = (col: string): string => `to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/**
 * Server only (PGlite has no other sessions; returns null there): the oldest open transaction
 * that has a transaction id. The store's gap-safe reader cannot pass it, since the events it may
 * still commit would land below anything read after it.
 */
export async function findHorizonHolder(db: SqlDatabase): Promise<HorizonHolder | null> {
  if (db.engine !== 'postgres') return null;
  const { rows } = await db.query<{
    pid: number; app: string; usr: string | null; dbname: string | null; state: string | null;
    xact_start: string | null; query_start: string | null; open: number | null; query: string | null;
  }>(
    `SELECT pid, application_name AS app, usename::text AS usr, datname::text AS dbname, state,
            ${TS('xact_start')} AS xact_start, ${TS('query_start')} AS query_start,
            extract(epoch FROM clock_timestamp() - xact_start)::float8 AS open, left(query, 200) AS query
       FROM pg_stat_activity
      WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()
      ORDER BY age(backend_xid) DESC LIMIT 1`,
  );
  const r = rows[0];
  if (!r) return null;
  return {
    pid: r.pid, applicationName: r.app, user: r.usr, database: r.dbname, state: r.state,
    xactStart: r.xact_start, queryStart: r.query_start, openSeconds: r.open ?? 0, query: r.query ?? '',
  };
}

/** One line naming the process, for warnings and health reports. */
export function describeHorizonHolder(h: HorizonHolder): string {
  return `pid ${h.pid} (application_name ${JSON.stringify(h.applicationName)}, user ${h.user ?? '?'}, database ${h.database ?? '?'}, ` +
    `state ${h.state ?? '?'}) has had a transaction open for ${h.openSeconds.toFixed(1)} s since ${h.xactStart ?? '?'}; ` +
    `query started ${h.queryStart ?? '?'}: ${JSON.stringify(h.query)}`;
}

export interface ProjectionHealthOptions {
  readonly schema?: string;
  readonly name: string;
  readonly version: number;
  /** The tenant partition, for a projection partitioned by tenant. */
  readonly tenantId?: string;
  /**
   * Stuck: events have waited longer than this while the checkpoint has not moved for as long.
   * Default 30,000 ms.
   */
  readonly stuckAfterMs?: number;
  /** The runners hold a lease (the default): a missing or expired lease while events wait is a problem. Default true. */
  readonly expectLease?: boolean;
}

export interface ProjectionHealth extends ProjectionLagMeasurement {
  readonly projection: string;
  readonly version: number;
  readonly tenantId?: string;
  /** healthy: caught up, or moving; lagging: behind but moving; stuck: see `problems`. */
  readonly status: 'healthy' | 'lagging' | 'stuck';
  /** Why the status is not healthy, one sentence each. */
  readonly problems: readonly string[];
  readonly lease: LeaseRow | null;
  /** Set when waiting events are unreadable because an older transaction is still open (server). */
  readonly horizonHolder: HorizonHolder | null;
}

/**
 * Compares the projection's checkpoint (its high-water mark) with the newest event of the log and
 * looks at its lease: a runner is stuck when events wait and the checkpoint has not moved for
 * `stuckAfterMs`, or when events wait and no runner holds a live lease (dead, or heartbeat stale).
 */
export async function checkProjectionHealth(db: SqlDatabase, options: ProjectionHealthOptions): Promise<ProjectionHealth> {
  validateProjectionTenant(options.tenantId);
  const stuckAfterMs = options.stuckAfterMs ?? 30_000;
  if (!Number.isInteger(stuckAfterMs) || stuckAfterMs < 0) throw new InvalidOptionsError(`stuckAfterMs must be an integer >= 0; got ${String(stuckAfterMs)}`);
  const schema = options.schema ?? 'causeway';
  const key: ProjectionKey = { name: options.name, version: options.version, ...(options.tenantId === undefined ? {} : { tenantId: options.tenantId }) };
  const lag = await measureProjectionLag(db as SqlExecutor, schema, key);
  const lease = await readLease(db, { schema, name: projectionLeaseName(key) });
  const horizonHolder = lag.blocked ? await findHorizonHolder(db) : null;
  const problems: string[] = [];
  const label = projectionLabel(key);
  const stuckSeconds = stuckAfterMs / 1000;
  if (lag.eventsBehind > 0) {
    if (lag.checkpoint === null) problems.push(`${label} has never run while ${lag.eventsBehind} events wait`);
    else if (lag.secondsBehind >= stuckSeconds && (lag.checkpointIdleSeconds ?? 0) >= stuckSeconds) {
      problems.push(
        `${label}: checkpoint ${lag.checkpoint} has not moved for ${(lag.checkpointIdleSeconds ?? 0).toFixed(1)} s while ` +
          `${lag.eventsBehind} events wait (oldest ${lag.secondsBehind.toFixed(1)} s, newest ${lag.head ?? '?'})` +
          (horizonHolder ? `; the read horizon is held: ${describeHorizonHolder(horizonHolder)}` : ''),
      );
    }
  }
  if ((options.expectLease ?? true) && lag.checkpoint !== null) {
    if (lease === null) problems.push(`${label}: no runner has ever held its lease ${projectionLeaseName(key)}`);
    else if (lease.expired) problems.push(`${label}: lease held by ${lease.holder} expired at ${lease.expiresAt} (last heartbeat ${lease.heartbeatAt}); no runner is active`);
  }
  const status = problems.length > 0 ? 'stuck' : lag.eventsBehind > 0 ? 'lagging' : 'healthy';
  return {
    ...lag,
    projection: key.name,
    version: key.version,
    ...(key.tenantId === undefined ? {} : { tenantId: key.tenantId }),
    status,
    problems,
    lease,
    horizonHolder,
  };
}
