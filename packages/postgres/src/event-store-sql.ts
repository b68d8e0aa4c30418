import { EVENT_COLUMNS } from './event-rows.js';
import type { SchemaNames } from './schema.js';

export type EventStoreSql = ReturnType<typeof eventStoreSql>;
export type AppendMode = 'any' | 'create' | 'bump';

/** Events per append written with one parameter per value (appendRows); larger appends use arrays. */
export const MAX_ROW_EVENTS = 64;
const EVENT_PARAMS = 9;
/** Single-event appends per batch written with one parameter per value (appendSingles); larger batches use arrays. */
export const MAX_SINGLES = 16;
const SINGLE_PARAMS = 13;

/** The store's SQL for one schema. Values are always bound parameters; only the schema name (allow-listed) is spliced in. */
/**
 * `notifyInStatement`: whether the append statements send the subscribers' NOTIFY themselves
 * (PGlite) or leave it to the store to send after commit (the server; see commit-notifier.ts).
 */
export function eventStoreSql({ schema: s, channel }: SchemaNames, notifyInStatement: boolean) {
  const notified = notifyInStatement
    ? `(SELECT pg_notify('${channel}', '') FROM (SELECT 1 FROM ins LIMIT 1) AS wrote)::text AS notified`
    : `NULL::text AS notified`;
  // One append: write the stream row (which takes its lock), then the events if that passed.
  const appendOne = (streamWrite: string) => `WITH w AS (${streamWrite}), ins AS (
      INSERT INTO ${s}.events (tenant_id, stream_id, stream_version, event_id, event_type, event_version,
        occurred_at, recorded_at, correlation_id, causation_id, producer, data, metadata)
      SELECT $1, $2, w.version - $4::bigint + e.ord, e.event_id, e.event_type, e.event_version, e.occurred_at, clock_timestamp(),
        e.correlation_id, e.causation_id, e.producer, e.data, e.metadata
      FROM w, unnest($5::uuid[], $6::text[], $7::integer[], $8::timestamptz[], $9::text[], $10::text[], $11::text[],
          $12::jsonb[], $13::jsonb[]) WITH ORDINALITY
        AS e (event_id, event_type, event_version, occurred_at, correlation_id, causation_id, producer, data, metadata, ord)
      ORDER BY e.ord
      RETURNING seq, tx, recorded_at
    )
    SELECT (SELECT w.version FROM w)::text AS version, (SELECT min(i.tx) FROM ins i)::text AS tx,
      (SELECT array_agg(i.seq::text ORDER BY i.seq) FROM ins i) AS seqs,
      (SELECT array_agg(to_char(i.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') ORDER BY i.seq) FROM ins i) AS recorded,
      ${notified}`;
  // The stream row writes, by expectedVersion mode; $4 is the number of events, `expected` the exact version's parameter.
  const streamWrite = (mode: AppendMode, expected: string): string =>
    mode === 'any'
      ? `INSERT INTO ${s}.streams AS st (tenant_id, stream_id, stream_type, version) VALUES ($1, $2, $3, $4::bigint)
        ON CONFLICT (tenant_id, stream_id) DO UPDATE SET version = st.version + excluded.version, updated_at = clock_timestamp()
          WHERE NOT st.deleted AND NOT st.archived
        RETURNING st.version`
      : mode === 'create'
        ? `INSERT INTO ${s}.streams AS st (tenant_id, stream_id, stream_type, version) VALUES ($1, $2, $3, $4::bigint)
        ON CONFLICT (tenant_id, stream_id) DO NOTHING
        RETURNING st.version`
        : `UPDATE ${s}.streams AS st
        SET version = st.version + $4::bigint, stream_type = coalesce(st.stream_type, $3::text), updated_at = clock_timestamp()
        WHERE st.tenant_id = $1 AND st.stream_id = $2 AND NOT st.deleted AND NOT st.archived AND (${expected}::bigint = -3 OR st.version = ${expected}::bigint)
        RETURNING st.version`;
  const readStream = (order: 'ASC' | 'DESC', asOf: boolean) => `
    SELECT ${EVENT_COLUMNS} FROM ${s}.events ev
    WHERE ev.tenant_id = $1 AND ev.stream_id = $2 AND ev.stream_version BETWEEN $3 AND $4
    ${asOf ? `AND ev.stream_version <= (SELECT coalesce(max(h.stream_version), 0) FROM ${s}.events h
                WHERE h.tenant_id = $1 AND h.stream_id = $2 AND h.recorded_at <= $6::timestamptz)` : ''}
    ORDER BY ev.stream_version ${order} LIMIT $5`;
  return {
    /**
     * A coalesced batch of `n` single-event appends to distinct streams, every value its own
     * parameter (13 per append: tenant, stream, stream type, expected code, then the event's nine).
     * The same checks as append_batch, set-based: the stream rows are written first, in key order,
     * each under its expected-version condition, then the events of the appends that passed.
     * One row per append, in request order; version null when refused.
     */
    appendSingles(n: number): string {
      const rows = Array.from({ length: n }, (_, i) => {
        const p = (k: number): string => `$${1 + i * SINGLE_PARAMS + k}`;
        return `(${i + 1}, ${p(0)}::text, ${p(1)}::text, ${p(2)}::text, ${p(3)}::bigint, ${p(4)}::uuid, ${p(5)}::text, ${p(6)}::integer,
          ${p(7)}::timestamptz, ${p(8)}::text, ${p(9)}::text, ${p(10)}::text, ${p(11)}::jsonb, ${p(12)}::jsonb)`;
      });
      return `WITH req (idx, tenant_id, stream_id, stream_type, expected, event_id, event_type, event_version, occurred_at,
          correlation_id, causation_id, producer, data, metadata) AS (VALUES ${rows.join(', ')}
      ), any_upsert AS (
        INSERT INTO ${s}.streams AS st (tenant_id, stream_id, stream_type, version)
        SELECT tenant_id, stream_id, stream_type, 1 FROM req WHERE expected = -1 ORDER BY tenant_id, stream_id
        ON CONFLICT (tenant_id, stream_id) DO UPDATE SET version = st.version + 1, updated_at = clock_timestamp()
          WHERE NOT st.deleted AND NOT st.archived
        RETURNING st.tenant_id, st.stream_id, st.version
      ), created AS (
        INSERT INTO ${s}.streams AS st (tenant_id, stream_id, stream_type, version)
        SELECT tenant_id, stream_id, stream_type, 1 FROM req WHERE expected IN (-2, 0) ORDER BY tenant_id, stream_id
        ON CONFLICT (tenant_id, stream_id) DO NOTHING
        RETURNING st.tenant_id, st.stream_id, st.version
      ), bumped AS (
        UPDATE ${s}.streams AS st SET version = st.version + 1, stream_type = coalesce(st.stream_type, req.stream_type), updated_at = clock_timestamp()
        FROM req
        WHERE req.expected NOT IN (-1, -2, 0) AND st.tenant_id = req.tenant_id AND st.stream_id = req.stream_id
          AND NOT st.deleted AND NOT st.archived AND (req.expected = -3 OR st.version = req.expected)
        RETURNING st.tenant_id, st.stream_id, st.version
      ), w AS (
        SELECT * FROM any_upsert UNION ALL SELECT * FROM created UNION ALL SELECT * FROM bumped
      ), at AS (
        SELECT clock_timestamp() AS t
      ), ins AS (
        INSERT INTO ${s}.events (tenant_id, stream_id, stream_version, event_id, event_type, event_version,
          occurred_at, recorded_at, correlation_id, causation_id, producer, data, metadata)
        SELECT req.tenant_id, req.stream_id, w.version, req.event_id, req.event_type, req.event_version, req.occurred_at, at.t,
          req.correlation_id, req.causation_id, req.producer, req.data, req.metadata
        FROM req JOIN w ON w.tenant_id = req.tenant_id AND w.stream_id = req.stream_id CROSS JOIN at
        ORDER BY req.idx
        RETURNING tenant_id, stream_id, seq, tx
      )
      SELECT w.version::text AS version, i.tx::text AS tx, i.seq::text AS seq,
        (SELECT to_char(at.t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') FROM at) AS recorded,
        ${notified}
      FROM req
        LEFT JOIN w ON w.tenant_id = req.tenant_id AND w.stream_id = req.stream_id
        LEFT JOIN ins i ON i.tenant_id = req.tenant_id AND i.stream_id = req.stream_id
      ORDER BY req.idx`;
    },
    // append_batch (migrations.ts) appends a batch of appends to distinct streams in one statement.
    appendBatch: `SELECT out_version AS version, out_tx AS tx, out_seqs AS seqs, out_recorded AS recorded FROM ${s}.append_batch($1::text[], $2::text[], $3::text[], $4::bigint[],
      $5::integer[], $6::integer[], $7::uuid[], $8::text[], $9::integer[], $10::timestamptz[], $11::text[], $12::text[], $13::text[],
      $14::jsonb[], $15::jsonb[], ${notifyInStatement})`,
    // append_one (append-one-migration.ts): one event to one stream, scalar parameters.
    appendOneEvent: `SELECT out_version AS version, out_tx AS tx, out_seq AS seq, out_recorded AS recorded FROM ${s}.append_one($1, $2, $3, $4::bigint,
      $5::uuid, $6, $7::integer, $8::timestamptz, $9, $10, $11, $12::jsonb, $13::jsonb, ${notifyInStatement})`,
    // Larger appends: the events as arrays, one statement per mode.
    appendOne: { any: appendOne(streamWrite('any', '$14')), create: appendOne(streamWrite('create', '$14')), bump: appendOne(streamWrite('bump', '$14')) },
    /**
     * An append of `k` events (2..MAX_ROW_EVENTS) with every value its own parameter, as a
     * multi-row INSERT takes them: nothing packed into arrays. One row per event comes back, in
     * stream order; none when the append was refused. Parameters: $1 tenant, $2 stream, $3 stream
     * type, $4 k, nine per event from $5, then the exact expected version (bump mode).
     */
    appendRows(mode: AppendMode, k: number): string {
      const rows = Array.from({ length: k }, (_, i) => {
        const p = (n: number): string => `$${5 + i * EVENT_PARAMS + n}`;
        return `(${i + 1}, ${p(0)}::uuid, ${p(1)}, ${p(2)}::integer, ${p(3)}::timestamptz, ${p(4)}, ${p(5)}, ${p(6)}, ${p(7)}::jsonb, ${p(8)}::jsonb)`;
      });
      // One database-clock reading for the whole append: every event of it is recorded at the same
      // instant, so an as-of read never shows part of an append.
      return `WITH w AS (${streamWrite(mode, `$${5 + k * EVENT_PARAMS}`)}), at AS (SELECT clock_timestamp() AS t), ins AS (
      INSERT INTO ${s}.events (tenant_id, stream_id, stream_version, event_id, event_type, event_version,
        occurred_at, recorded_at, correlation_id, causation_id, producer, data, metadata)
      SELECT $1, $2, w.version - $4::bigint + e.ord, e.event_id, e.event_type, e.event_version, e.occurred_at, at.t,
        e.correlation_id, e.causation_id, e.producer, e.data, e.metadata
      FROM w, at, (VALUES ${rows.join(', ')})
        AS e (ord, event_id, event_type, event_version, occurred_at, correlation_id, causation_id, producer, data, metadata)
      ORDER BY e.ord
      RETURNING seq, tx
    )
    SELECT (SELECT w.version FROM w)::text AS version, i.tx::text AS tx, i.seq::text AS seq,
      (SELECT to_char(at.t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') FROM at) AS recorded,
      ${notified}
    FROM ins i ORDER BY i.seq`;
    },
    // Why appends were refused, read after the append statement so it sees the rows it waited on.
    streamStates: `SELECT st.tenant_id, st.stream_id, st.version::text AS version, st.deleted, st.archived
      FROM ${s}.streams st JOIN unnest($1::text[], $2::text[]) AS r (tenant_id, stream_id)
        ON st.tenant_id = r.tenant_id AND st.stream_id = r.stream_id`,
    readStreamForward: readStream('ASC', false),
    readStreamBackward: readStream('DESC', false),
    readStreamAsOfForward: readStream('ASC', true),
    readStreamAsOfBackward: readStream('DESC', true),
    // Gap safety: only transactions older than the oldest one still running are read, in
    // (transaction, sequence) order; nothing can later commit below this cursor.
    // Column references are qualified (ev.) because the select list re-uses the names for text casts,
    // and an unqualified ORDER BY name would sort by the text (so '1000' before '999').
    readAll: `SELECT ${EVENT_COLUMNS} FROM ${s}.events ev
      WHERE (ev.tx, ev.seq) > ($1::text::xid8, $2::bigint)
        AND ev.tx < pg_snapshot_xmin(pg_current_snapshot())
        AND ($3::text IS NULL OR ev.tenant_id = $3::text)
        AND ($4::text[] IS NULL OR ev.event_type = ANY ($4::text[]))
      ORDER BY ev.tx, ev.seq LIMIT $5`,
    // readAll's filters without the horizon: committed events a read after $1/$2 has yet to return.
    heldBack: `SELECT EXISTS (SELECT 1 FROM ${s}.events ev
      WHERE (ev.tx, ev.seq) > ($1::text::xid8, $2::bigint)
        AND ($3::text IS NULL OR ev.tenant_id = $3::text)
        AND ($4::text[] IS NULL OR ev.event_type = ANY ($4::text[]))) AS held`,
    eventsById: `SELECT ${EVENT_COLUMNS} FROM ${s}.events ev WHERE ev.tenant_id = $1 AND ev.event_id = ANY ($2::uuid[])`,
  };
}
