import { waitFor } from '@causeway/conformance';
import {
  createDelivery,
  InMemoryBroker,
  isParkingFullError,
  PermanentError,
  replayDeadLetters,
  sequenced,
  type DeadLetterReplayer,
  type EventDelivery,
  type Message,
} from '@causeway/core';
import { PostgresDeadLetterQueue, PostgresKeyParking } from '@causeway/postgres';
import { describe, expect, it } from 'vitest';
import { createEffects, onEveryEngine, OrderRejected, readEffects, testConsumer, testMessage, type ConsumerEnv } from './consumer-env.js';

/**
 * Sequenced mode: once a key's message is dead-lettered, later messages of the key are parked
 * in PostgreSQL (and acked) until the head is replayed, skipped or purged; then the replay
 * worker sends them through the consumer path in order. Other keys keep flowing. Effects are
 * rows in commit order, so per-key order is read back from the table.
 */
const CONSUMER = 'order-view';
const note = { by: 'ops', reason: 'handled by hand' };

function transient(): never {
  throw new OrderRejected('inventory service unavailable');
}
function permanent(): never {
  throw new PermanentError('order refers to a deleted customer');
}

const asDelivery = (m: Message): EventDelivery =>
  createDelivery(
    { topic: 'orders', group: CONSUMER, key: m.key ?? '', attempt: 1, brokerId: '1', kind: 'event', event: m.event },
    { ack: async () => undefined, nack: async () => undefined },
  ).delivery as EventDelivery;

/** Messages n = from..to-1 of `key`. */
const run = (key: string, from: number, to: number): Message[] => Array.from({ length: to - from }, (_, i) => testMessage(from + i, key));

interface Rig {
  readonly dlq: PostgresDeadLetterQueue;
  readonly parking: PostgresKeyParking;
  readonly fail: Map<string, () => never>;
  readonly broker: InMemoryBroker;
  readonly worker: DeadLetterReplayer;
  publish(messages: readonly Message[]): Promise<void>;
  /** The one open dead letter of `key`. */
  head(key: string): Promise<string>;
  parked(): Promise<number>;
  byKey(): Promise<Record<string, number[]>>;
  close(): Promise<void>;
}

async function rig(env: ConsumerEnv, maxParked = 1_000): Promise<Rig> {
  await createEffects(env);
  const parking = new PostgresKeyParking(env.db, env.schema);
  const fail = new Map<string, () => never>();
  const { dlq, handler } = testConsumer(env, { consumer: CONSUMER, table: 'effects', fail, before: [sequenced(parking, { consumer: CONSUMER, maxParked })] });
  const broker = new InMemoryBroker({ ackTimeoutMs: 60_000 });
  const subscriber = broker.createSubscriber();
  await subscriber.subscribe('orders', { group: CONSUMER, concurrency: 8 }, handler);
  const worker = replayDeadLetters([dlq, parking], handler, { consumer: CONSUMER, pollMs: 20 });
  const publisher = broker.createPublisher();
  return {
    dlq,
    parking,
    fail,
    broker,
    worker,
    publish: (messages) => publisher.publish('orders', messages),
    async head(key) {
      const open = (await dlq.list({ consumer: CONSUMER, status: ['dead', 'replay_requested', 'replaying'] })).items.filter((l) => l.key === key);
      if (open.length !== 1) throw new Error(`expected one open letter for ${key}, found ${open.length}`);
      return (open[0] as { id: string }).id;
    },
    parked: () => parking.count(CONSUMER),
    byKey: async () => (await readEffects(env)).byKey,
    async close() {
      await worker.stop();
      await subscriber.close();
    },
  };
}

const interleave = (...runs: Message[][]): Message[] => {
  const out: Message[] = [];
  for (let i = 0; i < Math.max(...runs.map((r) => r.length)); i++) for (const r of runs) if (r[i] !== undefined) out.push(r[i] as Message);
  return out;
};

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

