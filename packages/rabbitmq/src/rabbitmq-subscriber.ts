import {
  AdapterError,
  ClosedError,
  concurrencyOf,
  delay,
  InvalidOptionsError,
  validateGroup,
  validateTopic,
  trackSubscription,
  type BrokerSubscription,
  type CloseOptions,
  type DeliveryHandler,
  type GroupSubscribeOptions,
  type Subscriber,
} from '@causeway/core';
import type { ConsumeMessage } from 'amqplib';
import { delayedCopy } from './codec.js';
import { beforeDeadline, ConfirmLanes, RabbitMqConnection } from './rabbitmq-connection.js';
import { resolveSubscriberOptions, type RabbitMqSubscriberOptions, type ResolvedSubscriberOptions } from './rabbitmq-options.js';
import { RabbitMqSubscription } from './rabbitmq-subscription.js';
import { declareDelayQueue, delayBucket, MAX_DELAY_MS, Topology } from './topology.js';

/**
 * Consumes group queues over one connection of its own (so a crash takes only it down).
 *
 * - Each subscription has its own channel, with prefetch = concurrency: the broker never has
 *   more messages out to it than it can run at once.
 * - `attempt` = 1 + the quorum queue's `x-delivery-count` + `causeway-attempts` (carried by the
 *   copy a delayed nack re-publishes): held by the broker, so it survives consumer restarts.
 * - nack() requeues (basic.nack, requeue); nack({ delayMs }) emulates a delay: it publishes a
 *   copy to a delay queue with a confirm, then acks the original (a crash in between gives a
 *   duplicate, never a loss). From attempt `maxDeliveries` on, a nack dead-letters instead.
 * - The adapter's ack timeout: a message not settled `ackTimeoutMs` after it arrived is
 *   requeued and its handler abandoned (one timer per subscription, armed for the oldest
 *   message, not one per message). A crashed subscriber's messages are requeued by the broker
 *   when its connection drops.
 * - Acks made in the same turn of the event loop go out together: one basic.ack with
 *   `multiple` for the longest run of acked messages at the head of the channel's unsettled
 *   ones (in delivery order, so it never covers a message not acked), single acks after a gap.
 *   Nacks go out at once; close() flushes pending acks before the channel closes.
 * - After a connection loss every subscription re-declares its queue and consumes again.
 */
export class RabbitMqSubscriber implements Subscriber {
  readonly #options: ResolvedSubscriberOptions;
  readonly #topology: Topology;
  readonly #connection: RabbitMqConnection;
  readonly #subscriptions = new Set<RabbitMqSubscription>();
  readonly #delayLanes = new ConfirmLanes();
  #closed: Promise<void> | undefined;

  constructor(options: RabbitMqSubscriberOptions = {}) {
    this.#options = resolveSubscriberOptions(options);
    this.#topology = new Topology(this.#options.prefix);
    this.#connection = new RabbitMqConnection(this.#options);
    this.#connection.onOpen(() => {
      for (const s of this.#subscriptions) s.reattach();
    });
  }

  async subscribe(topic: string, options: GroupSubscribeOptions, handler: DeliveryHandler): Promise<BrokerSubscription> {
    if (this.#closed !== undefined) throw new ClosedError('RabbitMQ subscriber');
    validateTopic(topic);
    validateGroup(options.group);
    const concurrency = concurrencyOf(options.concurrency);
    if (options.startFrom !== undefined && options.startFrom !== 'earliest' && options.startFrom !== 'latest') {
      throw new InvalidOptionsError(`startFrom must be 'earliest' or 'latest'; got ${JSON.stringify(options.startFrom)}`);
    }
    const sub = new RabbitMqSubscription(topic, options.group, concurrency, handler, {
      options: this.#options,
      topology: this.#topology,
      connection: this.#connection,
      publishDelayed: (queue, msg, delayMs, attempt) => this.#publishDelayed(queue, msg, delayMs, attempt),
    });
    trackSubscription(this.#subscriptions, sub, options.signal);
    try {
      await sub.open(Date.now() + this.#options.subscribeTimeoutMs);
    } catch (error) {
      await sub.close({ timeoutMs: 0 });
      throw error;
    }
    return sub;
  }

  /** Publishes the delayed copy to the delay queue and waits for the broker's confirm. */
  async #publishDelayed(groupQueue: string, msg: ConsumeMessage, delayMs: number, attempt: number): Promise<void> {
    const model = this.#connection.current;
    if (model === undefined) throw new AdapterError('rabbitmq', 'no connection for a delayed nack');
    const lane = this.#delayLanes.get(model);
    const work = (async () => {
      const channel = await lane.channel;
      const queue = await declareDelayQueue(channel, this.#topology, groupQueue, delayBucket(Math.min(delayMs, MAX_DELAY_MS)));
      await new Promise<void>((resolve, reject) => {
        channel.sendToQueue(queue, msg.content, delayedCopy(msg, attempt), (error: unknown) => (error ? reject(error) : resolve()));
      });
    })();
    try {
      await beforeDeadline(work, Date.now() + this.#options.ackTimeoutMs, () => `delayed copy to ${groupQueue} not confirmed in time`);
    } catch (error) {
      throw error instanceof AdapterError ? error : new AdapterError('rabbitmq', `delayed nack on ${groupQueue} failed`, { cause: lane.closeError ?? error });
    }
  }

  /**
   * Test hook: the process died. The socket is dropped without an AMQP goodbye and nothing is
   * settled or given back; the broker requeues the unacked messages when it sees the socket go.
   */
  simulateCrashForTests(): void {
    this.#closed ??= Promise.resolve();
    for (const s of this.#subscriptions) s.crash();
    this.#connection.destroy();
  }

  close(options?: CloseOptions): Promise<void> {
    this.#closed ??= (async () => {
      await Promise.all([...this.#subscriptions].map((s) => s.close(options)));
      await this.#connection.close();
    })();
    return this.#closed;
  }
}

export function createRabbitMqSubscriber(options: RabbitMqSubscriberOptions = {}): RabbitMqSubscriber {
  return new RabbitMqSubscriber(options);
}
