import {
  ALL_TENANTS,
  ClosedError,
  InvalidOptionsError,
  LeaseLostError,
  TimeoutError,
  comparePositions,
  formatPosition,
  isClosedError,
  isLeaseLostError,
  projectionApplier,
  projectionLabel,
  reportToStderr,
  resolveErrorPolicy,
  validateProjectionTenant,
  type ErrorReporter,
  type EventStore,
  type LogPosition,
  type Projection,
  type ProjectionErrorPolicy,
  type ProjectionKey,
  type ProjectionLagHook,
  type RecordedEvent,
} from '@causeway/core';
import { acquireLease, tryAcquireLease, type Lease, type LeaseOptions } from './lease.js';
import { PostgresCheckpointStore } from './postgres-checkpoint-store.js';
import { applyBatchWithPolicy, type BatchContext } from './projection-batch.js';
import { projectionLeaseName } from './projection-health.js';
import { watchProjectionLag } from './projection-lag-watch.js';
import { schemaNames } from './schema.js';
import type { SqlDatabase, SqlExecutor } from './sql-executor.js';

/** An event named by its stream and version (an append's `nextExpectedVersion`), for waitFor. */
export interface StreamVersion {
  readonly tenantId: string;
  readonly streamId: string;
  readonly version: number;
}

export interface ProjectionRunnerOptions {
  /** The database holding the store, the checkpoint table and the read model's tables. */
  readonly db: SqlDatabase;
  /** The store whose global log feeds the projection (its gap-safe `subscribe`); it must live in `db`. */
  readonly store: Pick<EventStore, 'subscribe'>;
  /** Schema of the store, the checkpoint table (migrations 4, 8) and the leases (migration 5). Default 'causeway'. */
  readonly schema?: string;
  readonly projection: Projection<SqlExecutor>;
  /** Events per transaction, default 500. */
  readonly batchSize?: number;
  /** Fallback poll when no NOTIFY arrives, default 1000 ms. */
  readonly pollIntervalMs?: number;
  /** Told once when the runner stops on an error. Default: a line on stderr. */
  readonly onError?: ErrorReporter;
  /**
   * Partition by tenant: this runner projects only this tenant's events, with its own checkpoint
   * and lease (one runner per (projection, tenant)). Default: one partition over every tenant.
   */
  readonly tenantId?: string;
  /**
   * One active runner per projection (and partition): the runner holds the lease
   * `projection:<name>:<version>[:<tenant>]`, checks its fence in every batch transaction, and
   * stands by (retrying the lease) while another runner holds it. Default: on, with the lease's
   * own defaults (ttl 10 s, retry every 500 ms). `false`: no lease; two runners then race on the
   * checkpoint and the later one stops with CheckpointConflictError.
   */
  readonly lease?: false | Pick<LeaseOptions, 'holder' | 'ttlMs' | 'retryMs'>;
  /** What a failing batch leads to (retries, then stop or skip-and-record). Default: 3 retries, then stop. */
  readonly errorPolicy?: ProjectionErrorPolicy;
  /** Metric hook: the projection's lag, measured every `lagIntervalMs` and shortly after each batch while this runner is active. Default none. */
  readonly onLag?: ProjectionLagHook;
  /** How often lag is measured and the read horizon watched while active. Default 1000 ms. */
  readonly lagIntervalMs?: number;
  /**
   * Server only: when waiting events stay unreadable this long because an older transaction is
   * still open, name that transaction's process (pid, application_name, start times) in a warning.
   * Default 10,000 ms; 0 turns the watch off.
   */
  readonly horizonWarnAfterMs?: number;
  /** Warnings that do not stop the runner (lease lost, retries, skipped events, a held read horizon). Default: stderr. */
  readonly onWarning?: (message: string) => void;
}

/**
 * An async projection over one store. One batch at a time, each in one transaction: lock the
 * checkpoint (it must be where this runner left it), apply the events in log order with the
 * transaction's executor (handlers and/or applyBatch), move the checkpoint to the batch's last
 * event, check the lease's fence, COMMIT. A failing batch goes through the error policy; when the
 * policy says stop, `done` rejects with the error, the checkpoint stays put, and a new runner
 * resumes from it.
 *
 * With the lease (default) several runners of one projection may be started (in several
 * processes): one is active, the others stand by and take over when it stops, dies or loses its
 * lease. A runner that loses its lease stops applying (its open batch cannot commit) and stands by.
 */
