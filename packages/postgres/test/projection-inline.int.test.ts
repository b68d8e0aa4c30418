import { createEvent, InMemoryBroker, uuidv7, type EventDelivery, type Message } from '@causeway/core';
import { brokerProjection, createPostgresEventStore, PostgresDedupLedger, type PostgresEventStore } from '@causeway/postgres';
import { describe, expect, it } from 'vitest';
import { ADDED, added, countingProjection, counts, createCountingTables, logCounts, projectionEngines, seen, until } from './fixtures/projection-fixtures.js';
import { skipBecauseNoServer } from './support.js';

/** Inline projections (inside the append's transaction) and broker-fed projections (with the inbox ledger). */
const engines = await projectionEngines();
const poisoned = (e: { data: unknown }): boolean => (e.data as { poison?: boolean }).poison === true;

for (const [engine, open] of engines) {
  describe(`inline and broker-fed projections on ${engine}`, () => {
    it('inline: the read model commits with the append, concurrent (coalesced) appends included; a throw fails only its append', async () => {
      const env = await open('pia');
      let store: PostgresEventStore | null = null;
      try {
        await createCountingTables(env.db, env.schema, 'inl');
        await createCountingTables(env.db, env.schema, 'inb');
        store = await createPostgresEventStore({
          db: env.db, schema: env.schema, migrate: false,
          inlineProjections: [
            countingProjection(env.schema, 'inline', 1, 'inl', { fail: poisoned }),
            countingProjection(env.schema, 'inline-batch', 1, 'inb', { batch: true }),
          ],
        });
        const inline = store;
        const one = await inline.append({ tenantId: 'in', streamId: 'a' }, [added(1), added(2), { eventType: 'test.note.written', data: {} }]);
        // No waitFor: the rows are there as soon as append resolved.
        expect(await counts(env.db, env.schema, 'inl')).toEqual({ 'in/a': 2 });
        expect(await counts(env.db, env.schema, 'inb')).toEqual({ 'in/a': 2 });
        expect(one.events).toHaveLength(3);

        const outcomes = await Promise.allSettled(
          Array.from({ length: 24 }, (_, i) => inline.append({ tenantId: 'in', streamId: `c-${i % 6}` }, [added(i, i === 13 ? { poison: true } : {}), added(i + 100)])),
        );
        const rejected = outcomes.filter((o) => o.status === 'rejected');
        expect(rejected).toHaveLength(1);
        expect((rejected[0] as PromiseRejectedResult).reason).toMatchObject({ code: 'HANDLER_FAILED', message: expect.stringContaining('projection "inline" v1 failed on') });
        // The failed append stored nothing; every other one is in the log and in both read models, once.
        const truth = await logCounts(env.db, env.schema);
        expect(Object.values(truth).reduce((a, b) => a + b, 0)).toBe(2 + 23 * 2);
        expect(await counts(env.db, env.schema, 'inl')).toEqual(truth);
        expect(await counts(env.db, env.schema, 'inb')).toEqual(truth);
        expect((await seen(env.db, env.schema, 'inl')).maxTimes).toBe(1);
        expect((await seen(env.db, env.schema, 'inb')).maxTimes).toBe(1);

        // With beforeCommit the caller's transaction already exists: inline writes are visible to the hook.
        let seenByHook = -1;
        await inline.append({ tenantId: 'in', streamId: 'h' }, [added(1)], {
          async beforeCommit(tx) {
            const { rows } = await tx.query<{ n: number }>(`SELECT n FROM "${env.schema}".inl_counts WHERE tenant_id = 'in' AND stream_id = 'h'`);
            seenByHook = rows[0]?.n ?? 0;
          },
        });
        expect(seenByHook).toBe(1);
        // A store without inline projections writes nothing to the read models.
        await env.store.append({ tenantId: 'in', streamId: 'plain' }, [added(1)]);
        expect((await counts(env.db, env.schema, 'inl'))['in/plain']).toBeUndefined();
      } finally {
        await store?.close();
        await env.close();
      }
    });

    it('broker-fed: each delivery applied once with its inbox record; a redelivery is a duplicate; a throw leaves nothing', async () => {
      const env = await open('pib');
      try {
        await createCountingTables(env.db, env.schema, 'bf');
        const ledger = new PostgresDedupLedger({ db: env.db, schema: env.schema });
        let failNext = true;
        const duplicates: string[] = [];
        const handler = brokerProjection({
          projection: countingProjection(env.schema, 'fed', 1, 'bf', { fail: (e) => poisoned(e) && failNext }),
          ledger,
          onDuplicate: (d) => duplicates.push(d.event.eventId),
        });
        const delivery = (i: number, extra: Record<string, unknown> = {}, eventId = uuidv7()): EventDelivery => ({
          kind: 'event', topic: 'orders', group: 'read', key: 's', attempt: 1, brokerId: String(i), settled: false,
          ack: async () => undefined, nack: async () => undefined,
          event: { ...createEvent({ eventType: ADDED, data: { i, ...extra }, eventId }, { tenantId: 'bf', producer: 'other.service' }), streamId: 's', streamVersion: i },
        });
        const d1 = delivery(1);
        const d2 = delivery(2, { poison: true });
        await handler(d1);
        await expect(handler(d2)).rejects.toMatchObject({ code: 'HANDLER_FAILED' });
        expect(await counts(env.db, env.schema, 'bf')).toEqual({ 'bf/s': 1 });
        failNext = false;
        await handler(d2); // the redelivery after the fix applies it
        await handler(d1); // a duplicate: nothing applied
        await handler({ ...d2, attempt: 3 });
        expect(duplicates).toEqual([d1.event.eventId, d2.event.eventId]);
        expect(await counts(env.db, env.schema, 'bf')).toEqual({ 'bf/s': 2 });
        expect((await seen(env.db, env.schema, 'bf')).maxTimes).toBe(1);
        const { rows } = await env.db.query<{ n: string }>(`SELECT count(*)::text AS n FROM "${env.schema}".inbox WHERE consumer = 'projection:fed:1'`);
        expect(rows[0]?.n).toBe('2');
      } finally {
        await env.close();
      }
    });

    it('broker-fed end to end: every event published twice through a broker lands once', async () => {
      const env = await open('pic');
      const broker = new InMemoryBroker();
      const publisher = broker.createPublisher();
      const subscriber = broker.createSubscriber();
      try {
        await createCountingTables(env.db, env.schema, 'e2e');
        const duplicates: string[] = [];
        const handler = brokerProjection({ projection: countingProjection(env.schema, 'e2e', 1, 'e2e', { batch: true }), ledger: new PostgresDedupLedger({ db: env.db, schema: env.schema }), onDuplicate: (d) => duplicates.push(d.event.eventId) });
        await subscriber.subscribe('orders', { group: 'read-model' }, handler);
        const messages: Message[] = Array.from({ length: 40 }, (_, i) => ({
          event: { ...createEvent({ eventType: ADDED, data: { i } }, { tenantId: 'e2e', producer: 'orders' }), streamId: `s-${i % 4}`, streamVersion: Math.floor(i / 4) + 1 },
        }));
        await publisher.publish('orders', messages);
        await publisher.publish('orders', messages); // the producer's retry: the same events again
        await until('40 events applied and 40 duplicates seen', async () => (await seen(env.db, env.schema, 'e2e')).ids.size === 40 && duplicates.length === 40, 15_000);
        console.log(`[${engine}] broker-fed: 80 deliveries, ${(await seen(env.db, env.schema, 'e2e')).total} applied, ${duplicates.length} duplicates skipped`);
        expect((await seen(env.db, env.schema, 'e2e')).maxTimes).toBe(1);
        expect(await counts(env.db, env.schema, 'e2e')).toEqual({ 'e2e/s-0': 10, 'e2e/s-1': 10, 'e2e/s-2': 10, 'e2e/s-3': 10 });
      } finally {
        await subscriber.close();
        await publisher.close();
        await env.close();
      }
    });
  });
}

if (!engines.some(([e]) => e === 'postgres')) skipBecauseNoServer('inline and broker-fed projections on PostgreSQL');
