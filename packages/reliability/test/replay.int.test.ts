import { PermanentError, replayDeadLetters, type DeadLetterHistoryEntry, type EventDelivery, type Message, type RetryPolicy } from '@causeway/core';
import { PostgresDeadLetterQueue, schemaNames, type SqlExecutor } from '@causeway/postgres';
import { expect, it } from 'vitest';
import { declareGroup, delayBuckets, openPublisher, openSubscriber } from './fixtures/brokers.js';
import { drainMessage, newCounters, retryingEffectConsumer, testMessage } from './fixtures/consumer.js';
import { countEffects, readEffects } from './fixtures/effects.js';
import { computeFigures, formatFigures } from './fixtures/figures.js';
import { describePerBroker, openTestBroker, openTestDatabase, report, waitFor } from './support.js';

/**
 * Replay of a failure group (issue 4, item 6). Payment messages fail while the payment gateway is
 * "down" (a flag) and go to the dead-letter queue after the retry policy; a few malformed
 * messages fail permanently with another cause. The gateway comes back, an operator replays the
 * gateway failures' fingerprint group through the DLQ API, and the consumer's replay worker feeds
 * them through the SAME pipeline the subscription runs (ledger, retry, dead letters). Each must
 * be applied exactly once; the other group stays dead; a second replay of the group changes
 * nothing: no letter selected, effects, ledger and history unchanged.
 *
 * Replayed messages are applied after later messages of their key: that is what a replay without
 * sequenced mode does (sequenced mode, which keeps key order, has its own tests in
 * packages/postgres). The order check covers the messages that went through in flow.
 */
const KEYS = 10;
const PER_KEY = 30;
const POLICY: RetryPolicy = { immediate: 2, maxAttempts: 3, baseDelayMs: 20, maxDelayMs: 50, random: () => 0.5 };
const PAYMENT = 'fault.payment.captured';
const OPERATOR = { by: 'fault-test operator', reason: 'payment gateway is back' };

class PaymentGatewayDownError extends Error {}

/** Every 20th message is a payment (15 in all); every 60th, offset by 7, is malformed (5 in all). */
function messages(): { sent: Message[]; payments: Set<string>; malformed: Set<string> } {
  const sent: Message[] = [];
  const payments = new Set<string>();
  const malformed = new Set<string>();
  for (let i = 0; i < KEYS * PER_KEY; i++) {
    const key = `key-${i % KEYS}`;
    const version = Math.floor(i / KEYS) + 1;
    const isPayment = i % 20 === 10;
    const isMalformed = i % 60 === 7;
    const m = testMessage(key, version, { malformed: isMalformed }, isPayment ? PAYMENT : 'fault.item.recorded');
    if (isPayment) payments.add(m.event.eventId);
    if (isMalformed) malformed.add(m.event.eventId);
    sent.push(m);
  }
  return { sent, payments, malformed };
}

const gateway = { down: true };

/** The one place a payment fails while the gateway is down: one error class, one frame, one fingerprint. */
function capturePayment(delivery: EventDelivery): void {
  if (delivery.event.eventType === PAYMENT && gateway.down) throw new PaymentGatewayDownError(`gateway down for ${delivery.event.eventId}`);
}

function checkShape(delivery: EventDelivery): void {
  if ((delivery.event.data as { malformed?: boolean }).malformed === true) throw new PermanentError(`malformed item ${delivery.event.eventId}`);
}

const actions = (h: readonly DeadLetterHistoryEntry[]) => h.map((e) => e.action);

