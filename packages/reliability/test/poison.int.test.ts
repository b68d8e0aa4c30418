import type { Message, RetryPolicy } from '@causeway/core';
import { PostgresDeadLetterQueue } from '@causeway/postgres';
import { expect, it } from 'vitest';
import { declareGroup, delayBuckets, openPublisher, openSubscriber } from './fixtures/brokers.js';
import { drainMessage, newCounters, retryingEffectConsumer, testMessage, type ConsumerCounters } from './fixtures/consumer.js';
import { readEffects } from './fixtures/effects.js';
import { computeFigures, formatFigures } from './fixtures/figures.js';
import { describePerBroker, FULL_SCALE, openTestBroker, openTestDatabase, report, waitFor, type TestBroker, type TestDatabase } from './support.js';

/**
 * 1% poison messages (issue 4, item 6). A poison message fails in the handler's transaction every
 * time; retry() tries it `maxAttempts` times (two at once, then short delayed nacks) and
 * deadLetter() puts it in the PostgreSQL dead-letter queue. Each must land there exactly once
 * (one row, one 'dead_lettered' history entry, attempts = maxAttempts), with exactly
 * `maxAttempts` handler calls (a hot loop would show more), while the healthy messages flow at
 * no less than 80% of the rate of a clean run of the same size. The clean run goes at the same
 * time as the poisoned one (another topic, consumer and group, same process and database), so
 * both see the same load on a machine shared with other work: the ratio compares like with like.
 *
 * Consumer: one subscriber per run, concurrency 1, so healthy messages are also checked for
 * per-key order (a poison message leaves a gap in its key). No healthy message is ever
 * redelivered here, so the NATS group keeps the server's default max_ack_pending: with 1, a
 * poison message waiting out its retry delay would hold back every key (see declareGroup).
 */
const MESSAGES = FULL_SCALE ? 10_000 : 2_000;
/** How long a run may take to apply its healthy messages (a concurrency-1 consumer on a loaded machine). */
const RUN_MS = FULL_SCALE ? 600_000 : 90_000;
const KEYS = 20;
const POLICY: RetryPolicy = { immediate: 2, maxAttempts: 4, baseDelayMs: 20, maxDelayMs: 50, random: () => 0.5 };
const MAX_ATTEMPTS = POLICY.maxAttempts as number;

class PoisonError extends Error {}

function messages(poisonEvery: number): { sent: Message[]; poison: Set<string> } {
  const sent: Message[] = [];
  const poison = new Set<string>();
  const versions = new Map<string, number>();
  for (let i = 0; i < MESSAGES; i++) {
    const key = `key-${i % KEYS}`;
    const version = (versions.get(key) ?? 0) + 1;
    versions.set(key, version);
    const bad = poisonEvery > 0 && i % poisonEvery === poisonEvery / 2;
    const m = testMessage(key, version, { poison: bad });
    if (bad) poison.add(m.event.eventId);
    sent.push(m);
  }
  return { sent, poison };
}

interface Run {
  readonly consumer: string;
  readonly sent: Message[];
  readonly poison: Set<string>;
  readonly counters: ConsumerCounters;
  /** Healthy (non-poison) messages applied per second, first handler call to last application. */
  readonly healthyPerSecond: number;
  readonly dlq: PostgresDeadLetterQueue;
}

/** Declares the group and publishes the whole backlog; the returned function consumes it through the pipeline. */
async function prepare(tdb: TestDatabase, broker: TestBroker, label: string, poisonEvery: number): Promise<() => Promise<Run>> {
  const topic = `fault.poison.${label}`;
  const group = 'effects';
  const consumer = `poison-${label}`;
  const { sent, poison } = messages(poisonEvery);
  const dlq = new PostgresDeadLetterQueue(tdb.db, tdb.schema);
  const counters = newCounters();
  const handler = retryingEffectConsumer({
    db: tdb.db,
    schema: tdb.schema,
    consumer,
    appliedBy: 'test',
    counters,
    deadLetters: dlq,
    policy: POLICY,
    beforeEffect(delivery) {
      if ((delivery.event.data as { poison?: boolean }).poison === true) throw new PoisonError(`poison message ${delivery.event.eventId}`);
    },
  });
  broker.track(topic, group);
  await declareGroup(broker, topic, group, { ordered: false });
  const publisher = openPublisher(broker);
  await publisher.publish(topic, sent);
  return async () => {
    const subscriber = openSubscriber(broker);
    try {
      await subscriber.subscribe(topic, { group, concurrency: 1, startFrom: 'earliest' }, handler);
      const healthy = sent.length - poison.size;
      await waitFor(`${healthy} healthy messages applied (${label})`, () => counters.applied >= healthy, { timeoutMs: RUN_MS, state: () => ({ ...counters, calls: undefined }) });
      const healthyPerSecond = (counters.applied * 1000) / (counters.lastAppliedAt - counters.firstCallAt);
      // Every poison message in the dead-letter queue, then a marker behind everything: nothing is left to come.
      await waitFor(`${poison.size} dead letters (${label})`, async () => (await dlq.list({ consumer }, { limit: 1000 })).items.length >= poison.size, {
        timeoutMs: 30_000,
      });
      const marker = drainMessage();
      await publisher.publish(topic, [marker]);
      await waitFor('the drain marker', () => counters.drained.has(marker.event.eventId), { timeoutMs: 30_000 });
      return { consumer, sent, poison, counters, healthyPerSecond, dlq };
    } finally {
      await subscriber.close({ timeoutMs: 2_000 });
      await publisher.close({ timeoutMs: 2_000 });
    }
  };
}

