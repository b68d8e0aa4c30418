import {
  ProjectionHandlerError,
  backoffDelay,
  formatPosition,
  projectionLabel,
  type LogPosition,
  type ProjectionApplier,
  type ProjectionKey,
  type RecordedEvent,
  type ResolvedErrorPolicy,
} from '@causeway/core';
import type { Lease } from './lease.js';
import type { PostgresCheckpointStore } from './postgres-checkpoint-store.js';
import { recordSkippedEvent } from './projection-skipped-events.js';
import type { SqlDatabase, SqlExecutor } from './sql-executor.js';

/** What one runner's batches need; built once per runner. */
export interface BatchContext {
  readonly db: SqlDatabase;
  readonly schema: string;
  readonly key: ProjectionKey;
  readonly checkpoints: PostgresCheckpointStore;
  readonly apply: ProjectionApplier<SqlExecutor>;
  readonly policy: ResolvedErrorPolicy;
  /** After each COMMIT: the new checkpoint, events moved past, and how many of them were skipped. */
  readonly committed: (to: LogPosition, moved: number, skipped: number) => void;
  readonly warn: (message: string) => void;
}

/** Errors that say "not yours any more" or "stop now": retrying cannot help. */
const FINAL_CODES = new Set(['LEASE_LOST', 'CHECKPOINT_CONFLICT', 'CLOSED']);
const isFinal = (e: unknown): boolean => FINAL_CODES.has((e as { code?: unknown } | null)?.code as string);

/**
 * Applies one batch from checkpoint `from` under the error policy (see ProjectionErrorPolicy):
 * whole-batch attempts, then one event per transaction when the culprit must be found, then stop
 * (throw) or skip-and-record. Each transaction: lock the checkpoint at its expected position,
 * apply, move the checkpoint, and last the lease's fence check, so the fence's row lock is held
 * only for the moment before COMMIT and a paused holder's late COMMIT fails it.
 * `signal` (stop or lease lost) ends waiting between attempts; its reason is thrown.
 */
export async function applyBatchWithPolicy(
  ctx: BatchContext,
  events: readonly RecordedEvent[],
  from: LogPosition,
  lease: Lease | null,
  signal: AbortSignal,
): Promise<void> {
  const commit = (list: readonly RecordedEvent[], at: LogPosition, skip?: { error: unknown; attempts: number }) =>
    ctx.db.transaction(async (tx) => {
      await ctx.checkpoints.lock(tx, ctx.key, at);
      if (skip === undefined) await ctx.apply(list, tx);
      else await recordSkippedEvent(tx, ctx.schema, ctx.key, list[0] as RecordedEvent, skip.error, skip.attempts);
      await ctx.checkpoints.advance(tx, ctx.key, (list[list.length - 1] as RecordedEvent).position, list.length);
      await lease?.check(tx);
    });
  const attempt = async (list: readonly RecordedEvent[], at: LogPosition): Promise<{ error: unknown; attempts: number } | null> => {
    for (let n = 0; ; n++) {
      if (signal.aborted) throw signal.reason;
      try {
        await commit(list, at);
        return null;
      } catch (error) {
        if (isFinal(error)) throw error;
        if (signal.aborted) throw signal.reason;
        if (n >= ctx.policy.retries) return { error, attempts: n + 1 };
        if (n === 0) ctx.warn(`${projectionLabel(ctx.key)}: ${list.length === 1 ? 'event' : `batch of ${list.length}`} from ${formatPosition(at)} failed, retrying up to ${ctx.policy.retries} times: ${message(error)}`);
        await sleep(backoffDelay(n, ctx.policy.baseDelayMs, ctx.policy.maxDelayMs), signal);
      }
    }
  };

  const whole = await attempt(events, from);
  if (whole === null) {
    ctx.committed((events[events.length - 1] as RecordedEvent).position, events.length, 0);
    return;
  }
  const culpritKnown = whole.error instanceof ProjectionHandlerError && whole.error.event !== null;
  if (ctx.policy.onFailure === 'stop' && (events.length === 1 || culpritKnown)) throw whole.error;

  // Find the culprit: one event per transaction, committing those that pass.
  let at = from;
  for (const event of events) {
    const failed = await attempt([event], at);
    if (failed !== null) {
      if (ctx.policy.onFailure === 'stop') throw failed.error;
      await commit([event], at, failed);
      ctx.warn(`${projectionLabel(ctx.key)}: skipped ${event.eventType} ${event.eventId} at ${formatPosition(event.position)} after ${failed.attempts} attempts (recorded in projection_skipped_events): ${message(failed.error)}`);
      ctx.committed(event.position, 1, 1);
    } else {
      ctx.committed(event.position, 1, 0);
    }
    at = event.position;
  }
}

function message(error: unknown): string {
  const cause = error instanceof Error && error.cause instanceof Error ? ` (${error.cause.message})` : '';
  return `${error instanceof Error ? error.message : String(error)}${cause}`;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
