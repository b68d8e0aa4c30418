import { createPostgresEventStore, createPostgresOutbox, readLease, type PostgresOutbox } from '@causeway/postgres';
import { expect, it } from 'vitest';
import { brokerEnv, declareGroup, openPublisher, openSubscriber } from './fixtures/brokers.js';
import { drainMessage, effectConsumer, newCounters, openLedger, testMessage, TENANT } from './fixtures/consumer.js';
import { countEffects, readEffects, type SentMessage } from './fixtures/effects.js';
import { computeFigures, formatFigures } from './fixtures/figures.js';
import {
  describePerBroker,
  FULL_SCALE,
  openTestBroker,
  openTestDatabase,
  PG_URL,
  report,
  spawnFixture,
  waitFor,
  type Child,
  type TestDatabase,
} from './support.js';

/**
 * kill -9 the relay (issue 4, item 6). Two relay processes run at all times, one active and one
 * standing by on the lease; every 1-2 s the active one is SIGKILLed (wherever it is: reading,
 * publishing, between publish and checkpoint) and a fresh standby is started, while 4 writers
 * append over 200 keys. A consumer with the PostgreSQL inbox ledger records one effect row per
 * application. Every committed event must be applied exactly once, per key in version order.
 *
 * Order-preserving consumer settings: ONE subscriber with concurrency 1 (RabbitMQ: prefetch 1
 * on one quorum queue; NATS: one pull consumer with max_ack_pending 1, see declareGroup). The relay
 * publishes one batch at a time, per key in log order, so the queue/stream holds each key's
 * events in version order, with re-published runs after a kill (absorbed by the ledger).
 * On NATS the stream's duplicate window is cut to 1 s, so re-publishes are stored again and
 * reach the consumer instead of being dropped by the server.
 */
const KEYS = 200;
const WRITERS = 4;
const SCALE = {
  'event-log': FULL_SCALE ? { events: 20_000, writeMs: 60_000 } : { events: 2_400, writeMs: 12_000 },
  outbox: FULL_SCALE ? { events: 20_000, writeMs: 60_000 } : { events: 1_200, writeMs: 8_000 },
} as const;
const NATS_DUP_WINDOW_MS = 1_000;
const TEST_TIMEOUT_MS = FULL_SCALE ? 1_200_000 : 120_000;
/** How long the consumer may take to apply everything once the writers are done. */
const CATCH_UP_MS = FULL_SCALE ? 900_000 : 90_000;

type RelayKind = keyof typeof SCALE;

/** The relay processes: two at a time, the lease holder killed on demand and replaced. */
class RelayFleet {
  /** Running relays by lease holder name. */
  readonly children = new Map<string, Child>();
  /** Every relay process ever started, killed ones included. */
  readonly everyChild: Child[] = [];
  kills = 0;
  #next = 0;

  constructor(
    private readonly env: Record<string, string>,
    private readonly leaseName: string,
    private readonly tdb: TestDatabase,
  ) {}

  start(): Child {
    const holder = `relay-${(this.#next += 1)}`;
    const child = spawnFixture('relay-main.ts', { ...this.env, FAULT_HOLDER: holder });
    this.children.set(holder, child);
    this.everyChild.push(child);
    return child;
  }

  /** SIGKILLs the process holding the lease (if one does) and starts a replacement standby. */
  async killActive(): Promise<boolean> {
    const row = await readLease(this.tdb.db, { schema: this.tdb.schema, name: this.leaseName });
    const child = row === null || row.expired ? undefined : this.children.get(row.holder);
    if (child === undefined) return false;
    child.kill('SIGKILL');
    this.children.delete(row?.holder ?? '');
    this.kills += 1;
    await child.exited;
    this.start();
    return true;
  }

  /** Stops every relay gracefully (SIGTERM) and waits for them. */
  async stop(): Promise<void> {
    const all = [...this.children.values()];
    for (const c of all) c.kill('SIGTERM');
    await Promise.all(all.map((c) => c.exited));
  }

  /** Messages the broker confirmed, over every relay process that ever ran (killed ones too). */
  published(): number {
    let n = 0;
    for (const c of this.everyChild) for (const line of c.lines) if (line.t === 'published') n += Number(line.n);
    return n;
  }

