import {
  ALL_TENANTS,
  ClosedError,
  HandlerError,
  InvalidOptionsError,
  TimeoutError,
  comparePositions,
  defineProjection,
  formatPosition,
  reportToStderr,
  type ErrorReporter,
  type EventStore,
  type LogPosition,
  type Projection,
  type ProjectionKey,
  type RecordedEvent,
} from '@causeway/core';
import { PostgresCheckpointStore } from './postgres-checkpoint-store.js';
import type { SqlDatabase, SqlExecutor } from './sql-executor.js';

export interface ProjectionRunnerOptions {
  /** The database holding the store, the checkpoint table and the read model's tables. */
  readonly db: SqlDatabase;
  /** The store whose global log feeds the projection (its gap-safe `subscribe`); it must live in `db`. */
  readonly store: Pick<EventStore, 'subscribe'>;
  /** Schema of the store and the checkpoint table (migration 4). Default 'causeway'. */
  readonly schema?: string;
  readonly projection: Projection<SqlExecutor>;
  /** Events per transaction, default 500. */
  readonly batchSize?: number;
  /** Fallback poll when no NOTIFY arrives, default 1000 ms. */
  readonly pollIntervalMs?: number;
  /** Told once when the runner stops on an error. Default: a line on stderr. */
  readonly onError?: ErrorReporter;
}

/**
 * An async projection over one store. One batch at a time, each in one transaction: lock the
 * checkpoint (it must be where this runner left it), run the handlers in log order with the
 * transaction's executor, move the checkpoint to the batch's last event, COMMIT. A throw anywhere
 * rolls the whole batch back and stops the runner (the error policy is "stop"; retry and
 * skip-and-record are not built yet); `done` rejects with the error, the checkpoint stays put,
 * and a new runner resumes from it.
 */
export interface ProjectionRunner {
  /** The committed checkpoint: every event up to here is in the read model. */
  readonly position: LogPosition;
  /** Events this runner moved the checkpoint past (handled or passed over). */
  readonly applied: number;
  /** Resolves when stopped; rejects with the error that stopped the runner. */
  readonly done: Promise<void>;
  /**
   * Read-your-writes: resolves once the checkpoint is at or past `position` (e.g. an append's
   * `position`). Rejects with TimeoutError after `timeoutMs`, or with the runner's error (or
   * ClosedError) if it stops first. Watches this runner only, not others in other processes.
   */
  waitFor(position: LogPosition, timeoutMs: number): Promise<void>;
  /** Finishes the batch in progress (commits or rolls it back), then stops. Idempotent. */
  stop(): Promise<void>;
}

interface Waiter {
  readonly target: LogPosition;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

/** Loads (or creates) the projection's checkpoint and starts reading the log after it. */
export async function createProjectionRunner(options: ProjectionRunnerOptions): Promise<ProjectionRunner> {
  const projection = defineProjection(options.projection);
  const { db, store } = options;
  const batchSize = options.batchSize ?? 500;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) {
    throw new InvalidOptionsError(`batchSize must be an integer from 1 to 10000; got ${String(batchSize)}`);
  }
  const report = options.onError ?? reportToStderr;
  const key: ProjectionKey = { name: projection.name, version: projection.version };
  const label = `projection "${key.name}" v${key.version}`;
  const checkpoints = new PostgresCheckpointStore(db, options.schema ?? 'causeway');
  let position = await checkpoints.load(key);
  let applied = 0;
  let ended: unknown = null;
  const waiters = new Set<Waiter>();

  const applyBatch = async (events: readonly RecordedEvent[]): Promise<void> => {
    const from = position;
    const to = (events[events.length - 1] as RecordedEvent).position;
    try {
      await db.transaction(async (tx) => {
        await checkpoints.lock(tx, key, from);
        for (const event of events) {
          if (!Object.hasOwn(projection.handlers, event.eventType)) continue;
          const handler = projection.handlers[event.eventType];
          try {
            await handler?.(event, tx);
          } catch (cause) {
            throw new HandlerError(
              `${label} failed on ${event.eventType} ${event.eventId} at ${formatPosition(event.position)}; the batch from ${formatPosition(from)} rolled back`,
              { cause },
            );
          }
        }
        await checkpoints.advance(tx, key, to, events.length);
      });
    } catch (error) {
      report(error, `${label} stopped`);
      throw error;
    }
    position = to;
    applied += events.length;
    for (const w of waiters) if (comparePositions(w.target, position) <= 0) settle(w, null);
  };

  const settle = (w: Waiter, error: unknown): void => {
    waiters.delete(w);
    clearTimeout(w.timer);
    if (error === null) w.resolve();
    else w.reject(error);
  };

  const subscription = store.subscribe(
    { tenantId: ALL_TENANTS, after: position, batchSize, ...(options.pollIntervalMs === undefined ? {} : { pollIntervalMs: options.pollIntervalMs }) },
    applyBatch,
  );
  const finish = (error: unknown): void => {
    ended = error;
    for (const w of waiters) settle(w, error);
  };
  subscription.done.then(() => finish(new ClosedError(label)), finish);

  return {
    get position() {
      return position;
    },
    get applied() {
      return applied;
    },
    done: subscription.done,
    waitFor(target, timeoutMs) {
      if (comparePositions(target, position) <= 0) return Promise.resolve();
      if (ended !== null) return Promise.reject(ended);
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          settle(waiter, new TimeoutError(`${label} did not reach ${formatPosition(target)} within ${timeoutMs} ms (at ${formatPosition(position)})`));
        }, timeoutMs);
        const waiter: Waiter = { target, resolve, reject, timer };
        waiters.add(waiter);
      });
    },
    stop: () => subscription.stop(),
  };
}
