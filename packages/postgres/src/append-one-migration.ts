import type { Migration } from './migrations.js';

/**
 * Migration 9: a function for the commonest append, one event to one stream, and a NOTIFY switch
 * on both append functions. Never edit once shipped.
 *
 * The switch: a transaction that sends NOTIFY takes a database-wide lock at commit and holds it
 * until its commit is flushed, so notifying appends commit one at a time (measured with pgbench,
 * 16 clients: 780-1,520 transactions/s with a pg_notify in each, 3,000 without). On the server the
 * store therefore sends its wake-up after the commit, outside the append (see commit-notifier.ts),
 * and passes p_notify false; PGlite has one connection and nothing to contend with, so it keeps
 * the NOTIFY in the statement.
 *
 * Why a function for one event: its statements are planned once per connection and kept, on the server and on
 * PGlite alike (PGlite has no named prepared statements, so a plain statement is planned on every
 * call), and each value is a scalar parameter, so nothing is packed into and parsed out of arrays.
 * The checks are those of append_batch: the stream row is written first (taking its lock) under
 * the expected-version condition, and the event only if that write happened.
 */
export const APPEND_ONE_MIGRATION: Migration = {
  version: 9,
  name: 'single-event append function; NOTIFY switch on the append functions',
  statements: ({ schema: s, channel }) => [
    `
-- p_expected: >= 0 exact version, -1 any, -2 no_stream, -3 exists (as append_batch).
-- A refused append returns out_version null and writes nothing; the caller reads why.
-- An event id stored before raises unique_violation (23505), as append_batch does.
CREATE FUNCTION ${s}.append_one(
  p_tenant text, p_stream text, p_type text, p_expected bigint,
  p_id uuid, p_event_type text, p_event_version integer, p_occurred timestamptz, p_correlation text,
  p_causation text, p_producer text, p_data jsonb, p_metadata jsonb, p_notify boolean,
  OUT out_version text, OUT out_tx text, OUT out_seq text, OUT out_recorded text
) LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  v bigint;
BEGIN
  IF p_expected = -1 THEN
    INSERT INTO ${s}.streams AS st (tenant_id, stream_id, stream_type, version) VALUES (p_tenant, p_stream, p_type, 1)
    ON CONFLICT (tenant_id, stream_id) DO UPDATE
      SET version = st.version + 1, updated_at = clock_timestamp()
      WHERE NOT st.deleted AND NOT st.archived
    RETURNING st.version INTO v;
  ELSIF p_expected = -2 OR p_expected = 0 THEN
    INSERT INTO ${s}.streams AS st (tenant_id, stream_id, stream_type, version) VALUES (p_tenant, p_stream, p_type, 1)
    ON CONFLICT (tenant_id, stream_id) DO NOTHING
    RETURNING st.version INTO v;
  ELSE
    UPDATE ${s}.streams AS st
      SET version = st.version + 1, stream_type = coalesce(st.stream_type, p_type), updated_at = clock_timestamp()
      WHERE st.tenant_id = p_tenant AND st.stream_id = p_stream AND NOT st.deleted AND NOT st.archived
        AND (p_expected = -3 OR st.version = p_expected)
    RETURNING st.version INTO v;
  END IF;
  IF v IS NULL THEN
    RETURN;
  END IF;
  INSERT INTO ${s}.events (tenant_id, stream_id, stream_version, event_id, event_type, event_version,
    occurred_at, recorded_at, correlation_id, causation_id, producer, data, metadata)
  VALUES (p_tenant, p_stream, v, p_id, p_event_type, p_event_version, p_occurred, clock_timestamp(),
    p_correlation, p_causation, p_producer, p_data, p_metadata)
  RETURNING seq::text, tx::text, to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
    INTO out_seq, out_tx, out_recorded;
  out_version := v::text;
  IF p_notify THEN
    PERFORM pg_notify('${channel}', '');
  END IF;
END
$fn$`,
    // append_batch of migration 2 with the same body and the NOTIFY behind p_notify: an overload
    // (one more argument), so processes still running older code keep calling the old one.
    `
CREATE FUNCTION ${s}.append_batch(
  a_tenant text[], a_stream text[], a_type text[], a_expected bigint[], a_count integer[],
  e_append integer[], e_id uuid[], e_type text[], e_version integer[], e_occurred timestamptz[], e_correlation text[],
  e_causation text[], e_producer text[], e_data jsonb[], e_metadata jsonb[], p_notify boolean
) RETURNS TABLE (out_version text, out_tx text, out_seqs text[], out_recorded text[], out_notified text)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
BEGIN
  RETURN QUERY WITH req AS (
        SELECT r.tenant_id, r.stream_id, r.stream_type, r.expected, r.n, r.idx::integer AS idx
        FROM unnest(a_tenant, a_stream, a_type, a_expected, a_count) WITH ORDINALITY
          AS r (tenant_id, stream_id, stream_type, expected, n, idx)
      ), any_upsert AS (
        INSERT INTO ${s}.streams AS st (tenant_id, stream_id, stream_type, version)
        SELECT tenant_id, stream_id, stream_type, n FROM req WHERE expected = -1 ORDER BY tenant_id, stream_id
        ON CONFLICT (tenant_id, stream_id) DO UPDATE SET version = st.version + excluded.version, updated_at = clock_timestamp()
          WHERE NOT st.deleted AND NOT st.archived
        RETURNING st.tenant_id, st.stream_id, st.version
      ), created AS (
        INSERT INTO ${s}.streams AS st (tenant_id, stream_id, stream_type, version)
        SELECT tenant_id, stream_id, stream_type, n FROM req WHERE expected IN (-2, 0) ORDER BY tenant_id, stream_id
        ON CONFLICT (tenant_id, stream_id) DO NOTHING
        RETURNING st.tenant_id, st.stream_id, st.version
      ), bumped AS (
        UPDATE ${s}.streams AS st SET version = st.version + req.n, updated_at = clock_timestamp()
        FROM req
        WHERE req.expected NOT IN (-1, -2, 0) AND st.tenant_id = req.tenant_id AND st.stream_id = req.stream_id
          AND NOT st.deleted AND NOT st.archived AND (req.expected = -3 OR st.version = req.expected)
        RETURNING st.tenant_id, st.stream_id, st.version
      ), ok AS (
        SELECT req.idx, req.n, w.version
        FROM req JOIN (SELECT * FROM any_upsert UNION ALL SELECT * FROM created UNION ALL SELECT * FROM bumped) w
          ON w.tenant_id = req.tenant_id AND w.stream_id = req.stream_id
      ), ins AS (
        INSERT INTO ${s}.events (tenant_id, stream_id, stream_version, event_id, event_type, event_version,
          occurred_at, recorded_at, correlation_id, causation_id, producer, data, metadata)
        SELECT req.tenant_id, req.stream_id, ok.version - ok.n + row_number() OVER (PARTITION BY e.append_idx ORDER BY e.ord),
          e.event_id, e.event_type, e.event_version, e.occurred_at, clock_timestamp(), e.correlation_id, e.causation_id,
          e.producer, e.data, e.metadata
        FROM unnest(e_append, e_id, e_type, e_version, e_occurred, e_correlation, e_causation,
            e_producer, e_data, e_metadata) WITH ORDINALITY
          AS e (append_idx, event_id, event_type, event_version, occurred_at, correlation_id, causation_id, producer, data, metadata, ord)
        JOIN ok ON ok.idx = e.append_idx
        JOIN req ON req.idx = e.append_idx
        ORDER BY e.ord
        RETURNING tenant_id, stream_id, seq, tx, recorded_at
      )
      SELECT ok.version::text,
        (SELECT min(i.tx)::text FROM ins i),
        (SELECT array_agg(i.seq::text ORDER BY i.seq) FROM ins i WHERE i.tenant_id = req.tenant_id AND i.stream_id = req.stream_id),
        (SELECT array_agg(to_char(i.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') ORDER BY i.seq)
           FROM ins i WHERE i.tenant_id = req.tenant_id AND i.stream_id = req.stream_id),
        CASE WHEN p_notify THEN (SELECT pg_notify('${channel}', '') FROM (SELECT 1 FROM ins LIMIT 1) AS wrote)::text END
      FROM req LEFT JOIN ok ON ok.idx = req.idx
      ORDER BY req.idx;
END
$fn$`,
  ],
};