  /** Ends whatever still runs, without ceremony (test cleanup). */
  async abort(): Promise<void> {
    for (const c of this.everyChild) c.kill('SIGKILL');
    await Promise.all(this.everyChild.map((c) => c.exited));
  }
}

/** Writes `events` over KEYS keys from WRITERS loops, paced over `writeMs`; returns when all committed. */
async function write(events: number, writeMs: number, appendOne: (key: string) => Promise<void>): Promise<void> {
  const perWriter = Math.ceil(events / WRITERS);
  const start = Date.now();
  await Promise.all(
    Array.from({ length: WRITERS }, async (_, w) => {
      for (let i = 0; i < perWriter && w * perWriter + i < events; i++) {
        await appendOne(`key-${String(Math.floor(Math.random() * KEYS)).padStart(3, '0')}`);
        // Pacing (a write rate, not a wait for async work): keep the writes spread over the run so kills land among them.
        const due = start + ((i + 1) * writeMs) / perWriter - Date.now();
        if (due > 0) await new Promise((r) => setTimeout(r, due));
      }
    }),
  );
}

/** A writer for the state-based variant: bumps the key's version and adds the message to the outbox in one transaction. */
function outboxWriter(tdb: TestDatabase, outbox: PostgresOutbox, topic: string): (key: string) => Promise<void> {
  const s = `"${tdb.schema}"`;
  return (key) =>
    tdb.db.transaction(async (tx) => {
      const { rows } = await tx.query<{ version: number }>(
        `INSERT INTO ${s}.fault_keys AS k (stream_key, version) VALUES ($1, 1)
         ON CONFLICT (stream_key) DO UPDATE SET version = k.version + 1 RETURNING version`,
        [key],
      );
      const message = testMessage(key, (rows[0] as { version: number }).version);
      await tx.query(`INSERT INTO ${s}.fault_sent (event_id, stream_key, version) VALUES ($1, $2, $3)`, [message.event.eventId, key, message.event.streamVersion]);
      await outbox.add(tx, topic, [message]);
    });
}

/** What was committed: the event log, or the rows the outbox writers recorded with their messages. */
async function committed(tdb: TestDatabase, kind: RelayKind): Promise<SentMessage[]> {
  const s = `"${tdb.schema}"`;
  const sql =
    kind === 'event-log'
      ? `SELECT event_id::text AS event_id, stream_id AS stream_key, stream_version::int AS version FROM ${s}.events`
      : `SELECT event_id::text AS event_id, stream_key, version FROM ${s}.fault_sent`;
  const { rows } = await tdb.db.query<{ event_id: string; stream_key: string; version: number }>(sql);
  return rows.map((r) => ({ eventId: r.event_id, key: r.stream_key, version: r.version }));
}

