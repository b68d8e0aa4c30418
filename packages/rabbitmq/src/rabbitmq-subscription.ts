import {
  AdapterError,
  backoffDelay,
  ClosedError,
  createDelivery,
  DEFAULT_CLOSE_TIMEOUT_MS,
  delay,
  handleDelivery,
  HandlerPool,
  TimeoutError,
  type BrokerSubscription,
  type CloseOptions,
  type DeliveryHandler,
} from '@causeway/core';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { attemptOf, decodeDelivery } from './codec.js';
import { giveBack, Inbound, type InboundOwner, type Lane } from './inbound.js';
import { adapterTrouble, isRetryable, RabbitMqConnection } from './rabbitmq-connection.js';
import { type ResolvedSubscriberOptions } from './rabbitmq-options.js';
import { declareGroup, Topology } from './topology.js';

export interface SubscriptionEnv {
  readonly options: ResolvedSubscriberOptions;
  readonly topology: Topology;
  readonly connection: RabbitMqConnection;
  publishDelayed(groupQueue: string, msg: ConsumeMessage, delayMs: number, attempt: number): Promise<void>;
}

type State = 'opening' | 'open' | 'closing' | 'closed';

export class RabbitMqSubscription implements BrokerSubscription {
  readonly topic: string;
  readonly group: string;
  readonly closed: Promise<void>;
  readonly #queue: string;
  readonly #concurrency: number;
  readonly #handler: DeliveryHandler;
  readonly #env: SubscriptionEnv;
  readonly #pool: HandlerPool;
  readonly #waiting: Inbound[] = [];
  readonly #running = new Set<Inbound>();
  /** Every message not yet finished, in arrival order = deadline order (one ackTimeoutMs for all). */
  #expiries: Inbound[] = [];
  #expiryHead = 0;
  #expiryTimer: ReturnType<typeof setTimeout> | undefined;
  /** crash(): nothing more goes out, not even acks made before it. */
  #crashed = false;
  #state: State = 'opening';
  #lane: Lane | undefined;
  #attaching = false;
  #failures = 0;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #closing: Promise<void> | undefined;
  #resolveClosed!: () => void;

  constructor(topic: string, group: string, concurrency: number, handler: DeliveryHandler, env: SubscriptionEnv) {
    this.topic = topic;
    this.group = group;
    this.#queue = env.topology.queue(topic, group);
    this.#concurrency = concurrency;
    this.#handler = handler;
    this.#env = env;
    this.#pool = new HandlerPool(concurrency);
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
  }

