import { createDelivery, reportToStderr, type ErrorReporter } from '../delivery-runtime.js';
import { InvalidOptionsError } from '../errors.js';
import type { Delivery, DeliveryHandler, ReceivedEvent } from '../message.js';
import { fingerprint } from './failures.js';

/** A message a replay worker has claimed: a dead letter an operator asked to replay, or a message parked in sequenced mode. */
export interface ReplayItem {
  readonly kind: 'dead-letter' | 'parked';
  /** The store's id for it (a decimal string). */
  readonly id: string;
  /** Proves the claim when settling: once a claim's lease ran out and another worker took the item, the old claim settles nothing. */
  readonly claim: string;
  readonly topic: string;
  readonly group: string;
  readonly key: string;
  /** The attempt the replayed delivery carries: the failures so far + 1, so retry() counts on from where it stopped. */
  readonly attempt: number;
  readonly event: ReceivedEvent;
}

/** The error of a failed replay, as the store records it. */
export interface ReplayError {
  readonly errorClass: string;
  readonly errorMessage: string;
  readonly fingerprint: string;
  readonly stack?: string;
}

/**
 * How the consumer path settled a replayed delivery. `acked` covers applied, duplicate, and
 * dead-lettered again (deadLetter() stores the new failure, then acks: the store tells these apart).
 */
export type ReplayOutcome =
  | { readonly kind: 'acked' }
  | { readonly kind: 'nacked'; readonly delayMs: number; readonly error?: ReplayError };

/**
 * Where a replay worker takes its work from (the PostgreSQL DLQ and key parking implement it).
 *
 * - claim: marks up to `limit` ready items of `consumer` as taken for `leaseMs` and returns them
 *   oldest first. An item whose lease ran out (its worker died) is ready again. Items of one key
 *   come one at a time where the store keeps key order (parked messages): the next only after
 *   the previous was settled acked.
 * - settle: records the outcome. For a dead letter: acked → `replayed` (unless the consumer path
 *   dead-lettered it again), nacked → back to `dead` with attempts + 1. For a parked message:
 *   acked → gone from parking, nacked → ready again after `delayMs`. A stale claim changes nothing.
 */
export interface DeadLetterReplaySource {
  claim(consumer: string, limit: number, leaseMs: number): Promise<readonly ReplayItem[]>;
  settle(item: ReplayItem, outcome: ReplayOutcome): Promise<void>;
}

export interface ReplayDeadLettersOptions {
  /** The consumer whose letters and parked messages this worker replays (as given to deadLetter()). */
  readonly consumer: string;
  /** Items claimed per source per pass. Default 16. */
  readonly batchSize?: number;
  /** Wait between passes that found nothing to do. Default 1,000 ms. */
  readonly pollMs?: number;
  /** How long a claim lasts before another worker may take the item. Default 60,000 ms; keep it above the slowest handler. */
  readonly leaseMs?: number;
  /** Aborting stops the worker like stop(). */
  readonly signal?: AbortSignal;
  /** Store failures while claiming or settling (the worker keeps going). Default: stderr. */
  readonly onError?: ErrorReporter;
  /** Called after each item is settled (metrics, logs, tests). */
  readonly onSettled?: (item: ReplayItem, outcome: ReplayOutcome) => void;
}

export interface DeadLetterReplayer {
  /**
   * Runs passes until one acks nothing (nothing ready, or only failures); resolves with the items
   * settled. Never overlaps the worker's own passes.
   */
  drain(): Promise<number>;
  /** Finishes the items already claimed (their claims would otherwise hold them for leaseMs), then stops. Idempotent. */
  stop(): Promise<void>;
  /** Resolves once stopped. */
  readonly stopped: Promise<void>;
}

const replayed = new WeakSet<object>();

/** True for a delivery made by a replay worker (sequenced() lets these through: they are the messages it held back). */
export function isReplayDelivery(delivery: Delivery): boolean {
  return replayed.has(delivery);
}

/**
 * The consumer process's replay worker: claims what operators asked to replay (and, in sequenced
 * mode, parked messages whose key is free again) and feeds each, as a delivery, to `handler`:
 * the SAME handler the subscription runs, middleware and all, so dedup, tenancy checks, retries
 * and dead-lettering apply as they do to a live message. Items run one at a time, in claim order.
 */
