import { InvalidOptionsError } from '../errors.js';
import { retryHorizonMs, type RetryPolicy } from './retry.js';

/** How long the inbox ledger remembers a handled event by default: 7 days. */
export const DEFAULT_DEDUP_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;

/**
 * Checks a dedup ledger's retention window against the retry policy of its consumer and returns
 * it. The window is the guarantee: a duplicate arriving after its key was cleaned up is applied
 * again, so the window must outlast every redelivery retry() can cause (and manual replays;
 * pick a window well past the horizon). Throws InvalidOptionsError naming both figures.
 */
export function checkRetention(windowMs: number, policy: RetryPolicy = {}): number {
  if (!Number.isInteger(windowMs) || windowMs < 1) {
    throw new InvalidOptionsError(`dedup retention window must be an integer number of milliseconds >= 1; got ${String(windowMs)}`);
  }
  const horizon = retryHorizonMs(policy);
  if (windowMs < horizon) {
    throw new InvalidOptionsError(
      `dedup retention window of ${windowMs} ms is shorter than the retry horizon of ${horizon} ms ` +
        `(the longest time retry() keeps redelivering a message under this policy); a retry arriving after the window would be applied twice`,
    );
  }
  return windowMs;
}