await describePerBroker('replay of a failure group', (brokerKind) => {
  it('replays the fingerprint group through the consumer path: each applied once; a second replay changes nothing', async () => {
    gateway.down = true;
    const tdb = await openTestDatabase('replay');
    const broker = openTestBroker(brokerKind, 'replay');
    broker.trackDelays(delayBuckets(POLICY));
    const topic = 'fault.replay';
    const group = 'effects';
    const consumer = 'replay-consumer';
    const publisher = openPublisher(broker);
    const subscriber = openSubscriber(broker);
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
        checkShape(delivery);
        capturePayment(delivery);
      },
    });
    const worker = replayDeadLetters(dlq, handler, { consumer, pollMs: 600_000 });
    try {
      const { sent, payments, malformed } = messages();
      broker.track(topic, group);
      await declareGroup(broker, topic, group, { ordered: false });
      await subscriber.subscribe(topic, { group, concurrency: 1, startFrom: 'earliest' }, handler);
      await publisher.publish(topic, sent);
      const failing = payments.size + malformed.size;
      await waitFor('healthy messages applied and failures dead-lettered', async () => counters.applied >= sent.length - failing && (await dlq.list({ consumer }, { limit: 1000 })).items.length >= failing, {
        timeoutMs: 60_000,
        state: () => ({ applied: counters.applied, delivered: counters.delivered }),
      });
      const marker = drainMessage();
      await publisher.publish(topic, [marker]);
      await waitFor('the drain marker', () => counters.drained.has(marker.event.eventId), { timeoutMs: 30_000 });

      // Two groups: the gateway outage and the malformed items.
      const groups = await dlq.groups({ consumer });
      const outage = groups.find((g) => g.errorClass === 'PaymentGatewayDownError');
      const permanent = groups.find((g) => g.errorClass === 'PermanentError');
      expect(groups).toHaveLength(2);
      expect(outage?.count).toBe(payments.size);
      expect(permanent?.count).toBe(malformed.size);
      const fingerprint = outage?.fingerprint as string;

      // The fix, then the replay of the group; the worker feeds the letters through the pipeline.
      gateway.down = false;
      const callsBefore = counters.delivered;
      const first = await dlq.replay({ consumer, fingerprint }, OPERATOR);
      expect(first.ids).toHaveLength(payments.size);
      expect(first.notReplayable).toEqual([]);
      const replayedFirst = await worker.drain();
      expect(replayedFirst).toBe(payments.size);
      const replayCalls = counters.delivered - callsBefore;

      const afterFirst = {
        effects: await countEffects(tdb.db, tdb.schema, consumer),
        ledger: await ledgerRows(tdb.db, tdb.schema, consumer),
        histories: await Promise.all(first.ids.map((id) => dlq.history(id))),
        statuses: (await dlq.list({ consumer }, { limit: 1000 })).items.map((l) => `${l.id}:${l.status}`).sort(),
      };
      for (const h of afterFirst.histories) expect(actions(h)).toEqual(['dead_lettered', 'replay_requested', 'replayed']);
      expect(afterFirst.histories.every((h) => h[1]?.by === OPERATOR.by && h[1]?.reason === OPERATOR.reason)).toBe(true);

      // A second replay of the same group: nothing selected, nothing handled, nothing changed.
      const second = await dlq.replay({ consumer, fingerprint }, OPERATOR);
      const replayedSecond = await worker.drain();
      const afterSecond = {
        effects: await countEffects(tdb.db, tdb.schema, consumer),
        ledger: await ledgerRows(tdb.db, tdb.schema, consumer),
        histories: await Promise.all(first.ids.map((id) => dlq.history(id))),
        statuses: (await dlq.list({ consumer }, { limit: 1000 })).items.map((l) => `${l.id}:${l.status}`).sort(),
      };

      const applied = await readEffects(tdb.db, tdb.schema, consumer);
      const figures = computeFigures({
        sent: sent.map((m) => ({ eventId: m.event.eventId, key: m.key as string, version: m.event.streamVersion as number })),
        notApplied: malformed,
        outOfFlow: payments,
        applied,
        published: sent.length,
        delivered: counters.delivered,
        duplicatesDelivered: counters.duplicates,
      });
      const letters = (await dlq.list({ consumer }, { limit: 1000 })).items;
      report(
        formatFigures(`replay of a failure group (${brokerKind})`, figures, {
          'dead-lettered': failing,
          'group replayed': first.ids.length,
          'replay handler calls': replayCalls,
          'second replay selected': second.ids.length,
          'second replay handled': replayedSecond,
          'left dead (other group)': letters.filter((l) => l.status === 'dead').length,
        }),
      );
      expect(figures.lost).toBe(0);
      expect(figures.duplicatesApplied).toBe(0);
      expect(figures.orderViolations, figures.orderSamples.join('; ')).toBe(0);
      expect(figures.unexpected).toBe(0);
      // Each replayed payment applied exactly once, by the replay (one handler call each).
      expect(applied.filter((r) => payments.has(r.eventId))).toHaveLength(payments.size);
      expect(replayCalls).toBe(payments.size);
      for (const l of letters) expect(l.status).toBe(payments.has(l.eventId as string) ? 'replayed' : 'dead');
      // The second replay changed nothing.
      expect(second.ids).toEqual([]);
      expect(replayedSecond).toBe(0);
      expect(afterSecond).toEqual(afterFirst);
    } finally {
      gateway.down = true;
      await worker.stop();
      await subscriber.close({ timeoutMs: 2_000 });
      await publisher.close({ timeoutMs: 2_000 });
      await broker.cleanup().catch(() => undefined);
      await tdb.close();
    }
  }, 120_000);
});

/** Keys the inbox ledger holds for the consumer (a replay that applied something would add one). */
async function ledgerRows(db: SqlExecutor, schema: string, consumer: string): Promise<number> {
  const { rows } = await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${schemaNames(schema).schema}.inbox WHERE consumer = $1`, [consumer]);
  return Number(rows[0]?.n ?? 0);
}
