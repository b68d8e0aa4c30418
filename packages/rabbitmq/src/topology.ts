import type { Channel } from 'amqplib';

/**
 * Names and declarations of everything the adapter puts on the broker.
 *
 *   exchange      `<prefix><topic>`                      durable topic exchange; routing key = event type
 *   group queue   `<prefix><topic>.<group>`              durable quorum queue bound with `#`
 *   dead letters  `<prefix><topic>~dead-letter`          durable direct exchange per topic, and
 *                 `<prefix><topic>.<group>~dead-letter`  a durable quorum queue per group, bound with the group name
 *   delay queues  `<prefix><topic>.<group>~delay-<ms>`   quorum queue per delay; expired messages go back
 *                                                        to the group queue through the default exchange
 *
 * Topic and group grammars have no `~`, so a derived name can never be the queue of another
 * topic/group pair (`<queue>.dead-letter` would be the queue of topic `<topic>.<group>`, group
 * `dead-letter`). Since a group has no dot, `<topic>.<group>` is unambiguous too.
 *
 * Quorum queues, not classic: they are replicated, keep `x-delivery-count` (the broker-side
 * attempt counter) and enforce `x-delivery-limit`. Dead-lettering is `at-least-once` (3.10+), so
 * a message moving to the dead-letter or back from a delay queue is never dropped on the way;
 * that strategy requires `x-overflow: reject-publish`, harmless with no length limit set.
 */
export class Topology {
  readonly #prefix: string;

  constructor(prefix: string) {
    this.#prefix = prefix;
  }

  exchange(topic: string): string {
    return `${this.#prefix}${topic}`;
  }

  deadLetterExchange(topic: string): string {
    return `${this.exchange(topic)}~dead-letter`;
  }

  queue(topic: string, group: string): string {
    return `${this.exchange(topic)}.${group}`;
  }

  deadLetterQueue(topic: string, group: string): string {
    return `${this.queue(topic, group)}~dead-letter`;
  }

  delayQueue(groupQueue: string, delayMs: number): string {
    return `${groupQueue}~delay-${delayMs}`;
  }
}

/** Every message of the topic reaches every group: groups filter nothing (yet). */
const ALL = '#';

const AT_LEAST_ONCE_DEAD_LETTERING = { 'x-dead-letter-strategy': 'at-least-once', 'x-overflow': 'reject-publish' };

export async function declareTopic(channel: Channel, topology: Topology, topic: string): Promise<void> {
  await channel.assertExchange(topology.exchange(topic), 'topic', { durable: true });
}

/**
 * Declares the topic's exchange, the group's queue with its dead-letter route, and binds them.
 * Idempotent; an existing queue keeps its messages (the group resumes). RabbitMQ refuses
 * (406 PRECONDITION_FAILED) if the queue exists with other arguments, e.g. another maxDeliveries.
 */
export async function declareGroup(channel: Channel, topology: Topology, topic: string, group: string, maxDeliveries: number): Promise<string> {
  const exchange = topology.exchange(topic);
  const dlx = topology.deadLetterExchange(topic);
  const queue = topology.queue(topic, group);
  const dlq = topology.deadLetterQueue(topic, group);
  await channel.assertExchange(exchange, 'topic', { durable: true });
  await channel.assertExchange(dlx, 'direct', { durable: true });
  await channel.assertQueue(dlq, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  await channel.bindQueue(dlq, dlx, group);
  await channel.assertQueue(queue, {
    durable: true,
    arguments: {
      'x-queue-type': 'quorum',
      // The broker dead-letters once a message was returned more than `limit` times: limit + 1 deliveries.
      'x-delivery-limit': maxDeliveries - 1,
      'x-dead-letter-exchange': dlx,
      'x-dead-letter-routing-key': group,
      ...AT_LEAST_ONCE_DEAD_LETTERING,
    },
  });
  await channel.bindQueue(queue, exchange, ALL);
  return queue;
}

/**
 * Delays are emulated (RabbitMQ 3.10 here has no delayed-message plugin): one queue per delay
 * whose messages expire after it and dead-letter back to the group queue. Delays are rounded up
 * to two significant digits (1234 ms -> 1300 ms) so a group has at most ~90 delay queues per
 * decade of delay; an unused delay queue deletes itself a minute after its last message is due.
 */
export async function declareDelayQueue(channel: Channel, topology: Topology, groupQueue: string, delayMs: number): Promise<string> {
  const name = topology.delayQueue(groupQueue, delayMs);
  await channel.assertQueue(name, {
    durable: true,
    arguments: {
      'x-queue-type': 'quorum',
      'x-message-ttl': delayMs,
      // Re-declared before every use, which renews the lease: it cannot expire with messages still due.
      'x-expires': delayMs + 60_000,
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': groupQueue,
      ...AT_LEAST_ONCE_DEAD_LETTERING,
    },
  });
  return name;
}

/** Longest delayed nack: RabbitMQ's message TTL is a 32-bit count of milliseconds, x-expires adds a minute. */
export const MAX_DELAY_MS = 2 ** 32 - 1 - 60_000;

/** The delay queue a delay goes to: rounded up to two significant digits, never shorter than asked. */
export function delayBucket(delayMs: number): number {
  const ms = Math.max(1, Math.ceil(delayMs));
  if (ms < 100) return ms;
  const step = 10 ** (Math.floor(Math.log10(ms)) - 1);
  return Math.ceil(ms / step) * step;
}
