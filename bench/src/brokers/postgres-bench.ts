import pg from 'pg';
import { encodeStructured, type EventEnvelope } from '@causeway/core';
import { createPgDatabase, migrate, PostgresPublisher, PostgresSubscriber, type SqlDatabase } from '@causeway/postgres';
import { dropSchema } from '../store/admin.js';
import type { BrokerBenchPair, BrokerBenchTarget } from './broker-target.js';

const connectionString = (): string => process.env['BENCH_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
// Same pool size on both sides, and the same batch per round trip: the raw consumer takes up to
// 100 rows per DELETE; the subscriber runs 50 handlers at once and leases up to twice that per turn
// (rows it has in hand, acked in the same statement, count against the 100).
const POOL = 10;
const CONCURRENCY = 50;

/** A promise resolved by the first `check(true)`, called on every receive. */
function completion(): { readonly promise: Promise<void>; check(done: boolean): void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, check: (done) => done && resolve() };
}

/** Causeway: PostgresPublisher (one INSERT + NOTIFY per batch, resolved at COMMIT) and a PostgresSubscriber group. */
function causewayTarget(): BrokerBenchTarget {
  const schema = 'bench_broker';
  let db: SqlDatabase | undefined;
  let publisher: PostgresPublisher | undefined;
  let subscriber: PostgresSubscriber | undefined;
  let topic = '';
  return {
    system: 'causeway postgres',
    async setup(name) {
      topic = name;
      await dropSchema(connectionString(), schema);
      db = createPgDatabase({ connectionString: connectionString(), maxConnections: POOL });
      await migrate(db, { schema });
      publisher = new PostgresPublisher({ db, schema });
      subscriber = new PostgresSubscriber({ db, schema });
    },
    async run(events, batchSize, onReceived, onBatch?: (start: number) => void) {
      if (publisher === undefined || subscriber === undefined) throw new Error('setup() first');
      const index = new Map(events.map((e, i) => [e.eventId, i]));
      let received = 0;
      const all = completion();
      await subscriber.subscribe(topic, { group: 'bench', concurrency: CONCURRENCY }, (d) => {
        const i = d.kind === 'event' ? index.get(d.event.eventId) : undefined;
        if (i === undefined) return;
        onReceived(i);
        all.check(++received >= events.length);
      });
      for (let i = 0; i < events.length; i += batchSize) {
        onBatch?.(i);
        await publisher.publish(topic, events.slice(i, i + batchSize).map((event) => ({ event })));
      }
      await all.promise;
    },
    async teardown() {
      await subscriber?.close();
      await publisher?.close();
      await db?.close();
      await dropSchema(connectionString(), schema);
    },
  };
}

/**
 * The hand-written queue: INSERT the same CloudEvent JSON with a NOTIFY; one consumer LISTENs and
 * takes up to 100 rows at a time with DELETE ... FOR UPDATE SKIP LOCKED ... RETURNING (taking a row
 * is its ack). No leases, no redelivery, no per-key order, no dedup: the floor.
 */
function rawTarget(): BrokerBenchTarget {
  const schema = 'bench_raw_queue';
  let pool: pg.Pool | undefined;
  let listener: pg.Client | undefined;
  let topic = '';
  return {
    system: 'raw pg (DELETE ... SKIP LOCKED queue)',
    async setup(name) {
      topic = name;
      await dropSchema(connectionString(), schema);
      pool = new pg.Pool({ connectionString: connectionString(), max: POOL });
      pool.on('error', () => undefined);
      await pool.query(`CREATE SCHEMA "${schema}"`);
      await pool.query(`CREATE TABLE "${schema}".queue (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, topic text NOT NULL, body text NOT NULL)`);
      listener = new pg.Client({ connectionString: connectionString() });
      await listener.connect();
      await listener.query(`LISTEN "${schema}"`);
    },
    async run(events, batchSize, onReceived, onBatch?: (start: number) => void) {
      const p = pool;
      const l = listener;
      if (p === undefined || l === undefined) throw new Error('setup() first');
      const index = new Map(events.map((e, i) => [e.eventId, i]));
      let received = 0;
      const all = completion();
      let wake: (() => void) | undefined;
      let dirty = false;
      l.on('notification', () => {
        dirty = true;
        wake?.();
      });
      const consume = async (): Promise<void> => {
        while (received < events.length) {
          dirty = false;
          const r = await p.query<{ body: string }>({
            name: 'raw.take',
            text: `DELETE FROM "${schema}".queue WHERE id IN (
                     SELECT id FROM "${schema}".queue WHERE topic = $1 ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 100)
                   RETURNING body`,
            values: [topic],
          });
          for (const row of r.rows) {
            const event = JSON.parse(row.body) as { id: string };
            const i = index.get(event.id);
            if (i === undefined) continue;
            onReceived(i);
            all.check(++received >= events.length);
          }
          if (r.rows.length === 0 && !dirty) {
            await new Promise<void>((resolve) => {
              const timer = setTimeout(resolve, 1_000);
              wake = () => {
                clearTimeout(timer);
                resolve();
              };
            });
            wake = undefined;
          }
        }
      };
      const consumer = consume();
      for (let i = 0; i < events.length; i += batchSize) {
        onBatch?.(i);
        const bodies = events.slice(i, i + batchSize).map(cloudEventJson);
        await p.query({
          name: 'raw.publish',
          text: `WITH ins AS (INSERT INTO "${schema}".queue (topic, body) SELECT $1, unnest($2::text[]) RETURNING 1)
                 SELECT pg_notify($3, $1) FROM (SELECT 1 FROM ins LIMIT 1) AS wrote`,
          values: [topic, bodies, schema],
        });
      }
      await all.promise;
      await consumer;
    },
    async teardown() {
      await listener?.end().catch(() => undefined);
      await pool?.end();
      await dropSchema(connectionString(), schema);
    },
  };
}

/** The exact JSON Causeway writes for the event (structured-mode CloudEvent), so both sides move the same bytes. */
function cloudEventJson(event: EventEnvelope): string {
  return encodeStructured({ event }, { maxMessageBytes: 1024 * 1024 }).text;
}

export const postgresBench: BrokerBenchPair = {
  adapter: 'postgresql',
  causeway: causewayTarget,
  raw: rawTarget,
};
