import {
  AdapterError,
  CausewayError,
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
import { Admin } from '@platformatic/kafka';
import { clientOptions, closeClient, ensureTopic } from './kafka-client.js';
import { resolveSubscriberOptions, type KafkaSubscriberOptions, type ResolvedSubscriberOptions } from './kafka-options.js';
import { KafkaSubscription } from './kafka-subscription.js';

/**
 * Consumer groups on Kafka topics. Each subscribe() is its own group member (its own Consumer
 * and connections), so subscriptions of one subscriber compete like separate processes do.
 *
 * Ordering is per key: a key maps to one partition, a partition belongs to one member of the
 * group at a time, and the member hands out one record of a key at a time, in offset order.
 * During a rebalance a record still being handled by the partition's old owner can be handed to
 * the new owner as well (Kafka's eager rebalance does not wait for the old owner to finish).
 */
export class KafkaSubscriber implements Subscriber {
  readonly #o: ResolvedSubscriberOptions;
  readonly #subscriptions = new Set<KafkaSubscription>();
  readonly #topics = new Map<string, Promise<void>>();
  #admin: Admin | undefined;
  #closed: Promise<void> | undefined;

  constructor(options: KafkaSubscriberOptions = {}) {
    this.#o = resolveSubscriberOptions(options);
  }

  async subscribe(topic: string, options: GroupSubscribeOptions, handler: DeliveryHandler): Promise<BrokerSubscription> {
    if (this.#closed !== undefined) throw new ClosedError('kafka subscriber');
    validateTopic(topic);
    validateGroup(options.group);
    const concurrency = concurrencyOf(options.concurrency);
    const startFrom = options.startFrom ?? 'latest';
    if (startFrom !== 'earliest' && startFrom !== 'latest') {
      throw new InvalidOptionsError(`startFrom must be 'earliest' or 'latest'; got ${JSON.stringify(startFrom)}`);
    }
    const sub = new KafkaSubscription({
      topic,
      group: options.group,
      startFrom,
      options: this.#o,
      handler,
      concurrency,
      ensureTopic: () => this.#topic(topic),
    });
    trackSubscription(this.#subscriptions, sub, options.signal);
    try {
      await sub.start();
    } catch (error) {
      void sub.close({ timeoutMs: 0 });
      throw error instanceof CausewayError ? error : new AdapterError('kafka', `subscribing to ${topic} as group ${options.group} failed`, { cause: error });
    }
    return sub;
  }

  #topic(topic: string): Promise<void> {
    let ready = this.#topics.get(topic);
    if (ready === undefined) {
      this.#admin ??= new Admin(clientOptions(this.#o, 'subscriber-admin'));
      ready = ensureTopic(this.#admin, topic, this.#o);
      this.#topics.set(topic, ready);
      ready.catch(() => this.#topics.delete(topic));
    }
    return ready;
  }

  close(options?: CloseOptions): Promise<void> {
    this.#closed ??= (async () => {
      await Promise.all([...this.#subscriptions].map((s) => s.close(options)));
      await this.#closeAdmin();
    })();
    return this.#closed;
  }

  /**
   * Test hook (BrokerHarness.crash): every subscription stops as a killed process would. No
   * offset is committed, nothing is released and no LeaveGroup is sent; the group hands the
   * partitions to its other members once the session times out (ackTimeoutMs).
   */
  simulateCrashForTests(): void {
    this.#closed ??= Promise.resolve();
    for (const sub of this.#subscriptions) sub.simulateCrash();
    void this.#closeAdmin();
  }

  async #closeAdmin(): Promise<void> {
    const admin = this.#admin;
    if (admin !== undefined) await closeClient(admin, 5_000, () => admin.close());
  }
}
