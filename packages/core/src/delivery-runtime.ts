import { InvalidOptionsError, isMessageTooLargeError, isSchemaError, SchemaError, type CausewayError } from './errors.js';
import type { Delivery, DeliveryHandler, NackOptions, ReceivedEvent } from './message.js';
import type { DecodedMessage } from './wire-format.js';

/**
 * The parts every subscriber adapter shares: a delivery object whose first settle wins, a
 * bounded pool of running handlers that can be drained with a timeout, and the rule that an
 * unsettled delivery is acked when its handler returns and nacked when it throws.
 */
export type DeliveryInfo = {
  readonly topic: string;
  readonly group: string;
  readonly key: string;
  readonly attempt: number;
  readonly brokerId: string;
  readonly traceparent?: string;
  readonly tracestate?: string;
} & (
  | { readonly kind: 'event'; readonly event: ReceivedEvent }
  | {
      readonly kind: 'undecodable';
      readonly error: CausewayError;
      readonly raw: { readonly headers: Readonly<Record<string, string>>; readonly body: Uint8Array };
    }
);

/** What the broker says about a delivery, whatever its content. */
export interface DeliveryFacts {
  readonly topic: string;
  readonly group: string;
  readonly attempt: number;
  readonly brokerId: string;
}

/** What arrived, for a message that could not be decoded. */
export interface RawArrival {
  /** The partition key if the transport carried it readably, else ''. */
  readonly key: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
}

/**
 * Runs an adapter's decoder and turns the outcome into DeliveryInfo. Never throws: any failure
 * becomes `kind: 'undecodable'` carrying the reason (a SchemaError or MessageTooLargeError as
 * raised, anything else wrapped in a SchemaError) and what arrived, so the handler can
 * dead-letter it and the subscription keeps going.
 */
export function decodeArrival(facts: DeliveryFacts, decode: () => DecodedMessage, raw: () => RawArrival): DeliveryInfo {
  try {
    const m = decode();
    // One literal with every field: createDelivery copies it straight onto the delivery.
    return {
      topic: facts.topic,
      group: facts.group,
      attempt: facts.attempt,
      brokerId: facts.brokerId,
      kind: 'event',
      key: m.key,
      event: m.event,
      traceparent: m.traceparent,
      tracestate: m.tracestate,
    } as DeliveryInfo;
  } catch (cause) {
    const error = isSchemaError(cause) || isMessageTooLargeError(cause) ? (cause as CausewayError) : new SchemaError([`undecodable message: ${String(cause)}`], { cause });
    const arrived = raw();
    return { ...facts, kind: 'undecodable', key: arrived.key, error, raw: { headers: arrived.headers, body: arrived.body } };
  }
}

/** How an adapter settles one message with its broker. */
export interface SettleOps {
  ack(): Promise<void>;
  nack(delayMs: number): Promise<void>;
}

export interface DeliveryControl {
  readonly delivery: Delivery;
  /** After this, ack/nack do nothing (the subscription gave up on the handler; the broker will redeliver). */
  abandon(): void;
}

export function createDelivery(info: DeliveryInfo, ops: SettleOps): DeliveryControl {
  // The instance is its own control: no per-delivery closure beyond ack and nack.
  return new SettleOnce(info, ops);
}

/**
 * The delivery object: the info's fields copied onto a class instance (one hidden class for
 * every delivery: far cheaper than spreading into an object literal with a getter). ack and nack
 * are own arrow functions bound to this instance, so a delivery still settles itself when
 * middleware wraps it (Proxy, Object.create) or spreads it into a new object.
 */
class SettleOnce implements DeliveryControl {
  readonly topic: string;
  readonly group: string;
  readonly key: string;
  readonly attempt: number;
  readonly brokerId: string;
  readonly kind: DeliveryInfo['kind'];
  readonly event: ReceivedEvent | undefined;
  readonly error: CausewayError | undefined;
  readonly raw: { readonly headers: Readonly<Record<string, string>>; readonly body: Uint8Array } | undefined;
  readonly traceparent: string | undefined;
  readonly tracestate: string | undefined;
  readonly ack: () => Promise<void>;
  readonly nack: (options?: NackOptions) => Promise<void>;
  private state: 'open' | 'settled' | 'abandoned' = 'open';

