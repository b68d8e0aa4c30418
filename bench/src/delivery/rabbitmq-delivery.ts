import { DEFAULT_PREFIX, RabbitMqPublisher, RabbitMqSubscriber, Topology } from '@causeway/rabbitmq';
import { connect, type Channel, type ChannelModel, type ConfirmChannel } from 'amqplib';
import type { CausewaySide, DeliveryBroker, RawSide } from './delivery-broker.js';

/**
 * RabbitMQ: Causeway's adapter, and raw amqplib as the brokers suite runs it: a durable quorum
 * queue, persistent messages on a confirm channel (each batch awaits its confirms), one consumer
 * with a prefetch, acking each; TCP_NODELAY on, as the adapter's socket has it.
 * Server: CAUSEWAY_AMQP_URL, else amqp://guest:guest@127.0.0.1:5672.
 */
const AMQP_URL = process.env.CAUSEWAY_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const topology = new Topology(DEFAULT_PREFIX);

async function withChannel<T>(work: (channel: Channel) => Promise<T>): Promise<T> {
  const c = await connect(AMQP_URL);
  try {
    return await work(await c.createChannel());
  } finally {
    await c.close().catch(() => undefined);
  }
}

function causewaySide(): CausewaySide {
  const publisher = new RabbitMqPublisher({ url: AMQP_URL });
  const subscriber = new RabbitMqSubscriber({ url: AMQP_URL });
  return {
    publisher,
    subscriber,
    stored: (topic, group) => withChannel(async (ch) => (await ch.checkQueue(topology.queue(topic, group))).messageCount),
    dropTopic: (topic, group) =>
      withChannel(async (ch) => {
        await ch.deleteQueue(topology.queue(topic, group));
        await ch.deleteQueue(topology.deadLetterQueue(topic, group));
        await ch.deleteExchange(topology.exchange(topic));
        await ch.deleteExchange(topology.deadLetterExchange(topic));
      }),
    async close() {
      await subscriber.close();
      await publisher.close();
    },
  };
}

function rawSide(): RawSide {
  let connection: ChannelModel | undefined;
  let publishChannel: ConfirmChannel | undefined;
  let queue = '';
  const channel = (): ConfirmChannel => {
    if (publishChannel === undefined) throw new Error('setup() first');
    return publishChannel;
  };
  return {
    system: 'raw amqplib (confirms per batch, quorum queue, prefetch, ack each)',
    async setup(topic) {
      connection = await connect(AMQP_URL, { noDelay: true });
      queue = `raw-delivery-bench.${topic}`;
      publishChannel = await connection.createConfirmChannel();
      await publishChannel.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    },
    async publish(bodies) {
      const ch = channel();
      for (const body of bodies) ch.sendToQueue(queue, Buffer.from(body), { persistent: true, contentType: 'application/cloudevents+json' });
      await ch.waitForConfirms();
    },
    async consume(inFlight, onBody) {
      if (connection === undefined) throw new Error('setup() first');
      const consumer = await connection.createChannel();
      await consumer.prefetch(inFlight);
      await consumer.consume(queue, (m) => {
        if (m === null) return;
        onBody(m.content.toString('utf8'));
        consumer.ack(m);
      });
    },
    async stored() {
      return (await channel().checkQueue(queue)).messageCount;
    },
    async teardown() {
      await publishChannel?.deleteQueue(queue).catch(() => undefined);
      await connection?.close().catch(() => undefined);
      connection = undefined;
      publishChannel = undefined;
    },
  };
}

export const rabbitmqDelivery: DeliveryBroker = {
  adapter: 'rabbitmq',
  causeway: () => causewaySide(),
  raw: () => rawSide(),
};
