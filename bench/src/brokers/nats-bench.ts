import type { EventEnvelope } from '@causeway/core';
import { NatsPublisher, NatsSubscriber, streamNameOf, subjectOf, type NatsSubscriberOptions } from '@causeway/nats';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType, type ConsumerMessages } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { arrivals, type BrokerBenchPair, type BrokerBenchTarget } from './broker-target.js';

/**
 * NATS JetStream: Causeway's adapter beside the raw client doing the minimum for the same job
 * (one file-backed stream, each publish awaiting its PubAck, one durable pull consumer acking
 * each message). Server: CAUSEWAY_NATS_URL, else 127.0.0.1:4222.
 */
const NATS_URL = process.env.CAUSEWAY_NATS_URL ?? 'nats://127.0.0.1:4222';
const SUBJECT_PREFIX = 'causeway-bench';
const GROUP = 'bench';
/**
 * Messages in flight on the consumer side, the same on both sides: the adapter's default
 * handler concurrency (it pulls no more than its free slots) and the raw consume() buffer.
 * The raw default (100) would compare pipeline depths rather than the adapter's own cost.
 */
const IN_FLIGHT = 8;

async function deleteStream(name: string): Promise<void> {
  const nc = await connect({ servers: NATS_URL });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(name).catch(() => false);
  } finally {
    await nc.close();
  }
}

function causewayTarget(): BrokerBenchTarget {
  const options: NatsSubscriberOptions = { servers: NATS_URL, subjectPrefix: SUBJECT_PREFIX };
  let topic = '';
  let publisher: NatsPublisher | undefined;
  let subscriber: NatsSubscriber | undefined;
  let handler: ((eventId: string) => void) | undefined;
  return {
    system: 'causeway nats',
    async setup(t) {
      topic = t;
      publisher = new NatsPublisher(options);
      subscriber = new NatsSubscriber(options);
      await subscriber.subscribe(topic, { group: GROUP, startFrom: 'earliest', concurrency: IN_FLIGHT }, (d) => {
        if (d.kind === 'event') handler?.(d.event.eventId);
      });
    },
    async run(events, batchSize, onReceived, onBatch) {
      const c = arrivals(events, onReceived);
      handler = c.got;
      for (let start = 0; start < events.length; start += batchSize) {
        onBatch(start);
        await publisher?.publish(topic, events.slice(start, start + batchSize).map((event) => ({ event })));
      }
      await c.all;
    },
    async teardown() {
      await subscriber?.close();
      await publisher?.close();
      await deleteStream(streamNameOf(subjectOf(SUBJECT_PREFIX, topic)));
    },
  };
}

function rawTarget(): BrokerBenchTarget {
  let nc: NatsConnection | undefined;
  let subject = '';
  let stream = '';
  let messages: ConsumerMessages | undefined;
  let handler: ((eventId: string) => void) | undefined;
  let consuming: Promise<void> | undefined;
  return {
    system: `raw @nats-io/jetstream (PubAck, pull consume max ${IN_FLIGHT}, ack)`,
    async setup(topic) {
      nc = await connect({ servers: NATS_URL });
      subject = `raw-bench.${topic}`;
      stream = `raw-bench_${topic.replaceAll('.', '_')}`;
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: stream, subjects: [subject], storage: StorageType.File, retention: RetentionPolicy.Limits });
      await jsm.consumers.add(stream, { durable_name: GROUP, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All });
      const iterator = await jetstream(nc).consumers.get(stream, GROUP).then((c) => c.consume({ max_messages: IN_FLIGHT }));
      messages = iterator;
      consuming = (async () => {
        for await (const m of iterator) {
          const { eventId } = m.json<EventEnvelope>();
          handler?.(eventId);
          m.ack();
        }
      })();
    },
    async run(events, batchSize, onReceived, onBatch) {
      if (nc === undefined) throw new Error('setup() first');
      const js = jetstream(nc);
      const c = arrivals(events, onReceived);
      handler = c.got;
      for (let start = 0; start < events.length; start += batchSize) {
        onBatch(start);
        await Promise.all(events.slice(start, start + batchSize).map((e) => js.publish(subject, JSON.stringify(e))));
      }
      await c.all;
    },
    async teardown() {
      messages?.stop();
      await consuming?.catch(() => undefined);
      await jetstreamManager(nc as NatsConnection)
        .then((jsm) => jsm.streams.delete(stream))
        .catch(() => false);
      await nc?.close();
    },
  };
}

export const natsBench: BrokerBenchPair = {
  adapter: 'nats',
  causeway: causewayTarget,
  raw: rawTarget,
};
