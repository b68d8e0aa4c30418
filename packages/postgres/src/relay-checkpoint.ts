import { CausewayError } from '@causeway/core';
import type { SchemaNames } from './schema.js';
import type { SqlExecutor } from './sql-executor.js';

/**
 * A relay's checkpoint (table `relay_checkpoints`, migration 6): the last position it published,
 * as text (xid8 and bigint travel as text on both drivers). Everything at or below it is sent.
 * Keys: 'outbox:<name>' for an outbox relay, 'log:<name>' for an event-log relay.
 */
export interface RelayPosition {
  readonly tx: string;
  readonly seq: string;
}

/** A subquery of one row (tx, seq): the checkpoint stored under key `$<param>`, or (0, 0). */
export function checkpointOf(names: SchemaNames, param: number): string {
  const s = names.schema;
  return `(SELECT coalesce((SELECT position_tx FROM ${s}.relay_checkpoints WHERE name = $${param}), '0'::xid8) AS tx,
    coalesce((SELECT position_seq FROM ${s}.relay_checkpoints WHERE name = $${param}), 0) AS seq)`;
}

/** Reads the checkpoint, creating it at (0, 0) the first time. */
export async function loadRelayCheckpoint(db: SqlExecutor, names: SchemaNames, key: string): Promise<RelayPosition> {
  const s = names.schema;
  const { rows } = await db.query<RelayPosition>(
    `WITH made AS (
       INSERT INTO ${s}.relay_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING RETURNING position_tx, position_seq
     )
     SELECT position_tx::text AS tx, position_seq::text AS seq FROM made
     UNION ALL SELECT position_tx::text, position_seq::text FROM ${s}.relay_checkpoints WHERE name = $1`,
    [key],
  );
  return rows[0] ?? { tx: '0', seq: '0' };
}

/** A checkpoint move: from where the holder left it to the last position it published. */
export interface RelayStep {
  readonly from: RelayPosition;
  readonly to: RelayPosition;
  readonly fence: string;
  readonly count: number;
}

/**
 * Moves the checkpoint from `from` to `to` inside the caller's (fenced) transaction. Throws a
 * CHECKPOINT_CONFLICT error when it is no longer at `from`: someone moved it without the lease.
 */
export async function advanceRelayCheckpoint(
  tx: SqlExecutor,
  names: SchemaNames,
  key: string,
  step: RelayStep,
): Promise<void> {
  const { rowCount } = await tx.query(
    `UPDATE ${names.schema}.relay_checkpoints
     SET position_tx = $4::text::xid8, position_seq = $5::bigint, fence = $6::bigint, published = published + $7, updated_at = clock_timestamp()
     WHERE name = $1 AND position_tx = $2::text::xid8 AND position_seq = $3::bigint`,
    [key, step.from.tx, step.from.seq, step.to.tx, step.to.seq, step.fence, step.count],
    `${names.raw}.rcadv`,
  );
  if (rowCount !== 1) {
    throw new CausewayError('CHECKPOINT_CONFLICT', `relay checkpoint "${key}" is no longer at ${step.from.tx}/${step.from.seq} (moved by someone else)`);
  }
}

/**
 * The fast path of a fenced mark: the lease check (FOR SHARE, as Lease.check takes it) and the
 * checkpoint move in ONE autocommit statement, plus deleting the outbox rows `outboxIds` when
 * given (an outbox relay with retention 0). The row lock needs a transaction id, and every gap-safe reader
 * on the server (this relay's next read included) waits for the oldest one: one statement holds
 * it for one server round trip, where BEGIN, check, update, COMMIT held it across two more round
 * trips and whatever the event loop was doing in between.
 *
 * Resolves true when it moved the checkpoint, false when it changed nothing: the fence or the
 * position was not what it expected. The caller then runs the full check in a transaction, which
 * tells the two apart (LeaseLostError or CHECKPOINT_CONFLICT) exactly as before.
 */
