import { createPgDatabase, createPostgresEventStore, type PostgresEventStore, type SqlDatabase } from '@causeway/postgres';
import { checkpoint, dropSchema } from '../store/admin.js';

const SCHEMA = 'bench_delivery';
/** application_name of the bench's own connections, so the horizon sampler can tell them from the server's other work. */
export const APPLICATION_NAME = 'causeway-bench-delivery';
/** One pool for the store, the relay, the PostgreSQL broker and the ledger, as one service would have. */
const POOL = 16;

/** A fresh, migrated schema with Causeway's store and the consumer's effects table. */
export interface DeliveryEnv {
  readonly connectionString: string;
  readonly db: SqlDatabase;
  readonly schema: string;
  readonly store: PostgresEventStore;
  /** The effect statement a handler runs in its dedup transaction: $1 event id, $2 event number. */
  readonly effectSql: string;
  /** The same upsert for a batch: $1 uuid[], $2 int[]. */
  readonly effectBatchSql: string;
  close(): Promise<void>;
}

/** What the effects table says after a run: exactly once means rows = distinct = matching = expected, maxTimes = 1. */
export interface EffectCheck {
  readonly expected: number;
  readonly rows: number;
  /** Rows whose event id is one of the expected ones. */
  readonly matching: number;
  /** Most times one effect was applied (a duplicate applied makes it 2+). */
  readonly maxTimes: number;
  /** Keys in the dedup ledger for the consumer. */
  readonly ledgerKeys: number;
}

export async function openDeliveryEnv(connectionString: string): Promise<DeliveryEnv> {
  await dropSchema(connectionString, SCHEMA);
  const url = new URL(connectionString);
  url.searchParams.set('application_name', APPLICATION_NAME);
  const db = createPgDatabase({ connectionString: url.toString(), maxConnections: POOL });
  try {
    const store = await createPostgresEventStore({ db, schema: SCHEMA });
    const s = `"${SCHEMA}"`;
    // `times` counts applications instead of failing on a repeat, so a duplicate applied shows in the check.
    await db.query(`CREATE TABLE ${s}.bench_effects (event_id uuid PRIMARY KEY, n integer NOT NULL, times integer NOT NULL DEFAULT 1)`);
    await checkpoint(connectionString);
    return {
      connectionString,
      db,
      schema: SCHEMA,
      store,
      effectSql: `INSERT INTO ${s}.bench_effects AS x (event_id, n) VALUES ($1::uuid, $2) ON CONFLICT (event_id) DO UPDATE SET times = x.times + 1`,
      effectBatchSql: `INSERT INTO ${s}.bench_effects AS x (event_id, n) SELECT * FROM unnest($1::uuid[], $2::int[]) ON CONFLICT (event_id) DO UPDATE SET times = x.times + 1`,
      async close() {
        await store.close();
        await db.close();
        await dropSchema(connectionString, SCHEMA);
      },
    };
  } catch (e) {
    await db.close().catch(() => undefined);
    throw e;
  }
}

export async function checkEffects(env: DeliveryEnv, expectedIds: readonly string[], consumer: string): Promise<EffectCheck> {
  const s = `"${env.schema}"`;
  const { rows } = await env.db.query<{ rows: string; matching: string; max_times: string; ledger: string }>(
    `SELECT (SELECT count(*) FROM ${s}.bench_effects)::text AS rows,
            (SELECT count(*) FROM ${s}.bench_effects WHERE event_id = ANY ($1::uuid[]))::text AS matching,
            (SELECT coalesce(max(times), 0) FROM ${s}.bench_effects)::text AS max_times,
            (SELECT count(*) FROM ${s}.inbox WHERE consumer = $2)::text AS ledger`,
    [expectedIds, consumer],
  );
  const r = rows[0];
  return {
    expected: expectedIds.length,
    rows: Number(r?.rows ?? -1),
    matching: Number(r?.matching ?? -1),
    maxTimes: Number(r?.max_times ?? -1),
    ledgerKeys: Number(r?.ledger ?? -1),
  };
}

/** Why a check is not exactly once; empty when it is. */
export function effectProblems(c: EffectCheck): string[] {
  const out: string[] = [];
  if (c.rows !== c.expected) out.push(`${c.rows} effect rows for ${c.expected} events`);
  if (c.matching !== c.expected) out.push(`${c.expected - c.matching} events without their effect`);
  if (c.maxTimes !== 1) out.push(`an effect applied ${c.maxTimes} times`);
  if (c.ledgerKeys !== c.expected) out.push(`${c.ledgerKeys} dedup keys for ${c.expected} events`);
  return out;
}
