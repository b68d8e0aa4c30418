import type { BrokerCapabilities, BrokerHarness, BrokerSettings } from '@causeway/conformance';
import type { BrokerSubscription, DeliveryHandler, GroupSubscribeOptions, Publisher, Subscriber } from '@causeway/core';
import {
  RabbitMqPublisher,
  RabbitMqSubscriber,
  Topology,
  type RabbitMqPublisherOptions,
  type RabbitMqSubscriberOptions,
} from '@causeway/rabbitmq';
import { connect, type ConfirmChannel } from 'amqplib';
import { it } from 'vitest';

/** The RabbitMQ server the integration tests use. */
export const AMQP_URL = process.env.CAUSEWAY_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

/** In CI (CAUSEWAY_REQUIRE_SERVICES=1) a missing server fails the tests instead of skipping them. */
export const REQUIRE_SERVICES = process.env.CAUSEWAY_REQUIRE_SERVICES === '1';

/** What the adapter promises (README: capability row). */
export const CAPABILITIES: BrokerCapabilities = {
  // Competing consumers on one queue run messages of a key side by side.
  ordering: 'none',
  // Durable quorum queues, persistent messages, confirms after the write.
  persistence: true,
  // A queue holds only what was routed after it existed.
  replay: false,
  // Emulated with per-delay TTL queues.
  nativeDelay: false,
  brokerDedup: false,
};

export async function rabbitAvailable(): Promise<boolean> {
  if (REQUIRE_SERVICES) return true; // let the tests run and fail loudly
  try {
    const c = await connect(AMQP_URL, { timeout: 2_000 });
    await c.close();
    return true;
  } catch {
    return false;
  }
}

/** Registers one skipped test that says why the file's tests did not run. */
export function skipBecauseNoServer(what: string): void {
  it.skip(`${what}: skipped because RabbitMQ is not reachable at ${AMQP_URL.replace(/:[^:@/]*@/, ':***@')} (set CAUSEWAY_REQUIRE_SERVICES=1 to fail instead)`, () => {});
}

/** Remembers every topic/group it subscribes, so the harness can delete the queues afterwards. */
class RecordingSubscriber extends RabbitMqSubscriber {
  readonly #made: Set<string>;

  constructor(options: RabbitMqSubscriberOptions, made: Set<string>) {
    super(options);
    this.#made = made;
  }

  override subscribe(topic: string, options: GroupSubscribeOptions, handler: DeliveryHandler): Promise<BrokerSubscription> {
    this.#made.add(JSON.stringify([topic, options.group]));
    return super.subscribe(topic, options, handler);
  }
}

export interface HarnessOptions {
  readonly publisher?: RabbitMqPublisherOptions;
  readonly subscriber?: RabbitMqSubscriberOptions;
}

/** The conformance harness: a connection per publisher and per subscriber, raw amqplib beside them. */
export async function createHarness(settings: BrokerSettings, extra: HarnessOptions = {}): Promise<BrokerHarness> {
  const made = new Set<string>();
  const topology = new Topology('causeway.');
  const open: Array<Publisher | Subscriber> = [];
  return {
    publisher() {
      const p = new RabbitMqPublisher({ url: AMQP_URL, maxMessageBytes: settings.maxMessageBytes, ...extra.publisher });
      open.push(p);
      return p;
    },
    subscriber() {
      const s = new RecordingSubscriber(
        { url: AMQP_URL, maxMessageBytes: settings.maxMessageBytes, ackTimeoutMs: settings.ackTimeoutMs, ...extra.subscriber },
        made,
      );
      open.push(s);
      return s;
    },
    async crash(subscriber) {
      if (!(subscriber instanceof RabbitMqSubscriber)) throw new Error('crash() needs a RabbitMqSubscriber');
      subscriber.simulateCrashForTests();
    },
    publishRaw: (topic, body) =>
      withRawChannel(async (channel) => {
        const exchange = topology.exchange(topic);
        await channel.assertExchange(exchange, 'topic', { durable: true });
        await new Promise<void>((resolve, reject) => {
          channel.publish(exchange, 'raw', Buffer.from(body), { persistent: true }, (error: unknown) => (error ? reject(error) : resolve()));
        });
      }),
    async close() {
      await Promise.all(open.map((x) => x.close({ timeoutMs: 1_000 }).catch(() => undefined)));
      await withRawChannel((channel) => deleteTopology(channel, topology, [...made].map((m) => JSON.parse(m) as [string, string])));
    },
  };
}

/** Runs `work` on a confirm channel of a raw amqplib connection of its own (a broker restart cannot leave it stale). */
export async function withRawChannel<T>(work: (channel: ConfirmChannel) => Promise<T>): Promise<T> {
  const raw = await connect(AMQP_URL);
  raw.on('error', () => undefined);
  try {
    return await work(await raw.createConfirmChannel());
  } finally {
    await raw.close().catch(() => undefined);
  }
}

/** Deletes the queues and exchanges the tests made (delay queues expire by themselves). */
export async function deleteTopology(
  channel: { deleteQueue(q: string): Promise<unknown>; deleteExchange(e: string): Promise<unknown> },
  topology: Topology,
  pairs: ReadonlyArray<readonly [string, string]>,
): Promise<void> {
  const topics = new Set<string>();
  for (const [topic, group] of pairs) {
    topics.add(topic);
    await channel.deleteQueue(topology.queue(topic, group));
    await channel.deleteQueue(topology.deadLetterQueue(topic, group));
  }
  for (const topic of topics) {
    await channel.deleteExchange(topology.exchange(topic));
    await channel.deleteExchange(topology.deadLetterExchange(topic));
  }
}
