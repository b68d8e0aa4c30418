import type { LogPosition, RecordedEvent } from './envelope.js';
import { CausewayError, InvalidOptionsError } from './errors.js';
import { tenantIdProblem } from './names.js';

/**
 * Writes one event's effect on the read model with the transaction handle it is given (SQL
 * stores: an executor bound to the batch's transaction). It must write through `tx` only: a
 * write made any other way is not rolled back with the batch and breaks exactly-once.
 */
export type ProjectionHandler<TTx = unknown> = (event: RecordedEvent, tx: TTx) => Promise<void>;

/**
 * Writes the effect of several events at once (typically one multi-row statement over arrays:
 * `INSERT ... SELECT * FROM unnest($1::uuid[], $2::text[]) ...`), through `tx` only.
 *
 * `events` are in log order and all of a type listed in `batchTypes`. Where they come from is not
 * the handler's business: a runner batch, one append (inline), one broker delivery, or a single
 * event when the error policy isolates a failing event. So applying a list must leave the read
 * model as applying each of its events alone, in order, would (a split list gives the same result).
 */
export type ProjectionBatchHandler<TTx = unknown> = (events: readonly RecordedEvent[], tx: TTx) => Promise<void>;

/**
 * A read model fed from the global log.
 *
 * Exactly-once here means: each event of the log changes the read model once, because the
 * handlers' writes and the checkpoint move commit in one transaction (or neither does). A crash
 * or a stop between batches replays nothing twice and skips nothing. It does not cover side
 * effects outside that transaction (HTTP calls, other databases): those are at-least-once.
 *
 * The checkpoint is the log position of the last event whose effect is committed, keyed by
 * (name, version[, tenant]). Events without a handler still move it, so `waitFor(position)` works
 * for any position. A new `version` starts again from the log's beginning with its own checkpoint
 * (its own tables too, by convention), which is what a blue/green rebuild builds on.
 *
 * Per-event `handlers` and `applyBatch` may be mixed; log order is kept across them: a batch is
 * cut into runs of consecutive `batchTypes` events (one `applyBatch` call each), with each
 * handled event applied alone between runs. Events of neither kind are passed over and do not cut
 * a run. So a projection whose every type is in `batchTypes` costs one call per batch.
 */
export interface Projection<TTx = unknown> {
  /** Stable identifier, 1 to 100 characters of [a-z0-9_.-]. */
  readonly name: string;
  /** Integer >= 1; bump it when the read model's shape or the handlers' meaning changes. */
  readonly version: number;
  /** One handler per event type, each event applied alone. Default none (then `applyBatch` is required). */
  readonly handlers?: Readonly<Record<string, ProjectionHandler<TTx>>>;
  /** The event types `applyBatch` covers; required with it, and none may also be in `handlers`. */
  readonly batchTypes?: readonly string[];
  /** Applies runs of `batchTypes` events in one call each. Default none. */
  readonly applyBatch?: ProjectionBatchHandler<TTx>;
}

/**
 * Where a projection's checkpoint is kept: one row per (name, version), or per (name, version,
 * tenant) when the projection is partitioned by tenant (each tenant then has its own runner,
 * lease and checkpoint).
 */
export interface ProjectionKey {
  readonly name: string;
  readonly version: number;
  /** The tenant partition; absent for a projection over every tenant. */
  readonly tenantId?: string;
}

/**
 * The checkpoint port. `load` reads outside any batch. `advance` runs inside the batch's
 * transaction, after `lock`: the pair makes a batch commit only from the position it read from,
 * so two runners of one projection cannot both apply a batch (the later one gets
 * CheckpointConflictError and its transaction rolls back).
 */
export interface CheckpointStore<TTx = unknown> {
  /** The committed checkpoint, created at the log's start when missing. */
  load(key: ProjectionKey): Promise<LogPosition>;
  /** Locks the checkpoint for the rest of `tx` and throws CheckpointConflictError unless it is at `expected`. */
  lock(tx: TTx, key: ProjectionKey, expected: LogPosition): Promise<void>;
  /** Moves the locked checkpoint to `to`, counting `applied` events. */
  advance(tx: TTx, key: ProjectionKey, to: LogPosition, applied: number): Promise<void>;
}

/** `projection "name" v2` or `projection "name" v2 tenant acme`, for messages and progress lines. */
export function projectionLabel(key: ProjectionKey): string {
  return `projection "${key.name}" v${key.version}${key.tenantId === undefined ? '' : ` tenant ${key.tenantId}`}`;
}

/** The checkpoint was not where this runner left it: another runner moved it. Nothing was committed. */
export class CheckpointConflictError extends CausewayError {
  readonly projection: string;
  readonly version: number;
  constructor(key: ProjectionKey, expected: string, actual: string) {
    super('CHECKPOINT_CONFLICT', `${projectionLabel(key)}: checkpoint is at ${actual}, expected ${expected} (another runner moved it)`);
    this.projection = key.name;
    this.version = key.version;
  }
}

const PROJECTION_NAME = /^[a-z0-9][a-z0-9_.-]{0,99}$/;

/** Checks a projection definition and returns it; throws InvalidOptionsError naming what is wrong. */
export function defineProjection<TTx>(projection: Projection<TTx>): Projection<TTx> {
  const problems: string[] = [];
  if (typeof projection.name !== 'string' || !PROJECTION_NAME.test(projection.name)) {
    problems.push(`name must match ${PROJECTION_NAME.source}; got ${JSON.stringify(projection.name)}`);
  }
  if (!Number.isInteger(projection.version) || projection.version < 1 || projection.version > 2 ** 31 - 1) {
    problems.push(`version must be an integer >= 1; got ${String(projection.version)}`);
  }
  const { handlers, applyBatch, batchTypes } = projection;
  let handled = 0;
  if (handlers !== undefined) {
    if (typeof handlers !== 'object' || handlers === null) {
      problems.push('handlers must be an object mapping event types to functions');
    } else {
      for (const [type, fn] of Object.entries(handlers)) {
        handled++;
        if (typeof fn !== 'function') problems.push(`handler for "${type}" must be a function`);
      }
    }
  }
  if (applyBatch !== undefined || batchTypes !== undefined) {
    if (typeof applyBatch !== 'function') problems.push('applyBatch must be a function when batchTypes is given');
    if (!Array.isArray(batchTypes) || batchTypes.length === 0) {
      problems.push('batchTypes must list at least one event type when applyBatch is given');
    } else {
      for (const type of batchTypes as readonly unknown[]) {
        if (typeof type !== 'string' || type.length === 0) problems.push(`batchTypes entries must be non-empty strings; got ${JSON.stringify(type)}`);
        else if (handlers !== undefined && handlers !== null && Object.hasOwn(handlers, type)) {
          problems.push(`event type "${type}" is in both handlers and batchTypes; give it one of them`);
        }
      }
      handled += batchTypes.length;
    }
  }
  if (handled === 0) problems.push('a projection needs at least one handler or an applyBatch with batchTypes');
  if (problems.length > 0) throw new InvalidOptionsError(`invalid projection: ${problems.join('; ')}`);
  return projection;
}

/** Checks a tenant partition id (the store's tenant id rule); throws InvalidOptionsError. */
export function validateProjectionTenant(tenantId: string | undefined): void {
  if (tenantId === undefined) return;
  const problem = tenantIdProblem(tenantId);
  if (problem !== null) throw new InvalidOptionsError(`projection tenantId: ${problem}`);
}
