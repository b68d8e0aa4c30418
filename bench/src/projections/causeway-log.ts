import type { LogPosition } from '@causeway/core';
import { createPgDatabase, createPostgresEventStore, type PostgresEventStore, type SqlDatabase } from '@causeway/postgres';
import type pg from 'pg';
import { checkpoint, dropSchema } from '../store/admin.js';
import { createPinnedPool } from './pinned-pool.js';
import { seedLog, streamId, type ProjectionWorkload } from './workload.js';

const SCHEMA = 'bench_projections';
const TENANT = 'bench';
const POOL_SIZE = 16;

/** Causeway's store, seeded once: Causeway's runner and the raw baseline both read this log. */
export interface CausewayLog {
  readonly connectionString: string;
  readonly schema: string;
  readonly db: SqlDatabase;
  readonly store: PostgresEventStore;
  /** Position of the log's last event: where a caught-up checkpoint stands. */
  readonly end: LogPosition;
  close(): Promise<void>;
}

export async function seedCausewayLog(
  connectionString: string,
  workload: ProjectionWorkload,
  progress: (appended: number) => void,
): Promise<CausewayLog> {
  await dropSchema(connectionString, SCHEMA);
  const pool: pg.Pool = createPinnedPool(connectionString, POOL_SIZE);
  const db = createPgDatabase({ pool });
  let store: PostgresEventStore | undefined;
  try {
    store = await createPostgresEventStore({ db, schema: SCHEMA });
    const s = store;
    await seedLog(
      workload,
      async (stream, expectedVersion, events) => {
        await s.append({ tenantId: TENANT, streamId: streamId(stream) }, events.map((e) => ({ eventType: e.type, data: e.data })), { expectedVersion });
      },
      progress,
    );
    const { rows } = await db.query<{ tx: string; seq: string; n: string }>(
      `SELECT tx::text AS tx, seq::text AS seq, (SELECT count(*) FROM "${SCHEMA}".events)::text AS n
       FROM "${SCHEMA}".events ORDER BY tx DESC, seq DESC LIMIT 1`,
    );
    const last = rows[0];
    if (last === undefined || Number(last.n) !== workload.events) throw new Error(`causeway: seeded ${last?.n ?? 0} events, expected ${workload.events}`);
    await pool.query(`VACUUM ANALYZE "${SCHEMA}".events`);
    await checkpoint(connectionString);
    const opened = store;
    return {
      connectionString,
      schema: SCHEMA,
      db,
      store: opened,
      end: { tx: BigInt(last.tx), seq: BigInt(last.seq) },
      async close() {
        await opened.close();
        await pool.end();
        await dropSchema(connectionString, SCHEMA);
      },
    };
  } catch (e) {
    await store?.close().catch(() => undefined);
    await pool.end().catch(() => undefined);
    throw e;
  }
}
