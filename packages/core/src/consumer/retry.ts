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

/**
 * Where a message is retried. A handler error becomes a nack: at once for the first `immediate`
 * attempts, then with exponential backoff and jitter as a delayed nack, so the message waits
 * in the broker, not in this process. The attempt number is the broker's (`delivery.attempt`),
 * never a counter in memory, so the policy holds across restarts and consumers. At
 * `maxAttempts`, or for a permanent failure, the error goes on up (to deadLetter()).
 */
export function retry(policy: RetryPolicy = {}): Middleware {
  const immediate = count(policy.immediate ?? 3, 'immediate', 1);
  const maxAttempts = count(policy.maxAttempts ?? 10, 'maxAttempts', 1);
  const baseMs = count(policy.baseDelayMs ?? 1_000, 'baseDelayMs', 0);
  const maxMs = count(policy.maxDelayMs ?? 300_000, 'maxDelayMs', 0);
  const random = policy.random ?? Math.random;
  return (next) =>
    async function retrying(delivery) {
      try {
        await next(delivery);
      } catch (error) {
        if (isPermanentFailure(error) || delivery.settled) throw error;
        if (delivery.attempt >= maxAttempts) throw new RetriesExhaustedError(delivery.attempt, error);
        const delayMs = delivery.attempt < immediate ? 0 : backoffDelay(delivery.attempt - immediate, baseMs, maxMs, random);
        await delivery.nack({ delayMs });
      }
    };
}

/** The delay retry() asks for after a failed attempt (for docs, dashboards and tests). */
export function retryDelay(attempt: number, policy: RetryPolicy = {}): number {
  const immediate = policy.immediate ?? 3;
  if (attempt < immediate) return 0;
  return backoffDelay(attempt - immediate, policy.baseDelayMs ?? 1_000, policy.maxDelayMs ?? 300_000, policy.random ?? Math.random);
}

function count(value: number, name: string, min: number): number {
  if (!Number.isInteger(value) || value < min) throw new InvalidOptionsError(`retry ${name} must be an integer >= ${min}; got ${String(value)}`);
  return value;
}
