import {
  AdapterError,
  ClosedError,
  concurrencyOf,
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
import { consumerName, delayKey, streamKey } from './keys.js';
import { createConnection, open, replyCode, type RedisConnection } from './redis-connection.js';
import { resolveSubscriberOptions, type RedisSubscriberOptions, type ResolvedSubscriberOptions } from './redis-options.js';
import { RedisSubscription, type SubscriptionTarget } from './redis-subscription.js';

/** How long subscribe() waits for Redis (connection included) to create or find the group. */
const SUBSCRIBE_TIMEOUT_MS = 30_000;

/**
 * Consumer groups on Redis Streams. One connection for commands (group creation, XACK, claims),
 * shared by this subscriber's subscriptions, plus one connection per subscription for its
 * blocking read. Both reconnect by themselves after a Redis restart.
 *
 * - subscribe() creates the group if missing (XGROUP CREATE ... MKSTREAM at '$' for 'latest',
 *   '0' for 'earliest'); an existing group resumes from its own position and pending list.
 * - Each subscription is its own consumer (`<group>-<random>`), so its pending entries are its own.
 * - At least once, no ordering: entries are handed out as they come and redeliveries jump ahead.
 * - An entry not settled within ackTimeoutMs is claimed by another consumer of the group.
 */
export class RedisSubscriber implements Subscriber {
  readonly #options: ResolvedSubscriberOptions;
  readonly #command: RedisConnection;
  readonly #subscriptions = new Set<RedisSubscription>();
  #closed: Promise<void> | undefined;

  constructor(options: RedisSubscriberOptions = {}) {
    this.#options = resolveSubscriberOptions(options);
    this.#command = createConnection(this.#options.url, 'redis subscriber', this.#options.onError);
  }

  async subscribe(topic: string, options: GroupSubscribeOptions, handler: DeliveryHandler): Promise<BrokerSubscription> {
    if (this.#closed !== undefined) throw new ClosedError('redis subscriber');
    validateTopic(topic);
    validateGroup(options.group);
    const concurrency = concurrencyOf(options.concurrency);
    const startFrom = options.startFrom ?? 'latest';
    if (startFrom !== 'latest' && startFrom !== 'earliest') {
      throw new InvalidOptionsError(`startFrom must be 'earliest' or 'latest'; got ${JSON.stringify(startFrom)}`);
    }
    const { prefix } = this.#options;
    const target: SubscriptionTarget = {
      topic,
      group: options.group,
      consumer: consumerName(options.group),
      stream: streamKey(prefix, topic),
      delayed: delayKey(prefix, topic, options.group),
    };
    open(this.#command);
    await this.#createGroup(target, startFrom === 'earliest' ? '0' : '$');
    if (this.#closed !== undefined) throw new ClosedError('redis subscriber');

    const reader = createConnection(this.#options.url, `redis subscriber reader ${topic}/${options.group}`, this.#options.onError);
    open(reader);
    const subscription: RedisSubscription = new RedisSubscription({
      target,
      options: this.#options,
      command: this.#command,
      reader,
      handler,
      concurrency,
      prefetch: this.#options.prefetch,
      // A group that vanished with Redis's data starts again from the stream's start: whatever the
      // stream holds then arrived after the loss, and duplicates are better than a gap.
      recreateGroup: () => this.#createGroup(target, '0'),
      onClosed: () => this.#subscriptions.delete(subscription),
    });
    trackSubscription(this.#subscriptions, subscription, options.signal);
    subscription.start();
    return subscription;
  }

  async #createGroup(target: SubscriptionTarget, from: '$' | '0'): Promise<void> {
    try {
      await this.#command.sendCommand(['XGROUP', 'CREATE', target.stream, target.group, from, 'MKSTREAM'], { timeout: SUBSCRIBE_TIMEOUT_MS });
    } catch (cause) {
      if (replyCode(cause) === 'BUSYGROUP') return; // it exists: resume where it is
      throw new AdapterError('redis', `could not create consumer group ${target.group} on ${target.topic}`, { cause });
    }
  }

  /**
   * Test hook: the process died. Connections drop without settling, handing back or deleting
   * anything, so the group's other consumers claim the pending entries after the ack timeout.
   */
  simulateCrashForTests(): void {
    this.#closed ??= Promise.resolve();
    for (const s of [...this.#subscriptions]) s.crash();
    if (this.#command.isOpen) this.#command.destroy();
  }

  close(options?: CloseOptions): Promise<void> {
    this.#closed ??= (async () => {
      await Promise.all([...this.#subscriptions].map((s) => s.close(options)));
      if (this.#command.isOpen) this.#command.destroy();
    })();
    return this.#closed;
  }
}
