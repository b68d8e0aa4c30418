import { performance } from 'node:perf_hooks';
import type { EventStore, Publisher } from '@causeway/core';
import { createEventLogRelay, type Relay } from '@causeway/postgres';
import type { DeliveryBroker } from './delivery-broker.js';
import { BestOf, countingReporter, freshTopic, type CaseContext, type DeliveryCase, type Measured } from './delivery-case.js';
import { APPLICATION_NAME, checkEffects, effectProblems, openDeliveryEnv } from './delivery-env.js';
import { startHorizonSampler, type HorizonSampler } from './horizon-sampler.js';
import { LatencyStamps } from './latency-stamps.js';
import { CONSUMER, CONSUMER_CONCURRENCY, GROUP, startEffectConsumer, type EffectConsumer } from './effect-consumer.js';
import { brokerMessage, cloudEventText, idOf, newEvent, pace, streamOf, TENANT, waitUntil } from './workload.js';

const RATE_PER_S = 1_000;
const seconds = (quick: boolean): number => (quick ? 2 : 10);
/** Events sent and consumed before the measured run (connections, prepared statements, JIT), not counted. */
const WARMUP = 200;
const DRAIN_TIMEOUT_MS = 60_000;
/** The target's p99 (issue 4): the horizon sampler reports how often the server's oldest writer was older. */
const TARGET_P99_MS = 25;
/** BENCH_HORIZON_TRACE=1: sample the read horizon every 2 ms and split each event's wait (adds load; for diagnosis). */
const TRACE = process.env['BENCH_HORIZON_TRACE'] === '1';

/**
 * Paced at RATE_PER_S for a few seconds. Causeway: each event is its own append (one stream of
 * KEYS per event); a running event-log relay publishes to the broker; a consumer with the
 * dedup ledger inserts the effect row in the ledger's transaction, then acks. Latency = the
 * consumer's commit returned - the append's promise resolved (both performance.now() in this
 * process; recorded_at is not used: it is taken before the commit). Raw: the client publishes
 * one message per call on the same schedule, a consumer acks; latency = received - publish call
 * started. Every Causeway effect is checked exactly once afterwards.
 */
export const commitLatencyCase: DeliveryCase = {
  name: 'commit-to-consume',
  method: `paced ${RATE_PER_S} events/s (after ${WARMUP} warm-up events): causeway = one append per event -> event-log relay -> broker -> consumer with PostgreSQL dedup ledger + effect row; latency = consumer commit returned - append resolved (in-process clock, not recorded_at); raw = one publish call per message on the same schedule, consumer acks; latency = received - publish call started; rate = events / (last consumed - first committed or published); effects checked exactly once`,
  sizes: (quick) => ({ rate_per_s: RATE_PER_S, seconds: seconds(quick), events: RATE_PER_S * seconds(quick), warmup_events: WARMUP }),
  async run(broker, ctx) {
    const best = new BestOf();
    const count = RATE_PER_S * seconds(ctx.quick);
    const label = `${broker.adapter} commit-to-consume`;
    await best.round('raw', label, ctx, () => rawLatency(broker, count, ctx));
    await best.round('causeway', label, ctx, () => causewayLatency(broker, count, ctx));
    return best.outcome();
  },
};

