import { performance } from 'node:perf_hooks';
import type { EventStore, RecordedEvent } from '@causeway/core';
import { createEventLogRelay } from '@causeway/postgres';
import { checkpoint } from '../store/admin.js';
import type { DeliveryBroker } from './delivery-broker.js';
import { BestOf, countingReporter, cpuMeter, freshTopic, timedPublisher, type CaseContext, type DeliveryCase, type Measured } from './delivery-case.js';
import { openDeliveryEnv, type DeliveryEnv } from './delivery-env.js';
import { createGroup, GROUP } from './effect-consumer.js';
import { cloudEventText, seedEvents, waitUntil } from './workload.js';

/** The relay's batch (its default) and the raw client's: both publish this many messages per awaited call. */
const BATCH = 500;
const ROUNDS = 2;
const TIMEOUT_MS = 120_000;
const count = (quick: boolean): number => (quick ? 2_000 : 20_000);

/**
 * N events already committed in the store (not timed). Causeway: a new event-log relay publishes
 * them to the broker until its checkpoint has passed all N (time from createEventLogRelay to
 * `marked` = N; it reads the log, publishes, moves its fenced checkpoint). Raw: the client
 * publishes the same N CloudEvent texts, BATCH per awaited call. Reference: Causeway's publisher
 * alone publishing the same N in the same batches, which splits the relay's own cost from the
 * adapter's. All checked on the broker afterwards (it holds exactly N). Latency samples: one
 * publish() call of a batch.
 */
/** The seeded log every broker's relay reads (seeding takes longer than a relay run, so it is done once). */
interface SeededLog {
  readonly env: DeliveryEnv;
  readonly events: readonly RecordedEvent[];
  readonly bodies: readonly string[];
}

export function relayThroughputCase(): DeliveryCase {
  let seeded: Promise<SeededLog> | undefined;
  return {
    name: 'relay-throughput',
    method: `N events committed before the clock starts (one per append, consecutive events on different streams); causeway = createEventLogRelay (batch ${BATCH}) from creation until its checkpoint passed all N; raw = the client publishing the same N CloudEvent JSON texts ${BATCH} per awaited call; reference = Causeway's publisher alone, same batches; rate = N / wall; latency = one publish call of a batch; the broker must hold exactly N afterwards; best of ${ROUNDS} alternating rounds`,
    sizes: (quick) => ({ events: count(quick), batch_size: BATCH, rounds: ROUNDS }),
    async run(broker, ctx) {
      seeded ??= seedLog(ctx);
      const { env, events, bodies } = await seeded;
      const best = new BestOf();
      for (let round = 1; round <= ROUNDS; round++) {
        const label = `${broker.adapter} relay-throughput round ${round}`;
        await checkpoint(ctx.connectionString);
        await best.round('raw', label, ctx, () => rawPublish(broker, bodies, ctx));
        await checkpoint(ctx.connectionString);
        await best.round('causeway', label, ctx, () => relayRun(broker, env, events.length, `${broker.adapter}-${round}`, ctx));
        await best.round('reference', label, ctx, () => publisherRun(broker, env, events));
      }
      return best.outcome();
    },
    async finish() {
      const log = await seeded?.catch(() => undefined);
      seeded = undefined;
      await log?.env.close();
    },
  };
}

async function seedLog(ctx: CaseContext): Promise<SeededLog> {
  const n = count(ctx.quick);
  const env = await openDeliveryEnv(ctx.connectionString);
  try {
    ctx.log(`relay-throughput: seeding ${n.toLocaleString('en-US')} events (once, for every broker)`);
    const events = await seedEvents(env.store, n, (done) => ctx.log(`  seeded ${done.toLocaleString('en-US')}`));
    return { env, events, bodies: events.map((event) => cloudEventText({ event })) };
  } catch (e) {
    await env.close().catch(() => undefined);
    throw e;
  }
}