  /** Declares and consumes; resolves once consuming, so later publishes reach the group. */
  async open(deadline: number): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const model = await this.#env.connection.ready(deadline);
      try {
        await this.#attach(model);
        break;
      } catch (error) {
        if (!isRetryable(error) || Date.now() >= deadline || this.#state !== 'opening') {
          throw new AdapterError('rabbitmq', `cannot consume ${this.#queue}`, { cause: error });
        }
        await delay(Math.min(backoffDelay(attempt, 100, 2_000), Math.max(0, deadline - Date.now())));
      }
    }
    if (this.#state !== 'opening') return;
    this.#state = 'open';
    if (this.#lane?.open !== true) this.reattach();
  }

  async #attach(model: ChannelModel): Promise<void> {
    const channel = await model.createChannel();
    const lane: Lane = { channel, consumerTag: undefined, open: true, error: undefined, unsent: new Set(), acks: [] };
    channel.on('error', (error: unknown) => {
      lane.error = error;
    });
    channel.on('close', () => this.#laneClosed(lane));
    try {
      await declareGroup(channel, this.#env.topology, this.topic, this.group, this.#env.options.maxDeliveries);
      await channel.prefetch(this.#concurrency);
      if (this.#stopping()) throw new ClosedError('subscription');
      const { consumerTag } = await channel.consume(this.#queue, (msg) => this.#receive(lane, msg), { noAck: false });
      // close() may have run while consume was on its way: a closed subscription keeps no channel.
      if (this.#stopping()) throw new ClosedError('subscription');
      lane.consumerTag = consumerTag;
      this.#lane = lane;
    } catch (error) {
      await channel.close().catch(() => undefined);
      throw lane.error ?? error;
    }
  }

  #stopping(): boolean {
    return this.#state === 'closing' || this.#state === 'closed';
  }

  /** Attaches again after the channel or the connection was lost, with backoff while it fails. */
  reattach(): void {
    if (this.#state !== 'open' || this.#attaching || this.#lane?.open === true) return;
    const model = this.#env.connection.current;
    if (model === undefined) return; // the connection calls again once it is back
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#attaching = true;
    this.#attach(model).then(
      () => {
        this.#failures = 0;
      },
      (error: unknown) => {
        // On a connection that has gone since, the next one's onOpen attaches again.
        if (this.#state !== 'open' || this.#env.connection.current !== model) return;
        this.#report(error, 'cannot consume again; retrying');
        this.#retryTimer = setTimeout(() => {
          this.#retryTimer = undefined;
          this.reattach();
        }, backoffDelay(++this.#failures, 200, 5_000));
      },
    ).finally(() => {
      this.#attaching = false;
      // The new channel may have died while we were attaching.
      if (this.#state === 'open' && this.#lane?.open !== true && this.#retryTimer === undefined) this.reattach();
    });
  }

  #receive(lane: Lane, msg: ConsumeMessage | null): void {
    if (msg === null) {
      // The broker cancelled the consumer (queue deleted): a new channel re-declares it.
      this.#report(undefined, 'the broker cancelled the consumer (queue deleted?); declaring and consuming again');
      void lane.channel.close().catch(() => undefined);
      return;
    }
    if (this.#stopping()) return giveBack(lane, msg, true);
    // The ack timeout counts from arrival: a message waiting for a free handler expires too.
    const inbound = new Inbound(msg, lane, Date.now() + this.#env.options.ackTimeoutMs, this.#inboundOwner);
    lane.unsent.add(inbound);
    this.#expiries.push(inbound);
    this.#expiryTimer ??= setTimeout(() => this.#sweep(), this.#env.options.ackTimeoutMs);
    this.#waiting.push(inbound);
    this.#pump();
  }

  /** Expires every message past its deadline, then re-arms for the oldest one left. */
  #sweep(): void {
    this.#expiryTimer = undefined;
    const now = Date.now();
    while (this.#expiryHead < this.#expiries.length) {
      const inbound = this.#expiries[this.#expiryHead] as Inbound;
      if (!inbound.done && inbound.deadline > now) break;
      this.#expiryHead++;
      if (!inbound.done) this.#expire(inbound);
    }
    this.#compactExpiries();
    const next = this.#expiries[this.#expiryHead];
    if (next !== undefined && this.#state !== 'closed') this.#expiryTimer = setTimeout(() => this.#sweep(), Math.max(1, next.deadline - now));
  }

  /** Drops finished messages from the head so they are not kept alive until the timer fires. */
  #compactExpiries(): void {
    while (this.#expiryHead < this.#expiries.length && (this.#expiries[this.#expiryHead] as Inbound).done) this.#expiryHead++;
    if (this.#expiryHead === this.#expiries.length) {
      this.#expiries = [];
      this.#expiryHead = 0;
    } else if (this.#expiryHead > 1024 && this.#expiryHead * 2 > this.#expiries.length) {
      this.#expiries = this.#expiries.slice(this.#expiryHead);
      this.#expiryHead = 0;
    }
  }

  #pump(): void {
    while (this.#running.size < this.#concurrency && this.#waiting.length > 0 && !this.#stopping()) {
      this.#start(this.#waiting.shift() as Inbound);
    }
  }

  #start(inbound: Inbound): void {
    const { msg } = inbound;
    const info = decodeDelivery(
      msg,
      { topic: this.topic, group: this.group, attempt: attemptOf(msg), brokerId: String(msg.fields.deliveryTag) },
      { maxMessageBytes: this.#env.options.maxMessageBytes },
    );
    const control = createDelivery(info, inbound);
    inbound.control = control;
    this.#running.add(inbound);
    this.#pool.run(async () => {
      try {
        await handleDelivery(this.#handler, control.delivery, this.#env.options.onError);
      } finally {
        this.#running.delete(inbound);
        this.#pump();
      }
    });
  }

  /** What every Inbound calls back; made once per subscription. */
  readonly #inboundOwner: InboundOwner = {
    ack: (inbound) => this.#ack(inbound),
    nack: (inbound, delayMs) => this.#nack(inbound, delayMs),
  };

  #finish(inbound: Inbound): void {
    inbound.done = true;
    if (this.#expiries[this.#expiryHead] === inbound) this.#compactExpiries();
  }

  #lostOn(inbound: Inbound, what: string): AdapterError {
    return new AdapterError('rabbitmq', `${what} of ${this.#queue} message ${String(inbound.msg.properties.messageId)} lost with its channel; the broker redelivers it`, { cause: inbound.lane.error });
  }

  async #ack(inbound: Inbound): Promise<void> {
    this.#finish(inbound);
    const { lane } = inbound;
    if (!lane.open) throw this.#lostOn(inbound, 'ack');
    inbound.ackQueued = true;
    // The first ack of this turn schedules the flush; acks made by other handlers before it
    // runs (same turn, microtasks) go out in the same frame.
    if (lane.acks.push(inbound) === 1) queueMicrotask(() => this.#flushAcks(lane));
  }

  /**
   * Sends the acks queued on `lane`: one basic.ack(multiple) up to the last of the unbroken run
   * of acked messages at the head of the channel's unsent ones (so it covers only acked
   * messages: the broker has nothing unacked below the head), single acks for the rest.
   */
  #flushAcks(lane: Lane): void {
    const acks = lane.acks.splice(0);
    if (acks.length === 0 || this.#crashed) return;
    if (!lane.open) {
      // Crash or lost channel: the broker requeues them, as for any unacked message.
      if (this.#state === 'open') this.#report(lane.error, `${acks.length} ack(s) on ${this.#queue} lost with their channel; the broker redelivers them`);
      return;
    }
    try {
      let last: Inbound | undefined;
      let run = 0;
      for (const inbound of lane.unsent) {
        if (!inbound.ackQueued) break;
        last = inbound;
        run++;
      }
      if (last !== undefined) {
        for (const inbound of lane.unsent) {
          lane.unsent.delete(inbound);
          if (inbound === last) break;
        }
        lane.channel.ack(last.msg, run > 1);
      }
      for (const inbound of acks) {
        if (lane.unsent.delete(inbound)) lane.channel.ack(inbound.msg);
      }
    } catch (error) {
      this.#report(error, `ack of ${acks.length} message(s) of ${this.#queue} failed; the broker redelivers them`);
    }
  }

  /** Sends an ack or nack on the message's own channel; a closed channel means the broker redelivers. */
  #settle(inbound: Inbound, what: string, send: (channel: Channel) => void): void {
    if (!inbound.lane.open) throw this.#lostOn(inbound, what);
    inbound.lane.unsent.delete(inbound);
    try {
      send(inbound.lane.channel);
    } catch (error) {
      throw new AdapterError('rabbitmq', `${what} of ${this.#queue} message ${String(inbound.msg.properties.messageId)} failed; the broker redelivers it`, { cause: error });
    }
  }

  async #nack(inbound: Inbound, delayMs: number): Promise<void> {
    this.#finish(inbound);
    const { msg } = inbound;
    const attempt = attemptOf(msg);
    // At the limit: reject without requeue, and the queue's dead-letter route takes it.
    if (attempt >= this.#env.options.maxDeliveries) return this.#settle(inbound, 'dead-letter', (ch) => ch.nack(msg, false, false));
    if (delayMs <= 0) return this.#settle(inbound, 'nack', (ch) => ch.nack(msg, false, true));
    if (!inbound.lane.open) throw this.#lostOn(inbound, 'nack');
    try {
      await this.#env.publishDelayed(this.#queue, msg, delayMs, attempt);
    } catch (error) {
      // Better early than never: without the delayed copy the original goes straight back.
      this.#report(error, 'delayed nack failed; message requeued without the delay');
      return this.#settle(inbound, 'nack', (ch) => ch.nack(msg, false, true));
    }
    this.#settle(inbound, 'ack after the delayed copy (a duplicate follows)', (ch) => ch.ack(msg));
  }

  #expire(inbound: Inbound): void {
    if (inbound.done) return;
    const i = this.#waiting.indexOf(inbound);
    if (i >= 0) this.#waiting.splice(i, 1);
    inbound.control?.abandon();
    this.#finish(inbound);
    const { lane, msg } = inbound;
    const requeue = attemptOf(msg) < this.#env.options.maxDeliveries;
    const timeout = new TimeoutError(`message ${String(msg.properties.messageId)} of ${this.#queue} not settled within ackTimeoutMs (${this.#env.options.ackTimeoutMs} ms)`);
    this.#report(timeout, requeue ? 'ack timeout; message requeued, handler abandoned' : 'ack timeout at maxDeliveries; message dead-lettered');
    lane.unsent.delete(inbound);
    giveBack(lane, msg, requeue);
  }

  #laneClosed(lane: Lane): void {
    if (!lane.open) return;
    lane.open = false;
    // A channel that never finished attaching is the attach's failure to report, not news here.
    const wasActive = this.#lane === lane;
    if (wasActive) this.#lane = undefined;
    let unsettled = 0;
    for (const inbound of [...this.#waiting, ...this.#running]) {
      if (inbound.lane !== lane || inbound.done) continue;
      unsettled++;
      inbound.control?.abandon();
      this.#finish(inbound);
    }
    this.#waiting.splice(0, this.#waiting.length, ...this.#waiting.filter((i) => i.lane !== lane));
    lane.unsent.clear();
    if (this.#state !== 'open' || !wasActive) return;
    // A lost connection is reported once, by the connection; the broker closing just this
    // channel (it emits 'error' first) or messages going back are news.
    if (unsettled > 0 || lane.error !== undefined) {
      this.#report(lane.error, `channel lost with ${unsettled} unsettled message(s), which the broker redelivers; consuming again`);
    }
    this.reattach();
  }

  #report(error: unknown, what: string): void {
    this.#env.options.onError(adapterTrouble(what, error), `rabbitmq ${this.#queue}`);
  }

  /** Test hook (through the subscriber): stop without settling or giving back anything. */
  crash(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#crashed = true;
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#expiryTimer);
    for (const inbound of [...this.#waiting, ...this.#running]) {
      inbound.control?.abandon();
      this.#finish(inbound);
    }
    this.#waiting.length = 0;
    this.#resolveClosed();
  }

  close(options?: CloseOptions): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#state === 'closed') return;
      const deadline = Date.now() + (options?.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS);
      const left = (): number => Math.max(0, deadline - Date.now());
      this.#state = 'closing';
      clearTimeout(this.#retryTimer);
      const lane = this.#lane;
      // Stop fetching, then give back what was fetched but not started.
      if (lane?.open === true && lane.consumerTag !== undefined) await settleWithin(lane.channel.cancel(lane.consumerTag), left());
      for (const inbound of this.#waiting.splice(0)) {
        this.#finish(inbound);
        inbound.lane.unsent.delete(inbound);
        giveBack(inbound.lane, inbound.msg, true);
      }
      await this.#pool.drain(left());
      // Handlers still running are abandoned; closing the channel hands their messages back.
      for (const inbound of this.#running) {
        inbound.control?.abandon();
        this.#finish(inbound);
      }
      this.#state = 'closed';
      clearTimeout(this.#expiryTimer);
      // Acks made by handlers that finished go out before the channel closes.
      if (lane !== undefined) this.#flushAcks(lane);
      // A broker that does not answer gets the socket's end instead, when the subscriber closes.
      if (lane?.open === true) await settleWithin(lane.channel.close(), Math.max(left(), 1_000));
      this.#resolveClosed();
    })();
    return this.#closing;
  }
}

/** Waits for `work` but no longer than `ms`; its failure does not matter here. */
async function settleWithin(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([work.catch(() => undefined), new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
