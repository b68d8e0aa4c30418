import type { Migration } from './migrations.js';

/**
 * Migration 9: a function for the commonest append, one event to one stream. Never edit once shipped.
 *
 * Why a function: its statements are planned once per connection and kept, on the server and on
 * PGlite alike (PGlite has no named prepared statements, so a plain statement is planned on every
 * call), and each value is a scalar parameter, so nothing is packed into and parsed out of arrays.
 * The checks are those of append_batch: the stream row is written first (taking its lock) under
 * the expected-version condition, and the event only if that write happened.
 */
export const APPEND_ONE_MIGRATION: Migration = {
  version: 9,
  name: 'single-event append function',
  statements: ({ schema: s, channel }) => [
    `
-- p_expected: >= 0 exact version, -1 any, -2 no_stream, -3 exists (as append_batch).
-- A refused append returns out_version null and writes nothing; the caller reads why.
-- An event id stored before raises unique_violation (23505), as append_batch does.
CREATE FUNCTION ${s}.append_one(
  p_tenant text, p_stream text, p_type text, p_expected bigint,
  p_id uuid, p_event_type text, p_event_version integer, p_occurred timestamptz, p_correlation text,
  p_causation text, p_producer text, p_data jsonb, p_metadata jsonb,
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
  PERFORM pg_notify('${channel}', '');
END
$fn$`,
  ],
};
