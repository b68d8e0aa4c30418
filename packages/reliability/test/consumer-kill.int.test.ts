import type { Message } from '@causeway/core';
import { expect, it } from 'vitest';
import { brokerEnv, declareGroup, openPublisher } from './fixtures/brokers.js';
import { drainMessage, testMessage } from './fixtures/consumer.js';
import { countEffects, readEffects } from './fixtures/effects.js';
import { computeFigures, formatFigures } from './fixtures/figures.js';
import { describePerBroker, openTestBroker, openTestDatabase, PG_URL, report, spawnFixture, waitFor, type Child } from './support.js';

/**
 * kill -9 the consumer (issue 4, item 6) at three points of one chosen message: before the side
 * effect (inside the ledger's transaction, nothing committed), after it but before the ack, and
 * after the ack. A new consumer process takes over; every message's effect must exist exactly
 * once, and the chosen one must have been applied by the right process:
 * - before the effect: by the successor (the first one's transaction died with it);
 * - after the effect, before the ack: by the first; the successor gets it again and the ledger
 *   says duplicate;
 * - after the ack: by the first, and the successor never sees it. RabbitMQ does not confirm acks
 *   (AMQP 0-9-1), so "after the ack" is when the next message arrives: with one message out at a
 *   time the broker sends it only once it has processed the ack (NATS confirms acks; same point).
 * Consumers run with concurrency 1 on an ordered group (declareGroup), so the first one
 * applied exactly the messages before the chosen one.
 */
const KEYS = 10;
const PER_KEY = 20;
const TARGET_INDEX = 95;
/** NATS ack_wait: how soon the killed consumer's unacked message comes back (RabbitMQ requeues on disconnect). */
const ACK_TIMEOUT_MS = 2_000;
const POINTS = ['before-effect', 'after-effect', 'after-ack'] as const;

function messages(): Message[] {
  const out: Message[] = [];
  for (let v = 1; v <= PER_KEY; v++) for (let k = 0; k < KEYS; k++) out.push(testMessage(`key-${k}`, v));
  return out;
}

const lines = (c: Child, t: string, id?: string) => c.lines.filter((l) => l.t === t && (id === undefined || l.id === id));

async function exitWithin(child: Child, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`consumer ${child.pid} did not exit within ${ms} ms; stderr: ${child.stderr()}`)), ms);
  });
  try {
    return await Promise.race([child.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

await describePerBroker('kill -9 the consumer', (brokerKind) => {
  for (const point of POINTS) {
    it(`killed ${point}: a new consumer takes over, every effect exactly once`, async () => {
      const tdb = await openTestDatabase(`ck_${point.replace('-', '_')}`);
      const broker = openTestBroker(brokerKind, 'cons');
      const topic = `fault.consumer.${point}`;
      const group = 'effects';
      const consumer = `consumer-${point}`;
      const publisher = openPublisher(broker);
      const children: Child[] = [];
      try {
        broker.track(topic, group);
        await declareGroup(broker, topic, group, { ackTimeoutMs: ACK_TIMEOUT_MS, ordered: true });
        const sent = messages();
        await publisher.publish(topic, sent);
        const target = (sent[TARGET_INDEX] as Message).event.eventId;
        const env = {
          ...brokerEnv(broker),
          FAULT_PG_URL: PG_URL,
          FAULT_SCHEMA: tdb.schema,
          FAULT_TOPIC: topic,
          FAULT_GROUP: group,
          FAULT_CONSUMER: consumer,
          FAULT_ACK_TIMEOUT_MS: String(ACK_TIMEOUT_MS),
        };

        const first = spawnFixture('consumer-main.ts', { ...env, FAULT_KILL_AT: point, FAULT_KILL_EVENT: target });
        children.push(first);
        const exit = await exitWithin(first, 60_000);
        expect(exit.signal, `first consumer should have killed itself; stderr: ${first.stderr()}`).toBe('SIGKILL');
        expect(lines(first, 'dying', target)).toHaveLength(1);

        const second = spawnFixture('consumer-main.ts', env);
        children.push(second);
        await waitFor('every message applied', async () => (await countEffects(tdb.db, tdb.schema, consumer)) >= sent.length, {
          timeoutMs: 60_000,
          state: async () => ({ applied: await countEffects(tdb.db, tdb.schema, consumer), stderr: second.stderr().slice(-500) }),
        });
        const marker = drainMessage();
        await publisher.publish(topic, [marker]);
        await second.waitForLine((l) => l.t === 'drained' && l.id === marker.event.eventId, 30_000);
        second.kill('SIGTERM');
        await exitWithin(second, 10_000);

        const applied = await readEffects(tdb.db, tdb.schema, consumer);
        const both = [first, second];
        const count = (t: string) => both.reduce((n, c) => n + lines(c, t).length, 0);
        const figures = computeFigures({
          sent: sent.map((m) => ({ eventId: m.event.eventId, key: m.key as string, version: m.event.streamVersion as number })),
          applied,
          published: sent.length,
          delivered: count('delivery') - lines(second, 'delivery', marker.event.eventId).length,
          duplicatesDelivered: count('duplicate'),
        });
        const targetRows = applied.filter((r) => r.eventId === target);
        const redelivered = lines(second, 'delivery', target).length > 0;
        report(
          formatFigures(`consumer kill -9 ${point} (${brokerKind})`, figures, {
            'chosen message applied by': targetRows[0]?.appliedBy === `pid:${first.pid}` ? 'first consumer' : 'successor',
            'chosen message redelivered': redelivered ? 'yes' : 'no',
            'applied by first consumer': applied.filter((r) => r.appliedBy === `pid:${first.pid}`).length,
          }),
        );
        expect(figures.lost).toBe(0);
        expect(figures.duplicatesApplied).toBe(0);
        expect(figures.orderViolations, figures.orderSamples.join('; ')).toBe(0);
        expect(figures.unexpected).toBe(0);
        expect(targetRows).toHaveLength(1);
        const byFirst = applied.filter((r) => r.appliedBy === `pid:${first.pid}`).length;
        if (point === 'before-effect') {
          // Its transaction died with it: the ledger row too, so the successor applied it.
          expect(byFirst).toBe(TARGET_INDEX);
          expect(targetRows[0]?.appliedBy).toBe(`pid:${second.pid}`);
          expect(redelivered).toBe(true);
        } else {
          expect(byFirst).toBe(TARGET_INDEX + 1);
          expect(targetRows[0]?.appliedBy).toBe(`pid:${first.pid}`);
        }
        // Committed but never acked: it comes back and the ledger absorbs it.
        if (point === 'after-effect') expect(lines(second, 'duplicate', target)).toHaveLength(1);
        // An ack the broker had: the message is done for the group.
        if (point === 'after-ack') expect(redelivered).toBe(false);
      } finally {
        for (const c of children) c.kill('SIGKILL');
        await Promise.all(children.map((c) => c.exited));
        await publisher.close({ timeoutMs: 2_000 }).catch(() => undefined);
        await broker.cleanup().catch(() => undefined);
        await tdb.close();
      }
    }, 120_000);
  }
});
