import { validateGroup, validateTopic } from './broker-names.js';
import {
  concurrencyOf,
  createDelivery,
  decodeArrival,
  DEFAULT_CLOSE_TIMEOUT_MS,
  handleDelivery,
  HandlerPool,
  reportToStderr,
  trackSubscription,
  type DeliveryControl,
  type DeliveryInfo,
  type ErrorReporter,
} from './delivery-runtime.js';
import { ClosedError, InvalidOptionsError } from './errors.js';
import type { DeliveryHandler, Message } from './message.js';
import type { CloseOptions, Publisher } from './publisher.js';
import type { BrokerSubscription, GroupSubscribeOptions, Subscriber } from './subscriber.js';
import { decodeStructured, DEFAULT_MAX_MESSAGE_BYTES, encodeStructured } from './wire-format.js';

export interface InMemoryBrokerOptions {
  /** A delivery not settled within this time is redelivered (the subscriber crashed or hung). Default 30,000 ms. */
  readonly ackTimeoutMs?: number;
  /** Largest encoded message. Default 1 MiB. */
  readonly maxMessageBytes?: number;
}

interface Entry {
  readonly seq: number;
  readonly key: string;
  readonly text: string;
}

interface Pending {
  readonly entry: Entry;
  attempt: number;
  visibleAt: number;
  lease: { readonly token: number; readonly until: number } | null;
}

interface Consumer {
  readonly pool: HandlerPool;
  readonly handler: DeliveryHandler;
  readonly controls: Map<DeliveryControl, Pending>;
  readonly report: ErrorReporter;
  active: boolean;
}

interface Group {
  readonly topic: string;
  readonly name: string;
  pending: Pending[];
  readonly consumers: Consumer[];
  next: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  wakeAt: number;
  pumpQueued: boolean;
}

/**
 * A broker in process memory, with the semantics the real adapters promise: consumer groups,
 * per-key order across a group's subscribers, leases that expire, delayed nack, an attempt
 * counter held by the broker, and replay of retained history for new groups. Messages are kept
 * in CloudEvents structured JSON, so the codec and the size limits run as they do on the wire.
 * It keeps every message for the life of the process: for tests and single-process demos.
 */
export class InMemoryBroker {
  readonly ackTimeoutMs: number;
  readonly maxMessageBytes: number;
  readonly #topics = new Map<string, { readonly log: Entry[]; readonly groups: Map<string, Group> }>();
  #seq = 0;
  #token = 0;

  constructor(options: InMemoryBrokerOptions = {}) {
    this.ackTimeoutMs = positive(options.ackTimeoutMs ?? 30_000, 'ackTimeoutMs');
    this.maxMessageBytes = positive(options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES, 'maxMessageBytes');
  }

  createPublisher(): Publisher {
    return new InMemoryPublisher(this);
  }

  createSubscriber(options: { readonly onError?: ErrorReporter } = {}): InMemorySubscriber {
    return new InMemorySubscriber(this, options.onError ?? reportToStderr);
  }

  /** Appends text as it stands, bypassing the codec: how a test puts an undecodable message on a topic. */
  appendRaw(topic: string, text: string, key = ''): void {
    validateTopic(topic);
    this.#append(topic, [{ seq: ++this.#seq, key, text }]);
  }

  /** @internal */
  publishEncoded(topic: string, messages: readonly Message[]): void {
    const limits = { maxMessageBytes: this.maxMessageBytes };
    const entries = messages.map((m) => {
      const { text, key } = encodeStructured(m, limits);
      return { seq: 0, key, text };
    });
    this.#append(topic, entries.map((e) => ({ ...e, seq: ++this.#seq })));
  }