export interface ProjectionRunner {
  /** 'active' while it holds the lease and applies; 'standby' while another runner does; then 'stopped'. */
  readonly state: 'standby' | 'active' | 'stopped';
  /** The committed checkpoint: every event up to here is in the read model. Read from the table while on standby. */
  readonly position: LogPosition;
  /** Events this runner moved the checkpoint past (handled, passed over or skipped). */
  readonly applied: number;
  /** Events this runner skipped and recorded under the skip-and-record policy. */
  readonly skipped: number;
  /** Resolves when stopped; rejects with the error that stopped the runner. */
  readonly done: Promise<void>;
  /**
   * Read-your-writes: resolves once the checkpoint is at or past `position` (e.g. an append's
   * `position`). Rejects with TimeoutError after `timeoutMs`, or with the runner's error (or
   * ClosedError) if it stops first. A standby runner watches the stored checkpoint. Given
   * `{ tenantId, streamId, version }` instead, it waits for that event's position (the event
   * must be committed; InvalidOptionsError names it otherwise).
   */
  waitFor(position: LogPosition | StreamVersion, timeoutMs: number): Promise<void>;
  /** Finishes the batch in progress (commits or rolls it back), gives up the lease, then stops. Idempotent. */
  stop(): Promise<void>;
}

interface Waiter {
  readonly target: LogPosition;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

const warnToStderr = (message: string): void => console.error(`[causeway] ${message}`);

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Validates the options, loads the checkpoint, tries the lease once, and starts (active or on standby). */
export async function createProjectionRunner(options: ProjectionRunnerOptions): Promise<ProjectionRunner> {
  const projection = options.projection;
  const apply = projectionApplier(projection);
  const { db, store } = options;
  const schema = options.schema ?? 'causeway';
  const batchSize = options.batchSize ?? 500;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) {
    throw new InvalidOptionsError(`batchSize must be an integer from 1 to 10000; got ${String(batchSize)}`);
  }
  validateProjectionTenant(options.tenantId);
  const lagIntervalMs = options.lagIntervalMs ?? 1000;
  if (!Number.isInteger(lagIntervalMs) || lagIntervalMs < 10) throw new InvalidOptionsError(`lagIntervalMs must be an integer >= 10; got ${String(lagIntervalMs)}`);
  const horizonWarnAfterMs = options.horizonWarnAfterMs ?? 10_000;
  if (!Number.isInteger(horizonWarnAfterMs) || horizonWarnAfterMs < 0) {
    throw new InvalidOptionsError(`horizonWarnAfterMs must be an integer >= 0; got ${String(horizonWarnAfterMs)}`);
  }
  const policy = resolveErrorPolicy(options.errorPolicy);
  const report = options.onError ?? reportToStderr;
  const warn = options.onWarning ?? warnToStderr;
  const key: ProjectionKey = { name: projection.name, version: projection.version, ...(options.tenantId === undefined ? {} : { tenantId: options.tenantId }) };
  const label = projectionLabel(key);
  const checkpoints = new PostgresCheckpointStore(db, schema);
  const leaseOptions: LeaseOptions | null =
    options.lease === false ? null : { db, schema, name: projectionLeaseName(key), ...(options.lease ?? {}) };

  let lease: Lease | null = leaseOptions === null ? null : await tryAcquireLease(leaseOptions);
  let position: LogPosition;
  try {
    position = await checkpoints.load(key);
  } catch (error) {
    await lease?.release();
    throw error;
  }
  let state: ProjectionRunner['state'] = leaseOptions === null || lease !== null ? 'active' : 'standby';
  let applied = 0;
  let skipped = 0;
  let ended: unknown = null;
  const waiters = new Set<Waiter>();
  const stopping = new AbortController();

  const moved = (to: LogPosition): void => {
    if (comparePositions(to, position) > 0) position = to;
    for (const w of waiters) if (comparePositions(w.target, position) <= 0) settle(w, null);
  };
  const settle = (w: Waiter, error: unknown): void => {
    waiters.delete(w);
    clearTimeout(w.timer);
    if (error === null) w.resolve();
    else w.reject(error);
  };
  const ctx: BatchContext = {
    db, schema, key, checkpoints, apply, policy, warn,
    committed(to, count, skips) {
      applied += count;
      skipped += skips;
      moved(to);
    },
  };

