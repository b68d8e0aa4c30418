import { waitFor } from '@causeway/conformance';
import {
  deadLetter,
  deduplicate,
  InMemoryBroker,
  PermanentError,
  pipeline,
  replayDeadLetters,
  retry,
  type DeadLetter,
  type DeadLetterSummary,
  type Message,
  type ReplayOutcome,
} from '@causeway/core';
import { PostgresDeadLetterQueue, PostgresDedupLedger } from '@causeway/postgres';
import { describe, expect, it } from 'vitest';
import { createEffects, onEveryEngine, OrderRejected, readEffects, testConsumer, testMessage, type ConsumerEnv } from './consumer-env.js';

/**
 * The PostgreSQL DLQ: one row per failed message whatever happens around the put, the operations
 * API (list, groups, inspect, replay, skip, purge) with its history, and replay through the
 * consumer's own handler path, so dedup makes a replay apply at most once.
 */
const note = { by: 'ops@example.com', reason: 'fixed in release 42' };

// Two throw sites: two fingerprints (error class + first application frame).
function stockCheck(): never {
  throw new OrderRejected('stock service said no');
}
function priceCheck(): never {
  throw new OrderRejected('price list missing');
}
function unknownProduct(): never {
  throw new PermanentError('no such product');
}

function letterOf(m: Message, overrides: Partial<DeadLetter> = {}): DeadLetter {
  return {
    consumer: 'billing',
    topic: 'orders',
    group: 'billing',
    key: m.key ?? '',
    attempts: 3,
    brokerId: '17',
    event: m.event,
    reason: 'retries-exhausted',
    errorClass: 'OrderRejected',
    errorMessage: 'stock service said no',
    stack: 'OrderRejected: stock service said no\n    at stockCheck (file.ts:1:1)',
    fingerprint: 'OrderRejected:0000abcd',
    failedAt: new Date().toISOString(),
    ...overrides,
  };
}

interface Scenario {
  readonly env: ConsumerEnv;
  readonly dlq: PostgresDeadLetterQueue;
  readonly handler: ReturnType<typeof testConsumer>['handler'];
  readonly fail: Map<string, () => never>;
  readonly stock: Message[];
  readonly price: Message[];
  readonly unknown: Message[];
  readonly fine: Message[];
  letters(): Promise<DeadLetterSummary[]>;
}

/**
 * 6 messages fail at the stock check (2 of them tenant t2), 3 at the price check, 1 is a
 * permanent failure of another event type, 1 is undecodable; 9 go through. Dead-lettered
 * through a live subscription on the in-memory broker.
 */
async function deadLetterSome(env: ConsumerEnv): Promise<Scenario> {
  await createEffects(env);
  const fail = new Map<string, () => never>();
  const { dlq, handler } = testConsumer(env, { consumer: 'billing', table: 'effects', fail });
  const stock = Array.from({ length: 6 }, (_, i) => testMessage(i, `s${i}`, i < 2 ? 't2' : 't1'));
  const price = Array.from({ length: 3 }, (_, i) => testMessage(10 + i, `p${i}`));
  const unknown = [testMessage(20, 'u0', 't1', 'test.order.amended')];
  const fine = Array.from({ length: 9 }, (_, i) => testMessage(30 + i, `f${i}`));
  for (const m of stock) fail.set(m.event.eventId, stockCheck);
  for (const m of price) fail.set(m.event.eventId, priceCheck);
  for (const m of unknown) fail.set(m.event.eventId, unknownProduct);
  const broker = new InMemoryBroker({ ackTimeoutMs: 60_000 });
  const subscriber = broker.createSubscriber();
  await subscriber.subscribe('orders', { group: 'billing', concurrency: 8 }, handler);
  await broker.createPublisher().publish('orders', [...stock, ...price, ...unknown, ...fine]);
  broker.appendRaw('orders', '{"not": "a cloudevent"', 'x0');
  const letters = async () => [...(await dlq.list({ consumer: 'billing' }, { limit: 1000 })).items];
  await waitFor(async () => (await letters()).length === 11 && (await readEffects(env)).ids.length === 9, 20_000, '11 dead letters and 9 effects');
  await subscriber.close();
  return { env, dlq, handler, fail, stock, price, unknown, fine, letters };
}

