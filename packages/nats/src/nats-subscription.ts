import {
  backoffDelay,
  ClosedError,
  createDelivery,
  DEFAULT_CLOSE_TIMEOUT_MS,
  handleDelivery,
  HandlerPool,
  type AdapterError,
  type BrokerSubscription,
  type CloseOptions,
  type Delivery,
  type DeliveryControl,
  type DeliveryHandler,
  type SettleOps,
} from '@causeway/core';
import type { Msg, NatsConnection } from '@nats-io/transport-node';
import { decodeNatsMessage } from './codec.js';
import { wrap, type NatsLink } from './nats-connection.js';
import type { ResolvedSubscriberOptions } from './nats-options.js';
import { PullFeed, type AckSubjectInfo } from './pull-feed.js';

/**
 * A pull request stays open this long: an idle subscription costs one request and one 408 reply
 * per period, and close() waits up to this long (within its timeout) for its last requests to end.
 */
const PULL_EXPIRES_MS = 1_000;
/** How long a settle waits for the server's confirmation. */
const SETTLE_TIMEOUT_MS = 5_000;

const ACK = '+ACK';
const NAK = '-NAK';

export interface SubscriptionParts {
  readonly topic: string;
  readonly group: string;
  readonly stream: string;
  readonly handler: DeliveryHandler;
  readonly concurrency: number;
  readonly nc: NatsConnection;
  /** Declares the stream and the group's consumer again (after a restart, a deleted consumer). */
  readonly declare: () => Promise<void>;
  readonly link: NatsLink;
  readonly options: ResolvedSubscriberOptions;
}

/**
 * One subscribe() call. It asks the server for no more messages than it has free handler slots
 * (so nothing waits locally while its ack_wait runs), runs each through the shared delivery
 * runtime, and recovers by itself: after a reconnect, a lost request or a deleted consumer it
 * declares the consumer again and pulls again. Settles are confirmed by the server (the ack
 * is sent as a request and the server replies once it has processed it).
 */
export class NatsSubscription implements BrokerSubscription {
  readonly topic: string;
  readonly group: string;
  readonly closed: Promise<void>;
  readonly #parts: SubscriptionParts;
  readonly #pool: HandlerPool;
  readonly #feed: PullFeed;
  /** Messages handed to a handler and not finished, by their delivery. */
  readonly #slots = new Map<Delivery, HandlerSlot>();
  readonly #backlog: Array<{ readonly msg: Msg; readonly delivery: AckSubjectInfo }> = [];
  readonly #threshold: number;
  readonly #unlisten: () => void;
  #running = 0;
  /** Recoveries since the last message arrived: the second and later ones wait, growing. */
  #troubles = 0;
  #recovering = false;
  #stopping = false;
  #crashed = false;
  #wake: (() => void) | undefined;
  #resolveClosed!: () => void;
  #closing: Promise<void> | undefined;