  /** One term as the active runner: subscribe from the checkpoint until stopped, failed or the lease is lost. */
  const activeTerm = async (held: Lease | null): Promise<'stopped' | 'lost'> => {
    const stopOrLost = held === null ? stopping.signal : AbortSignal.any([stopping.signal, held.signal]);
    const reason = (): Error => (held?.signal.aborted ? new LeaseLostError(held.name, held.fence, String(held.signal.reason)) : new ClosedError(label));
    const batchSignal = new AbortController();
    stopOrLost.addEventListener('abort', () => batchSignal.abort(reason()), { once: true });
    const lag = watchProjectionLag({ db, schema, key, label, intervalMs: lagIntervalMs, horizonWarnAfterMs, warn, ...(options.onLag ? { onLag: options.onLag } : {}) });
    const subscription = store.subscribe(
      { tenantId: key.tenantId ?? ALL_TENANTS, after: position, batchSize, ...(options.pollIntervalMs === undefined ? {} : { pollIntervalMs: options.pollIntervalMs }) },
      async (events: readonly RecordedEvent[]) => {
        if (held?.signal.aborted) throw reason();
        await applyBatchWithPolicy(ctx, events, position, held, batchSignal.signal);
        lag.poke();
      },
    );
    const onAbort = (): void => void subscription.stop();
    stopOrLost.addEventListener('abort', onAbort, { once: true });
    let outcome: 'stopped' | 'lost' = 'stopped';
    try {
      await subscription.done;
    } catch (error) {
      // A stop ends waiting batches with ClosedError; a lost lease fails the batch's fence check.
      if (stopping.signal.aborted && (isClosedError(error) || isLeaseLostError(error))) outcome = 'stopped';
      else if (isLeaseLostError(error)) outcome = 'lost';
      else throw error;
    } finally {
      stopOrLost.removeEventListener('abort', onAbort);
      lag.stop();
    }
    return outcome === 'stopped' && held?.signal.aborted === true && !stopping.signal.aborted ? 'lost' : outcome;
  };

  const run = async (): Promise<void> => {
    try {
      for (;;) {
        if (leaseOptions !== null && lease === null) {
          state = 'standby';
          try {
            lease = await acquireLease(leaseOptions, stopping.signal);
          } catch (error) {
            if (isClosedError(error) && stopping.signal.aborted) return;
            throw error;
          }
          position = await checkpoints.load(key);
        }
        if (stopping.signal.aborted) return;
        state = 'active';
        const outcome = await activeTerm(lease);
        if (outcome === 'stopped') return;
        warn(`${label} lost its lease (${String(lease?.signal.reason)}); standing by`);
        await lease?.release();
        lease = null;
        // Whoever took the lease over is retrying every retryMs: let it have the next turn rather
        // than grabbing the lease straight back (each flip would cost both runners a restart).
        await pause(2 * (leaseOptions?.retryMs ?? 500), stopping.signal);
      }
    } catch (error) {
      report(error, `${label} stopped`);
      throw error;
    } finally {
      state = 'stopped';
      await lease?.release();
    }
  };

  const done = run();
  done.catch(() => undefined);
  const finish = (error: unknown): void => {
    ended = error;
    for (const w of waiters) settle(w, error);
  };
  done.then(() => finish(new ClosedError(label)), finish);

  // A standby runner learns the checkpoint from the table, for waitFor and `position`.
  let polling: ReturnType<typeof setInterval> | null = null;
  const pollStored = (): void => {
    if (polling !== null) return;
    polling = setInterval(() => {
      if (waiters.size === 0 || state === 'stopped') {
        clearInterval(polling as ReturnType<typeof setInterval>);
        polling = null;
        return;
      }
      if (state === 'standby') void checkpoints.read(key).then((p) => p && moved(p), () => undefined);
    }, Math.min(200, Math.max(20, Math.floor((options.pollIntervalMs ?? 1000) / 10))));
  };

  const positionOf = async (at: StreamVersion): Promise<LogPosition> => {
    const { rows } = await db.query<{ tx: string; seq: string }>(
      `SELECT tx::text AS tx, seq::text AS seq FROM ${schemaNames(schema).schema}.events WHERE tenant_id = $1 AND stream_id = $2 AND stream_version = $3`,
      [at.tenantId, at.streamId, at.version],
    );
    const row = rows[0];
    if (row === undefined) {
      throw new InvalidOptionsError(`${label}: no committed event at version ${String(at.version)} of stream ${JSON.stringify(at.streamId)} (tenant ${JSON.stringify(at.tenantId)})`);
    }
    return { tx: BigInt(row.tx), seq: BigInt(row.seq) };
  };

  return {
    get state() {
      return state;
    },
    get position() {
      return position;
    },
    get applied() {
      return applied;
    },
    get skipped() {
      return skipped;
    },
    done,
    async waitFor(at, timeoutMs) {
      const target = 'streamId' in at ? await positionOf(at) : at;
      if (comparePositions(target, position) <= 0) return;
      if (ended !== null) return Promise.reject(ended);
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          settle(waiter, new TimeoutError(`${label} did not reach ${formatPosition(target)} within ${timeoutMs} ms (at ${formatPosition(position)})`));
        }, timeoutMs);
        const waiter: Waiter = { target, resolve, reject, timer };
        waiters.add(waiter);
        pollStored();
      });
    },
    async stop() {
      stopping.abort(new ClosedError(label));
      await done.catch(() => undefined);
    },
  };
}
