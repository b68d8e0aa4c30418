import {
  AdapterError,
  backoffDelay,
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
import { jetstreamManager } from '@nats-io/jetstream';
import { isTransient, NatsLink, sleep, untilDeadline, wrap } from './nats-connection.js';
import { NatsSubscription } from './nats-subscription.js';
import { resolveSubscriberOptions, type NatsSubscriberOptions, type ResolvedSubscriberOptions } from './nats-options.js';
import { ensureConsumer, ensureStream, streamNameOf, subjectOf } from './streams.js';

/**
 * Consumes JetStream topics: one durable pull consumer per group (durable name = group), so
 * subscriptions of a group compete and groups fan out. Explicit acks; `ack_wait` =
 * `ackTimeoutMs` takes back what a crashed or hung subscriber held (a handler running longer
 * than that sees its message redelivered meanwhile); `attempt` is the server's delivery count.
 * One connection per subscriber, shared by its subscriptions.
 */
export class NatsSubscriber implements Subscriber {
  readonly #options: ResolvedSubscriberOptions;
  readonly #link: NatsLink;
  readonly #subscriptions = new Set<NatsSubscription>();
  #closing: Promise<void> | undefined;

  constructor(options: NatsSubscriberOptions = {}) {
    this.#options = resolveSubscriberOptions(options);
    this.#link = new NatsLink(this.#options, 'subscriber');
  }

  async subscribe(topic: string, options: GroupSubscribeOptions, handler: DeliveryHandler): Promise<BrokerSubscription> {
    if (this.#closing !== undefined) throw new ClosedError('nats subscriber');
    validateTopic(topic);
    validateGroup(options.group);
    const concurrency = concurrencyOf(options.concurrency);
    const startFrom = options.startFrom ?? 'latest';
    if (startFrom !== 'latest' && startFrom !== 'earliest') throw new InvalidOptionsError(`startFrom must be 'earliest' or 'latest'; got ${String(startFrom)}`);
    const deadline = Date.now() + this.#options.subscribeTimeoutMs;
    const nc = await this.#link.connection(deadline);
    const subject = subjectOf(this.#options.subjectPrefix, topic);
    const declaration = { stream: streamNameOf(subject), group: options.group, startFrom };
    // Also run after a lost consumer or a server restart: the stream and group come back as declared.
    const declare = async (): Promise<void> => {
      const jsm = await jetstreamManager(nc, { checkAPI: false });
      await ensureStream(jsm, subject, this.#options);
      await ensureConsumer(jsm, declaration, this.#options);
    };
    await this.#declareUntil(declare, deadline, `subscribe to ${topic} as ${options.group}`);
    if (this.#closing !== undefined) throw new ClosedError('nats subscriber');
    const sub = new NatsSubscription({
      topic,
      group: options.group,
      stream: declaration.stream,
      handler,
      concurrency,
      nc,
      declare,
      link: this.#link,
      options: this.#options,
    });
    return trackSubscription(this.#subscriptions, sub, options.signal);
  }

  async #declareUntil(declare: () => Promise<void>, deadline: number, what: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#link.whenConnected(deadline);
        return await untilDeadline(declare(), deadline, () => new AdapterError('nats', `${what}: no answer within subscribeTimeoutMs`));
      } catch (error) {
        if (error instanceof CausewayError) throw error;
        if (!isTransient(error) || Date.now() >= deadline) throw wrap(error, what);
        await sleep(Math.min(backoffDelay(attempt, 50, 1_000), Math.max(0, deadline - Date.now())));
      }
    }
  }

  /** Closes every subscription (each drains up to the timeout), then the connection. Idempotent. */
  close(options?: CloseOptions): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.all([...this.#subscriptions].map((s) => s.close(options)));
      await this.#link.close();
    })();
    return this.#closing;
  }

  /**
   * Test hook: the process died. Loops stop and the connection drops with nothing settled or
   * handed back; handlers still running are abandoned. The server redelivers after ack_wait.
   */
  async simulateCrashForTests(): Promise<void> {
    this.#closing ??= Promise.resolve();
    for (const sub of this.#subscriptions) sub.crash();
    await this.#link.crash();
  }

}

export function createNatsSubscriber(options: NatsSubscriberOptions = {}): NatsSubscriber {
  return new NatsSubscriber(options);
}
