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
import { beforeDeadline, coalesceWrites, ConfirmLanes, confirmTimeout, isRetryable, RabbitMqConnection, type ConfirmLane } from './rabbitmq-connection.js';
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
 * - Cost per call, not per message: one promise and one deadline timer per call, and the frames
 *   of a multi-message call leave in one writev (the socket is corked for amqplib's write turn).
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
      // The open connection and its channel when there are (the usual case): no extra turns.
      const model = this.#connection.current ?? (await this.#connection.ready(deadline));
      const lane = this.#lanes.get(model);
      try {
        const exchange = this.#topology.exchange(topic);
        const channel = lane.ready !== undefined && lane.declared.has(exchange) ? lane.ready : await beforeDeadline(this.#prepare(lane, exchange, topic), deadline, () => `no channel to publish to ${topic} within ${this.#options.publishTimeoutMs} ms`);
        await this.#sendOnce(lane, channel, exchange, outgoing, deadline, topic);
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

  /** The lane's channel, with the topic's exchange declared on it. */
  async #prepare(lane: ConfirmLane, exchange: string, topic: string): Promise<ConfirmChannel> {
    const channel = await lane.channel;
    if (!lane.declared.has(exchange)) {
      await declareTopic(channel, this.#topology, topic);
      lane.declared.add(exchange);
    }
    return channel;
  }

  /**
   * Publishes every message and resolves once the broker confirmed them all, or rejects at the
   * first nack, channel loss, or at `deadline`. Waits for the channel's write buffer to drain
   * (flow control) when amqplib asks to.
   */
  #sendOnce(lane: ConfirmLane, channel: ConfirmChannel, exchange: string, outgoing: readonly OutgoingMessage[], deadline: number, topic: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let unconfirmed = outgoing.length;
      let over = false;
      const fail = (error: unknown): void => {
        if (over) return;
        over = true;
        clearTimeout(timer);
        reject(error);
      };
      const timer = setTimeout(() => fail(confirmTimeout(`publish to ${topic} not confirmed within ${this.#options.publishTimeoutMs} ms`)), Math.max(0, deadline - Date.now()));
      const confirmed = (error: unknown): void => {
        if (error) return fail(error);
        if (--unconfirmed === 0 && !over) {
          over = true;
          clearTimeout(timer);
          resolve();
        }
      };
      let next = 0;
      const sendSome = (): void => {
        try {
          while (next < outgoing.length && !over) {
            const m = outgoing[next++] as OutgoingMessage;
            if (!channel.publish(exchange, m.routingKey, m.body, m.options, confirmed) && next < outgoing.length) {
              void drained(channel, lane).then(sendSome);
              return;
            }
          }
        } catch (error) {
          fail(error);
        }
      };
      sendSome();
      // After the writes to amqplib: the uncork must queue behind the muxer's turn they scheduled.
      if (outgoing.length > 1) coalesceWrites(lane.model);
    });
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
