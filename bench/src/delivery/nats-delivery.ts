import { NatsPublisher, NatsSubscriber, streamNameOf, subjectOf, type NatsSubscriberOptions } from '@causeway/nats';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType, type ConsumerMessages, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { CausewaySide, DeliveryBroker, RawSide } from './delivery-broker.js';

/**
 * NATS JetStream: Causeway's adapter, and the raw client as the brokers suite runs it (a
 * file-backed stream, every publish awaiting its PubAck, one durable pull consumer acking each).
 * Server: CAUSEWAY_NATS_URL, else 127.0.0.1:4222.
 */
const NATS_URL = process.env.CAUSEWAY_NATS_URL ?? 'nats://127.0.0.1:4222';
const SUBJECT_PREFIX = 'causeway-delivery-bench';
const RAW_GROUP = 'bench';

async function withManager<T>(work: (jsm: JetStreamManager) => Promise<T>): Promise<T> {
  const nc = await connect({ servers: NATS_URL });
  try {
    return await work(await jetstreamManager(nc));
  } finally {
    await nc.close();
  }
}

const streamOf = (topic: string): string => streamNameOf(subjectOf(SUBJECT_PREFIX, topic));

function causewaySide(): CausewaySide {
  const options: NatsSubscriberOptions = { servers: NATS_URL, subjectPrefix: SUBJECT_PREFIX };
  const publisher = new NatsPublisher(options);
  const subscriber = new NatsSubscriber(options);
  return {
    publisher,
    subscriber,
    stored: (topic) => withManager(async (jsm) => (await jsm.streams.info(streamOf(topic))).state.messages),
    dropTopic: (topic) => withManager((jsm) => jsm.streams.delete(streamOf(topic)).catch(() => false)).then(() => undefined),
    async close() {
      await subscriber.close();
      await publisher.close();
    },
  };
}

function rawSide(): RawSide {
  let nc: NatsConnection | undefined;
  let subject = '';
  let stream = '';
  let messages: ConsumerMessages | undefined;
  let consuming: Promise<void> | undefined;
  const connection = (): NatsConnection => {
    if (nc === undefined) throw new Error('setup() first');
    return nc;
  };
  return {
    system: 'raw @nats-io/jetstream (PubAck each, pull consume, ack each)',
    async setup(topic) {
      nc = await connect({ servers: NATS_URL });
      subject = `raw-delivery-bench.${topic}`;
      stream = `raw-delivery-bench_${topic.replaceAll('.', '_')}`;
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: stream, subjects: [subject], storage: StorageType.File, retention: RetentionPolicy.Limits });
      await jsm.consumers.add(stream, { durable_name: RAW_GROUP, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All });
    },
    async publish(bodies) {
      const js = jetstream(connection());
      await Promise.all(bodies.map((b) => js.publish(subject, b)));
    },
    async consume(inFlight, onBody) {
      const iterator = await jetstream(connection())
        .consumers.get(stream, RAW_GROUP)
        .then((c) => c.consume({ max_messages: inFlight }));
      messages = iterator;
      consuming = (async () => {
        for await (const m of iterator) {
          onBody(m.string());
          m.ack();
        }
      })();
    },
    async stored() {
      const jsm = await jetstreamManager(connection());
      return (await jsm.streams.info(stream)).state.messages;
    },
    async teardown() {
      messages?.stop();
      await consuming?.catch(() => undefined);
      messages = undefined;
      consuming = undefined;
      if (nc !== undefined) {
        await jetstreamManager(nc)
          .then((jsm) => jsm.streams.delete(stream))
          .catch(() => false);
        await nc.close();
      }
      nc = undefined;
    },
  };
}

export const natsDelivery: DeliveryBroker = {
  adapter: 'nats',
  causeway: () => causewaySide(),
  raw: () => rawSide(),
};
