import {
  uuidv7,
  type DeadLetterDetail,
  type DeadLetterFilter,
  type DeadLetterHistoryEntry,
  type DeadLetterStatus,
  type DeadLetterSummary,
  type ReceivedEvent,
  type ReplayItem,
} from '@causeway/core';
import type { SqlExecutor } from './sql-executor.js';

/** A timestamptz as ISO-8601 UTC text, the same from both drivers. */
export const iso = (column: string): string => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/** Statuses in which a letter blocks its key in sequenced mode (not yet resolved). */
export const OPEN_STATUSES = `('dead', 'replay_requested', 'replaying')`;

/** Columns of a DeadLetterSummary, selected from `dead_letters`. */
export const SUMMARY_COLUMNS = `id::text AS id, consumer, status, topic, group_name, key, tenant_id, event_id::text AS event_id, event_type,
  reason, error_class, error_message, fingerprint, attempts, ${iso('first_failed_at')} AS first_failed_at, ${iso('last_failed_at')} AS last_failed_at`;

export const DETAIL_COLUMNS = `${SUMMARY_COLUMNS}, stack, event, raw_headers, raw_body`;

export const HISTORY_COLUMNS = `letter_id::text AS letter_id, ${iso('at')} AS at, action, actor, reason, detail`;

export interface SummaryRow {
  id: string;
  consumer: string;
  status: DeadLetterStatus;
  topic: string;
  group_name: string;
  key: string;
  tenant_id: string;
  event_id: string | null;
  event_type: string | null;
  reason: DeadLetterSummary['reason'];
  error_class: string;
  error_message: string;
  fingerprint: string;
  attempts: number;
  first_failed_at: string;
  last_failed_at: string;
}

export interface DetailRow extends SummaryRow {
  stack: string | null;
  event: ReceivedEvent | null;
  raw_headers: Record<string, string> | null;
  raw_body: Uint8Array | null;
}

export interface HistoryRow {
  letter_id: string;
  at: string;
  action: DeadLetterHistoryEntry['action'];
  actor: string | null;
  reason: string | null;
  detail: string | null;
}

export function toSummary(r: SummaryRow): DeadLetterSummary {
  return {
    id: r.id,
    consumer: r.consumer,
    status: r.status,
    topic: r.topic,
    group: r.group_name,
    key: r.key,
    tenantId: r.tenant_id,
    eventId: r.event_id,
    eventType: r.event_type,
    reason: r.reason,
    errorClass: r.error_class,
    errorMessage: r.error_message,
    fingerprint: r.fingerprint,
    attempts: r.attempts,
    firstFailedAt: r.first_failed_at,
    lastFailedAt: r.last_failed_at,
  };
}

export function toDetail(r: DetailRow, history: readonly HistoryRow[]): DeadLetterDetail {
  return {
    ...toSummary(r),
    stack: r.stack,
    event: r.event,
    raw: r.raw_body === null ? null : { headers: r.raw_headers ?? {}, bodyBase64: Buffer.from(r.raw_body).toString('base64') },
    history: history.map(toHistoryEntry),
  };
}

export function toHistoryEntry(r: HistoryRow): DeadLetterHistoryEntry {
  return { letterId: r.letter_id, at: r.at, action: r.action, by: r.actor, reason: r.reason, detail: r.detail };
}

/** A claimed row (dead letter or parked message) as the replay worker takes it. */
interface ClaimRow {
  id: string;
  topic: string;
  group_name: string;
  key: string;
  attempts: number;
  event: ReceivedEvent;
}

/**
 * Claims for a replay worker: the rows `pick` selects (a SELECT of `id` that may use $1 = the
 * consumer and $2 = the limit, ending FOR UPDATE SKIP LOCKED) get a fresh claim token and a
 * lease of `leaseMs` in `not_before`, plus whatever `set` adds. Oldest first.
 */
export async function claimRows(
  db: SqlExecutor,
  kind: ReplayItem['kind'],
  request: { readonly table: string; readonly pick: string; readonly set?: string; readonly name: string },
  consumer: string,
  limit: number,
  leaseMs: number,
): Promise<ReplayItem[]> {
  const claim = uuidv7();
  const { rows } = await db.query<ClaimRow>(
    `WITH c AS (${request.pick})
     UPDATE ${request.table} t SET ${request.set ?? ''} claim = $3, not_before = clock_timestamp() + $4::bigint * interval '1 millisecond'
     FROM c WHERE t.id = c.id
     RETURNING t.id::text AS id, t.topic, t.group_name, t.key, t.attempts, t.event`,
    [consumer, limit, claim, leaseMs],
    request.name,
  );
  return rows
    .map((r) => ({ kind, id: r.id, claim, topic: r.topic, group: r.group_name, key: r.key, attempt: r.attempts + 1, event: r.event }))
    .sort((a, b) => a.id.length - b.id.length || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * The WHERE clause of a filter over `dead_letters`, its values appended to `params` (never
 * spliced into the text). An empty filter is `true`.
 */
export function filterSql(filter: DeadLetterFilter, params: unknown[]): string {
  const where: string[] = [];
  const bind = (value: unknown): string => {
    params.push(value);
    return `$${params.length}`;
  };
  if (filter.ids !== undefined) where.push(`id = ANY (${bind(filter.ids)}::bigint[])`);
  if (filter.consumer !== undefined) where.push(`consumer = ${bind(filter.consumer)}`);
  if (filter.status !== undefined) where.push(`status = ANY (${bind(typeof filter.status === 'string' ? [filter.status] : filter.status)}::text[])`);
  if (filter.fingerprint !== undefined) where.push(`fingerprint = ${bind(filter.fingerprint)}`);
  if (filter.eventType !== undefined) where.push(`event_type = ${bind(filter.eventType)}`);
  if (filter.tenantId !== undefined) where.push(`tenant_id = ${bind(filter.tenantId)}`);
  if (filter.failedFrom !== undefined) where.push(`last_failed_at >= ${bind(filter.failedFrom)}::timestamptz`);
  if (filter.failedTo !== undefined) where.push(`last_failed_at < ${bind(filter.failedTo)}::timestamptz`);
  return where.length === 0 ? 'true' : where.join(' AND ');
}
