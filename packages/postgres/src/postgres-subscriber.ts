import {
  ClosedError,
  concurrencyOf,
  InvalidOptionsError,
  uuidv7,
  validateGroup,
  validateTopic,
  trackSubscription,
  type BrokerSubscription,
  type CloseOptions,
  type DeliveryHandler,
  type GroupSubscribeOptions,
  type Subscriber,
} from '@causeway/core';
import { adapterError, brokerChannel, brokerSql, type BrokerSql } from './broker-sql.js';
import { migrate } from './migrate.js';
import { resolveSubscriberOptions, type PostgresSubscriberOptions, type ResolvedSubscriberOptions } from './postgres-broker-options.js';
import { PostgresSubscription } from './postgres-subscription.js';

/** Creates a subscriber, running migrate() first unless `migrate: false`. */
export async function createPostgresSubscriber(options: PostgresSubscriberOptions): Promise<PostgresSubscriber> {
  const subscriber = new PostgresSubscriber(options);
  if (options.migrate ?? true) await migrate(options.db, { schema: subscriber.schema });
  return subscriber;
}

/** What a subscription needs from its subscriber. */
export interface Shared {
  readonly options: ResolvedSubscriberOptions;
  readonly sql: BrokerSql;
  /** Lease owner written on claimed rows: this subscriber, for diagnostics. */
  readonly owner: string;
}

/**
 * The Subscriber port on PostgreSQL. A group is a row (its admission cursor) plus a queue of
 * unacked rows; consumers of the group admit new log rows gap-safely and lease the oldest row of
 * each key (per-key order across every consumer). Wake-ups come from LISTEN/NOTIFY, with a slow
 * fallback poll and a timer for the next lease expiry or delayed nack; an idle subscriber does
 * not poll busily. Nothing is held open between statements: a lease is a row, so the messages of
 * a consumer that dies come back to its group when their leases run out.
 */
export class PostgresSubscriber implements Subscriber {
  readonly #shared: Shared;
  readonly #subscriptions = new Set<PostgresSubscription>();
  #listening: Promise<(() => Promise<void>) | null> | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: PostgresSubscriberOptions) {
    const resolved = resolveSubscriberOptions(options);
    this.#shared = { options: resolved, sql: brokerSql(resolved.names), owner: uuidv7() };
  }

  /** The schema's name (unquoted). */
  get schema(): string {
    return this.#shared.options.names.raw;
  }

  async subscribe(topic: string, options: GroupSubscribeOptions, handler: DeliveryHandler): Promise<BrokerSubscription> {
    if (this.#closing !== undefined) throw new ClosedError('postgres subscriber');
    validateTopic(topic);
    validateGroup(options.group);
    const concurrency = concurrencyOf(options.concurrency);
    const startFrom = options.startFrom ?? 'latest';
    if (startFrom !== 'earliest' && startFrom !== 'latest') throw new InvalidOptionsError(`startFrom must be 'earliest' or 'latest'; got ${String(startFrom)}`);
    if (typeof handler !== 'function') throw new InvalidOptionsError('handler must be a function');
    // LISTEN first, so no NOTIFY after subscribe() resolved is missed.
    await this.#listen();
    const { db } = this.#shared.options;
    try {
      await db.query(this.#shared.sql.ensureGroup, [topic, options.group, startFrom]);
    } catch (error) {
      throw adapterError(error, `create consumer group ${options.group} of ${topic}`);
    }
    if (this.#closing !== undefined) throw new ClosedError('postgres subscriber');
    const sub = new PostgresSubscription(this.#shared, topic, options.group, startFrom, concurrency, handler);
    trackSubscription(this.#subscriptions, sub, options.signal);
    sub.start();
    return sub;
  }

  /** Closes every subscription (drain, then hand back what is left), stops listening, closes an owned db. Idempotent. */
  close(options?: CloseOptions): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.all([...this.#subscriptions].map((s) => s.close(options)));
      await this.#release();
    })();
    return this.#closing;
  }

  /**
   * Test hook: the process died. Loops stop, running handlers are abandoned (their acks become
   * no-ops), nothing is settled or released: the leases run out and the group's other consumers
   * get the messages with attempt + 1.
   */
  simulateCrashForTests(): Promise<void> {
    this.#closing ??= (async () => {
      for (const sub of this.#subscriptions) sub.crash();
      await this.#release();
    })();
    return this.#closing;
  }

  async #release(): Promise<void> {
    const stop = await this.#listening;
    await stop?.().catch(() => undefined);
    if (this.#shared.options.ownsDatabase) await this.#shared.options.db.close();
  }

  async #listen(): Promise<void> {
    if (this.#closing !== undefined) return;
    const { db, names, onError } = this.#shared.options;
    this.#listening ??= db.listen(brokerChannel(names), (topic) => {
      // '' comes after the driver re-established LISTEN: anything may have been missed.
      for (const sub of this.#subscriptions) if (topic === '' || topic === sub.topic) sub.wake();
    }).catch((error: unknown) => {
      onError(adapterError(error, 'LISTEN'), 'postgres subscriber: LISTEN for wake-ups failed (polling instead)');
      this.#listening = undefined;
      return null;
    });
    await this.#listening;
  }
}
