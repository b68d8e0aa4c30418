import {
  AdapterError,
  backoffDelay,
  ClosedError,
  DEFAULT_CLOSE_TIMEOUT_MS,
  delay,
  validateTopic,
  type CloseOptions,
  type Message,
  type Publisher,
} from '@causeway/core';
import type { ConfirmChannel } from 'amqplib';
import { encodeMessage, type OutgoingMessage } from './codec.js';
import { beforeDeadline, ConfirmLanes, isRetryable, RabbitMqConnection, type ConfirmLane } from './rabbitmq-connection.js';
import { resolvePublisherOptions, type RabbitMqPublisherOptions, type ResolvedPublisherOptions } from './rabbitmq-options.js';
import { declareTopic, Topology } from './topology.js';

/**
 * Publishes on one confirm channel over a connection that reconnects by itself.
 *
 * - publish() resolves once the broker has confirmed every message (basic.ack on the confirm
 *   channel). For a durable quorum queue that is after the message is persisted on a quorum of
 *   nodes. Messages are persistent (delivery mode 2).
 * - Messages of one call go out in array order on one channel, which RabbitMQ keeps. If the
 *   connection drops before all are confirmed, the whole call is sent again on the next
 *   connection (a possible duplicate, never a loss) until `publishTimeoutMs` runs out.
 * - A message routed to no queue (the topic has no group yet) is dropped by the broker, as
 *   topic exchanges do: RabbitMQ keeps no history for groups made later.
 */
export class RabbitMqPublisher implements Publisher {
  readonly #options: ResolvedPublisherOptions;
  readonly #topology: Topology;
  readonly #connection: RabbitMqConnection;
  readonly #inflight = new Set<Promise<void>>();
  readonly #lanes = new ConfirmLanes();
  #closed: Promise<void> | undefined;

  constructor(options: RabbitMqPublisherOptions = {}) {
    this.#options = resolvePublisherOptions(options);
    this.#topology = new Topology(this.#options.prefix);
    this.#connection = new RabbitMqConnection(this.#options);
  }

  async publish(topic: string, messages: readonly Message[]): Promise<void> {
    if (this.#closed !== undefined) throw new ClosedError('RabbitMQ publisher');
    validateTopic(topic);
    const limits = { maxMessageBytes: this.#options.maxMessageBytes };
    // Encode and check everything first: one bad message fails the call with nothing sent.
    const outgoing = messages.map((m) => encodeMessage(m, limits));
    if (outgoing.length === 0) return;
    const run = this.#send(topic, outgoing);
    this.#inflight.add(run);
    const forget = () => this.#inflight.delete(run);
    run.then(forget, forget);
    return run;
  }

  async #send(topic: string, outgoing: readonly OutgoingMessage[]): Promise<void> {
    const deadline = Date.now() + this.#options.publishTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      const model = await this.#connection.ready(deadline);
      const lane = this.#lanes.get(model);
      try {
        await beforeDeadline(this.#sendOnce(lane, topic, outgoing), deadline, () => `publish to ${topic} not confirmed within ${this.#options.publishTimeoutMs} ms`);
        return;
      } catch (error) {
        const cause = lane.closeError ?? error;
        if (!isRetryable(error, lane.closeError) || this.#connection.isClosed || Date.now() >= deadline) {
          throw error instanceof AdapterError ? error : new AdapterError('rabbitmq', `publish of ${outgoing.length} message(s) to ${topic} failed`, { cause });
        }
        // The channel or connection went away: send the whole call again once one is back.
        await delay(Math.min(backoffDelay(attempt, 50, 1_000), Math.max(0, deadline - Date.now())));
      }
    }
  }

  async #sendOnce(lane: ConfirmLane, topic: string, outgoing: readonly OutgoingMessage[]): Promise<void> {
    const channel = await lane.channel;
    const exchange = this.#topology.exchange(topic);
    if (!lane.declared.has(exchange)) {
      await declareTopic(channel, this.#topology, topic);
      lane.declared.add(exchange);
    }
    const confirms: Promise<void>[] = [];
    for (const m of outgoing) {
      let more = true;
      const confirmed = new Promise<void>((resolve, reject) => {
        more = channel.publish(exchange, m.routingKey, m.body, m.options, (error: unknown) => (error ? reject(error) : resolve()));
      });
      // Handled by Promise.all below; this keeps a failure seen while waiting for drain from
      // counting as an unhandled rejection.
      confirmed.catch(() => undefined);
      confirms.push(confirmed);
      if (!more) await drained(channel, lane);
    }
    await Promise.all(confirms);
  }

  close(options?: CloseOptions): Promise<void> {
    this.#closed ??= (async () => {
      const timeoutMs = options?.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.allSettled([...this.#inflight]),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, timeoutMs);
        }),
      ]);
      clearTimeout(timer);
      await this.#connection.close();
    })();
    return this.#closed;
  }
}

export function createRabbitMqPublisher(options: RabbitMqPublisherOptions = {}): RabbitMqPublisher {
  return new RabbitMqPublisher(options);
}

/** Waits for the channel's write buffer to drain (flow control), or for it to close. */
function drained(channel: ConfirmChannel, lane: ConfirmLane): Promise<void> {
  if (lane.closed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      channel.off('drain', done);
      channel.off('close', done);
      resolve();
    };
    channel.once('drain', done);
    channel.once('close', done);
  });
}
