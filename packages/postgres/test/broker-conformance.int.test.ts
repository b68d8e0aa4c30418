import { brokerSuite, Collector, keyedMessages, uniqueTopic, type BrokerCapabilities, type BrokerHarness, type BrokerSettings } from '@causeway/conformance';
import {
  createPgDatabase,
  createPGliteDatabase,
  migrate,
  PostgresPublisher,
  PostgresSubscriber,
  type SqlDatabase,
} from '@causeway/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropSchema, PG_URL, postgresAvailable, skipBecauseNoServer, uniqueSchema } from './support.js';

const capabilities: BrokerCapabilities = { ordering: 'per-key', persistence: true, replay: true, nativeDelay: true, brokerDedup: true };

/** One database for every publisher and subscriber of a harness; each subscriber has its own LISTEN. */
async function harness(db: SqlDatabase, schema: string, settings: BrokerSettings, dispose: () => Promise<void>): Promise<BrokerHarness> {
  await migrate(db, { schema });
  return {
    publisher: () => new PostgresPublisher({ db, schema, maxMessageBytes: settings.maxMessageBytes }),
    subscriber: () => new PostgresSubscriber({ db, schema, ackTimeoutMs: settings.ackTimeoutMs, maxMessageBytes: settings.maxMessageBytes }),
    crash: (subscriber) => (subscriber as PostgresSubscriber).simulateCrashForTests(),
    async publishRaw(topic, body) {
      // The raw client: a row that did not come through the codec (text columns hold no NUL).
      const text = new TextDecoder().decode(body).replaceAll('\u0000', '');
      await db.query(
        `WITH ins AS (INSERT INTO "${schema}".broker_messages (topic, key, body) VALUES ($1, '', $2) RETURNING 1)
         SELECT pg_notify($3, $1) FROM ins`,
        [topic, text, `${schema}_broker`],
      );
    },
    close: dispose,
  };
}

if (await postgresAvailable()) {
  brokerSuite({
    name: 'postgres',
    capabilities,
    async create(settings) {
      const schema = uniqueSchema('broker');
      const db = createPgDatabase({ connectionString: PG_URL, maxConnections: 16 });
      return harness(db, schema, settings, async () => {
        await db.close();
        await dropSchema(schema);
      });
    },
  });
} else {
  skipBecauseNoServer('brokerSuite on PostgreSQL');
}

// Embedded engine: one connection, no server, so this always runs.
brokerSuite({
  name: 'pglite',
  capabilities,
  async create(settings) {
    const db = await createPGliteDatabase();
    return harness(db, 'causeway', settings, () => db.close());
  },
});

describe('postgres broker: what the suite does not cover (pglite)', () => {
  let db: SqlDatabase;
  beforeAll(async () => {
    db = await createPGliteDatabase();
    await migrate(db);
  });
  afterAll(() => db.close());

  it('publishInTransaction delivers on COMMIT and never on ROLLBACK', async () => {
    const topic = uniqueTopic('in-tx');
    const c = new Collector();
    const sub = new PostgresSubscriber({ db });
    await sub.subscribe(topic, { group: 'g' }, c.handler());
    const pub = new PostgresPublisher({ db });
    const [kept, dropped] = [keyedMessages(2, 2, 'kept'), keyedMessages(2, 2, 'dropped')];
    await db.transaction((tx) => pub.publishInTransaction(tx, topic, kept));
    await expect(db.transaction(async (tx) => {
      await pub.publishInTransaction(tx, topic, dropped);
      throw new Error('roll back');
    })).rejects.toThrow('roll back');
    const marker = keyedMessages(1, 1, 'marker');
    await pub.publish(topic, marker);
    await c.waitForAcked([...kept, ...marker].map((m) => m.event.eventId), 'committed messages and the marker');
    expect([...c.ids()].sort()).toEqual([...kept, ...marker].map((m) => m.event.eventId).sort());
    await sub.close();
    await pub.close();
  });

  it('pruneMessages deletes only what every group has admitted and acked', async () => {
    const topic = uniqueTopic('prune');
    const pub = new PostgresPublisher({ db });
    const first = new Collector();
    const sub1 = new PostgresSubscriber({ db });
    await sub1.subscribe(topic, { group: 'g' }, first.handler());
    const a = keyedMessages(3, 3, 'a');
    await pub.publish(topic, a);
    await first.waitForAcked(a.map((m) => m.event.eventId), 'batch A');
    await sub1.close();
    const b = keyedMessages(2, 2, 'b');
    await pub.publish(topic, b); // the group is away: not admitted yet
    const later = new Date(Date.now() + 60_000);
    expect(await pub.pruneMessages({ olderThan: later, topic })).toBe(3);
    const second = new Collector();
    const sub2 = new PostgresSubscriber({ db });
    await sub2.subscribe(topic, { group: 'g' }, second.handler());
    await second.waitForAcked(b.map((m) => m.event.eventId), 'batch B, kept for the group that was away');
    await sub2.close();
    expect(await pub.pruneMessages({ olderThan: later })).toBeGreaterThanOrEqual(2);
    const replay = new Collector();
    const sub3 = new PostgresSubscriber({ db });
    await sub3.subscribe(topic, { group: 'replay', startFrom: 'earliest' }, replay.handler());
    const marker = keyedMessages(1, 1, 'marker');
    await pub.publish(topic, marker);
    await replay.waitForAcked(marker.map((m) => m.event.eventId), 'the marker');
    expect(replay.ids()).toEqual(new Set(marker.map((m) => m.event.eventId)));
    await sub3.close();
    await pub.close();
  });

  it('validates options at construction, naming the option and the limit', () => {
    expect(() => new PostgresSubscriber({ db, ackTimeoutMs: 0 })).toThrow(/ackTimeoutMs must be an integer from 10/);
    expect(() => new PostgresSubscriber({ db, pollIntervalMs: 1.5 })).toThrow(/pollIntervalMs/);
    expect(() => new PostgresPublisher({ db, publishTimeoutMs: -1 })).toThrow(/publishTimeoutMs/);
    expect(() => new PostgresPublisher({ db, maxMessageBytes: 0 })).toThrow(/maxMessageBytes/);
    expect(() => new PostgresPublisher({ db, schema: 'Bad"Name' })).toThrow(/schema must match/);
    expect(() => new PostgresPublisher({} as never)).toThrow(/db is required/);
  });

  it('a publish while the database is unreachable retries until publishTimeoutMs, then rejects with AdapterError', async () => {
    const down = createPgDatabase({ connectionString: 'postgres://postgres@127.0.0.1:1/none', maxConnections: 1 });
    const pub = new PostgresPublisher({ db: down, publishTimeoutMs: 400, ownsDatabase: true });
    const started = Date.now();
    const error = await pub.publish(uniqueTopic('down'), keyedMessages(1, 1)).then(() => null, (e: unknown) => e);
    expect(error).toMatchObject({ code: 'ADAPTER_FAILED' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(350);
    expect(Date.now() - started).toBeLessThan(5_000);
    await pub.close();
    await expect(pub.publish(uniqueTopic('down'), keyedMessages(1, 1))).rejects.toMatchObject({ code: 'CLOSED' });
  });
});
