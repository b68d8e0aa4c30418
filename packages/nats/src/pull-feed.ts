import { AdapterError } from '@causeway/core';
import { createInbox, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';

/** What a PullFeed tells its owner. */
export interface PullFeedEvents {
  /** A message from the stream; it has been counted against `outstanding` already. */
  message(msg: Msg, delivery: AckSubjectInfo): void;
  /** A request ended without using all its credits (expired): the owner may ask again. */
  credits(): void;
  /** Requests were refused or lost: the owner checks the consumer, then asks again. */
  trouble(error: AdapterError): void;
}

export interface AckSubjectInfo {
  readonly deliveryCount: number;
  readonly streamSequence: number;
}

export interface PullFeedOptions {
  readonly stream: string;
  readonly consumer: string;
  /** How long one request stays open on the server; silence for a second longer means it was lost. */
  readonly expiresMs: number;
  /** The connection's inbox prefix, where the client has one configured. */
  readonly inboxPrefix?: string | undefined;
}

const NS_PER_MS = 1_000_000;

/**
 * The JetStream pull protocol for one durable consumer, over one inbox subscription that lives
 * as long as the subscription does. The owner asks for exactly as many messages as it has room
 * for (`request(n)`), so nothing piles up locally while its ack_wait runs; the client library's
 * `consume()` keeps pulling whatever the handlers' pace, and its `fetch()` opens a subscription
 * per batch, which costs more than the messages at small batches.
 *
 * Protocol (ADR-13, NATS 2.9+): a request `{batch, expires}` is published to
 * `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>` with our inbox as reply. Messages arrive with
 * a `$JS.ACK...` reply subject; status messages arrive without one: 408 request expired (with
 * `Nats-Pending-Messages` = what it did not deliver), 409 consumer deleted / limits / shutdown,
 * 100 idle heartbeat (not asked for). Every request ends with its last message or its 408, so
 * a request the server forgot (restart, lost connection) shows as silence past its expiry,
 * which the watchdog notices.
 *
 * A subscription must not leave a request open behind it: NATS 2.9 mishandles a redelivery that
 * finds only requests whose requester is gone: the message comes back later as if new, with
 * delivery count 1 (seen on 2.9.10; nats-server #5305/#5338 fixed it in 2.10, April 2024). So
 * `quiet()` lets the owner wait, still subscribed, until every request it sent has been served
 * or has expired.
 *
 * Acks and naks go out with a reply subject under the same inbox, and the server answers each
 * once it has processed it: `settle()` resolves then. (The client's `request()` would do the
 * same with a timer and two Error objects per call, which costs more than the ack itself.)
 */
export class PullFeed {
  readonly #nc: NatsConnection;
  readonly #options: PullFeedOptions;
  readonly #events: PullFeedEvents;
  readonly #inbox: string;
  readonly #settlePrefix: string;
  readonly #subject: string;
  readonly #sub: Subscription;
  readonly #watchdog: ReturnType<typeof setInterval>;
  readonly #silenceMs: number;
  readonly #settles = new Map<string, { readonly resolve: () => void; readonly reject: (error: Error) => void; readonly until: number }>();
  #nextSettle = 0;
  /** When the last request sent expires on the server (epoch ms). */
  #openUntil = 0;
  /** Outstanding was reset: a request may still be open although the count says 0. */
  #uncertain = false;
  #quietWaiters = new Set<() => void>();
  #outstanding = 0;
  #lastHeard = Date.now();
  #stopped = false;

  constructor(nc: NatsConnection, options: PullFeedOptions, events: PullFeedEvents) {
    this.#nc = nc;
    this.#options = options;
    this.#events = events;
    const base = createInbox(options.inboxPrefix);
    this.#inbox = `${base}.pull`;
    this.#settlePrefix = `${base}.ack.`;
    this.#subject = `$JS.API.CONSUMER.MSG.NEXT.${options.stream}.${options.consumer}`;
    this.#sub = nc.subscribe(`${base}.>`, { callback: (error, msg) => this.#receive(error, msg) });
    this.#silenceMs = options.expiresMs + 1_000;
    this.#watchdog = setInterval(() => this.#watch(), 500);
    this.#watchdog.unref?.();
  }

  /** Messages asked for and not yet received. */
  get outstanding(): number {
    return this.#outstanding;
  }

  /** Asks the server for up to `batch` more messages. */
  request(batch: number): void {
    if (this.#stopped || batch <= 0) return;
    const now = Date.now();
    if (this.#outstanding === 0) this.#lastHeard = now;
    this.#outstanding += batch;
    this.#openUntil = Math.max(this.#openUntil, now + this.#options.expiresMs);
    const body = JSON.stringify({ batch, expires: this.#options.expiresMs * NS_PER_MS });
    try {
      this.#nc.publish(this.#subject, body, { reply: this.#inbox });
    } catch (error) {
      this.#outstanding = Math.max(0, this.#outstanding - batch);
      this.#events.trouble(new AdapterError('nats', `pull request on ${this.#options.stream}/${this.#options.consumer} failed`, { cause: error }));
    }
  }

  /** Forgets every open request (they were lost); what they still deliver is handled as usual. */
  reset(): void {
    this.#outstanding = 0;
    this.#uncertain = true;
    this.#lastHeard = Date.now();
  }

  /** How long a request this feed sent may still be open on the server (0: none can be). */
  openForMs(): number {
    if (this.#outstanding === 0 && !this.#uncertain) return 0;
    const left = this.#openUntil - Date.now();
    if (left > 0) return left;
    this.#uncertain = false;
    return 0;
  }

  /** Resolves once no request of this feed can be open any more, or at the deadline (epoch ms). */
  quiet(deadline: number): Promise<void> {
    const wait = Math.min(this.openForMs(), deadline - Date.now());
    if (wait <= 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#quietWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, wait);
      this.#quietWaiters.add(done);
    });
  }

  #checkQuiet(): void {
    if (this.#quietWaiters.size === 0 || this.openForMs() > 0) return;
    for (const done of [...this.#quietWaiters]) done();
  }

  /**
   * Sends an ack or nak (`payload`) for the message whose ack subject is `reply`, and resolves
   * once the server confirms it; rejects after `timeoutMs` (the connection dropped, the
   * consumer is gone) or when the feed stops.
   */
  settle(reply: string, payload: string, timeoutMs: number): Promise<void> {
    if (this.#stopped) return Promise.reject(new AdapterError('nats', 'the subscription stopped before the settle was sent'));
    const token = (this.#nextSettle++).toString(36);
    return new Promise<void>((resolve, reject) => {
      this.#settles.set(token, { resolve, reject, until: Date.now() + timeoutMs });
      try {
        this.#nc.publish(reply, payload, { reply: this.#settlePrefix + token });
      } catch (error) {
        this.#settles.delete(token);
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
  }

  /** Unsubscribes; settles still waiting for their confirmation fail. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#watchdog);
    this.#sub.unsubscribe();
    for (const done of [...this.#quietWaiters]) done();
    this.#failSettles(() => true, 'the subscription stopped before the server confirmed it');
  }

  #failSettles(which: (until: number) => boolean, why: string): void {
    for (const [token, pending] of this.#settles) {
      if (!which(pending.until)) continue;
      this.#settles.delete(token);
      pending.reject(new AdapterError('nats', why));
    }
  }

  #receive(error: Error | null, msg: Msg): void {
    if (this.#stopped) return;
    if (error !== null) {
      this.#events.trouble(new AdapterError('nats', `pull subscription on ${this.#options.stream}/${this.#options.consumer} failed`, { cause: error }));
      return;
    }
    if (msg.subject.startsWith(this.#settlePrefix)) {
      const token = msg.subject.slice(this.#settlePrefix.length);
      const pending = this.#settles.get(token);
      this.#settles.delete(token);
      // 503: nobody answers the ack subject any more (the consumer was deleted).
      if (msg.headers?.code === 503) pending?.reject(new AdapterError('nats', 'no responders for the ack (the consumer is gone)'));
      else pending?.resolve();
      return;
    }
    this.#lastHeard = Date.now();
    const delivery = msg.reply === undefined || msg.reply === '' ? undefined : parseAckSubject(msg.reply);
    if (delivery !== undefined) {
      if (this.#outstanding > 0) this.#outstanding--;
      this.#events.message(msg, delivery);
      this.#checkQuiet();
      return;
    }
    const code = msg.headers?.code ?? 0;
    if (code === 100) return; // a heartbeat: the request is alive
    const left = msg.headers?.get('Nats-Pending-Messages') ?? '';
    const pending = left === '' ? Number.NaN : Number(left);
    if (Number.isFinite(pending)) this.#outstanding = Math.max(0, this.#outstanding - pending);
    else if (code !== 408 && code !== 404) this.#outstanding = 0; // which request it ended is unknown: forget them all
    this.#checkQuiet();
    if (code === 408 || code === 404) {
      this.#events.credits();
      return;
    }
    const description = msg.headers?.description ?? '';
    this.#events.trouble(new AdapterError('nats', `server answered the pull on ${this.#options.stream}/${this.#options.consumer} with ${code} ${description}`.trim()));
  }

  #watch(): void {
    if (this.#stopped) return;
    const now = Date.now();
    if (this.#settles.size > 0) this.#failSettles((until) => until <= now, 'no confirmation from the server within the settle timeout');
    if (this.#outstanding === 0) return;
    const silent = now - this.#lastHeard;
    if (silent <= this.#silenceMs) return;
    this.reset();
    this.#events.trouble(new AdapterError('nats', `no message or request timeout from ${this.#options.stream}/${this.#options.consumer} for ${silent} ms; pulling again`));
  }
}

/**
 * Reads the delivery facts from a JetStream ack subject:
 * `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>` (9 tokens), or with
 * `<domain>.<account hash>` after `ACK` and a trailing token (12 tokens, newer servers).
 */
export function parseAckSubject(subject: string): AckSubjectInfo | undefined {
  const t = subject.split('.');
  if (t[0] !== '$JS' || t[1] !== 'ACK') return undefined;
  const base = t.length === 9 ? 4 : t.length >= 11 ? 6 : -1;
  if (base < 0) return undefined;
  const deliveryCount = Number(t[base]);
  const streamSequence = Number(t[base + 1]);
  if (!Number.isSafeInteger(deliveryCount) || !Number.isSafeInteger(streamSequence)) return undefined;
  return { deliveryCount, streamSequence };
}