async function causewayLatency(broker: DeliveryBroker, count: number, ctx: CaseContext): Promise<Measured> {
  const env = await openDeliveryEnv(ctx.connectionString);
  const side = broker.causeway(env.db, env.schema);
  const topic = freshTopic(broker.adapter, 'latency');
  const total = WARMUP + count;
  const events = Array.from({ length: total }, (_, i) => newEvent(i));
  const index = new Map(events.map((e, i) => [e.eventId, i]));
  const stamps = new LatencyStamps(total);
  const failed: unknown[] = [];
  const appends: Promise<void>[] = [];
  const errors = countingReporter(ctx, `${broker.adapter} relay`);
  let consumer: EffectConsumer | undefined;
  let relay: Relay | undefined;
  let horizon: HorizonSampler | undefined;
  try {
    consumer = await startEffectConsumer(env, side, topic, (d) => stamps.end(index.get(d.event.eventId)));
    const publisher: Publisher = {
      async publish(t, messages) {
        await side.publisher.publish(t, messages);
        const now = performance.now();
        for (const m of messages) {
          const i = index.get(m.event.eventId);
          if (i !== undefined && Number.isNaN(stamps.published[i] as number)) stamps.published[i] = now;
        }
      },
      close: (o) => side.publisher.close(o),
    };
    // Stamps when the relay's batch handler gets each event (after its read, before its publish).
    const store: Pick<EventStore, 'subscribe'> = {
      subscribe: (options, handler) =>
        env.store.subscribe(options, (batch) => {
          const now = performance.now();
          for (const e of batch) {
            const i = index.get(e.eventId);
            if (i !== undefined && Number.isNaN(stamps.relayed[i] as number)) stamps.relayed[i] = now;
          }
          return handler(batch);
        }),
    };
    relay = createEventLogRelay({ db: env.db, store, publisher, schema: env.schema, name: 'latency', topic: () => topic, onError: errors.report });
    const append = (i: number): void => {
      const write = env.store.append({ tenantId: TENANT, streamId: streamOf(i) }, [events[i] as (typeof events)[number]]);
      appends.push(
        write.then(
          (r) => {
            stamps.from[i] = performance.now();
            stamps.tx[i] = Number(r.position.tx);
          },
          (e: unknown) => void failed.push(e),
        ),
      );
    };
    await pace(RATE_PER_S, WARMUP, append);
    await waitUntil(() => stamps.done >= WARMUP, DRAIN_TIMEOUT_MS, () => `warm-up: ${stamps.done}/${WARMUP} consumed`);
    horizon = await startHorizonSampler(ctx.connectionString, APPLICATION_NAME, TRACE);
    const paced = await pace(RATE_PER_S, count, (i) => append(WARMUP + i));
    await Promise.all(appends);
    if (failed.length > 0) throw new Error(`${failed.length} appends failed, e.g. ${String(failed[0])}`);
    await waitUntil(() => stamps.done >= total, DRAIN_TIMEOUT_MS, () => `${stamps.done}/${total} consumed`);
    const oldestWriter = await horizon.stop(TARGET_P99_MS);
    const traced = TRACE ? stamps.horizonStages(WARMUP, (tx) => horizon?.passedAt(tx) ?? Number.NaN, (t) => horizon?.holderAt(t) ?? 'none') : {};
    const { latenciesMs, opsPerS } = stamps.measured(WARMUP);
    await relay.stop();
    await consumer.close();
    const check = await checkEffects(env, events.map((e) => e.eventId), CONSUMER);
    const problems = effectProblems(check);
    if (problems.length > 0) throw new Error(`effects not exactly once: ${problems.join('; ')}`);
    return {
      system: `causeway append -> event-log relay -> ${broker.adapter} -> dedup consumer (concurrency ${CONSUMER_CONCURRENCY})`,
      opsPerS,
      latenciesMs,
      notes: {
        appended_per_s: Math.round(paced.achievedPerS),
        duplicates_skipped: consumer.duplicates,
        relay_errors: errors.count(),
        ...stamps.stages(WARMUP),
        effects: check.rows,
        max_times_applied: check.maxTimes,
        oldest_writer_p50_ms: oldestWriter.any.p50_ms,
        oldest_writer_p99_ms: oldestWriter.any.p99_ms,
        oldest_writer_max_ms: oldestWriter.any.max_ms,
        [`oldest_writer_over_${TARGET_P99_MS}ms_share`]: oldestWriter.any.over_threshold,
        own_oldest_writer_p50_ms: oldestWriter.own.p50_ms,
        own_oldest_writer_p99_ms: oldestWriter.own.p99_ms,
        [`own_oldest_writer_over_${TARGET_P99_MS}ms_share`]: oldestWriter.own.over_threshold,
        horizon_held_by: Object.entries(oldestWriter.holders).map(([k, share]) => `${k} ${Math.round(share * 100)}%`).join(', '),
        ...traced,
      },
    };
  } finally {
    await horizon?.stop(TARGET_P99_MS);
    await relay?.stop();
    await consumer?.close().catch(() => undefined);
    await side.dropTopic(topic, GROUP).catch(() => undefined);
    await side.close();
    await env.close();
  }
}

async function rawLatency(broker: DeliveryBroker, count: number, ctx: CaseContext): Promise<Measured> {
  const raw = broker.raw(ctx.connectionString);
  const total = WARMUP + count;
  const messages = Array.from({ length: total }, (_, i) => brokerMessage(i));
  const bodies = messages.map(cloudEventText);
  const index = new Map(messages.map((m, i) => [m.event.eventId, i]));
  const stamps = new LatencyStamps(total);
  const failed: unknown[] = [];
  const publishes: Promise<void>[] = [];
  await raw.setup(freshTopic(broker.adapter, 'raw-latency'));
  try {
    await raw.consume(CONSUMER_CONCURRENCY, (body) => stamps.end(index.get(idOf(body))));
    const publish = (i: number): void => {
      stamps.from[i] = performance.now();
      publishes.push(raw.publish([bodies[i] as string]).catch((e: unknown) => void failed.push(e)));
    };
    await pace(RATE_PER_S, WARMUP, publish);
    await waitUntil(() => stamps.done >= WARMUP, DRAIN_TIMEOUT_MS, () => `warm-up: ${stamps.done}/${WARMUP} received`);
    await pace(RATE_PER_S, count, (i) => publish(WARMUP + i));
    await Promise.all(publishes);
    if (failed.length > 0) throw new Error(`${failed.length} publishes failed, e.g. ${String(failed[0])}`);
    await waitUntil(() => stamps.done >= total, DRAIN_TIMEOUT_MS, () => `${stamps.done}/${total} received`);
    const { latenciesMs, opsPerS } = stamps.measured(WARMUP);
    return { system: `${raw.system}, one message per call`, opsPerS, latenciesMs };
  } finally {
    await raw.teardown();
  }
}
