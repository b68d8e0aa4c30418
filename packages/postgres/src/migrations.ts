import { APPEND_ONE_MIGRATION } from './append-one-migration.js';
import { BROKER_MIGRATION } from './broker-migration.js';
import { DEAD_LETTER_MIGRATION } from './dead-letter-migration.js';
import { LEASE_MIGRATION } from './lease-migration.js';
import { OUTBOX_MIGRATION } from './outbox-migration.js';
import { PROJECTION_EXTRAS_MIGRATION } from './projection-extras-migration.js';
import { PROJECTION_MIGRATION } from './projection-migration.js';
import type { SchemaNames } from './schema.js';

export interface Migration {
  readonly version: number;
  readonly name: string;
  /** One statement per entry (drivers differ on multi-statement text). */
  statements(names: SchemaNames): string[];
}

/**
 * Versioned, append-only: never edit a migration that has shipped; add the next one.
 * Positions: `seq` is the global sequence; `tx` the writing transaction (xid8). Readers of the
 * global log order by (tx, seq) and stop below the oldest transaction still running.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'event store tables',
    statements: ({ schema: s }) => [
      `CREATE TABLE ${s}.streams (
  tenant_id   text        NOT NULL,
  stream_id   text        NOT NULL,
  stream_type text,
  version     bigint      NOT NULL,
  archived    boolean     NOT NULL DEFAULT false,
  deleted     boolean     NOT NULL DEFAULT false,
  created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (tenant_id, stream_id)
)`,
      `CREATE TABLE ${s}.events (
  seq            bigint      GENERATED ALWAYS AS IDENTITY,
  tx             xid8        NOT NULL DEFAULT pg_current_xact_id(),
  tenant_id      text        NOT NULL,
  stream_id      text        NOT NULL,
  stream_version bigint      NOT NULL,
  event_id       uuid        NOT NULL,
  event_type     text        NOT NULL,
  event_version  integer     NOT NULL,
  occurred_at    timestamptz NOT NULL,
  recorded_at    timestamptz NOT NULL,
  correlation_id text        NOT NULL,
  causation_id   text,
  producer       text        NOT NULL,
  data           jsonb       NOT NULL,
  metadata       jsonb       NOT NULL,
  PRIMARY KEY (tenant_id, stream_id, stream_version),
  CONSTRAINT events_event_id_key UNIQUE (tenant_id, event_id)
)`,
      `CREATE INDEX events_log_order ON ${s}.events (tx, seq)`,
      `CREATE TABLE ${s}.snapshots (
  tenant_id  text        NOT NULL,
  stream_id  text        NOT NULL,
  name       text        NOT NULL,
  version    bigint      NOT NULL,
  state      jsonb       NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (tenant_id, stream_id, name)
)`,
    ],
  },
  {
    version: 2,
    name: 'append function',
    statements: ({ schema: s, channel }) => [
      `
-- A batch of appends to distinct streams, in one statement: conditional writes of the stream rows
-- (which take their row locks), then the events of the appends that passed. A refused append gets
-- no stream write and no events (version is null; the caller reads why). An event id stored before
-- raises unique_violation (23505) and the caller classifies that append alone.
-- A plpgsql wrapper so both engines keep the statement's plan per connection.
-- a_expected: >= 0 exact version, -1 any, -2 no_stream, -3 exists.
CREATE FUNCTION ${s}.append_batch(
  a_tenant text[], a_stream text[], a_type text[], a_expected bigint[], a_count integer[],
  e_append integer[], e_id uuid[], e_type text[], e_version integer[], e_occurred timestamptz[], e_correlation text[],
  e_causation text[], e_producer text[], e_data jsonb[], e_metadata jsonb[]
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
        (SELECT pg_notify('${channel}', '') FROM (SELECT 1 FROM ins LIMIT 1) AS wrote)::text
      FROM req LEFT JOIN ok ON ok.idx = req.idx
      ORDER BY req.idx;
END
$fn$`,
    ],
  },
  BROKER_MIGRATION,
  PROJECTION_MIGRATION,
  LEASE_MIGRATION,
  OUTBOX_MIGRATION,
  DEAD_LETTER_MIGRATION,
  PROJECTION_EXTRAS_MIGRATION,
  APPEND_ONE_MIGRATION,
];