  #append(topic: string, entries: readonly Entry[]): void {
    const t = this.#topic(topic);
    t.log.push(...entries);
    for (const group of t.groups.values()) {
      for (const entry of entries) group.pending.push({ entry, attempt: 0, visibleAt: 0, lease: null });
      this.#schedulePump(group);
    }
  }

  #topic(topic: string) {
    let t = this.#topics.get(topic);
    if (t === undefined) {
      t = { log: [], groups: new Map() };
      this.#topics.set(topic, t);
    }
    return t;
  }

  /** @internal */
  attach(topic: string, options: GroupSubscribeOptions, consumer: Consumer): Group {
    const t = this.#topic(topic);
    let group = t.groups.get(options.group);
    if (group === undefined) {
      const history = options.startFrom === 'earliest' ? t.log : [];
      group = {
        topic,
        name: options.group,
        pending: history.map((entry) => ({ entry, attempt: 0, visibleAt: 0, lease: null })),
        consumers: [],
        next: 0,
        timer: undefined,
        wakeAt: Number.POSITIVE_INFINITY,
        pumpQueued: false,
      };
      t.groups.set(options.group, group);
    }
    group.consumers.push(consumer);
    this.#schedulePump(group);
    return group;
  }

  /** @internal A consumer has room again. */
  refill(group: Group): void {
    this.#schedulePump(group);
  }

  /** @internal */
  detach(group: Group, consumer: Consumer, release: boolean): void {
    consumer.active = false;
    const i = group.consumers.indexOf(consumer);
    if (i >= 0) group.consumers.splice(i, 1);
    for (const [control, pending] of consumer.controls) {
      control.abandon();
      // A closed connection hands its unacked messages back at once; a crashed one waits for the lease.
      if (release && pending.lease !== null) pending.lease = null;
    }
    consumer.controls.clear();
    this.#schedulePump(group);
  }

  #schedulePump(group: Group): void {
    if (group.pumpQueued) return;
    group.pumpQueued = true;
    queueMicrotask(() => {
      group.pumpQueued = false;
      this.#pump(group);
    });
  }

  #pump(group: Group): void {
    const now = Date.now();
    let wake = Number.POSITIVE_INFINITY;
    const heads = new Set<string>();
    for (const p of group.pending) {
      // Per-key order: only the oldest unacked message of a key may be out.
      if (heads.has(p.entry.key)) continue;
      heads.add(p.entry.key);
      if (p.lease !== null && p.lease.until > now) {
        wake = Math.min(wake, p.lease.until);
        continue;
      }
      if (p.visibleAt > now) {
        wake = Math.min(wake, p.visibleAt);
        continue;
      }
      const consumer = this.#pickConsumer(group);
      if (consumer === undefined) break;
      this.#deliver(group, consumer, p, now);
      wake = Math.min(wake, now + this.ackTimeoutMs);
    }
    this.#wakeAt(group, wake);
  }

  #pickConsumer(group: Group): Consumer | undefined {
    const n = group.consumers.length;
    for (let i = 0; i < n; i++) {
      const c = group.consumers[(group.next + i) % n];
      if (c !== undefined && c.active && c.pool.free > 0) {
        group.next = (group.next + i + 1) % n;
        return c;
      }
    }
    return undefined;
  }

  #wakeAt(group: Group, at: number): void {
    if (at === Number.POSITIVE_INFINITY || (group.timer !== undefined && group.wakeAt <= at)) return;
    clearTimeout(group.timer);
    group.wakeAt = at;
    group.timer = setTimeout(() => {
      group.timer = undefined;
      group.wakeAt = Number.POSITIVE_INFINITY;
      this.#pump(group);
    }, Math.max(0, at - Date.now()));
    group.timer.unref?.();
  }

  #deliver(group: Group, consumer: Consumer, p: Pending, now: number): void {
    const token = ++this.#token;
    p.lease = { token, until: now + this.ackTimeoutMs };
    p.attempt++;
    const info = this.#info(group, p);
    const owns = () => p.lease !== null && p.lease.token === token;
    const control = createDelivery(info, {
      ack: async () => {
        if (!owns()) return;
        const i = group.pending.indexOf(p);
        if (i >= 0) group.pending.splice(i, 1);
        this.#schedulePump(group);
      },
      nack: async (delayMs) => {
        if (!owns()) return;
        p.lease = null;
        p.visibleAt = Date.now() + delayMs;
        this.#schedulePump(group);
      },
    });
    consumer.controls.set(control, p);
    consumer.pool.run(async () => {
      await Promise.resolve();
      await handleDelivery(consumer.handler, control.delivery, consumer.report);
      consumer.controls.delete(control);
    });
  }

  #info(group: Group, p: Pending): DeliveryInfo {
    return decodeArrival(
      { topic: group.topic, group: group.name, attempt: p.attempt, brokerId: String(p.entry.seq) },
      () => decodeStructured(p.entry.text, { maxMessageBytes: this.maxMessageBytes }),
      () => ({ key: p.entry.key, headers: {}, body: new TextEncoder().encode(p.entry.text) }),
    );
  }
}

