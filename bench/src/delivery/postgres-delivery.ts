import pg from 'pg';
import { PostgresPublisher, PostgresSubscriber, type SqlDatabase } from '@causeway/postgres';
import { dropSchema } from '../store/admin.js';
import type { CausewaySide, DeliveryBroker, RawSide } from './delivery-broker.js';

const RAW_SCHEMA = 'bench_delivery_raw_queue';
/** The raw side's pool: the size the brokers suite gives both of its PostgreSQL sides. */
const RAW_POOL = 10;

/** Causeway's PostgreSQL broker in the bench's database: the relay, the broker and the ledger share one pool. */
function causewaySide(db: SqlDatabase, schema: string): CausewaySide {
  const publisher = new PostgresPublisher({ db, schema });
  const subscriber = new PostgresSubscriber({ db, schema });
  return {
    publisher,
    subscriber,
    async stored(topic) {
      const { rows } = await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM "${schema}".broker_messages WHERE topic = $1`, [topic]);
      return Number(rows[0]?.n ?? 0);
    },
    async dropTopic() {
      // Rows go with the schema at the end of the case.
    },
    async close() {
      await subscriber.close();
      await publisher.close();
    },
  };
}

/**
 * The hand-written queue of the brokers suite: INSERT ... unnest of the batch with a NOTIFY in one
 * statement; the consumer LISTENs and takes up to `inFlight` rows per DELETE ... FOR UPDATE SKIP
 * LOCKED ... RETURNING (taking a row is its ack). No leases, no redelivery, no per-key order.
 */
function rawSide(connectionString: string): RawSide {
  let pool: pg.Pool | undefined;
  let listener: pg.Client | undefined;
  let topic = '';
  let stopping = false;
  let consumer: Promise<void> | undefined;
  let wake: (() => void) | undefined;
  const poolOf = (): pg.Pool => {
    if (pool === undefined) throw new Error('setup() first');
    return pool;
  };
  return {
    system: 'raw pg (INSERT unnest + NOTIFY; DELETE ... SKIP LOCKED)',
    async setup(name) {
      topic = name;
      stopping = false;
      await dropSchema(connectionString, RAW_SCHEMA);
      pool = new pg.Pool({ connectionString: connectionString, max: RAW_POOL });
      pool.on('error', () => undefined);
      await pool.query(`CREATE SCHEMA "${RAW_SCHEMA}"`);
      await pool.query(`CREATE TABLE "${RAW_SCHEMA}".queue (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, topic text NOT NULL, body text NOT NULL)`);
    },
    async publish(bodies) {
      await poolOf().query({
        name: 'raw.delivery.publish',
        text: `WITH ins AS (INSERT INTO "${RAW_SCHEMA}".queue (topic, body) SELECT $1, unnest($2::text[]) RETURNING 1)
               SELECT pg_notify($3, $1) FROM (SELECT 1 FROM ins LIMIT 1) AS wrote`,
        values: [topic, bodies, RAW_SCHEMA],
      });
    },
    async consume(inFlight, onBody) {
      const p = poolOf();
      listener = new pg.Client({ connectionString: connectionString });
      await listener.connect();
      let dirty = false;
      listener.on('notification', () => {
        dirty = true;
        wake?.();
      });
      await listener.query(`LISTEN "${RAW_SCHEMA}"`);
      consumer = (async () => {
        while (!stopping) {
          dirty = false;
          const r = await p.query<{ body: string }>({
            name: 'raw.delivery.take',
            text: `DELETE FROM "${RAW_SCHEMA}".queue WHERE id IN (
                     SELECT id FROM "${RAW_SCHEMA}".queue WHERE topic = $1 ORDER BY id FOR UPDATE SKIP LOCKED LIMIT $2)
                   RETURNING body`,
            values: [topic, inFlight],
          });
          for (const row of r.rows) onBody(row.body);
          if (r.rows.length === 0 && !dirty && !stopping) {
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
      })();
    },
    async stored() {
      const { rows } = await poolOf().query<{ n: string }>(`SELECT count(*)::text AS n FROM "${RAW_SCHEMA}".queue WHERE topic = $1`, [topic]);
      return Number(rows[0]?.n ?? 0);
    },
    async teardown() {
      stopping = true;
      wake?.();
      await consumer?.catch(() => undefined);
      consumer = undefined;
      await listener?.end().catch(() => undefined);
      listener = undefined;
      await pool?.end().catch(() => undefined);
      pool = undefined;
      await dropSchema(connectionString, RAW_SCHEMA);
    },
  };
}

export const postgresDelivery: DeliveryBroker = {
  adapter: 'postgresql',
  causeway: causewaySide,
  raw: rawSide,
};
