import { formatPosition, parsePosition, type ProjectionKey, type RecordedEvent } from '@causeway/core';
import { partitionOf } from './postgres-checkpoint-store.js';
import { schemaNames } from './schema.js';
import type { SqlExecutor } from './sql-executor.js';

/** One row of `<schema>.projection_skipped_events` (migration 8): an event a projection gave up on. */
export interface SkippedEvent {
  readonly id: string;
  readonly projection: string;
  readonly version: number;
  /** The tenant partition of a partitioned projection; absent otherwise. */
  readonly partition?: string;
  readonly position: string;
  readonly event: RecordedEvent;
  /** The `code` of the error (a CausewayError's, or a driver's SQLSTATE), when it had one. */
  readonly errorCode: string | null;
  /** The error's message, with its causes' messages after " <- ". */
  readonly error: string;
  /** Attempts made on this event alone before it was skipped. */
  readonly attempts: number;
  readonly skippedAt: string;
}

/** The error's message and its causes' (" <- " between them), for the audit row. */
export function describeError(error: unknown): { code: string | null; text: string } {
  const parts: string[] = [];
  let e: unknown = error;
  for (let depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    parts.push(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
    e = e instanceof Error ? e.cause : undefined;
  }
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return { code: typeof code === 'string' ? code : null, text: parts.join(' <- ') };
}

/** Writes the audit row inside `tx` (the transaction that moves the checkpoint past the event). */
export async function recordSkippedEvent(
  tx: SqlExecutor,
  schema: string,
  key: ProjectionKey,
  event: RecordedEvent,
  error: unknown,
  attempts: number,
): Promise<void> {
  const { code, text } = describeError(error);
  await tx.query(
    `INSERT INTO ${schemaNames(schema).schema}.projection_skipped_events (name, version, partition_tenant, position_tx, position_seq,
       event_id, event_type, tenant_id, stream_id, stream_version, event, error_code, error, attempts)
     VALUES ($1, $2, $3, $4::text::xid8, $5::bigint, $6, $7, $8, $9, $10, $11::jsonb, $12, $13, $14)`,
    [
      key.name, key.version, partitionOf(key), event.position.tx.toString(), event.position.seq.toString(),
      event.eventId, event.eventType, event.tenantId, event.streamId, event.streamVersion,
      JSON.stringify({ ...event, position: formatPosition(event.position) }), code, text, attempts,
    ],
  );
}

/** The audit rows of one projection version (and partition), oldest first. */
export async function readSkippedEvents(
  db: SqlExecutor,
  options: { readonly schema?: string; readonly name: string; readonly version: number; readonly tenantId?: string; readonly limit?: number },
): Promise<SkippedEvent[]> {
  const key: ProjectionKey = { name: options.name, version: options.version, ...(options.tenantId === undefined ? {} : { tenantId: options.tenantId }) };
  const { rows } = await db.query<{
    id: string; partition_tenant: string; position: string; event: RecordedEvent & { position: string };
    error_code: string | null; error: string; attempts: number; skipped_at: string;
  }>(
    `SELECT id::text AS id, partition_tenant, position_tx::text || '/' || position_seq::text AS position, event, error_code, error, attempts,
            to_char(skipped_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS skipped_at
       FROM ${schemaNames(options.schema ?? 'causeway').schema}.projection_skipped_events
      WHERE name = $1 AND version = $2 AND partition_tenant = $3 ORDER BY id LIMIT $4`,
    [key.name, key.version, partitionOf(key), options.limit ?? 1000],
  );
  return rows.map((r) => ({
    id: r.id,
    projection: key.name,
    version: key.version,
    ...(r.partition_tenant === '' ? {} : { partition: r.partition_tenant }),
    position: r.position,
    event: { ...r.event, position: parsePosition(r.event.position) },
    errorCode: r.error_code,
    error: r.error,
    attempts: r.attempts,
    skippedAt: r.skipped_at,
  }));
}