class InMemoryPublisher implements Publisher {
  readonly #broker: InMemoryBroker;
  #closed: Promise<void> | undefined;

  constructor(broker: InMemoryBroker) {
    this.#broker = broker;
  }

  async publish(topic: string, messages: readonly Message[]): Promise<void> {
    if (this.#closed !== undefined) throw new ClosedError('in-memory publisher');
    validateTopic(topic);
    this.#broker.publishEncoded(topic, messages);
  }

  close(): Promise<void> {
    this.#closed ??= Promise.resolve();
    return this.#closed;
  }
}

export class InMemorySubscriber implements Subscriber {
  readonly #broker: InMemoryBroker;
  readonly #report: ErrorReporter;
  readonly #subscriptions = new Set<InMemorySubscription>();
  #closed: Promise<void> | undefined;

  constructor(broker: InMemoryBroker, report: ErrorReporter) {
    this.#broker = broker;
    this.#report = report;
  }

  async subscribe(topic: string, options: GroupSubscribeOptions, handler: DeliveryHandler): Promise<BrokerSubscription> {
    if (this.#closed !== undefined) throw new ClosedError('in-memory subscriber');
    validateTopic(topic);
    validateGroup(options.group);
    let refill = (): void => undefined;
    const consumer: Consumer = {
      pool: new HandlerPool(concurrencyOf(options.concurrency), () => refill()),
      handler,
      controls: new Map(),
      report: this.#report,
      active: true,
    };
    const group = this.#broker.attach(topic, options, consumer);
    refill = () => this.#broker.refill(group);
    const sub = new InMemorySubscription(topic, options.group, (release) => this.#broker.detach(group, consumer, release), consumer);
    return trackSubscription(this.#subscriptions, sub, options.signal);
  }

  /** Test hook: the process died. Nothing is settled or released; leases run out and others get the messages. */
  crash(): void {
    this.#closed ??= Promise.resolve();
    for (const sub of this.#subscriptions) sub.crash();
  }

  close(options?: CloseOptions): Promise<void> {
    this.#closed ??= Promise.all([...this.#subscriptions].map((s) => s.close(options))).then(() => undefined);
    return this.#closed;
  }
}

class InMemorySubscription implements BrokerSubscription {
  readonly topic: string;
  readonly group: string;
  readonly closed: Promise<void>;
  readonly #detach: (release: boolean) => void;
  readonly #consumer: Consumer;
  #resolveClosed!: () => void;
  #closing: Promise<void> | undefined;

  constructor(topic: string, group: string, detach: (release: boolean) => void, consumer: Consumer) {
    this.topic = topic;
    this.group = group;
    this.#detach = detach;
    this.#consumer = consumer;
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
  }

  crash(): void {
    if (this.#closing !== undefined) return;
    this.#detach(false);
    this.#closing = Promise.resolve();
    this.#resolveClosed();
  }

  close(options?: CloseOptions): Promise<void> {
    this.#closing ??= (async () => {
      this.#consumer.active = false;
      await this.#consumer.pool.drain(options?.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS);
      this.#detach(true);
      this.#resolveClosed();
    })();
    return this.#closing;
  }
}

function positive(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) throw new InvalidOptionsError(`${name} must be a positive number; got ${String(value)}`);
  return value;
}