await describePerBroker('kill -9 the relay', (brokerKind) => {
  for (const relayKind of ['event-log', 'outbox'] as const) {
    it(
      `${relayKind} relay: every committed event applied exactly once, in per-key order, across kills every 1-2 s`,
      async () => {
        const { events, writeMs } = SCALE[relayKind];
        const tdb = await openTestDatabase(`rk_${relayKind.slice(0, 3)}`, 12);
        const broker = openTestBroker(brokerKind, 'relay');
        const topic = `fault.relay.${relayKind}`;
        const group = 'effects';
        const consumer = `relay-${relayKind}`;
        const tuning = { ackTimeoutMs: 30_000, duplicateWindowMs: NATS_DUP_WINDOW_MS };
        const subscriber = openSubscriber(broker, tuning);
        const drainer = openPublisher(broker, tuning);
        let fleet: RelayFleet | undefined;
        let killing = true;
        try {
          let appendOne: (key: string) => Promise<void>;
          if (relayKind === 'event-log') {
            const s = await createPostgresEventStore({ db: tdb.db, schema: tdb.schema, migrate: false });
            appendOne = async (key) => {
              await s.append({ tenantId: TENANT, streamId: key }, [{ eventType: 'fault.item.recorded', data: { key } }]);
            };
          } else {
            const s = `"${tdb.schema}"`;
            await tdb.db.query(`CREATE TABLE ${s}.fault_keys (stream_key text PRIMARY KEY, version integer NOT NULL)`);
            await tdb.db.query(`CREATE TABLE ${s}.fault_sent (event_id uuid PRIMARY KEY, stream_key text NOT NULL, version integer NOT NULL)`);
            const outbox = await createPostgresOutbox({ db: tdb.db, schema: tdb.schema, name: 'fault', migrate: false });
            appendOne = outboxWriter(tdb, outbox, topic);
          }

          const counters = newCounters();
          const handler = effectConsumer(openLedger(tdb.db, tdb.schema), { db: tdb.db, schema: tdb.schema, consumer, appliedBy: 'test', counters });
          broker.track(topic, group);
          await declareGroup(broker, topic, group, { ...tuning, ordered: true });
          await subscriber.subscribe(topic, { group, concurrency: 1, startFrom: 'earliest' }, handler);

          const name = 'fault';
          fleet = new RelayFleet(
            {
              ...brokerEnv(broker),
              FAULT_PG_URL: PG_URL,
              FAULT_SCHEMA: tdb.schema,
              FAULT_RELAY: relayKind,
              FAULT_RELAY_NAME: name,
              FAULT_TOPIC: topic,
              FAULT_NATS_DUP_WINDOW_MS: String(NATS_DUP_WINDOW_MS),
            },
            relayKind === 'event-log' ? `relay:log:${name}` : `relay:outbox:${name}`,
            tdb,
          );
          const f = fleet;
          await Promise.all([f.start(), f.start()].map((c) => c.waitForLine((l) => l.t === 'started', 30_000)));

          // The killer: every 1-2 s (random), SIGKILL whichever relay holds the lease.
          const killer = (async () => {
            while (killing) {
              await new Promise((r) => setTimeout(r, 1_000 + Math.random() * 1_000));
              if (killing) await f.killActive();
            }
          })();
          const started = Date.now();
          await write(events, writeMs, appendOne);
          const writeSeconds = (Date.now() - started) / 1000;
          killing = false;
          await killer;

          const sent = await committed(tdb, relayKind);
          expect(sent.length).toBe(events);
          await waitFor('every committed event applied', async () => (await countEffects(tdb.db, tdb.schema, consumer)) >= sent.length, {
            timeoutMs: CATCH_UP_MS,
            everyMs: 100,
            state: async () => ({ effects: await countEffects(tdb.db, tdb.schema, consumer), committed: sent.length, delivered: counters.delivered, duplicates: counters.duplicates }),
          });
          await f.stop();
          // Drain: a marker published after every relay stopped; once handled, nothing relayed is still on its way.
          const marker = drainMessage();
          await drainer.publish(topic, [marker]);
          await waitFor('the drain marker', () => counters.drained.has(marker.event.eventId), { timeoutMs: 30_000 });

          const figures = computeFigures({
            sent,
            applied: await readEffects(tdb.db, tdb.schema, consumer),
            published: f.published(),
            delivered: counters.delivered,
            duplicatesDelivered: counters.duplicates,
          });
          report(
            formatFigures(`relay kill -9 (${relayKind}, ${brokerKind})`, figures, {
              kills: f.kills,
              'relay processes': f.everyChild.length,
              're-published': figures.published - sent.length,
              'write seconds': writeSeconds.toFixed(1),
              keys: KEYS,
              writers: WRITERS,
            }),
          );
          expect(figures.lost).toBe(0);
          expect(figures.duplicatesApplied).toBe(0);
          expect(figures.orderViolations, figures.orderSamples.join('; ')).toBe(0);
          expect(figures.unexpected).toBe(0);
          expect(figures.published).toBeGreaterThanOrEqual(sent.length);
          expect(figures.delivered).toBe(sent.length + figures.duplicatesDelivered);
          // The test did what it says: relays really were killed while events were written (the
          // rate is every 1-2 s; a loaded machine starting relays slowly skips a few ticks).
          expect(f.kills).toBeGreaterThanOrEqual(3);
        } finally {
          killing = false;
          await fleet?.abort();
          await subscriber.close({ timeoutMs: 2_000 }).catch(() => undefined);
          await drainer.close({ timeoutMs: 2_000 }).catch(() => undefined);
          await broker.cleanup().catch(() => undefined);
          await tdb.close();
        }
      },
      TEST_TIMEOUT_MS,
    );
  }
});
