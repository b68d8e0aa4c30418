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
-- Appends a batch of independent appends in the caller's transaction. Each append is checked and
-- written on its own; a refused append writes nothing and does not affect the others.
-- The happy path is one statement on the stream row (an upsert or a conditional update, which
-- also takes the row lock that serialises writers of one stream) and one insert of the events.
-- An event id stored before raises unique_violation (23505) from the insert: the caller then
-- classifies the append (idempotent re-append or duplicate id), alone.
-- a_expected: >= 0 exact version, -1 any, -2 no_stream, -3 exists.
-- status: 0 written, 1 version conflict (version = actual), 2 deleted, 3 archived.
CREATE FUNCTION ${s}.append_batch(
  a_tenant text[], a_stream text[], a_type text[], a_expected bigint[], a_count integer[],
  e_id uuid[], e_type text[], e_version integer[], e_occurred timestamptz[], e_correlation text[],
  e_causation text[], e_producer text[], e_data jsonb[], e_metadata jsonb[]
) RETURNS TABLE (status integer, version bigint, tx text, seqs text[], recorded_at text)
LANGUAGE plpgsql AS $fn$
DECLARE
  i integer;
  n integer;
  off integer := 0;
  exp bigint;
  newv bigint;
  cur bigint;
  is_deleted boolean;
  is_archived boolean;
  now_ts timestamptz;
  wrote boolean := false;
BEGIN
  FOR i IN 1 .. coalesce(array_length(a_tenant, 1), 0) LOOP
    n := a_count[i];
    exp := a_expected[i];
    status := NULL; version := NULL; tx := NULL; seqs := NULL; recorded_at := NULL; newv := NULL;
    IF exp = -1 THEN
      INSERT INTO ${s}.streams AS st (tenant_id, stream_id, stream_type, version)
        VALUES (a_tenant[i], a_stream[i], a_type[i], n)
        ON CONFLICT (tenant_id, stream_id) DO UPDATE SET version = st.version + n, updated_at = clock_timestamp()
          WHERE NOT st.deleted AND NOT st.archived
        RETURNING st.version INTO newv;
    ELSIF exp = -2 OR exp = 0 THEN
      INSERT INTO ${s}.streams AS st (tenant_id, stream_id, stream_type, version)
        VALUES (a_tenant[i], a_stream[i], a_type[i], n)
        ON CONFLICT (tenant_id, stream_id) DO NOTHING
        RETURNING st.version INTO newv;
    ELSE
      UPDATE ${s}.streams AS st SET version = st.version + n, updated_at = clock_timestamp()
        WHERE st.tenant_id = a_tenant[i] AND st.stream_id = a_stream[i]
          AND NOT st.deleted AND NOT st.archived AND (exp = -3 OR st.version = exp)
        RETURNING st.version INTO newv;
    END IF;
    IF newv IS NULL THEN
      -- Refused: say why.
      SELECT st.version, st.deleted, st.archived INTO cur, is_deleted, is_archived
        FROM ${s}.streams st WHERE st.tenant_id = a_tenant[i] AND st.stream_id = a_stream[i];
      IF NOT FOUND THEN status := 1; version := 0;
      ELSIF is_deleted THEN status := 2;
      ELSIF is_archived THEN status := 3;
      ELSE status := 1; version := cur;
      END IF;
    ELSE
      cur := newv - n;
      now_ts := clock_timestamp();
      WITH ins AS (
        INSERT INTO ${s}.events (tenant_id, stream_id, stream_version, event_id, event_type, event_version,
          occurred_at, recorded_at, correlation_id, causation_id, producer, data, metadata)
        SELECT a_tenant[i], a_stream[i], cur + o, e_id[off + o], e_type[off + o], e_version[off + o],
          e_occurred[off + o], now_ts, e_correlation[off + o], e_causation[off + o], e_producer[off + o],
          e_data[off + o], e_metadata[off + o]
        FROM generate_series(1, n) AS o
        RETURNING seq
      )
      SELECT array_agg(ins.seq::text ORDER BY ins.seq) INTO seqs FROM ins;
      status := 0;
      wrote := true;
      version := newv;
      tx := pg_current_xact_id()::text;
      recorded_at := to_char(now_ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
    END IF;
    off := off + n;
    RETURN NEXT;
  END LOOP;
  IF wrote THEN
    -- Delivered at commit; only a wake-up hint, readers always read the table.
    PERFORM pg_notify('${channel}', '');
  END IF;
END
$fn$`,
    ],
  },
];