export async function advanceRelayCheckpointFenced(
  db: SqlExecutor,
  names: SchemaNames,
  key: string,
  leaseName: string,
  step: RelayStep,
  outboxIds?: readonly string[],
): Promise<boolean> {
  const s = names.schema;
  // A takeover updates the lease row: FOR SHARE waits for it and then sees the new fence.
  const deleted = outboxIds === undefined ? '' : `, deleted AS (DELETE FROM ${s}.outbox WHERE id = ANY ($9::bigint[]) AND EXISTS (SELECT 1 FROM moved))`;
  const params: unknown[] = [key, step.from.tx, step.from.seq, step.to.tx, step.to.seq, step.fence, step.count, leaseName];
  if (outboxIds !== undefined) params.push(outboxIds);
  const { rows } = await db.query<{ moved: boolean }>(
    `WITH lease AS (SELECT fence FROM ${s}.leases WHERE name = $8 FOR SHARE),
     moved AS (
       UPDATE ${s}.relay_checkpoints
       SET position_tx = $4::text::xid8, position_seq = $5::bigint, fence = $6::bigint, published = published + $7, updated_at = clock_timestamp()
       WHERE name = $1 AND position_tx = $2::text::xid8 AND position_seq = $3::bigint
         AND EXISTS (SELECT 1 FROM lease WHERE lease.fence = $6::bigint)
       RETURNING 1
     )${deleted}
     SELECT EXISTS (SELECT 1 FROM moved) AS moved`,
    params,
    `${names.raw}.${outboxIds === undefined ? 'rcmark' : 'rcmarkdel'}`,
  );
  return rows[0]?.moved === true;
}

/** A stretch of published messages to mark sent: the checkpoint moves from `from` to `to`. */
export interface MarkStep {
  readonly from: RelayPosition;
  readonly to: RelayPosition;
  readonly count: number;
  /** Outbox rows to delete with the mark (retention 0); empty otherwise. */
  readonly ids: readonly string[];
}

/**
 * Fenced marks, off the publishing path: at most one in flight, overlapping the next reads and
 * publishes (publishes stay strictly one after another, so per-key order holds). Batches
 * published while a mark is in flight wait together and go in the next mark, so a relay
 * publishing many small batches (a steady trickle of commits) makes far fewer marks than
 * batches. The bound on what is published and not yet marked is the same as one mark per batch:
 * `room` holds a publish back while the messages waiting for the next mark and the batch would
 * exceed `limit` (the batch size), so at most the mark in flight plus one batch's worth is
 * exposed to a crash or to a holder that lost its lease.
 *
 * `room` and `settle` throw the error of a failed mark (LeaseLostError, a conflict) and return
 * false once a mark was abandoned because the turn was interrupted.
 */
export class MarkPipeline {
  readonly #limit: number;
  readonly #mark: (step: MarkStep) => Promise<boolean>;
  #waiting: MarkStep | null = null;
  #inFlight: Promise<boolean> | null = null;
  /** Runs while anything is waiting or in flight; a failed or abandoned one stays, for the next caller to see. */
  #marking: Promise<boolean> | null = null;
  #broken = false;

  constructor(limit: number, mark: (step: MarkStep) => Promise<boolean>) {
    this.#limit = limit;
    this.#mark = mark;
  }

  /** Before publishing `count` more: resolves once they fit the bound (waiting for the mark in flight if need be). */
  async room(count: number): Promise<boolean> {
    for (;;) {
      if (this.#broken) return this.#marking as Promise<boolean>;
      const waiting = this.#waiting;
      if (waiting === null || waiting.count + count <= this.#limit) return true;
      await (this.#inFlight as Promise<boolean>).catch(() => undefined); // its outcome: #broken, on the next turn of the loop
    }
  }

  /** After a publish resolved: queues it for marking (now, unless a mark is in flight). Steps come in log order. */
  published(step: MarkStep): void {
    const w = this.#waiting;
    this.#waiting = w === null ? step : { from: w.from, to: step.to, count: w.count + step.count, ids: w.ids.length === 0 ? step.ids : [...w.ids, ...step.ids] };
    if (this.#marking === null) {
      const marking = this.#run();
      marking.catch(() => undefined); // observed by the next room() or settle()
      this.#marking = marking;
    }
  }

  /** Waits until everything published is marked. */
  async settle(): Promise<boolean> {
    while (this.#marking !== null) {
      if (!(await this.#marking)) return false;
    }
    return true;
  }

  async #run(): Promise<boolean> {
    try {
      for (let step = this.#waiting; step !== null; step = this.#waiting) {
        this.#waiting = null;
        this.#inFlight = this.#mark(step);
        if (!(await this.#inFlight)) {
          this.#broken = true;
          return false;
        }
      }
    } catch (error) {
      this.#broken = true;
      throw error;
    }
    this.#marking = null;
    this.#inFlight = null;
    return true;
  }
}
