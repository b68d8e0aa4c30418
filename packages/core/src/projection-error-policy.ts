import { InvalidOptionsError } from './errors.js';

/**
 * What a projection runner does when applying events fails.
 *
 * 1. The batch is retried as a whole, `retries` times, with exponential backoff and full jitter
 *    (transient trouble: a deadlock, a dropped connection, a serialization failure).
 * 2. If it still fails and the failing event is not known (an `applyBatch` run of several events,
 *    a database error) or the policy is skip-and-record, the batch is applied one event per
 *    transaction to find the culprit; the events before it are committed. The culprit gets
 *    `retries` retries of its own.
 * 3. Then `onFailure`: 'stop' ends the runner with the error (its checkpoint stays just before the
 *    failing event or batch, and a fixed runner resumes there); 'skip-and-record' writes the event
 *    and the error to the audit table in the transaction that moves the checkpoint past it, and
 *    goes on. Nothing is ever skipped without that record.
 *
 * Losing the lease or the checkpoint (another runner) is never retried: the runner stands by.
 */
export interface ProjectionErrorPolicy {
  /** Retries of a failing batch, and of a failing event alone. Default 3. */
  readonly retries?: number;
  /** Delay before the first retry; doubles per retry (jittered). Default 100 ms. */
  readonly baseDelayMs?: number;
  /** Longest delay between retries. Default 5,000 ms. */
  readonly maxDelayMs?: number;
  /** After the retries: 'stop' (default) or 'skip-and-record'. A rebuild always uses 'stop'. */
  readonly onFailure?: 'stop' | 'skip-and-record';
}

export type ResolvedErrorPolicy = Required<ProjectionErrorPolicy>;

export const DEFAULT_PROJECTION_ERROR_POLICY: ResolvedErrorPolicy = Object.freeze({
  retries: 3,
  baseDelayMs: 100,
  maxDelayMs: 5_000,
  onFailure: 'stop',
});

/** Fills in the defaults; throws InvalidOptionsError naming each bad field. */
export function resolveErrorPolicy(policy: ProjectionErrorPolicy = {}): ResolvedErrorPolicy {
  const resolved: ResolvedErrorPolicy = { ...DEFAULT_PROJECTION_ERROR_POLICY, ...withoutUndefined(policy) };
  const problems: string[] = [];
  if (!Number.isInteger(resolved.retries) || resolved.retries < 0 || resolved.retries > 100) {
    problems.push(`retries must be an integer from 0 to 100; got ${String(resolved.retries)}`);
  }
  if (!Number.isInteger(resolved.baseDelayMs) || resolved.baseDelayMs < 0) problems.push(`baseDelayMs must be an integer >= 0; got ${String(resolved.baseDelayMs)}`);
  if (!Number.isInteger(resolved.maxDelayMs) || resolved.maxDelayMs < resolved.baseDelayMs) {
    problems.push(`maxDelayMs must be an integer >= baseDelayMs; got ${String(resolved.maxDelayMs)}`);
  }
  if (resolved.onFailure !== 'stop' && resolved.onFailure !== 'skip-and-record') {
    problems.push(`onFailure must be 'stop' or 'skip-and-record'; got ${JSON.stringify(resolved.onFailure)}`);
  }
  if (problems.length > 0) throw new InvalidOptionsError(`invalid projection error policy: ${problems.join('; ')}`);
  return resolved;
}

function withoutUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