async function relayRun(broker: DeliveryBroker, env: DeliveryEnv, n: number, name: string, ctx: CaseContext): Promise<Measured> {
  const side = broker.causeway(env.db, env.schema);
  const topic = freshTopic(broker.adapter, 'relay');
  const callsMs: number[] = [];
  const errors = countingReporter(ctx, `${broker.adapter} relay`);
  // Time inside the relay's batch handler (publish + queueing the mark); the rest of the wall is reading the log.
  let handlerMs = 0;
  const store: Pick<EventStore, 'subscribe'> = {
    subscribe: (options, handler) =>
      env.store.subscribe(options, async (events) => {
        const t0 = performance.now();
        try {
          await handler(events);
        } finally {
          handlerMs += performance.now() - t0;
        }
      }),
  };
  try {
    await createGroup(side, topic);
    const cpu = cpuMeter();
    const start = performance.now();
    // A new relay name each run: its checkpoint starts at the log's beginning.
    const relay = createEventLogRelay({
      db: env.db,
      store,
      publisher: timedPublisher(side.publisher, callsMs),
      schema: env.schema,
      name,
      topic: () => topic,
      batchSize: BATCH,
      onError: errors.report,
    });
    let wallMs: number;
    try {
      await waitUntil(() => relay.marked >= n, TIMEOUT_MS, () => `relay marked ${relay.marked}/${n}`);
      wallMs = performance.now() - start;
    } finally {
      await relay.stop();
    }
    const cpuUsPerEvent = cpu(n);
    expectStored(await side.stored(topic, GROUP), n);
    const publishMs = callsMs.reduce((a, b) => a + b, 0);
    return {
      system: `causeway event-log relay (batch ${BATCH}) -> ${broker.adapter}`,
      opsPerS: n / (wallMs / 1000),
      latenciesMs: callsMs,
      notes: {
        published: relay.published,
        marked: relay.marked,
        relay_errors: errors.count(),
        cpu_us_per_event: cpuUsPerEvent,
        wall_ms: Math.round(wallMs),
        publish_ms: Math.round(publishMs),
        in_batch_handler_ms: Math.round(handlerMs),
      },
    };
  } finally {
    await side.dropTopic(topic, GROUP).catch(() => undefined);
    await side.close();
  }
}

/** Causeway's publisher alone, same batches as the raw client: splits the relay's cost from the adapter's. */
async function publisherRun(broker: DeliveryBroker, env: DeliveryEnv, events: readonly RecordedEvent[]): Promise<Measured> {
  const side = broker.causeway(env.db, env.schema);
  const topic = freshTopic(broker.adapter, 'publisher');
  try {
    await createGroup(side, topic);
    const run = await inBatches(events.length, (from, to) => side.publisher.publish(topic, events.slice(from, to).map((event) => ({ event }))));
    expectStored(await side.stored(topic, GROUP), events.length);
    return { system: `causeway ${broker.adapter} publisher alone, batch ${BATCH} (no relay)`, ...run };
  } finally {
    await side.dropTopic(topic, GROUP).catch(() => undefined);
    await side.close();
  }
}

/** Publishes events [0, n) BATCH per awaited call; rate, each call's time and this process's CPU per event. */
async function inBatches(n: number, publish: (from: number, to: number) => Promise<void>): Promise<Omit<Measured, 'system'>> {
  const callsMs: number[] = [];
  const cpu = cpuMeter();
  const start = performance.now();
  for (let i = 0; i < n; i += BATCH) {
    const t0 = performance.now();
    await publish(i, Math.min(n, i + BATCH));
    callsMs.push(performance.now() - t0);
  }
  const wallMs = performance.now() - start;
  return { opsPerS: n / (wallMs / 1000), latenciesMs: callsMs, notes: { cpu_us_per_event: cpu(n) } };
}

function expectStored(stored: number, n: number): void {
  if (stored !== n) throw new Error(`the broker holds ${stored} of the ${n} messages sent`);
}

async function rawPublish(broker: DeliveryBroker, bodies: readonly string[], ctx: CaseContext): Promise<Measured> {
  const raw = broker.raw(ctx.connectionString);
  await raw.setup(freshTopic(broker.adapter, 'raw-relay'));
  try {
    const run = await inBatches(bodies.length, (from, to) => raw.publish(bodies.slice(from, to)));
    expectStored(await raw.stored(), bodies.length);
    return { system: `${raw.system}, batch ${BATCH}`, ...run };
  } finally {
    await raw.teardown();
  }
}