export function replayDeadLetters(
  sources: DeadLetterReplaySource | readonly DeadLetterReplaySource[],
  handler: DeliveryHandler,
  options: ReplayDeadLettersOptions,
): DeadLetterReplayer {
  const list: readonly DeadLetterReplaySource[] = Array.isArray(sources) ? sources : [sources as DeadLetterReplaySource];
  const batchSize = whole(options.batchSize ?? 16, 'batchSize', 1);
  const pollMs = whole(options.pollMs ?? 1_000, 'pollMs', 1);
  const leaseMs = whole(options.leaseMs ?? 60_000, 'leaseMs', 1);
  if (typeof options.consumer !== 'string' || options.consumer === '') throw new InvalidOptionsError('replayDeadLetters needs the consumer name');
  const report = options.onError ?? reportToStderr;

  let stopping = false;
  let wake: (() => void) | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let tail: Promise<unknown> = Promise.resolve();
  // Passes run one after another: the loop's and any drain() caller's.
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = tail.then(fn, fn);
    tail = run.catch(() => undefined);
    return run;
  };

  // Returns [settled, acked]: drain() goes on only while passes make progress, so an item that
  // keeps failing waits for the next poll instead of looping hot.
  const pass = async (): Promise<[number, number]> => {
    let done = 0;
    let acked = 0;
    for (const source of list) {
      if (stopping) break;
      let items: readonly ReplayItem[];
      try {
        items = await source.claim(options.consumer, batchSize, leaseMs);
      } catch (error) {
        report(error, `replay claim for consumer ${options.consumer}`);
        continue;
      }
      // A claimed item is always run and settled, even while stopping: its claim would otherwise hold it for leaseMs.
      for (const item of items) {
        const outcome = await replayOne(item, handler);
        try {
          await source.settle(item, outcome);
        } catch (error) {
          report(error, `settling replay of ${item.kind} ${item.id}`);
          continue;
        }
        try {
          options.onSettled?.(item, outcome);
        } catch (error) {
          report(error, 'replay onSettled callback');
        }
        done++;
        if (outcome.kind === 'acked') acked++;
      }
    }
    return [done, acked];
  };

  const drain = (): Promise<number> =>
    serial(async () => {
      let total = 0;
      for (;;) {
        const [n, acked] = await pass();
        total += n;
        if (acked === 0 || stopping) return total;
      }
    });

  const stopped = (async () => {
    while (!stopping) {
      await drain();
      if (stopping) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, pollMs);
      });
      wake = null;
    }
    await tail;
  })();

  const stop = async (): Promise<void> => {
    stopping = true;
    clearTimeout(timer);
    wake?.();
    await stopped;
  };
  if (options.signal?.aborted) void stop();
  else options.signal?.addEventListener('abort', () => void stop(), { once: true });

  return { drain, stop, stopped };
}

/** Runs one item through the handler as a delivery; settled as a subscription would (ack on return, nack on throw). */
async function replayOne(item: ReplayItem, handler: DeliveryHandler): Promise<ReplayOutcome> {
  let outcome: ReplayOutcome | undefined;
  const { delivery } = createDelivery(
    { topic: item.topic, group: item.group, key: item.key, attempt: item.attempt, brokerId: `${item.kind}:${item.id}`, kind: 'event', event: item.event },
    {
      ack: async () => {
        outcome = { kind: 'acked' };
      },
      nack: async (delayMs) => {
        outcome = { kind: 'nacked', delayMs };
      },
    },
  );
  replayed.add(delivery);
  try {
    await handler(delivery);
    if (!delivery.settled) await delivery.ack();
  } catch (error) {
    if (!delivery.settled) await delivery.nack();
    if (outcome?.kind === 'nacked' && outcome.error === undefined) outcome = { ...outcome, error: describe(error) };
  }
  return outcome ?? { kind: 'nacked', delayMs: 0 };
}

function describe(error: unknown): ReplayError {
  const e = error instanceof Error ? error : new Error(String(error));
  const described = { errorClass: e.constructor.name, errorMessage: e.message, fingerprint: fingerprint(e) };
  return e.stack === undefined ? described : { ...described, stack: e.stack };
}

function whole(value: number, name: string, min: number): number {
  if (!Number.isInteger(value) || value < min) throw new InvalidOptionsError(`replayDeadLetters ${name} must be an integer >= ${min}; got ${String(value)}`);
  return value;
}