await onEveryEngine('sequenced dead letters', (engine, open) => {
  describe(`sequenced mode on ${engine}`, () => {
    it('park(): a key is blocked by an open letter (not its own) or by parked messages; redeliveries park once; the cap refuses', async () => {
      const env = await open('sq1');
      try {
        const parking = new PostgresKeyParking(env.db, env.schema);
        const dlq = new PostgresDeadLetterQueue(env.db, env.schema);
        const [head, next, third, fourth] = run('K', 0, 4) as [Message, Message, Message, Message];
        const other = testMessage(9, 'L');
        expect(await parking.park(CONSUMER, asDelivery(next), 10)).toBe('free');
        await dlq.put({
          consumer: CONSUMER, topic: 'orders', group: CONSUMER, key: 'K', attempts: 1, brokerId: '1', event: head.event,
          reason: 'permanent', errorClass: 'PermanentError', errorMessage: 'x', fingerprint: 'f', failedAt: '',
        });
        expect(await parking.park(CONSUMER, asDelivery(head), 10)).toBe('free'); // the head redelivered
        expect(await parking.park(CONSUMER, asDelivery(next), 10)).toBe('parked');
        expect(await parking.park(CONSUMER, asDelivery(next), 10)).toBe('parked');
        expect(await parking.count(CONSUMER)).toBe(1);
        expect(await parking.park('another-consumer', asDelivery(next), 10)).toBe('free');
        expect(await parking.park(CONSUMER, asDelivery(other), 10)).toBe('free');
        expect(await parking.park(CONSUMER, asDelivery(third), 1)).toBe('full');
        expect(await parking.count(CONSUMER)).toBe(1);
        // Nothing leaves parking while the head is open.
        expect(await parking.claim(CONSUMER, 10, 60_000)).toEqual([]);
        const [letter] = (await dlq.list({ consumer: CONSUMER })).items;
        await dlq.skip({ ids: [letter?.id ?? '0'] }, note);
        // Head resolved, but `next` is still parked: a later message goes behind it.
        expect(await parking.park(CONSUMER, asDelivery(fourth), 10)).toBe('parked');
        const first = await parking.claim(CONSUMER, 10, 60_000);
        expect(first.map((i) => i.event.eventId)).toEqual([next.event.eventId]);
        expect(first[0]).toMatchObject({ kind: 'parked', key: 'K', attempt: 1 });
        expect(await parking.claim(CONSUMER, 10, 60_000)).toEqual([]); // the key is busy until `next` is settled
        await parking.settle(first[0] as NonNullable<(typeof first)[0]>, { kind: 'nacked', delayMs: 0 });
        const retried = await parking.claim(CONSUMER, 10, 60_000);
        expect(retried.map((i) => [i.event.eventId, i.attempt])).toEqual([[next.event.eventId, 2]]);
        await parking.settle(retried[0] as NonNullable<(typeof retried)[0]>, { kind: 'acked' });
        expect((await parking.claim(CONSUMER, 10, 60_000)).map((i) => i.event.eventId)).toEqual([fourth.event.eventId]);
      } finally {
        await env.close();
      }
    });

    it('a dead-lettered key parks its later messages while other keys flow; a replay releases them in order', async () => {
      const env = await open('sq2');
      const r = await rig(env);
      try {
        const a = run('A', 0, 10);
        r.fail.set((a[3] as Message).event.eventId, transient);
        await r.publish(interleave(a, run('B', 0, 10), run('C', 0, 10)));
        await waitFor(async () => (await r.parked()) === 6 && (await readEffects(env)).ids.length === 23, 20_000, 'A parked behind A3, B and C done');
        expect(await r.byKey()).toEqual({ A: [0, 1, 2], B: range(0, 10), C: range(0, 10) });
        // Live messages of the blocked key keep parking, behind the others.
        await r.publish(run('A', 10, 12));
        await waitFor(async () => (await r.parked()) === 8, 10_000, 'A10 and A11 parked');
        expect((await r.byKey()).A).toEqual([0, 1, 2]);

        r.fail.clear();
        const head = await r.head('A');
        await r.dlq.replay({ ids: [head] }, note);
        await waitFor(async () => (await r.byKey()).A?.length === 12 && (await r.parked()) === 0, 20_000, 'A released');
        expect(await r.byKey()).toEqual({ A: range(0, 12), B: range(0, 10), C: range(0, 10) });
        expect(await r.parked()).toBe(0);
        expect((await r.dlq.inspect(head))?.status).toBe('replayed');
        // The key flows live again.
        await r.publish(run('A', 12, 13));
        await waitFor(async () => (await r.byKey()).A?.length === 13, 10_000, 'A12 live');
        expect((await r.byKey()).A).toEqual(range(0, 13));
        expect((await readEffects(env)).maxTimes).toBe(1);
        console.info(`[${engine}] sequenced: A3 dead-lettered, 8 parked behind it while B and C flowed; replay released A0-A12 in order`);
      } finally {
        await r.close();
        await env.close();
      }
    });

    it('skip and purge release a key too; a parked message that fails on release becomes the new head', async () => {
      const env = await open('sq3');
      const r = await rig(env);
      try {
        const d = run('D', 0, 5);
        const e = run('E', 0, 5);
        const f = run('F', 0, 2);
        r.fail.set((d[1] as Message).event.eventId, permanent);
        r.fail.set((e[0] as Message).event.eventId, transient);
        r.fail.set((e[2] as Message).event.eventId, transient);
        r.fail.set((f[0] as Message).event.eventId, permanent);
        await r.publish(interleave(d, e, f));
        await waitFor(async () => (await r.parked()) === 3 + 4 + 1, 20_000, 'D, E and F parked');
        expect(await r.byKey()).toEqual({ D: [0] });

        await r.dlq.skip({ ids: [await r.head('D')] }, { by: 'ops', reason: 'customer deleted, nothing to do' });
        await r.dlq.purge({ ids: [await r.head('F')] }, { by: 'ops', reason: 'duplicate order from a test run' });
        // E: only E0 is fixed; E2 still fails when its turn comes and becomes the new head.
        r.fail.delete((e[0] as Message).event.eventId);
        const e0 = await r.head('E');
        await r.dlq.replay({ ids: [e0] }, note);
        await waitFor(async () => (await r.byKey()).E?.length === 2 && (await r.parked()) === 2, 20_000, 'E0, E1 applied; E3, E4 parked behind E2');
        const e2 = await r.head('E');
        expect(e2).not.toBe(e0);
        expect((await r.dlq.inspect(e2))?.eventId).toBe((e[2] as Message).event.eventId);
        expect(await r.byKey()).toEqual({ D: [0, 2, 3, 4], E: [0, 1], F: [1] });

        r.fail.clear();
        await r.dlq.replay({ ids: [e2] }, note);
        // An effect commits before its parked row is deleted (settled after the handler): wait for both.
        await waitFor(async () => (await r.byKey()).E?.length === 5 && (await r.parked()) === 0, 20_000, 'E released');
        expect(await r.byKey()).toEqual({ D: [0, 2, 3, 4], E: range(0, 5), F: [1] });
        expect(await r.parked()).toBe(0);
        expect((await readEffects(env)).maxTimes).toBe(1);
      } finally {
        await r.close();
        await env.close();
      }
    });

    it('the cap stops the consumer: the message at the cap is nacked, not acked, and nothing is lost', async () => {
      const env = await open('sq4');
      await createEffects(env);
      const parking = new PostgresKeyParking(env.db, env.schema);
      const fail = new Map<string, () => never>();
      const stop = new AbortController();
      const stopped: unknown[] = [];
      const first = testConsumer(env, {
        consumer: CONSUMER, table: 'effects', fail,
        before: [sequenced(parking, { consumer: CONSUMER, maxParked: 3, stop, onStop: (err) => stopped.push(err) })],
      });
      const broker = new InMemoryBroker({ ackTimeoutMs: 60_000 });
      const x = run('X', 0, 6);
      const y = run('Y', 0, 3);
      fail.set((x[0] as Message).event.eventId, permanent);
      const subscription = await broker.createSubscriber().subscribe('orders', { group: CONSUMER, concurrency: 4, signal: stop.signal }, first.handler);
      await broker.createPublisher().publish('orders', [...x, ...y]);
      await subscription.closed; // stopped by the cap
      expect(isParkingFullError(stop.signal.reason)).toBe(true);
      expect(stop.signal.reason).toMatchObject({ code: 'PARKING_FULL', consumer: CONSUMER, key: 'X', maxParked: 3 });
      expect(stopped).toEqual([stop.signal.reason]);
      expect(await parking.count(CONSUMER)).toBe(3);
      expect((await readEffects(env)).byKey.X).toBeUndefined();

      // The operator skips the head; the consumer restarts (a new process: a new pipeline) with the worker.
      const [head] = (await first.dlq.list({ consumer: CONSUMER })).items;
      await first.dlq.skip({ ids: [head?.id ?? '0'] }, note);
      const second = testConsumer(env, { consumer: CONSUMER, table: 'effects', fail, before: [sequenced(parking, { consumer: CONSUMER, maxParked: 3 })] });
      const subscriber = broker.createSubscriber();
      await subscriber.subscribe('orders', { group: CONSUMER, concurrency: 4 }, second.handler);
      const worker = replayDeadLetters([second.dlq, parking], second.handler, { consumer: CONSUMER, pollMs: 20 });
      try {
        await waitFor(async () => (await readEffects(env)).ids.length === 8 && (await parking.count(CONSUMER)) === 0, 20_000, 'X1-X5 and Y0-Y2 applied');
        const effects = await readEffects(env);
        expect(effects.byKey).toEqual({ X: [1, 2, 3, 4, 5], Y: [0, 1, 2] });
        expect(effects.maxTimes).toBe(1);
        expect(await parking.count(CONSUMER)).toBe(0);
        console.info(`[${engine}] sequenced cap: stopped at 3 parked with ${(stop.signal.reason as Error).message.slice(0, 60)}...; after skip and restart X1-X5 applied in order`);
      } finally {
        await worker.stop();
        await subscriber.close();
        await env.close();
      }
    });
  });
});