const idsOf = (letters: readonly DeadLetterSummary[], messages: readonly Message[]): string[] => {
  const wanted = new Set(messages.map((m) => m.event.eventId));
  return letters
    .filter((l) => l.eventId !== null && wanted.has(l.eventId))
    .map((l) => l.id)
    .sort((a, b) => Number(a) - Number(b));
};

await onEveryEngine('dead-letter queue', (engine, open) => {
  describe(`PostgresDeadLetterQueue on ${engine}`, () => {
    it('a message put twice is one row: attempts and last failure move, the first failure stays', async () => {
      const env = await open('dlq1');
      try {
        const dlq = new PostgresDeadLetterQueue(env.db, env.schema);
        const m = testMessage(1, 'k1');
        await dlq.put(letterOf(m, { attempts: 3 }));
        const [first] = (await dlq.list()).items;
        await dlq.put(letterOf(m, { attempts: 4, errorMessage: 'stock service timed out', brokerId: '18' }));
        await dlq.put(letterOf(m, { attempts: 2 })); // an out-of-date count never lowers it
        const page = await dlq.list();
        expect(page.items).toHaveLength(1);
        const [row] = page.items;
        expect(row?.id).toBe(first?.id);
        expect(row?.attempts).toBe(5);
        expect(row?.firstFailedAt).toBe(first?.firstFailedAt);
        expect(Date.parse(row?.lastFailedAt ?? '')).toBeGreaterThanOrEqual(Date.parse(first?.lastFailedAt ?? ''));
        expect(row?.lastFailedAt).not.toBe(first?.lastFailedAt);
        expect(row).toMatchObject({ consumer: 'billing', status: 'dead', tenantId: 't1', eventId: m.event.eventId, errorMessage: 'stock service said no' });
        // Another consumer's failure of the same event is its own letter.
        await dlq.put(letterOf(m, { consumer: 'shipping' }));
        expect((await dlq.list()).items).toHaveLength(2);
        // Undecodable bytes: one row per topic and body, whatever the broker id.
        const raw = { headers: { 'content-type': 'application/json' }, body: new TextEncoder().encode('{"oops"') };
        const bad = { consumer: 'billing', topic: 'orders', group: 'billing', key: '', attempts: 1, reason: 'undecodable' as const, raw, errorClass: 'SchemaError', errorMessage: 'bad json', fingerprint: 'SchemaError:1', failedAt: '' };
        await dlq.put({ ...bad, brokerId: '40' });
        await dlq.put({ ...bad, brokerId: '41' });
        await dlq.put({ ...bad, brokerId: '42', raw: { headers: {}, body: new TextEncoder().encode('{"other"') } });
        const undecodable = (await dlq.list({ fingerprint: 'SchemaError:1' })).items;
        expect(undecodable.map((l) => l.attempts).sort()).toEqual([1, 2]);
        const detail = await dlq.inspect(undecodable.find((l) => l.attempts === 2)?.id ?? '0');
        expect(detail?.raw).toEqual({ headers: { 'content-type': 'application/json' }, bodyBase64: Buffer.from('{"oops"').toString('base64') });
        expect(detail).toMatchObject({ event: null, eventId: null, tenantId: '' });
        expect(detail?.history.map((h) => h.action)).toEqual(['dead_lettered', 'dead_lettered']);
        const full = await dlq.inspect(row?.id ?? '0');
        expect(full?.event).toEqual(m.event);
        // Kept as it arrived, key order included, for a faithful replay.
        const ordered = testMessage(2, 'k2');
        await dlq.put(letterOf({ ...ordered, event: { ...ordered.event, data: { zeta: 1, alpha: { b: 2, a: 1 } } } }));
        const kept = (await dlq.list({ ids: [] })).items;
        expect(kept).toEqual([]);
        const orderedRow = (await dlq.list()).items.find((l) => l.eventId === ordered.event.eventId);
        expect(JSON.stringify((await dlq.inspect(orderedRow?.id ?? '0'))?.event?.data)).toBe('{"zeta":1,"alpha":{"b":2,"a":1}}');
        expect(full?.stack).toContain('at stockCheck');
        expect(full?.history.map((h) => h.detail)).toEqual([
          'retries-exhausted at attempt 3: OrderRejected: stock service said no',
          'retries-exhausted at attempt 4: OrderRejected: stock service timed out',
          'retries-exhausted at attempt 5: OrderRejected: stock service said no',
        ]);
      } finally {
        await env.close();
      }
    });

    it('a crash between put and ack: the redelivered message fails again and stays one letter', async () => {
      const env = await open('dlq2');
      try {
        await createEffects(env);
        const fail = new Map<string, () => never>();
        const real = new PostgresDeadLetterQueue(env.db, env.schema);
        let crashes = 0;
        // The put commits, then the process "dies" before the ack: the broker redelivers.
        const crashingSink = {
          async put(letter: DeadLetter) {
            await real.put(letter);
            if (crashes++ === 0) throw new Error('connection lost after the put committed');
          },
        };
        const m = testMessage(1, 'k1');
        fail.set(m.event.eventId, stockCheck);
        const ledger = new PostgresDedupLedger({ db: env.db, schema: env.schema });
        const h = pipeline(
          deduplicate(ledger, { consumer: 'billing' }, async (d) => fail.get(d.event.eventId)?.()),
          deadLetter(crashingSink, { consumer: 'billing' }),
          retry({ immediate: 2, maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 }),
        );
        const broker = new InMemoryBroker();
        const attempts: number[] = [];
        await broker.createSubscriber().subscribe('orders', { group: 'billing' }, async (d) => {
          attempts.push(d.attempt);
          await h(d);
        });
        await broker.createPublisher().publish('orders', [m]);
        await waitFor(() => crashes === 2, 10_000, 'the second put');
        const letters = (await real.list()).items;
        expect(attempts).toEqual([1, 2, 3, 4]);
        expect(letters).toHaveLength(1);
        expect(letters[0]?.attempts).toBe(4);
      } finally {
        await env.close();
      }
    });

    it('groups by fingerprint; lists by consumer, status, fingerprint, event type, tenant, time; pages; inspects', async () => {
      const env = await open('dlq3');
      try {
        const sc = await deadLetterSome(env);
        const groups = await sc.dlq.groups({ consumer: 'billing' });
        expect(groups.map((g) => g.count)).toEqual([6, 3, 1, 1]);
        expect(groups.map((g) => g.sampleMessage)).toEqual(['stock service said no', 'price list missing', expect.any(String), expect.any(String)]);
        expect(groups.slice(2).map((g) => g.errorClass).sort()).toEqual(['PermanentError', 'SchemaError']);
        expect(new Set(groups.map((g) => g.fingerprint)).size).toBe(4);
        const stockGroup = groups[0];
        if (stockGroup === undefined) throw new Error('no group');
        expect(Date.parse(stockGroup.firstFailedAt)).toBeLessThanOrEqual(Date.parse(stockGroup.lastFailedAt));
        const all = await sc.letters();
        expect(all.find((l) => l.id === stockGroup.sampleId)?.fingerprint).toBe(stockGroup.fingerprint);

        const byFingerprint = (await sc.dlq.list({ fingerprint: stockGroup.fingerprint })).items;
        expect(byFingerprint.map((l) => l.eventId).sort()).toEqual(sc.stock.map((m) => m.event.eventId).sort());
        expect(byFingerprint.every((l) => l.reason === 'retries-exhausted' && l.attempts === 3)).toBe(true);
        expect((await sc.dlq.list({ eventType: 'test.order.amended' })).items.map((l) => l.reason)).toEqual(['permanent']);
        expect((await sc.dlq.list({ tenantId: 't2' })).items.map((l) => l.eventId).sort()).toEqual(sc.stock.slice(0, 2).map((m) => m.event.eventId).sort());
        expect((await sc.dlq.list({ consumer: 'nobody' })).items).toEqual([]);
        expect((await sc.dlq.list({ status: ['replayed', 'skipped'] })).items).toEqual([]);
        expect((await sc.dlq.list({ status: 'dead', consumer: 'billing' })).items).toHaveLength(11);
        expect((await sc.dlq.list({ failedFrom: '2999-01-01T00:00:00Z' })).items).toEqual([]);
        expect((await sc.dlq.list({ failedTo: '2999-01-01T00:00:00Z', failedFrom: '2000-01-01T00:00:00Z' })).items).toHaveLength(11);
        expect((await sc.dlq.groups({ tenantId: 't2' })).map((g) => g.count)).toEqual([2]);

        // Pages of 4, newest first, each letter once.
        const seen: string[] = [];
        let after: string | undefined;
        const sizes: number[] = [];
        do {
          const page = await sc.dlq.list({ consumer: 'billing' }, after === undefined ? { limit: 4 } : { limit: 4, after });
          sizes.push(page.items.length);
          seen.push(...page.items.map((l) => l.id));
          after = page.next ?? undefined;
        } while (after !== undefined);
        expect(sizes).toEqual([4, 4, 3]);
        expect(seen).toEqual(all.map((l) => l.id));
        expect(seen.map(Number)).toEqual([...seen.map(Number)].sort((a, b) => b - a));

        const one = byFingerprint[0];
        const detail = await sc.dlq.inspect(one?.id ?? '0');
        const published = sc.stock.find((m) => m.event.eventId === one?.eventId);
        expect(detail?.event).toMatchObject({ eventId: published?.event.eventId, data: published?.event.data, tenantId: published?.event.tenantId });
        expect(detail).toMatchObject({ topic: 'orders', group: 'billing', key: published?.key, errorClass: 'OrderRejected' });
        expect(detail?.stack).toContain('stockCheck');
        expect(JSON.parse(JSON.stringify(detail))).toEqual(detail); // plain data, as the CLI and console need it
        expect(await sc.dlq.inspect('999999')).toBeNull();
        await expect(sc.dlq.list({}, { limit: 0 })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
        await expect(sc.dlq.list({ ids: ['1; DROP TABLE x'] })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
        await expect(sc.dlq.list({ failedFrom: 'yesterday' })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
      } finally {
        await env.close();
      }
    });

    it('replay one, a fingerprint group and a filter through the consumer path: applied once; a second replay changes nothing', async () => {
      const env = await open('dlq4');
      try {
        const sc = await deadLetterSome(env);
        const all = await sc.letters();
        const stockIds = idsOf(all, sc.stock);
        const settled: Array<[string, ReplayOutcome['kind']]> = [];
        const worker = replayDeadLetters(sc.dlq, sc.handler, { consumer: 'billing', pollMs: 60_000, onSettled: (i, o) => settled.push([i.id, o.kind]) });
        try {
          // The worker's own first pass (nothing to do yet); its next poll is a minute away, so each drain() below does the work.
          expect(await worker.drain()).toBe(0);
          // Still broken: the replay fails through the same path and the letter is dead again.
          const first = stockIds[0] as string;
          expect((await sc.dlq.replay({ ids: [first] }, note)).ids).toEqual([first]);
          expect((await sc.dlq.inspect(first))?.status).toBe('replay_requested');
          expect(await worker.drain()).toBe(1);
          const failedAgain = await sc.dlq.inspect(first);
          expect(failedAgain).toMatchObject({ status: 'dead', attempts: 4, errorMessage: 'stock service said no' });
          expect(failedAgain?.history.map((h) => h.action)).toEqual(['dead_lettered', 'replay_requested', 'dead_lettered', 'replay_failed']);
          expect(failedAgain?.history[3]).toMatchObject({ by: note.by, reason: note.reason, detail: 'dead-lettered again at attempt 4: OrderRejected: stock service said no' });

          // The fix is deployed.
          sc.fail.clear();
          // One letter.
          expect((await sc.dlq.replay({ ids: [first] }, note)).ids).toEqual([first]);
          expect(await worker.drain()).toBe(1);
          const replayed = await sc.dlq.inspect(first);
          expect(replayed?.status).toBe('replayed');
          expect(replayed?.history.at(-1)).toMatchObject({ action: 'replayed', by: note.by, reason: note.reason, detail: 'acked by the consumer path' });
          // The fingerprint group (the one already replayed is not selected again).
          const fingerprint = (await sc.dlq.inspect(first))?.fingerprint as string;
          const group = await sc.dlq.replay({ consumer: 'billing', fingerprint }, { by: 'ops', reason: 'stock service back' });
          expect(group.ids).toEqual(stockIds.slice(1));
          // A filter: the price failures and the permanent one, by event type and status; the undecodable one is reported, not replayed.
          const undecodable = all.find((l) => l.eventId === null)?.id as string;
          const filtered = await sc.dlq.replay({ consumer: 'billing', status: 'dead', failedFrom: '2000-01-01T00:00:00Z' }, note);
          expect([...filtered.ids].sort()).toEqual([...idsOf(all, sc.price), ...idsOf(all, sc.unknown)].sort());
          expect(filtered.notReplayable).toEqual([undecodable]);
          expect(await worker.drain()).toBe(9);

          const effects = await readEffects(env);
          const everyGood = [...sc.stock, ...sc.price, ...sc.unknown, ...sc.fine].map((m) => m.event.eventId);
          expect([...effects.ids].sort()).toEqual(everyGood.sort());
          expect(effects.maxTimes).toBe(1);
          expect((await sc.dlq.list({ status: 'replayed' })).items).toHaveLength(10);

          // A second replay of everything: nothing is selected, nothing runs, nothing changes.
          const again = await sc.dlq.replay({ consumer: 'billing' }, note);
          expect(again.ids).toEqual([]);
          expect(await worker.drain()).toBe(0);
          expect(await readEffects(env)).toEqual(effects);
          expect(settled.filter(([, kind]) => kind !== 'acked')).toEqual([]);
          expect(settled).toHaveLength(11);
        } finally {
          await worker.stop();
        }
      } finally {
        await env.close();
      }
    });

    it('a replay of a message applied meanwhile is a duplicate: marked replayed, not applied twice', async () => {
      const env = await open('dlq5');
      try {
        const sc = await deadLetterSome(env);
        const target = sc.price[0] as Message;
        const id = idsOf(await sc.letters(), [target])[0] as string;
        sc.fail.clear();
        // The publisher sent it again and the fixed consumer applied it live.
        const broker = new InMemoryBroker();
        await broker.createSubscriber().subscribe('orders', { group: 'billing' }, sc.handler);
        await broker.createPublisher().publish('orders', [target]);
        await waitFor(async () => (await readEffects(env)).ids.includes(target.event.eventId), 10_000, 'the live delivery');
        await sc.dlq.replay({ ids: [id] }, note);
        const worker = replayDeadLetters(sc.dlq, sc.handler, { consumer: 'billing', pollMs: 60_000 });
        await worker.drain();
        await worker.stop();
        expect((await sc.dlq.inspect(id))?.status).toBe('replayed');
        expect((await readEffects(env)).maxTimes).toBe(1);
      } finally {
        await env.close();
      }
    });

    it('skip and purge record who and why; purge keeps the history; guards refuse careless calls', async () => {
      const env = await open('dlq6');
      try {
        const sc = await deadLetterSome(env);
        const all = await sc.letters();
        const [a, b] = idsOf(all, sc.price) as [string, string];
        expect((await sc.dlq.skip({ ids: [a] }, { by: 'alice', reason: 'customer cancelled the order' })).ids).toEqual([a]);
        const skipped = await sc.dlq.inspect(a);
        expect(skipped?.status).toBe('skipped');
        expect(skipped?.history.at(-1)).toMatchObject({ action: 'skipped', by: 'alice', reason: 'customer cancelled the order' });
        expect((await sc.dlq.skip({ ids: [a] }, note)).ids).toEqual([]); // already skipped

        expect((await sc.dlq.purge({ ids: [b] }, { by: 'bob', reason: 'test data' })).ids).toEqual([b]);
        expect(await sc.dlq.inspect(b)).toBeNull();
        const history = await sc.dlq.history(b);
        expect(history.map((h) => h.action)).toEqual(['dead_lettered', 'purged']);
        expect(history[1]).toMatchObject({ by: 'bob', reason: 'test data', detail: 'was dead: OrderRejected: price list missing' });
        expect((await sc.letters()).map((l) => l.id)).not.toContain(b);

        // A letter being replayed is not purged under the worker's feet.
        const c = idsOf(all, sc.stock)[0] as string;
        await sc.dlq.replay({ ids: [c] }, note);
        const claimed = await sc.dlq.claim('billing', 10, 60_000);
        expect(claimed.map((i) => i.id)).toEqual([c]);
        expect((await sc.dlq.purge({ ids: [c] }, note)).ids).toEqual([]);
        expect((await sc.dlq.skip({ ids: [c] }, note)).ids).toEqual([]);

        await expect(sc.dlq.purge({}, note)).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
        await expect(sc.dlq.replay({ consumer: 'billing' }, { by: 'x', reason: ' ' })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
        await expect(sc.dlq.skip({ status: 'bogus' as 'dead' }, note)).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
        expect((await sc.letters()).length).toBe(10);
      } finally {
        await env.close();
      }
    });

    it('replay workers share the work; a dead worker\'s claim is taken over after its lease and its late settle changes nothing', async () => {
      const env = await open('dlq7');
      try {
        const sc = await deadLetterSome(env);
        sc.fail.clear();
        const ids = idsOf(await sc.letters(), sc.stock);
        await sc.dlq.replay({ ids }, note);
        // A worker claims two letters and dies without settling.
        const dead = await sc.dlq.claim('billing', 2, 200);
        expect(dead).toHaveLength(2);
        const byWorker: Record<string, string[]> = { a: [], b: [] };
        const workers = (['a', 'b'] as const).map((name) =>
          replayDeadLetters(sc.dlq, sc.handler, { consumer: 'billing', batchSize: 1, pollMs: 20, leaseMs: 60_000, onSettled: (i) => byWorker[name]?.push(i.id) }),
        );
        try {
          await waitFor(async () => (await sc.dlq.list({ ids, status: 'replayed' })).items.length === 6, 20_000, 'all six replayed');
        } finally {
          await Promise.all(workers.map((w) => w.stop()));
        }
        const handled = [...(byWorker.a ?? []), ...(byWorker.b ?? [])];
        expect(handled.sort()).toEqual([...ids].sort()); // each letter settled once, the dead worker's two included
        await sc.dlq.settle(dead[0] as NonNullable<(typeof dead)[0]>, { kind: 'nacked', delayMs: 0 });
        expect((await sc.dlq.inspect(dead[0]?.id ?? '0'))?.status).toBe('replayed');
        const effects = await readEffects(env);
        expect(effects.maxTimes).toBe(1);
        expect(effects.ids).toHaveLength(15);
        console.info(`[${engine}] replay workers: a settled ${byWorker.a?.length}, b settled ${byWorker.b?.length}; 2 taken over after a dead worker's lease`);
      } finally {
        await env.close();
      }
    });
  });
});
