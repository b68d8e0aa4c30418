import type { LogPosition, RecordedEvent } from './envelope.js';
import { CausewayError, InvalidOptionsError } from './errors.js';

/**
 * Writes one event's effect on the read model with the transaction handle it is given (SQL
 * stores: an executor bound to the batch's transaction). It must write through `tx` only: a
 * write made any other way is not rolled back with the batch and breaks exactly-once.
 */
export type ProjectionHandler<TTx = unknown> = (event: RecordedEvent, tx: TTx) => Promise<void>;

/**
 * A read model fed from the global log.
 *
 * Exactly-once here means: each event of the log changes the read model once, because the
 * handlers' writes and the checkpoint move commit in one transaction (or neither does). A crash
 * or a stop between batches replays nothing twice and skips nothing. It does not cover side
 * effects outside that transaction (HTTP calls, other databases): those are at-least-once.
 *
 * The checkpoint is the log position of the last event whose effect is committed, keyed by
 * (name, version). Events without a handler still move it, so `waitFor(position)` works for any
 * position. A new `version` starts again from the log's beginning with its own checkpoint (its
 * own tables too, by convention), which is what a blue/green rebuild builds on.
 */
export interface Projection<TTx = unknown> {
  /** Stable identifier, 1 to 100 characters of [a-z0-9_.-]. */
  readonly name: string;
  /** Integer >= 1; bump it when the read model's shape or the handlers' meaning changes. */
  readonly version: number;
  /** One handler per event type; events of other types are passed over. */
  readonly handlers: Readonly<Record<string, ProjectionHandler<TTx>>>;
}

/** Where a projection's checkpoint is kept: one row per (name, version). */
export interface ProjectionKey {
  readonly name: string;
  readonly version: number;
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

/** The checkpoint was not where this runner left it: another runner moved it. Nothing was committed. */
export class CheckpointConflictError extends CausewayError {
  readonly projection: string;
  readonly version: number;
  constructor(key: ProjectionKey, expected: string, actual: string) {
    super(
      'CHECKPOINT_CONFLICT',
      `projection "${key.name}" v${key.version}: checkpoint is at ${actual}, expected ${expected} (another runner moved it)`,
    );
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
  const handlers = projection.handlers;
  if (typeof handlers !== 'object' || handlers === null || Object.keys(handlers).length === 0) {
    problems.push('handlers must map at least one event type to a function');
  } else {
    for (const [type, fn] of Object.entries(handlers)) {
      if (typeof fn !== 'function') problems.push(`handler for "${type}" must be a function`);
    }
  }
  if (problems.length > 0) throw new InvalidOptionsError(`invalid projection: ${problems.join('; ')}`);
  return projection;
}
