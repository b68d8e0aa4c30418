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

/**
 * Moves the checkpoint from `from` to `to` inside the caller's (fenced) transaction. Throws a
 * CHECKPOINT_CONFLICT error when it is no longer at `from`: someone moved it without the lease.
 */
export async function advanceRelayCheckpoint(
  tx: SqlExecutor,
  names: SchemaNames,
  key: string,
  step: { readonly from: RelayPosition; readonly to: RelayPosition; readonly fence: string; readonly count: number },
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
