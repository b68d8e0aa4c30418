import { createEvent, deadLetter, deduplicate, pipeline, retry, type DeliveryHandler, type Message, type Middleware } from '@causeway/core';
import { createPGliteDatabase, createPgDatabase, migrate, PostgresDeadLetterQueue, PostgresDedupLedger, type SqlDatabase } from '@causeway/postgres';
import { dropSchema, PG_URL, postgresAvailable, skipBecauseNoServer, uniqueSchema } from './support.js';

/** A migrated database of its own for one test: a fresh PGlite, or a fresh schema on the server. */
export interface ConsumerEnv {
  readonly engine: 'pglite' | 'postgres';
  readonly db: SqlDatabase;
  readonly schema: string;
  /** The quoted schema, for the test's own SQL. */
  readonly s: string;
  close(): Promise<void>;
}

export type OpenEnv = (label: string) => Promise<ConsumerEnv>;

/** Registers the suite on PGlite, and on the PostgreSQL server when it is reachable (else one skip saying why). */
export async function onEveryEngine(what: string, suite: (engine: 'pglite' | 'postgres', open: OpenEnv) => void): Promise<void> {
  suite('pglite', async () => {
    const db = await createPGliteDatabase();
    await migrate(db);
    return { engine: 'pglite', db, schema: 'causeway', s: '"causeway"', close: () => db.close() };
  });
  if (await postgresAvailable()) {
    suite('postgres', async (label) => {
      const schema = uniqueSchema(label);
      const db = createPgDatabase({ connectionString: PG_URL, maxConnections: 12 });
      await migrate(db, { schema });
      return {
        engine: 'postgres',
        db,
        schema,
        s: `"${schema}"`,
        async close() {
          await db.close();
          await dropSchema(schema);
        },
      };
    });
  } else {
    skipBecauseNoServer(`${what} on PostgreSQL`);
  }
}

/** An event message of `key` for tests; `n` travels in the data. */
export function testMessage(n: number, key: string, tenantId = 't1', eventType = 'test.order.placed'): Message {
  return { event: createEvent({ eventType, data: { n } }, { tenantId, producer: 'test' }), key };
}

/** A table of applied effects: one row per event id, `times` counts applications (exactly-once means 1). */
export async function createEffects(env: ConsumerEnv, table = 'effects'): Promise<void> {
  await env.db.query(`CREATE TABLE ${env.s}.${table} (event_id uuid PRIMARY KEY, key text NOT NULL, n integer NOT NULL, seq bigint GENERATED ALWAYS AS IDENTITY, times integer NOT NULL DEFAULT 1)`);
}

export const applyEffectSql = (env: ConsumerEnv, table = 'effects'): string =>
  `INSERT INTO ${env.s}.${table} AS x (event_id, key, n) VALUES ($1, $2, $3) ON CONFLICT (event_id) DO UPDATE SET times = x.times + 1`;

export async function readEffects(env: ConsumerEnv, table = 'effects'): Promise<{ ids: string[]; maxTimes: number; byKey: Record<string, number[]> }> {
  const { rows } = await env.db.query<{ event_id: string; key: string; n: number; times: number }>(
    `SELECT event_id::text AS event_id, key, n, times FROM ${env.s}.${table} ORDER BY seq`,
  );
  const byKey: Record<string, number[]> = {};
  for (const r of rows) (byKey[r.key] ??= []).push(r.n);
  return { ids: rows.map((r) => r.event_id), maxTimes: Math.max(0, ...rows.map((r) => r.times)), byKey };
}

/** The failure a test handler throws for the events it is told to fail. */
export class OrderRejected extends Error {}

/**
 * A consumer as an application would build it: dedup ledger around a handler that writes its
 * effect in the ledger's transaction, dead-lettering into the PostgreSQL DLQ, retry() with a quick
 * policy; `sequenced` parking outermost when given. `fail` maps event ids to the throw the
 * handler makes for them (remove an entry to "deploy the fix").
 */
export function testConsumer(
  env: ConsumerEnv,
  options: { consumer: string; table: string; fail: Map<string, () => never>; before?: readonly Middleware[] },
): { dlq: PostgresDeadLetterQueue; handler: DeliveryHandler } {
  const dlq = new PostgresDeadLetterQueue(env.db, env.schema);
  const ledger = new PostgresDedupLedger({ db: env.db, schema: env.schema });
  const sql = applyEffectSql(env, options.table);
  const handler = pipeline(
    deduplicate(ledger, { consumer: options.consumer }, async (d, tx) => {
      options.fail.get(d.event.eventId)?.();
      await tx.query(sql, [d.event.eventId, d.key, (d.event.data as { n: number }).n]);
    }),
    ...(options.before ?? []),
    deadLetter(dlq, { consumer: options.consumer }),
    retry({ immediate: 2, maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 10 }),
  );
  return { dlq, handler };
}
