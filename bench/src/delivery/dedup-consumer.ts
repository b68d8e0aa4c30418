import { performance } from 'node:perf_hooks';
import type { Message } from '@causeway/core';
import { checkpoint } from '../store/admin.js';
import type { DeliveryBroker } from './delivery-broker.js';
import { BestOf, cpuMeter, freshTopic, type CaseContext, type DeliveryCase, type Measured } from './delivery-case.js';
import { checkEffects, effectProblems, openDeliveryEnv } from './delivery-env.js';
import { CONSUMER, CONSUMER_CONCURRENCY, createGroup, GROUP, LEDGER_BATCH, LEDGER_IN_FLIGHT, startEffectConsumer, type EffectConsumer } from './effect-consumer.js';
import { brokerMessage, cloudEventText, idOf, waitUntil } from './workload.js';

const PUBLISH_BATCH = 500;
const ROUNDS = 2;
const TIMEOUT_MS = 120_000;
const count = (quick: boolean): number => (quick ? 2_000 : 20_000);

/**
 * M messages published to the broker before the clock starts. Causeway: a consumer with the
 * PostgreSQL dedup ledger (batched: LEDGER_BATCH calls per transaction) inserts one effect row
 * per message in the ledger's transaction, then acks; time from subscribe() to the M-th commit.
 * Raw: a consumer that only acks, same messages in flight. Afterwards the effects must be
 * exactly once (M rows, each applied once, M ledger keys), or the run fails.
 */
export const dedupConsumerCase: DeliveryCase = {
  name: 'dedup-consumer',
  method: `M messages pre-published (not timed); causeway = subscriber (concurrency ${CONSUMER_CONCURRENCY}) + deduplicate() over PostgresDedupLedger (batchSize ${LEDGER_BATCH}, maxInFlight ${LEDGER_IN_FLIGHT}) + one effect INSERT per message in the ledger transaction, then ack; raw = consumer with the same messages in flight that only acks; rate = M / (last handled - subscribe start); latency = one handler (causeway: start -> ledger commit; raw: receive -> ack sent); effects checked exactly once; best of ${ROUNDS} alternating rounds`,
  sizes: (quick) => ({ messages: count(quick), concurrency: CONSUMER_CONCURRENCY, ledger_batch: LEDGER_BATCH, rounds: ROUNDS }),
  async run(broker, ctx) {
    const m = count(ctx.quick);
    const best = new BestOf();
    for (let round = 1; round <= ROUNDS; round++) {
      const label = `${broker.adapter} dedup-consumer round ${round}`;
      const messages = Array.from({ length: m }, (_, i) => brokerMessage(i));
      await checkpoint(ctx.connectionString);
      await best.round('raw', label, ctx, () => rawConsume(broker, messages, ctx));
      await checkpoint(ctx.connectionString);
      await best.round('causeway', label, ctx, () => causewayConsume(broker, messages, ctx));
    }
    return best.outcome();
  },
};

async function causewayConsume(broker: DeliveryBroker, messages: readonly Message[], ctx: CaseContext): Promise<Measured> {
  const env = await openDeliveryEnv(ctx.connectionString);
  const side = broker.causeway(env.db, env.schema);
  const topic = freshTopic(broker.adapter, 'dedup');
  const index = new Map(messages.map((msg, i) => [msg.event.eventId, i]));
  const seen = new Uint8Array(messages.length);
  const handlerMs: number[] = [];
  let handled = 0;
  let last = 0;
  let consumer: EffectConsumer | undefined;
  try {
    await createGroup(side, topic);
    for (let i = 0; i < messages.length; i += PUBLISH_BATCH) await side.publisher.publish(topic, messages.slice(i, i + PUBLISH_BATCH));
    const stored = await side.stored(topic, GROUP);
    if (stored !== messages.length) throw new Error(`the broker holds ${stored} of the ${messages.length} published messages`);
    const cpu = cpuMeter();
    const start = performance.now();
    consumer = await startEffectConsumer(env, side, topic, (d, startedAt, committedAt) => {
      const i = index.get(d.event.eventId);
      if (i === undefined || seen[i] === 1) return;
      seen[i] = 1;
      handled++;
      last = committedAt;
      handlerMs.push(committedAt - startedAt);
    });
    await waitUntil(() => handled >= messages.length, TIMEOUT_MS, () => `${handled}/${messages.length} handled`);
    const wallMs = last - start;
    const cpuUsPerEvent = cpu(messages.length);
    await consumer.close();
    const check = await checkEffects(env, [...index.keys()], CONSUMER);
    const problems = effectProblems(check);
    if (problems.length > 0) throw new Error(`effects not exactly once: ${problems.join('; ')}`);
    return {
      system: `causeway ${broker.adapter} subscriber + dedup ledger (batch ${LEDGER_BATCH}) + effect row`,
      opsPerS: messages.length / (wallMs / 1000),
      latenciesMs: handlerMs,
      notes: { cpu_us_per_event: cpuUsPerEvent, effects: check.rows, max_times_applied: check.maxTimes, ledger_keys: check.ledgerKeys, duplicates_skipped: consumer.duplicates },
    };
  } finally {
    await consumer?.close().catch(() => undefined);
    await side.dropTopic(topic, GROUP).catch(() => undefined);
    await side.close();
    await env.close();
  }
}

async function rawConsume(broker: DeliveryBroker, messages: readonly Message[], ctx: CaseContext): Promise<Measured> {
  const raw = broker.raw(ctx.connectionString);
  const bodies = messages.map(cloudEventText);
  const index = new Map(messages.map((msg, i) => [msg.event.eventId, i]));
  const seen = new Uint8Array(messages.length);
  const handlerMs: number[] = [];
  let handled = 0;
  let last = 0;
  await raw.setup(freshTopic(broker.adapter, 'raw-dedup'));
  try {
    for (let i = 0; i < bodies.length; i += PUBLISH_BATCH) await raw.publish(bodies.slice(i, i + PUBLISH_BATCH));
    const stored = await raw.stored();
    if (stored !== bodies.length) throw new Error(`the broker holds ${stored} of the ${bodies.length} published messages`);
    const cpu = cpuMeter();
    const start = performance.now();
    await raw.consume(CONSUMER_CONCURRENCY, (body) => {
      const t0 = performance.now();
      const i = index.get(idOf(body));
      if (i === undefined || seen[i] === 1) return;
      seen[i] = 1;
      handled++;
      last = performance.now();
      handlerMs.push(last - t0);
    });
    await waitUntil(() => handled >= messages.length, TIMEOUT_MS, () => `${handled}/${messages.length} received`);
    const notes = { cpu_us_per_event: cpu(messages.length) };
    return { system: `${raw.system}, acks only`, opsPerS: messages.length / ((last - start) / 1000), latenciesMs: handlerMs, notes };
  } finally {
    await raw.teardown();
  }
}
