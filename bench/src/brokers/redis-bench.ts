import { toCloudEvent, type EventEnvelope } from '@causeway/core';
import { delayKey, RedisPublisher, RedisSubscriber, streamKey } from '@causeway/redis';
import { createClient } from 'redis';
import type { BrokerBenchPair, BrokerBenchTarget } from './broker-target.js';

/**
 * Redis Streams: Causeway's adapter beside node-redis doing the minimum for the same job. Both
 * write one entry per event with the same fields (`cloudevent` JSON, `id`, `type`,
 * `partitionkey`), a lone message with XADD and a batch in one MULTI/EXEC, each awaited before
 * the next, and both consume in one consumer group with XREADGROUP and XACK each entry.
 */
const URL = process.env.CAUSEWAY_REDIS_URL ?? 'redis://127.0.0.1:6379';
const PREFIX = 'cwbench';
const GROUP = 'bench';

type Client = ReturnType<typeof newClient>;

function newClient() {
  return createClient({ url: URL, RESP: 2 });
}

async function connected(): Promise<Client> {
  const client = newClient();
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

async function dropKeys(topic: string): Promise<void> {
  const client = await connected();
  try {
    await client.del([streamKey(PREFIX, topic), delayKey(PREFIX, topic, GROUP)]);
  } finally {
    client.destroy();
  }
}

function indexOf(events: readonly EventEnvelope[]): Map<string, number> {
  return new Map(events.map((e, i) => [e.eventId, i]));
}

class CausewayRedisTarget implements BrokerBenchTarget {
  readonly system = 'causeway';
  #topic = '';
  #publisher: RedisPublisher | undefined;
  #subscriber: RedisSubscriber | undefined;
  #onEvent: ((eventId: string) => void) | undefined;

  /**
   * Subscribes here, as the raw side creates its group and connections in its setup(): the
   * group, the reader connection and the publisher's connection are ready before the clock runs.
   */
  async setup(topic: string): Promise<void> {
    this.#topic = topic;
    this.#publisher = new RedisPublisher({ url: URL, prefix: PREFIX });
    this.#subscriber = new RedisSubscriber({ url: URL, prefix: PREFIX });
    await this.#subscriber.subscribe(topic, { group: GROUP }, (delivery) => {
      if (delivery.kind === 'event') this.#onEvent?.(delivery.event.eventId);
    });
  }

  async run(events: readonly EventEnvelope[], batchSize: number, onReceived: (index: number) => void, onBatch: (start: number) => void): Promise<void> {
    const publisher = this.#publisher;
    if (publisher === undefined) throw new Error('setup() first');
    const index = indexOf(events);
    const seen = new Set<number>();
    let done!: () => void;
    const all = new Promise<void>((resolve) => {
      done = resolve;
    });
    this.#onEvent = (eventId) => {
      const i = index.get(eventId);
      if (i === undefined) return;
      onReceived(i);
      seen.add(i);
      if (seen.size === events.length) done();
    };
    for (let start = 0; start < events.length; start += batchSize) {
      onBatch(start);
      await publisher.publish(this.#topic, events.slice(start, start + batchSize).map((event) => ({ event })));
    }
    await all;
  }

  async teardown(): Promise<void> {
    await this.#subscriber?.close();
    await this.#publisher?.close();
    await dropKeys(this.#topic);
  }
}

class RawRedisTarget implements BrokerBenchTarget {
  readonly system = 'raw node-redis (XADD, MULTI per batch; XREADGROUP + XACK)';
  #key = '';
  #topic = '';
  #writer: Client | undefined;
  #reader: Client | undefined;

  async setup(topic: string): Promise<void> {
    this.#topic = topic;
    this.#key = streamKey(PREFIX, topic);
    this.#writer = await connected();
    this.#reader = await connected();
    await this.#writer.sendCommand(['XGROUP', 'CREATE', this.#key, GROUP, '$', 'MKSTREAM']);
  }

  async run(events: readonly EventEnvelope[], batchSize: number, onReceived: (index: number) => void, onBatch: (start: number) => void): Promise<void> {
    const writer = this.#writer;
    const reader = this.#reader;
    if (writer === undefined || reader === undefined) throw new Error('setup() first');
    const key = this.#key;
    const index = indexOf(events);
    const consume = (async () => {
      const seen = new Set<number>();
      while (seen.size < events.length) {
        const reply = await reader.sendCommand<Array<[string, Array<[string, string[]]>]> | null>(
          ['XREADGROUP', 'GROUP', GROUP, 'raw', 'COUNT', '100', 'BLOCK', '1000', 'STREAMS', key, '>'],
          { timeout: 10_000 },
        );
        const acks: Promise<unknown>[] = [];
        for (const [id, fields] of reply?.[0]?.[1] ?? []) {
          const body = fields[fields.indexOf('cloudevent') + 1] ?? '{}';
          const i = index.get((JSON.parse(body) as { id: string }).id);
          if (i !== undefined) {
            onReceived(i);
            seen.add(i);
          }
          acks.push(writer.sendCommand(['XACK', key, GROUP, id]));
        }
        await Promise.all(acks);
      }
    })();
    for (let start = 0; start < events.length; start += batchSize) {
      onBatch(start);
      const commands = events.slice(start, start + batchSize).map((event) => {
        const partitionkey = event.eventId;
        const cloudevent = JSON.stringify({ ...toCloudEvent(event), partitionkey });
        return ['XADD', key, '*', 'cloudevent', cloudevent, 'id', event.eventId, 'type', event.eventType, 'partitionkey', partitionkey];
      });
      const [only] = commands;
      if (commands.length === 1 && only !== undefined) {
        await writer.sendCommand(only);
      } else {
        const multi = writer.multi();
        for (const args of commands) multi.addCommand(args);
        await multi.exec();
      }
    }
    await consume;
  }

  async teardown(): Promise<void> {
    this.#reader?.destroy();
    this.#writer?.destroy();
    await dropKeys(this.#topic);
  }
}

export const redisBench: BrokerBenchPair = {
  adapter: 'redis',
  causeway: () => new CausewayRedisTarget(),
  raw: () => new RawRedisTarget(),
};