await describePerBroker('1% poison messages', (brokerKind) => {
  it('each poison message lands in the dead-letter queue exactly once, no hot loop, healthy throughput >= 80% of a clean run', async () => {
    const tdb = await openTestDatabase('poison');
    const broker = openTestBroker(brokerKind, 'poison');
    broker.trackDelays(delayBuckets(POLICY));
    try {
      const runs = [await prepare(tdb, broker, 'clean', 0), await prepare(tdb, broker, 'mixed', 100)];
      const [clean, mixed] = (await Promise.all(runs.map((run) => run()))) as [Run, Run];
      const letters = (await mixed.dlq.list({ consumer: mixed.consumer }, { limit: 1000 })).items;
      const histories = await Promise.all(letters.map((l) => mixed.dlq.history(l.id)));
      const poisonCalls = [...mixed.poison].map((id) => mixed.counters.calls.get(id) ?? 0);
      const ratio = mixed.healthyPerSecond / clean.healthyPerSecond;

      const figures = computeFigures({
        sent: mixed.sent.map((m) => ({ eventId: m.event.eventId, key: m.key as string, version: m.event.streamVersion as number })),
        notApplied: mixed.poison,
        applied: await readEffects(tdb.db, tdb.schema, mixed.consumer),
        published: mixed.sent.length,
        delivered: mixed.counters.delivered,
        duplicatesDelivered: mixed.counters.duplicates,
      });
      report(
        formatFigures(`poison 1% (${brokerKind})`, figures, {
          poison: mixed.poison.size,
          'dead letters': letters.length,
          'handler calls per poison message (min-max)': `${Math.min(...poisonCalls)}-${Math.max(...poisonCalls)}`,
          maxAttempts: MAX_ATTEMPTS,
          'clean msg/s': clean.healthyPerSecond.toFixed(0),
          'healthy msg/s with poison': mixed.healthyPerSecond.toFixed(0),
          ratio: ratio.toFixed(2),
        }),
      );
      expect(figures.lost).toBe(0);
      expect(figures.duplicatesApplied).toBe(0);
      expect(figures.orderViolations, figures.orderSamples.join('; ')).toBe(0);
      expect(figures.unexpected).toBe(0);
      // Exactly once in the DLQ: one letter per poison message, put once (one 'dead_lettered' entry), after maxAttempts.
      expect(new Set(letters.map((l) => l.eventId))).toEqual(mixed.poison);
      for (const l of letters) {
        expect(l).toMatchObject({ reason: 'retries-exhausted', attempts: MAX_ATTEMPTS, errorClass: 'PoisonError', status: 'dead' });
      }
      for (const h of histories) expect(h.map((e) => e.action)).toEqual(['dead_lettered']);
      // No hot loop: every poison message was handled exactly maxAttempts times, not more.
      expect(poisonCalls.every((n) => n === MAX_ATTEMPTS)).toBe(true);
      // The clean run applied everything once and dead-lettered nothing (it is the baseline).
      expect(clean.counters.applied).toBe(clean.sent.length);
      expect((await clean.dlq.list({ consumer: clean.consumer })).items).toHaveLength(0);
      expect(ratio).toBeGreaterThanOrEqual(0.8);
    } finally {
      await broker.cleanup().catch(() => undefined);
      await tdb.close();
    }
  }, FULL_SCALE ? 900_000 : 180_000);
});