  constructor(info: DeliveryInfo, ops: SettleOps) {
    this.topic = info.topic;
    this.group = info.group;
    this.key = info.key;
    this.attempt = info.attempt;
    this.brokerId = info.brokerId;
    this.kind = info.kind;
    this.event = info.kind === 'event' ? info.event : undefined;
    this.error = info.kind === 'undecodable' ? info.error : undefined;
    this.raw = info.kind === 'undecodable' ? info.raw : undefined;
    this.traceparent = info.traceparent;
    this.tracestate = info.tracestate;
    this.ack = () => {
      if (this.state !== 'open') return Promise.resolve();
      this.state = 'settled';
      return ops.ack();
    };
    this.nack = (options) => {
      const delayMs = options?.delayMs ?? 0;
      if (!Number.isFinite(delayMs) || delayMs < 0) {
        return Promise.reject(new InvalidOptionsError(`nack delayMs must be a finite number >= 0; got ${String(delayMs)}`));
      }
      if (this.state !== 'open') return Promise.resolve();
      this.state = 'settled';
      return ops.nack(Math.ceil(delayMs));
    };
  }

  get delivery(): Delivery {
    return this as unknown as Delivery;
  }

  /** True once ack or nack ran (an abandoned delivery reads as settled: nothing more can happen to it). */
  get settled(): boolean {
    return this.state !== 'open';
  }

  abandon(): void {
    if (this.state === 'open') this.state = 'abandoned';
  }
}

export type ErrorReporter = (error: unknown, context: string) => void;

/** Default reporter: adapter trouble (lost connections, failed acks) goes to stderr; handler throws do not. */
export const reportToStderr: ErrorReporter = (error, context) => {
  console.error(`[causeway] ${context}:`, error instanceof Error ? error.message : error);
};

/** Runs a handler on a delivery: ack when it returns unsettled, nack when it throws unsettled. */
export async function handleDelivery(handler: DeliveryHandler, delivery: Delivery, report: ErrorReporter): Promise<void> {
  let failed = false;
  try {
    await handler(delivery);
  } catch {
    // The handler's error is the consumer runtime's business (retry, dead-letter); here it means nack.
    failed = true;
  }
  if (delivery.settled) return;
  try {
    await (failed ? delivery.nack() : delivery.ack());
  } catch (error) {
    report(error, `${failed ? 'nack' : 'ack'} of ${delivery.topic}/${delivery.group} ${delivery.brokerId}`);
  }
}

/** Handlers running at once, bounded; drain() waits for them with a timeout. */
export class HandlerPool {
  readonly #limit: number;
  readonly #running = new Set<Promise<void>>();
  readonly #onFree: (() => void) | undefined;
  #roomWaiters: Array<() => void> = [];

  /** `onFree` runs each time a handler finishes and its slot is free again (push-style brokers refill from it). */
  constructor(limit: number, onFree?: () => void) {
    this.#limit = Math.max(1, Math.floor(limit));
    this.#onFree = onFree;
  }

  get size(): number {
    return this.#running.size;
  }

  get free(): number {
    return Math.max(0, this.#limit - this.#running.size);
  }

  /** Resolves when a slot is free. */
  async waitForRoom(): Promise<void> {
    while (this.#running.size >= this.#limit) await new Promise<void>((resolve) => this.#roomWaiters.push(resolve));
  }

  run(task: () => Promise<void>): void {
    const p = task().finally(() => {
      this.#running.delete(p);
      const waiters = this.#roomWaiters;
      this.#roomWaiters = [];
      for (const w of waiters) w();
      this.#onFree?.();
    });
    this.#running.add(p);
  }

  /** True when every handler finished within the timeout. */
  async drain(timeoutMs: number): Promise<boolean> {
    if (this.#running.size === 0) return true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const all = (async () => {
      while (this.#running.size > 0) await Promise.allSettled([...this.#running]);
      return true;
    })();
    const result = await Promise.race([all, timedOut]);
    clearTimeout(timer);
    return result;
  }
}

/**
 * What every Subscriber does with a new subscription: keeps it in `registry` until it has closed
 * (so Subscriber.close can close what is open), and closes it when `signal` aborts. The abort
 * listener is removed once the subscription closes, so a long-lived signal does not pin it.
 */
export function trackSubscription<S extends { readonly closed: Promise<void>; close(): Promise<void> }>(
  registry: Set<S>,
  subscription: S,
  signal: AbortSignal | undefined,
): S {
  registry.add(subscription);
  void subscription.closed.then(() => registry.delete(subscription));
  if (signal !== undefined) {
    const onAbort = (): void => void subscription.close();
    if (signal.aborted) onAbort();
    else {
      signal.addEventListener('abort', onAbort, { once: true });
      void subscription.closed.then(() => signal.removeEventListener('abort', onAbort));
    }
  }
  return subscription;
}

export const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;
export const DEFAULT_CONCURRENCY = 8;

/** Validates subscribe()'s concurrency option. */
export function concurrencyOf(value: number | undefined): number {
  const n = value ?? DEFAULT_CONCURRENCY;
  if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new InvalidOptionsError(`concurrency must be an integer 1-10000; got ${String(value)}`);
  return n;
}
