import type { EventEnvelope } from '@causeway/core';
import { RabbitMqPublisher, RabbitMqSubscriber, Topology } from '@causeway/rabbitmq';
import { connect, type ChannelModel, type ConfirmChannel } from 'amqplib';
import { arrivals, type BrokerBenchPair, type BrokerBenchTarget } from './broker-target.js';

/**
 * RabbitMQ: Causeway's adapter beside raw amqplib doing the minimum for the same job: a durable
 * quorum queue, persistent messages on a confirm channel (each batch awaits its confirms), one
 * consumer with the same prefetch as the adapter's default concurrency (8), acking each message.
 * The raw body is the event as one JSON text (what one would send without Causeway), its
 * consumer parses it for the event id; its socket has TCP_NODELAY on, as the adapter's does.
 * Server: CAUSEWAY_AMQP_URL, else amqp://guest:guest@127.0.0.1:5672.
 */
const AMQP_URL = process.env.CAUSEWAY_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const GROUP = 'bench';
const PREFETCH = 8;
const topology = new Topology('causeway.');

async function withChannel(work: (channel: ConfirmChannel) => Promise<unknown>): Promise<void> {
  const c = await connect(AMQP_URL);
  try {
    await work(await c.createConfirmChannel());
  } finally {
    await c.close().catch(() => undefined);
  }
}

function causewayTarget(): BrokerBenchTarget {
  let topic = '';
  let publisher: RabbitMqPublisher | undefined;
  let subscriber: RabbitMqSubscriber | undefined;
  let handler: ((eventId: string) => void) | undefined;
  return {
    system: 'causeway rabbitmq',
    async setup(t) {
      topic = t;
      publisher = new RabbitMqPublisher({ url: AMQP_URL });
      subscriber = new RabbitMqSubscriber({ url: AMQP_URL });
      await subscriber.subscribe(topic, { group: GROUP, concurrency: PREFETCH }, (d) => {
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
      await withChannel(async (ch) => {
        await ch.deleteQueue(topology.queue(topic, GROUP));
        await ch.deleteQueue(topology.deadLetterQueue(topic, GROUP));
        await ch.deleteExchange(topology.exchange(topic));
        await ch.deleteExchange(topology.deadLetterExchange(topic));
      });
    },
  };
}

function rawTarget(): BrokerBenchTarget {
  let connection: ChannelModel | undefined;
  let publish: ConfirmChannel | undefined;
  let queue = '';
  let handler: ((eventId: string) => void) | undefined;
  return {
    system: 'raw amqplib (confirms, quorum queue, prefetch 8)',
    async setup(topic) {
      connection = await connect(AMQP_URL, { noDelay: true });
      queue = `raw-bench.${topic}`;
      publish = await connection.createConfirmChannel();
      await publish.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
      const consume = await connection.createChannel();
      await consume.prefetch(PREFETCH);
      await consume.consume(queue, (m) => {
        if (m === null) return;
        handler?.((JSON.parse(m.content.toString('utf8')) as EventEnvelope).eventId);
        consume.ack(m);
      });
    },
    async run(events, batchSize, onReceived, onBatch) {
      const channel = publish;
      if (channel === undefined) throw new Error('setup() first');
      const c = arrivals(events, onReceived);
      handler = c.got;
      for (let start = 0; start < events.length; start += batchSize) {
        onBatch(start);
        for (const e of events.slice(start, start + batchSize)) {
          channel.sendToQueue(queue, Buffer.from(JSON.stringify(e)), { persistent: true, contentType: 'application/json' });
        }
        await channel.waitForConfirms();
      }
      await c.all;
    },
    async teardown() {
      await publish?.deleteQueue(queue).catch(() => undefined);
      await connection?.close().catch(() => undefined);
    },
  };
}

export const rabbitmqBench: BrokerBenchPair = {
  adapter: 'rabbitmq',
  causeway: causewayTarget,
  raw: rawTarget,
};
