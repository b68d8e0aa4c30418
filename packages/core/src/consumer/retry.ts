import { backoffDelay } from '../backoff.js';
import { InvalidOptionsError } from '../errors.js';
import type { Middleware } from './handler-pipeline.js';
import { isPermanentFailure, RetriesExhaustedError } from './failures.js';

export interface RetryPolicy {
  /** Attempts (counting the first) that are redelivered at once. Default 3. */
  readonly immediate?: number;
  /** Give up after this many attempts: the error becomes RetriesExhaustedError (dead-letter it). Default 10. */
  readonly maxAttempts?: number;
  /** Backoff after the immediate tries: full jitter in [0, min(maxDelayMs, baseDelayMs * 2^n)]. Default 1,000 ms. */
  readonly baseDelayMs?: number;
  /** Default 300,000 ms (5 minutes). */
  readonly maxDelayMs?: number;
  /** Random source for the jitter (tests pass a fixed one). Default Math.random. */
  readonly random?: () => number;
}

/** A RetryPolicy with its defaults filled in and checked. */
interface ResolvedPolicy {
  readonly immediate: number;
  readonly maxAttempts: number;
  readonly baseMs: number;
  readonly maxMs: number;
  readonly random: () => number;
}

function resolve(policy: RetryPolicy): ResolvedPolicy {
  return {
    immediate: count(policy.immediate ?? 3, 'immediate', 1),
    maxAttempts: count(policy.maxAttempts ?? 10, 'maxAttempts', 1),
    baseMs: count(policy.baseDelayMs ?? 1_000, 'baseDelayMs', 0),
    maxMs: count(policy.maxDelayMs ?? 300_000, 'maxDelayMs', 0),
    random: policy.random ?? Math.random,
  };
}

/**
 * Where a message is retried. A handler error becomes a nack: at once for the first `immediate`
 * attempts, then with exponential backoff and jitter as a delayed nack, so the message waits
 * in the broker, not in this process. The attempt number is the broker's (`delivery.attempt`),
 * never a counter in memory, so the policy holds across restarts and consumers. At
 * `maxAttempts`, or for a permanent failure, the error goes on up (to deadLetter()).
 */
export function retry(policy: RetryPolicy = {}): Middleware {
  const p = resolve(policy);
  return (next) =>
    async function retrying(delivery) {
      try {
        await next(delivery);
      } catch (error) {
        if (isPermanentFailure(error) || delivery.settled) throw error;
        if (delivery.attempt >= p.maxAttempts) throw new RetriesExhaustedError(delivery.attempt, error);
        const delayMs = delivery.attempt < p.immediate ? 0 : backoffDelay(delivery.attempt - p.immediate, p.baseMs, p.maxMs, p.random);
        await delivery.nack({ delayMs });
      }
    };
}

/** The delay retry() asks for after a failed attempt (for docs, dashboards and tests). */
export function retryDelay(attempt: number, policy: RetryPolicy = {}): number {
  const p = resolve(policy);
  if (attempt < p.immediate) return 0;
  return backoffDelay(attempt - p.immediate, p.baseMs, p.maxMs, p.random);
}

/**
 * The longest time retry() can keep a message going, from its first attempt to its last: the
 * sum of the largest delay each backoff step may draw (jitter at its top), over every attempt
 * that is followed by another. Handler run time and broker latency come on top. A dedup window
 * shorter than this lets a late retry of an applied message through as new.
 */
export function retryHorizonMs(policy: RetryPolicy = {}): number {
  const p = resolve(policy);
  if (p.baseMs === 0) return 0;
  let total = 0;
  let attempt = p.immediate;
  for (; attempt < p.maxAttempts; attempt++) {
    const ceiling = backoffDelay(attempt - p.immediate, p.baseMs, p.maxMs, () => 1);
    if (ceiling >= p.maxMs) break;
    total += ceiling;
  }
  // Every step from here on is capped at maxDelayMs (no loop over a huge maxAttempts).
  return total + Math.max(0, p.maxAttempts - attempt) * p.maxMs;
}

function count(value: number, name: string, min: number): number {
  if (!Number.isInteger(value) || value < min) throw new InvalidOptionsError(`retry ${name} must be an integer >= ${min}; got ${String(value)}`);
  return value;
}
