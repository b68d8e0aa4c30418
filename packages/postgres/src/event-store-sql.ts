import { EVENT_COLUMNS } from './event-rows.js';
import type { SchemaNames } from './schema.js';

export type EventStoreSql = ReturnType<typeof eventStoreSql>;

/** The store's SQL for one schema. Values are always bound parameters; only the schema name (allow-listed) is spliced in. */
export function eventStoreSql({ schema: s, channel }: SchemaNames) {
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
      (SELECT pg_notify('${channel}', '') FROM (SELECT 1 FROM ins LIMIT 1) AS wrote)::text AS notified`;
  const readStream = (order: 'ASC' | 'DESC', asOf: boolean) => `
    SELECT ${EVENT_COLUMNS} FROM ${s}.events ev
    WHERE ev.tenant_id = $1 AND ev.stream_id = $2 AND ev.stream_version BETWEEN $3 AND $4
    ${asOf ? `AND ev.stream_version <= (SELECT coalesce(max(h.stream_version), 0) FROM ${s}.events h
                WHERE h.tenant_id = $1 AND h.stream_id = $2 AND h.recorded_at <= $6::timestamptz)` : ''}
    ORDER BY ev.stream_version ${order} LIMIT $5`;
  return {
    // append_batch (migrations.ts) appends a batch of appends to distinct streams in one statement.
    appendBatch: `SELECT out_version AS version, out_tx AS tx, out_seqs AS seqs, out_recorded AS recorded FROM ${s}.append_batch($1::text[], $2::text[], $3::text[], $4::bigint[],
      $5::integer[], $6::integer[], $7::uuid[], $8::text[], $9::integer[], $10::timestamptz[], $11::text[], $12::text[], $13::text[],
      $14::jsonb[], $15::jsonb[])`,
    appendOne: {
      any: appendOne(`INSERT INTO ${s}.streams AS st (tenant_id, stream_id, stream_type, version) VALUES ($1, $2, $3, $4::bigint)
        ON CONFLICT (tenant_id, stream_id) DO UPDATE SET version = st.version + excluded.version, updated_at = clock_timestamp()
          WHERE NOT st.deleted AND NOT st.archived
        RETURNING st.version`),
      create: appendOne(`INSERT INTO ${s}.streams AS st (tenant_id, stream_id, stream_type, version) VALUES ($1, $2, $3, $4::bigint)
        ON CONFLICT (tenant_id, stream_id) DO NOTHING
        RETURNING st.version`),
      bump: appendOne(`UPDATE ${s}.streams AS st
        SET version = st.version + $4::bigint, stream_type = coalesce(st.stream_type, $3::text), updated_at = clock_timestamp()
        WHERE st.tenant_id = $1 AND st.stream_id = $2 AND NOT st.deleted AND NOT st.archived AND ($14::bigint = -3 OR st.version = $14::bigint)
        RETURNING st.version`),
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
    eventsById: `SELECT ${EVENT_COLUMNS} FROM ${s}.events ev WHERE ev.tenant_id = $1 AND ev.event_id = ANY ($2::uuid[])`,
  };
}