  constructor(parts: SubscriptionParts) {
    this.topic = parts.topic;
    this.group = parts.group;
    this.#parts = parts;
    this.#pool = new HandlerPool(parts.concurrency);
    // Ask again once a quarter of the slots are free, not for every single one.
    this.#threshold = Math.max(1, Math.floor(parts.concurrency / 4));
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    this.#feed = new PullFeed(
      parts.nc,
      {
        stream: parts.stream,
        consumer: parts.group,
        expiresMs: PULL_EXPIRES_MS,
        inboxPrefix: parts.options.connection.inboxPrefix,
      },
      {
        message: (msg, delivery) => this.#receive(msg, delivery),
        credits: () => {
          this.#troubles = 0; // a request ran its course: the server answers normally
          this.#refill();
        },
        trouble: (error) => void this.#recover(error),
      },
    );
    this.#unlisten = parts.link.onReconnect(() => void this.#recover());
    this.#refill();
  }

  #receive(msg: Msg, delivery: AckSubjectInfo): void {
    this.#troubles = 0;
    if (this.#stopping) {
      // Fetched but not started when the subscription stopped: hand it back (a crash hands back nothing).
      if (!this.#crashed) this.#giveBack(msg);
      return;
    }
    if (this.#running < this.#parts.concurrency && this.#backlog.length === 0) this.#start(msg, delivery);
    // More than asked for (accounting lost across a reconnect): it waits for a slot.
    else this.#backlog.push({ msg, delivery });
  }

  /** Starts what waits, then asks the server for the free slots no open request covers. */
  #refill(): void {
    if (this.#stopping) return;
    while (this.#backlog.length > 0 && this.#running < this.#parts.concurrency) {
      const next = this.#backlog.shift();
      if (next !== undefined) this.#start(next.msg, next.delivery);
    }
    if (this.#recovering) return;
    const want = this.#parts.concurrency - this.#running - this.#backlog.length - this.#feed.outstanding;
    if (want <= 0 || (this.#feed.outstanding > 0 && want < this.#threshold)) return;
    this.#feed.request(want);
  }

  #start(msg: Msg, delivery: AckSubjectInfo): void {
    const { topic, group, options } = this.#parts;
    // attempt is the server's delivery count, so it survives a consumer restart.
    const info = decodeNatsMessage(msg, { topic, group, attempt: delivery.deliveryCount, brokerId: String(delivery.streamSequence) }, options);
    const slot = new HandlerSlot(this.#slotOwner, msg, delivery);
    const control = createDelivery(info, slot);
    slot.control = control;
    this.#slots.set(control.delivery, slot);
    this.#running++;
    this.#pool.run(async () => {
      try {
        await handleDelivery(this.#inSlot, control.delivery, options.onError);
      } finally {
        this.#slots.delete(control.delivery);
        slot.release();
        if (!slot.sent) this.#refill(); // abandoned, never settled: the slot still asks for more
      }
    });
  }

  /**
   * Runs the application's handler; its slot is free as soon as it returns. The runtime's own
   * ack after that waits for the server's confirmation outside the slot: that wait holds no
   * message back. One function for every message, which finds its slot by the delivery.
   */
  readonly #inSlot: DeliveryHandler = async (delivery) => {
    try {
      await this.#parts.handler(delivery);
    } finally {
      this.#slots.get(delivery)?.release();
    }
  };

  /** What every HandlerSlot calls back; made once per subscription. */
  readonly #slotOwner: SlotOwner = {
    settle: (msg, payload, what, delivery) => this.#settle(msg, payload, what, delivery),
    released: () => {
      this.#running--;
    },
    refill: () => this.#refill(),
  };

  async #settle(msg: Msg, payload: string, what: string, delivery: AckSubjectInfo): Promise<void> {
    try {
      // Sent with a reply subject: the server answers once it has processed the ack or nak.
      await this.#feed.settle(msg.reply ?? '', payload, SETTLE_TIMEOUT_MS);
    } catch (error) {
      throw wrap(error, `${what} of ${this.topic}/${this.group} #${delivery.streamSequence}`);
    }
  }

  #giveBack(msg: Msg): void {
    // Held back until our own open requests have ended, so it goes to another subscriber rather than bouncing back here.
    const open = this.#feed.openForMs();
    const payload = open > 0 ? `${NAK} ${JSON.stringify({ delay: (open + 100) * 1_000_000 })}` : NAK;
    try {
      if (msg.reply) this.#parts.nc.publish(msg.reply, payload);
    } catch {
      // The connection is gone: the server redelivers after ack_wait instead.
    }
  }

  /** Requests were lost or refused: check the stream and consumer (re-creating them if gone), then pull again. */
  async #recover(error?: AdapterError): Promise<void> {
    if (this.#recovering || this.#stopping) return;
    this.#recovering = true;
    this.#feed.reset();
    if (error !== undefined && this.#parts.link.connected) this.#report(error);
    // A server that keeps refusing pulls (limits, a push consumer under our name) is not hammered.
    if (this.#troubles++ > 0) await this.#pause(backoffDelay(this.#troubles, 100, 5_000));
    for (let attempt = 0; !this.#stopping; attempt++) {
      try {
        await this.#parts.link.whenConnected(Date.now() + 60_000);
        await this.#parts.declare();
        break;
      } catch (e) {
        if (e instanceof ClosedError) break;
        if (this.#parts.link.connected) this.#report(wrap(e, `declaring ${this.topic} as ${this.group} again; retrying`));
        await this.#pause(backoffDelay(attempt, 100, 5_000));
      }
    }
    this.#recovering = false;
    this.#refill();
  }

  async #pause(ms: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve) => {
      this.#wake = resolve;
      timer = setTimeout(resolve, ms);
    });
    clearTimeout(timer);
    this.#wake = undefined;
  }

  #report(error: unknown): void {
    this.#parts.options.onError(error, `nats ${this.topic}/${this.group}`);
  }

  #halt(): void {
    this.#stopping = true;
    this.#unlisten();
    this.#wake?.();
  }

  /**
   * Stops pulling, hands back what was fetched but not started, drains handlers up to the
   * timeout, abandons the rest. Within the same timeout it stays subscribed until its last pull
   * requests have ended (at most PULL_EXPIRES_MS), handing back what they still deliver.
   */
  close(options?: CloseOptions): Promise<void> {
    this.#closing ??= (async () => {
      const deadline = Date.now() + (options?.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS);
      this.#halt();
      for (const waiting of this.#backlog.splice(0)) this.#giveBack(waiting.msg);
      const drained = await this.#pool.drain(Math.max(0, deadline - Date.now()));
      if (!drained) for (const slot of this.#slots.values()) slot.control?.abandon();
      await this.#feed.quiet(deadline);
      this.#feed.stop();
      this.#resolveClosed();
    })();
    return this.#closing;
  }

  /** The process died: nothing is settled or handed back; running handlers are abandoned. */
  crash(): void {
    if (this.#closing !== undefined) return;
    this.#crashed = true;
    this.#halt();
    this.#backlog.splice(0);
    this.#feed.stop();
    for (const slot of this.#slots.values()) slot.control?.abandon();
    this.#closing = Promise.resolve();
    this.#resolveClosed();
  }
}

interface SlotOwner {
  settle(msg: Msg, payload: string, what: string, delivery: AckSubjectInfo): Promise<void>;
  /** A handler returned: its slot is free. */
  released(): void;
  refill(): void;
}

/**
 * One message in a handler slot: its settle operations (createDelivery calls them as methods,
 * so there are no closures per message) and its slot, freed once. The pull for the freed slot
 * goes out right after the ack, so both leave in one write.
 */
class HandlerSlot implements SettleOps {
  control: DeliveryControl | undefined;
  readonly #owner: SlotOwner;
  readonly #msg: Msg;
  readonly #delivery: AckSubjectInfo;
  #released = false;
  #sent = false;

  constructor(owner: SlotOwner, msg: Msg, delivery: AckSubjectInfo) {
    this.#owner = owner;
    this.#msg = msg;
    this.#delivery = delivery;
  }

  /** Whether an ack or nack went out for it. */
  get sent(): boolean {
    return this.#sent;
  }

  ack(): Promise<void> {
    return this.#settle(ACK, 'ack');
  }

  // -NAK with a delay: the server itself holds the message back (NATS 2.7.1+).
  nack(delayMs: number): Promise<void> {
    return this.#settle(delayMs > 0 ? `${NAK} ${JSON.stringify({ delay: delayMs * 1_000_000 })}` : NAK, 'nack');
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#owner.released();
    if (this.#sent) this.#owner.refill();
  }

  #settle(payload: string, what: string): Promise<void> {
    const confirmed = this.#owner.settle(this.#msg, payload, what, this.#delivery);
    this.#sent = true;
    if (this.#released) this.#owner.refill();
    return confirmed;
  }
}
