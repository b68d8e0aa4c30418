import { InMemoryBroker, createEvent, isMessageTooLargeError, type Message } from '@causeway/core';
import { PostgresOutbox, createOutboxRelay, deleteSentOutboxRows, outboxStats, type Relay } from '@causeway/postgres';
import { describe, expect, it } from 'vitest';
import {
  RecordingPublisher,
  countingDatabase,
  describeFigures,
  figures,
  openRelayEnv,
  outboxCounts,
  testMessage,
  waitUntil,
  type RelayEnv,
} from './fixtures/relay-support.js';
import { postgresAvailable, skipBecauseNoServer } from './support.js';

/**
 * The transactional outbox and its relay against a real database (PGlite and the server): the
 * outbox rows live and die with the business transaction, and the relay delivers every committed
 * row, in per-key order, waking on NOTIFY and idling quietly.
 */
const quiet = (): ((e: unknown) => void) => () => undefined;

function outboxTests(engine: 'pglite' | 'postgres'): void {
  describe(`outbox on ${engine}`, () => {
    it('business row and outbox rows commit together and roll back together; bad input writes nothing', async () => {
      const env = await openRelayEnv(engine, 'oba');
      try {
        const s = `"${env.schema}"`;
        await env.db.query(`CREATE TABLE ${s}.orders (id text PRIMARY KEY)`);
        const outbox = new PostgresOutbox({ schema: env.schema, maxMessageBytes: 4096 });
        const placed = [testMessage('o-1', 1), testMessage('o-1', 2)];
        await env.db.transaction(async (tx) => {
          await tx.query(`INSERT INTO ${s}.orders VALUES ('o-1')`);
          await outbox.add(tx, 'shop.orders', placed);
        });
        await env.db
          .transaction(async (tx) => {
            await tx.query(`INSERT INTO ${s}.orders VALUES ('o-2')`);
            await outbox.add(tx, 'shop.orders', [testMessage('o-2', 1)]);
            throw new Error('roll back on purpose');
          })
          .catch(() => undefined);
        const { rows: orders } = await env.db.query<{ id: string }>(`SELECT id FROM ${s}.orders ORDER BY id`);
        const { rows } = await env.db.query<{ message_id: string; topic: string; partition_key: string; tenant_id: string; event_type: string; envelope: { eventId: string; data: unknown } }>(
          `SELECT message_id::text AS message_id, topic, partition_key, tenant_id, event_type, envelope FROM ${s}.outbox ORDER BY id`,
        );
        expect(orders.map((o) => o.id)).toEqual(['o-1']);
        expect(rows.map((r) => r.message_id)).toEqual(placed.map((m) => m.event.eventId));
        expect(rows[0]).toMatchObject({ topic: 'shop.orders', partition_key: 'o-1', tenant_id: 'acme', event_type: 'test.item.added' });
        expect(rows[1]?.envelope).toEqual(placed[1]?.event);

        // Each bad input fails the whole call before anything is written.
        const before = (await outboxCounts(env)).pending;
        const add = (topic: string, messages: Message[]) => env.db.transaction((tx) => outbox.add(tx, topic, messages)).then(() => null, (e: unknown) => e);
        expect(await add('shop.*', [testMessage('x', 1)])).toMatchObject({ code: 'INVALID_OPTIONS' });
        const badType = { event: { ...testMessage('x', 1).event, eventType: 'DoSomething' } };
        expect(await add('shop.orders', [testMessage('x', 1), badType])).toMatchObject({ code: 'SCHEMA_INVALID', message: expect.stringContaining('message 1') });
        expect(await add('shop.orders', [{ ...testMessage('x', 1), key: '' }])).toMatchObject({ code: 'SCHEMA_INVALID', message: expect.stringContaining('key') });
        expect(await add('shop.orders', [{ ...testMessage('x', 1), traceparent: 'é'.repeat(3) }])).toMatchObject({ code: 'SCHEMA_INVALID' });
        const big = await add('shop.orders', [testMessage('x', 1, { blob: 'y'.repeat(5000) })]);
        expect(isMessageTooLargeError(big)).toBe(true);
        expect((await outboxCounts(env)).pending).toBe(before);
      } finally {
        await env.close();
      }
    });

    it('NOTIFY wakes the relay at once, and an idle relay barely queries', async () => {
      const env = await openRelayEnv(engine, 'obb');
      const db = countingDatabase(env.db);
      const publisher = new RecordingPublisher();
      // A poll interval far longer than the test: anything delivered quickly was woken by NOTIFY.
      const relay = createOutboxRelay({ db, publisher, schema: env.schema, pollIntervalMs: 60_000, onError: quiet() });
      try {
        const outbox = new PostgresOutbox({ schema: env.schema });
        await waitUntil(() => relay.active, 10_000, 'the relay to take the lease');
        await new Promise((resolve) => setTimeout(resolve, 100)); // let it reach its idle wait
        const idleFrom = db.count;
        await new Promise((resolve) => setTimeout(resolve, 1000));
        const idleQueries = db.count - idleFrom;
        const latencies: number[] = [];
        for (let i = 0; i < 5; i++) {
          const started = Date.now();
          await env.db.transaction((tx) => outbox.add(tx, 'wake.test', [testMessage('k', i)]));
          await waitUntil(() => publisher.log.length === i + 1, 10_000, `message ${i} to be published`);
          latencies.push(Date.now() - started);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        console.log(`[${engine}] idle relay: ${idleQueries} queries in 1 s; commit-to-publish ms: ${latencies.join(', ')}`);
        expect(idleQueries).toBeLessThanOrEqual(2);
        expect(Math.max(...latencies)).toBeLessThan(5000);
      } finally {
        await relay.stop();
        await env.close();
      }
    });

    // Server only: PGlite runs one transaction at a time, so nothing can commit behind an open one.
    if (engine === 'postgres') it('a row committed behind a running transaction is published soon after that one ends, not at the next poll', async () => {
      const env = await openRelayEnv(engine, 'obk');
      const publisher = new RecordingPublisher();
      const relay = createOutboxRelay({ db: env.db, publisher, schema: env.schema, pollIntervalMs: 60_000, onError: quiet() });
      try {
        const outbox = new PostgresOutbox({ schema: env.schema });
        await waitUntil(() => relay.active, 10_000, 'the relay to take the lease');
        let release!: () => void;
        const held = new Promise<void>((resolve) => {
          release = resolve;
        });
        let started!: () => void;
        const running = new Promise<void>((resolve) => {
          started = resolve;
        });
        // An older transaction with an xid, still open: the read horizon stays below it.
        const older = env.db.transaction(async (tx) => {
          await tx.query('SELECT pg_current_xact_id()');
          started();
          await held;
        });
        await running;
        await env.db.transaction((tx) => outbox.add(tx, 'held.test', [testMessage('h', 1)]));
        await new Promise((resolve) => setTimeout(resolve, 400));
        const whileHeld = publisher.log.length;
        const ended = Date.now();
        release();
        await older;
        await waitUntil(() => publisher.log.length === 1, 30_000, 'the held row to be published');
        const latency = Date.now() - ended;
        console.log(`[${engine}] held behind an open transaction: published ${whileHeld} while it ran, then ${latency} ms after it ended (poll 60 s)`);
        expect(whileHeld).toBe(0);
        expect(latency).toBeLessThan(10_000);
      } finally {
        await relay.stop();
        await env.close();
      }
    });

    it('gap safety and per-key order: slow commits and 10% rollbacks, every committed row once, in order', async () => {
      const env = await openRelayEnv(engine, 'obc');
      const publisher = new RecordingPublisher(new InMemoryBroker().createPublisher());
      const relay = createOutboxRelay({ db: env.db, publisher, schema: env.schema, batchSize: 7, pollIntervalMs: 200, onError: quiet() });
      try {
        const outbox = new PostgresOutbox({ schema: env.schema });
        const committed = new Set<string>();
        const rolledBack = new Set<string>();
        let slow = 0;
        const WRITERS = 6;
        const TRANSACTIONS = 30;
        await Promise.all(
          Array.from({ length: WRITERS }, async (_, w) => {
            const next = new Map<string, number>();
            for (let t = 0; t < TRANSACTIONS; t++) {
              const messages = Array.from({ length: 1 + ((w + t) % 3) }, (_, i) => {
                const key = `w${w}-k${(t + i) % 4}`;
                const n = (next.get(key) ?? 0) + 1;
                next.set(key, n);
                return testMessage(key, n);
              });
              const roll = Math.random();
              const rollback = roll < 0.1;
              const pause = !rollback && roll < 0.3;
              const topic = t % 2 === 0 ? 'gap.even' : 'gap.odd';
              try {
                await env.db.transaction(async (tx) => {
                  await outbox.add(tx, topic, messages);
                  if (pause) {
                    slow++;
                    await new Promise((resolve) => setTimeout(resolve, 20 + Math.floor(Math.random() * 100)));
                  }
                  if (rollback) throw new Error('roll back on purpose');
                });
                for (const m of messages) committed.add(m.event.eventId);
              } catch (error) {
                if (!rollback) throw error;
                for (const m of messages) rolledBack.add(m.event.eventId);
                // The key's numbers must still increase for what did commit: rolled-back numbers are skipped.
              }
            }
          }),
        );
        await waitUntil(async () => (await outboxCounts(env)).pending === 0, 60_000, 'every committed row to be marked sent');
        const f = figures(publisher.log, committed, rolledBack);
        console.log(`[${engine}] gap: ${WRITERS}x${TRANSACTIONS} transactions, ${rolledBack.size} rolled-back rows, ${slow} slow commits; ${describeFigures(f)}`);
        expect(rolledBack.size).toBeGreaterThan(0);
        expect(slow).toBeGreaterThan(0);
        expect(f.lost).toBe(0);
        expect(f.ghosts).toBe(0);
        expect(f.orderViolations).toBe(0);
        expect(f.duplicates).toBe(0);
        expect(relay.marked).toBe(committed.size);
        expect((await outboxCounts(env)).sent).toBe(committed.size);
      } finally {
        await relay.stop();
        await env.close();
      }
    });

    it('a failing broker: nothing is marked, the relay retries, everything is delivered once it is back', async () => {
      const env = await openRelayEnv(engine, 'obd');
      const publisher = new RecordingPublisher();
      publisher.failWith = new Error('broker down');
      const errors: unknown[] = [];
      const relay = createOutboxRelay({ db: env.db, publisher, schema: env.schema, batchSize: 10, retryBaseMs: 5, retryMaxMs: 40, onError: (e) => errors.push(e) });
      try {
        const outbox = new PostgresOutbox({ schema: env.schema });
        const committed = new Set<string>();
        for (let t = 0; t < 6; t++) {
          const messages = Array.from({ length: 5 }, (_, i) => testMessage(`k${i}`, t + 1));
          await env.db.transaction((tx) => outbox.add(tx, 'down.test', messages));
          for (const m of messages) committed.add(m.event.eventId);
        }
        await waitUntil(() => publisher.failures >= 5, 10_000, 'five failed publishes');
        expect(await outboxCounts(env)).toEqual({ pending: 30, sent: 0 });
        expect((await outboxStats(env.db, { schema: env.schema })).pending).toBe(30);
        expect(relay.marked).toBe(0);
        publisher.failWith = null;
        await waitUntil(async () => (await outboxCounts(env)).pending === 0, 30_000, 'delivery after the broker is back');
        const f = figures(publisher.log, committed);
        console.log(`[${engine}] broker down: ${publisher.failures} failed publishes, ${errors.length} reports; ${describeFigures(f)}`);
        expect(f.lost).toBe(0);
        expect(f.duplicates).toBe(0);
        expect(f.orderViolations).toBe(0);
        expect(errors.length).toBeGreaterThanOrEqual(5);
        expect(errors[0]).toMatchObject({ message: 'broker down' });
      } finally {
        await relay.stop();
        await env.close();
      }
    });

    it('stats: pending count and oldest pending age, with and without a relay', async () => {
      const env = await openRelayEnv(engine, 'obe');
      const outbox = new PostgresOutbox({ schema: env.schema, name: 'billing' });
      let relay: Relay | null = null;
      try {
        expect(await outboxStats(env.db, { schema: env.schema, name: 'billing' })).toEqual({ pending: 0, oldestPendingAgeMs: 0 });
        await env.db.transaction((tx) => outbox.add(tx, 'billing.events', [testMessage('a', 1), testMessage('a', 2)]));
        await new Promise((resolve) => setTimeout(resolve, 150));
        await env.db.transaction((tx) => outbox.add(tx, 'billing.events', [testMessage('b', 1)]));
        // Another outbox's rows do not count.
        await env.db.transaction((tx) => new PostgresOutbox({ schema: env.schema, name: 'other' }).add(tx, 'other.events', [testMessage('c', 1)]));
        const before = await outboxStats(env.db, { schema: env.schema, name: 'billing' });
        expect(before.pending).toBe(3);
        expect(before.oldestPendingAgeMs).toBeGreaterThanOrEqual(140);
        expect(before.oldestPendingAgeMs).toBeLessThan(60_000);
        const publisher = new RecordingPublisher();
        relay = createOutboxRelay({ db: env.db, publisher, schema: env.schema, name: 'billing', onError: quiet() });
        const r = relay;
        await waitUntil(async () => (await r.stats()).pending === 0, 10_000, 'the billing outbox to drain');
        expect(await relay.stats()).toEqual({ pending: 0, oldestPendingAgeMs: 0 });
        expect(publisher.log.map((p) => p.key)).toEqual(['a', 'a', 'b']);
        expect((await outboxStats(env.db, { schema: env.schema, name: 'other' })).pending).toBe(1);
      } finally {
        await relay?.stop();
        await env.close();
      }
    });

    it('retention: sent rows past it are deleted in the background, recent and pending rows stay; 0 deletes at once', async () => {
      const env = await openRelayEnv(engine, 'obf');
      const s = `"${env.schema}"`;
      const publisher = new RecordingPublisher();
      const relay = createOutboxRelay({ db: env.db, publisher, schema: env.schema, name: 'kept', retentionMs: 3_600_000, cleanupIntervalMs: 50, onError: quiet() });
      const instant = createOutboxRelay({ db: env.db, publisher, schema: env.schema, name: 'instant', retentionMs: 0, onError: quiet() });
      try {
        const kept = new PostgresOutbox({ schema: env.schema, name: 'kept' });
        await env.db.transaction((tx) => kept.add(tx, 'kept.events', Array.from({ length: 10 }, (_, i) => testMessage('k', i + 1))));
        await waitUntil(async () => (await outboxCounts(env, 'kept')).sent === 10, 10_000, 'ten rows sent');
        // Age six of them past the retention; leave a pending row of an outbox without a relay, old too.
        await env.db.query(`UPDATE ${s}.outbox SET created_at = created_at - interval '2 hours' WHERE id IN (SELECT id FROM ${s}.outbox WHERE outbox = 'kept' ORDER BY id LIMIT 6)`);
        await env.db.transaction((tx) => new PostgresOutbox({ schema: env.schema, name: 'idle' }).add(tx, 'idle.events', [testMessage('i', 1)]));
        await env.db.query(`UPDATE ${s}.outbox SET created_at = created_at - interval '3 hours' WHERE outbox = 'idle'`);
        await waitUntil(async () => (await outboxCounts(env, 'kept')).sent === 4, 10_000, 'the cleanup to delete the six old rows');
        expect(await outboxCounts(env, 'idle')).toEqual({ pending: 1, sent: 0 });
        // The function the CLI uses: nothing older than an hour is left, and pending rows are never touched.
        expect(await deleteSentOutboxRows(env.db, { schema: env.schema, name: 'kept', olderThanMs: 3_600_000 })).toBe(0);
        expect(await deleteSentOutboxRows(env.db, { schema: env.schema, name: 'idle', olderThanMs: 0 })).toBe(0);
        expect(await deleteSentOutboxRows(env.db, { schema: env.schema, name: 'kept', olderThanMs: 0 })).toBe(4);

        const now = new PostgresOutbox({ schema: env.schema, name: 'instant' });
        await env.db.transaction((tx) => now.add(tx, 'instant.events', [testMessage('n', 1), testMessage('n', 2)]));
        await waitUntil(() => instant.marked === 2, 10_000, 'the instant outbox to be relayed');
        expect(await outboxCounts(env, 'instant')).toEqual({ pending: 0, sent: 0 });
        expect(publisher.log.filter((p) => p.topic === 'instant.events').map((p) => p.n)).toEqual([1, 2]);
      } finally {
        await Promise.all([relay.stop(), instant.stop()]);
        await env.close();
      }
    });

    it('throughput figure (log only): a backlog relayed to the in-memory broker', async () => {
      const env = await openRelayEnv(engine, 'obg');
      const outbox = new PostgresOutbox({ schema: env.schema });
      const total = engine === 'pglite' ? 5_000 : 20_000;
      try {
        for (let t = 0; t < total / 200; t++) {
          const messages: Message[] = Array.from({ length: 200 }, (_, i) => ({
            event: createEvent({ eventType: 'bench.row.written', data: { i } }, { tenantId: 'acme', producer: 'bench' }),
            key: `k${i % 50}`,
          }));
          await env.db.transaction((tx) => outbox.add(tx, 'bench.rows', messages));
        }
        const broker = new InMemoryBroker();
        const publisher = broker.createPublisher();
        const raw = Date.now();
        const sample: Message[] = Array.from({ length: 500 }, (_, i) => ({ event: createEvent({ eventType: 'bench.row.written', data: { i } }, { tenantId: 'acme', producer: 'bench' }), key: `k${i % 50}` }));
        for (let i = 0; i < total / 500; i++) await publisher.publish('bench.raw', sample);
        const rawMs = Date.now() - raw;
        const started = Date.now();
        const relay = createOutboxRelay({ db: env.db, publisher, schema: env.schema, batchSize: 500, onError: quiet() });
        try {
          await waitUntil(() => relay.marked === total, 120_000, `${total} rows relayed`);
        } finally {
          await relay.stop();
        }
        const ms = Date.now() - started;
        console.log(
          `[${engine}] relay throughput: ${total} rows in ${ms} ms = ${Math.round((total / ms) * 1000)} rows/s ` +
            `(raw in-memory publish of the same count: ${rawMs} ms = ${Math.round((total / Math.max(1, rawMs)) * 1000)} msg/s)`,
        );
        expect((await outboxCounts(env)).pending).toBe(0);
      } finally {
        await env.close();
      }
    });

    it('refuses bad options at construction', async () => {
      const env = await openRelayEnv(engine, 'obh');
      try {
        const publisher = new RecordingPublisher();
        expect(() => createOutboxRelay({ db: env.db, publisher, batchSize: 0 })).toThrow(/batchSize/);
        expect(() => createOutboxRelay({ db: env.db, publisher, name: 'a b' })).toThrow(/name/);
        expect(() => createOutboxRelay({ db: env.db, publisher, retentionMs: -1 })).toThrow(/retentionMs/);
        expect(() => createOutboxRelay({ db: env.db, publisher, retryBaseMs: 100, retryMaxMs: 50 })).toThrow(/retryMaxMs/);
        expect(() => new PostgresOutbox({ name: 'x.y' })).toThrow(/outbox name/);
        expect(() => new PostgresOutbox({ maxMessageBytes: 0 })).toThrow(/maxMessageBytes/);
      } finally {
        await env.close();
      }
    });
  });
}

outboxTests('pglite');
if (await postgresAvailable()) outboxTests('postgres');
else skipBecauseNoServer('outbox on PostgreSQL');
