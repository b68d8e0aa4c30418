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
  type WireLimits,
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
  readonly #limits: WireLimits;
  readonly #lanes = new ConfirmLanes();
  /** Calls not finished yet; close() waits for them (a count, not a set: nothing to store per call). */
  #pending = 0;
  #onIdle: (() => void) | undefined;
  readonly #finished = (): void => {
    if (--this.#pending > 0) return;
    const idle = this.#onIdle;
    this.#onIdle = undefined;
    idle?.();
  };
  #closed: Promise<void> | undefined;

  constructor(options: RabbitMqPublisherOptions = {}) {
    this.#options = resolvePublisherOptions(options);
    this.#limits = { maxMessageBytes: this.#options.maxMessageBytes };
    this.#topology = new Topology(this.#options.prefix);
    this.#connection = new RabbitMqConnection(this.#options);
  }

  publish(topic: string, messages: readonly Message[]): Promise<void> {
    let outgoing: OutgoingMessage[];
    try {
      if (this.#closed !== undefined) throw new ClosedError('RabbitMQ publisher');
      validateTopic(topic);
      // Encode and check everything first: one bad message fails the call with nothing sent.
      outgoing = messages.map((m) => encodeMessage(m, this.#limits));
    } catch (error) {
      return Promise.reject(error);
    }
    if (outgoing.length === 0) return Promise.resolve();
    // Not an async function: the caller gets this promise itself, not one more wrapped around it.
    const run = this.#send(topic, outgoing);
    this.#pending++;
    run.then(this.#finished, this.#finished);
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
        await new ConfirmedSend(lane, channel, exchange, outgoing, deadline, () => `publish to ${topic} not confirmed within ${this.#options.publishTimeoutMs} ms`).done;
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

  close(options?: CloseOptions): Promise<void> {
    this.#closed ??= (async () => {
      const timeoutMs = options?.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.#pending === 0 ? Promise.resolve() : new Promise<void>((resolve) => (this.#onIdle = resolve)),
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

/**
 * One attempt at a publish call: hands its messages to amqplib on the confirm channel and
 * settles once the broker confirmed them all, or at the first nack or failure, or at `deadline`.
 * Waits for the channel's write buffer to drain (flow control) when amqplib asks to. Methods
 * rather than closures made per call: this runs for every call, every message of single publishes.
 */
class ConfirmedSend {
  readonly done: Promise<void>;
  readonly #lane: ConfirmLane;
  readonly #channel: ConfirmChannel;
  readonly #exchange: string;
  readonly #outgoing: readonly OutgoingMessage[];
  readonly #onConfirm: (error: unknown) => void;
  readonly #timer: ReturnType<typeof setTimeout>;
  #resolve!: () => void;
  #reject!: (error: unknown) => void;
  #unconfirmed: number;
  #next = 0;
  #over = false;

  constructor(lane: ConfirmLane, channel: ConfirmChannel, exchange: string, outgoing: readonly OutgoingMessage[], deadline: number, late: () => string) {
    this.#lane = lane;
    this.#channel = channel;
    this.#exchange = exchange;
    this.#outgoing = outgoing;
    this.#unconfirmed = outgoing.length;
    this.done = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.#onConfirm = (error) => this.#confirmed(error);
    this.#timer = setTimeout(() => this.#fail(confirmTimeout(late())), Math.max(0, deadline - Date.now()));
    this.#sendSome();
    // After the writes to amqplib: the uncork must queue behind the muxer's turn they scheduled.
    if (outgoing.length > 1) coalesceWrites(lane.model);
  }

  #sendSome(): void {
    const outgoing = this.#outgoing;
    try {
      while (this.#next < outgoing.length && !this.#over) {
        const m = outgoing[this.#next++] as OutgoingMessage;
        if (!this.#channel.publish(this.#exchange, m.routingKey, m.body, m.options, this.#onConfirm) && this.#next < outgoing.length) {
          void drained(this.#channel, this.#lane).then(() => this.#sendSome());
          return;
        }
      }
    } catch (error) {
      this.#fail(error);
    }
  }

  #confirmed(error: unknown): void {
    if (error) return this.#fail(error);
    if (--this.#unconfirmed === 0 && !this.#over) {
      this.#over = true;
      clearTimeout(this.#timer);
      this.#resolve();
    }
  }

  #fail(error: unknown): void {
    if (this.#over) return;
    this.#over = true;
    clearTimeout(this.#timer);
    this.#reject(error);
  }
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
