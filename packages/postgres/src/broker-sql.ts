import { AdapterError, backoffDelay, delay } from '@causeway/core';
import type { SchemaNames } from './schema.js';
import { sqlState } from './sql-executor.js';

export type BrokerSql = ReturnType<typeof brokerSql>;

/** The NOTIFY channel of the broker tables in one schema; the payload is the topic. */
export function brokerChannel(names: SchemaNames): string {
  return `${names.raw}_broker`;
}

/**
 * The broker's SQL for one schema (tables and functions of migration 3). Values are always bound
 * parameters; only the allow-listed schema name is spliced in. int8 and timestamps come back as
 * text so both drivers return the same JS types.
 */
export function brokerSql(names: SchemaNames) {
  const s = names.schema;
  return {
    // One statement per call: the rows go in array order (ordinality), a repeated event id is
    // dropped (broker dedup), and subscribers are notified at COMMIT when anything was written.
    publish: `WITH ins AS (
        INSERT INTO ${s}.broker_messages (topic, key, body, event_id)
        SELECT $1, m.key, m.body, m.event_id
        FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS m (key, body, event_id, ord)
        ORDER BY m.ord
        ON CONFLICT (topic, event_id) DO NOTHING
        RETURNING 1
      )
      SELECT (SELECT count(*) FROM ins)::integer AS written,
        (SELECT pg_notify($5, $1) FROM (SELECT 1 FROM ins LIMIT 1) AS wrote) IS NOT NULL AS notified`,
    // A new group starts at the log start ('earliest') or after everything visible now ('latest':
    // the creating statement's snapshot is kept, and what it could see is skipped at admission).
    ensureGroup: `INSERT INTO ${s}.broker_groups (topic, group_name, start_from, start_snapshot, cursor_tx, cursor_id)
      SELECT $1, $2, $3, snap.s, CASE WHEN snap.s IS NULL THEN '0'::xid8 ELSE pg_snapshot_xmin(snap.s) END, 0
      FROM (SELECT CASE WHEN $3 = 'latest' THEN pg_current_snapshot() END AS s) AS snap
      ON CONFLICT (topic, group_name) DO NOTHING`,
    // One round trip per consumer turn: acks ($3/$4), admission, claims (see broker_turn).
    turn: `SELECT out_message_id AS id, out_key AS key, out_attempt AS attempt, out_body AS body, out_bytes AS bytes,
        out_wake_ms AS wake_ms, out_backlog AS backlog
      FROM ${s}.broker_turn($1, $2, $3::bigint[], $4::text[], $5::integer, $6::integer, $7::integer, $8, $9, $10::integer)`,
    // The row stays (or becomes) the head of its key, so a delay holds back the key's later messages too.
    nack: `SELECT ${s}.broker_nack($1, $2, $3::bigint, $4, $5::integer) AS n`,
    // Hands leased rows back at once; $5 = 1 when their handlers never started (attempt undone).
    release: `SELECT ${s}.broker_hand_back($1, $2, $3::bigint[], $4::text[], $5::integer, '-infinity') AS n`,
    // Retention: a log row goes only when it is older than $1, every group of its topic has
    // admitted it (cursor past it) and no group still holds it unacked. Rows below the running-
    // transaction horizon only, so a group cannot be admitting it at this moment.
    prune: `DELETE FROM ${s}.broker_messages m
      WHERE m.published_at < $1::timestamptz AND ($2::text IS NULL OR m.topic = $2::text)
        AND m.tx < pg_snapshot_xmin(pg_current_snapshot())
        AND NOT EXISTS (SELECT 1 FROM ${s}.broker_groups g
          WHERE g.topic = m.topic AND (m.tx, m.id) > (g.cursor_tx, g.cursor_id))
        AND NOT EXISTS (SELECT 1 FROM ${s}.broker_groups g JOIN ${s}.broker_deliveries d
          ON d.group_id = g.id AND d.message_id = m.id
          WHERE g.topic = m.topic)
        AND NOT EXISTS (SELECT 1 FROM ${s}.broker_groups g JOIN ${s}.broker_leases l
          ON l.group_id = g.id AND m.id = ANY (l.ids)
          WHERE g.topic = m.topic)`,
  };
}

export interface ClaimRow {
  readonly id: string | null;
  readonly key: string | null;
  readonly attempt: number | null;
  readonly body: string | null;
  readonly bytes: number | null;
  readonly wake_ms: number | null;
  readonly backlog: 'none' | 'full' | 'waiting' | null;
}

/**
 * True for failures that running the statement again can cure: no SQLSTATE at all (socket
 * refused or reset, pool cannot connect), class 08 (connection exception), the server going
 * down or starting up (57P01-57P03), or a deadlock or serialization failure (40P01, 40001).
 * Every statement retried with this is idempotent. Classified by SQLSTATE, never by message text.
 */
export function isTransient(error: unknown): boolean {
  if (error instanceof AdapterError && error.cause !== undefined) return isTransient(error.cause);
  const state = sqlState(error);
  return (
    state === undefined || state.startsWith('08') || state === '57P01' || state === '57P02' || state === '57P03' || state === '40P01' || state === '40001'
  );
}

/** Wraps a driver error in AdapterError (keeping it as the cause), unless it already is one. */
export function adapterError(error: unknown, what: string): AdapterError {
  if (error instanceof AdapterError) return error;
  const state = sqlState(error);
  const detail = error instanceof Error ? error.message : String(error);
  return new AdapterError('postgres', `${what}: ${detail}${state === undefined ? '' : ` (SQLSTATE ${state})`}`, { cause: error });
}

/**
 * Runs `op` until it succeeds, a non-transient error occurs, `gaveUp()` says stop, or the deadline
 * passes (each attempt is raced against what is left of it). Backoff with jitter, 50 ms to 1 s.
 */
export async function retryTransient<T>(op: () => Promise<T>, deadline: number, what: string, gaveUp: () => boolean = () => false): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const left = deadline - Date.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new AdapterError('postgres', `${what}: no answer within the time left (${Math.max(0, left)} ms)`)), Math.max(0, left));
      });
      return await Promise.race([op(), timeout]);
    } catch (error) {
      if (!isTransient(error) || gaveUp() || Date.now() >= deadline) throw adapterError(error, what);
    } finally {
      clearTimeout(timer);
    }
    await delay(Math.min(Math.max(0, deadline - Date.now()), Math.max(20, backoffDelay(attempt, 50, 1_000))));
  }
}

/** An ack waiting for the next turn of a subscription's claim loop. */
export interface PendingAck {
  readonly id: string;
  readonly token: string;
  /** Date.now() after which a failing turn rejects it (settleTimeoutMs from the ack). */
  readonly deadline: number;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * A turn carrying acks failed. A missing group (P0002) has nothing left to ack: they are done. A
 * transient failure keeps each ack for the next turn until its settle deadline (when `retry`);
 * anything else rejects. Returns the acks to send again.
 */
export function keepFailedAcks(acks: readonly PendingAck[], error: unknown, retry: boolean, where: string): PendingAck[] {
  if (sqlState(error) === 'P0002') {
    for (const a of acks) a.resolve();
    return [];
  }
  const now = Date.now();
  const kept = retry && isTransient(error) ? acks.filter((a) => a.deadline > now) : [];
  for (const a of acks) if (!kept.includes(a)) a.reject(adapterError(error, `ack of ${a.id} on ${where}`));
  return kept;
}

/** `promise`, or a rejection after `ms`. */
export function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
