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
  {
    version: 3,
    name: 'broker tables',
    statements: ({ schema: s, raw }) => [
      // The message log. `tx` is the publishing transaction: consumers admit rows in (tx, id)
      // order only below the oldest transaction still running, so a late COMMIT is never skipped.
      // The unique (topic, event_id) makes a re-publish of an event id a no-op (broker dedup).
      `CREATE TABLE ${s}.broker_messages (
  id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tx           xid8        NOT NULL DEFAULT pg_current_xact_id(),
  topic        text        NOT NULL,
  key          text        NOT NULL,
  event_id     text,
  body         text        NOT NULL,
  published_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  CONSTRAINT broker_messages_event_id_key UNIQUE (topic, event_id)
)`,
      `CREATE INDEX broker_messages_log_order ON ${s}.broker_messages (topic, tx, id)`,
      // One row per consumer group: where its admission cursor stands. A 'latest' group keeps the
      // snapshot taken at creation and skips what was visible in it.
      `CREATE TABLE ${s}.broker_groups (
  id             bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
  topic          text        NOT NULL,
  group_name     text        NOT NULL,
  start_from     text        NOT NULL CHECK (start_from IN ('earliest', 'latest')),
  start_snapshot pg_snapshot,
  cursor_tx      xid8        NOT NULL,
  cursor_id      bigint      NOT NULL,
  admitted       bigint      NOT NULL DEFAULT 0,
  created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (topic, group_name)
)`,
      // A group's unacked messages. `seq` is the admission order within the group; `head` marks
      // the oldest row of each key, the only one that may be claimed (per-key order). Room left
      // in each page (fillfactor) lets the lease updates stay HOT (no index writes).
      `CREATE TABLE ${s}.broker_deliveries (
  group_id    bigint      NOT NULL,
  message_id  bigint      NOT NULL,
  seq         bigint      NOT NULL,
  key         text        NOT NULL,
  head        boolean     NOT NULL,
  attempt     integer     NOT NULL DEFAULT 0,
  visible_at  timestamptz NOT NULL DEFAULT '-infinity',
  lease_until timestamptz,
  lease_token text,
  lease_owner text,
  PRIMARY KEY (group_id, message_id)
) WITH (fillfactor = 70)`,
      // Key first: statements by message id (claim, ack, nack) must find only the primary key
      // usable, even while the table's statistics lag behind its growth.
      `CREATE INDEX broker_deliveries_key_order ON ${s}.broker_deliveries (key, group_id, seq)`,
      `CREATE INDEX broker_deliveries_heads ON ${s}.broker_deliveries (group_id, seq) WHERE head`,
      `
-- One consumer's turn: admit new log rows into the group (gap-safe), then lease up to p_limit
-- claimable heads. The group's advisory lock serialises the turns of its consumers; each
-- statement of this VOLATILE function takes a fresh snapshot (READ COMMITTED), so it sees
-- everything committed before the lock was granted. Commits asynchronously: a lease is derived
-- state (a server crash can forget the last claims; their rows are simply claimable again).
-- Returns the claimed rows, then one row with message_id NULL: milliseconds until the next lease
-- or delay ends (null when none), and the backlog state ('full': admit again at once, 'waiting':
-- committed rows wait behind an older running transaction, 'none').
CREATE FUNCTION ${s}.broker_claim(p_topic text, p_group text, p_limit integer, p_admit integer,
  p_lease_ms integer, p_token text, p_owner text, p_max_bytes integer)
RETURNS TABLE (out_message_id text, out_key text, out_attempt integer, out_body text, out_bytes integer,
  out_wake_ms double precision, out_backlog text)
LANGUAGE plpgsql AS $fn$
DECLARE
  g record;
  r record;
  v_ids bigint[];
  v_keys text[];
  v_tails bigint[];
  v_n integer;
  v_last_tx xid8;
  v_last_id bigint;
  v_now timestamptz;
  v_claimed integer := 0;
  v_backlog text := 'none';
BEGIN
  SELECT id INTO g FROM ${s}.broker_groups WHERE topic = p_topic AND group_name = p_group;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'consumer group % of topic % does not exist', p_group, p_topic USING ERRCODE = 'P0002';
  END IF;
  PERFORM set_config('synchronous_commit', 'off', true);
  -- Every statement here reaches rows by index (by id, by key, or the heads in seq order). A
  -- queue table grows and shrinks faster than its statistics follow; without these, a stale
  -- estimate turns a lookup of 50 ids into a scan of the group's whole queue.
  PERFORM set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true);
  PERFORM pg_advisory_xact_lock(hashtext('${raw}.broker'), (g.id % 2147483647)::integer);
  SELECT id, cursor_tx, cursor_id, start_snapshot, admitted INTO g FROM ${s}.broker_groups WHERE id = g.id;
  WITH batch AS (
    SELECT m.id, m.tx, m.key FROM ${s}.broker_messages m
    WHERE m.topic = p_topic AND (m.tx, m.id) > (g.cursor_tx, g.cursor_id)
      AND m.tx < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY m.tx, m.id LIMIT p_admit
  )
  SELECT array_agg(b.id ORDER BY b.tx, b.id) FILTER (WHERE g.start_snapshot IS NULL OR NOT pg_visible_in_snapshot(b.tx, g.start_snapshot)),
    array_agg(b.key ORDER BY b.tx, b.id) FILTER (WHERE g.start_snapshot IS NULL OR NOT pg_visible_in_snapshot(b.tx, g.start_snapshot)),
    count(*), (array_agg(b.tx ORDER BY b.tx DESC, b.id DESC))[1], (array_agg(b.id ORDER BY b.tx DESC, b.id DESC))[1]
  INTO v_ids, v_keys, v_n, v_last_tx, v_last_id FROM batch b;
  IF v_n > 0 THEN
    IF v_ids IS NOT NULL THEN
      -- Lock the newest queued row of each key first: an ack deleting that row (then the key's
      -- only row) waits for us and its promotion sees our rows, or we wait for it and then see
      -- the row gone. Either way each key keeps exactly one head (see broker_ack). Locks are
      -- taken in message_id order, as broker_ack takes its own, so the two cannot deadlock.
      SELECT array_agg(tail.message_id) INTO v_tails
      FROM (SELECT DISTINCT k.key FROM unnest(v_keys) AS k (key)) AS k
        CROSS JOIN LATERAL (SELECT d.message_id FROM ${s}.broker_deliveries d
          WHERE d.group_id = g.id AND d.key = k.key ORDER BY d.seq DESC LIMIT 1) AS tail;
      IF v_tails IS NOT NULL THEN
        PERFORM 1 FROM ${s}.broker_deliveries d WHERE d.group_id = g.id AND d.message_id = ANY (v_tails)
          ORDER BY d.message_id FOR KEY SHARE;
      END IF;
      INSERT INTO ${s}.broker_deliveries (group_id, message_id, seq, key, head)
      SELECT g.id, a.id, g.admitted + a.ord, a.key,
        row_number() OVER (PARTITION BY a.key ORDER BY a.ord) = 1 AND NOT EXISTS (
          SELECT 1 FROM ${s}.broker_deliveries d WHERE d.group_id = g.id AND d.key = a.key)
      FROM unnest(v_ids, v_keys) WITH ORDINALITY AS a (id, key, ord)
      ON CONFLICT DO NOTHING;
    END IF;
    UPDATE ${s}.broker_groups SET cursor_tx = v_last_tx, cursor_id = v_last_id,
      admitted = admitted + coalesce(cardinality(v_ids), 0)
    WHERE id = g.id;
  END IF;
  IF v_n = p_admit THEN
    v_backlog := 'full';
  ELSIF EXISTS (SELECT 1 FROM ${s}.broker_messages m
      WHERE m.topic = p_topic AND (m.tx, m.id) > (coalesce(v_last_tx, g.cursor_tx), coalesce(v_last_id, g.cursor_id))) THEN
    v_backlog := 'waiting';
  END IF;
  v_now := clock_timestamp();
  -- Claimable heads, oldest first; the lease UPDATE then finds them by primary key (= ANY), never
  -- by a join that would scan the group's whole queue.
  SELECT array_agg(c.message_id) INTO v_ids FROM (
    SELECT d.message_id FROM ${s}.broker_deliveries d
    WHERE d.group_id = g.id AND d.head
      AND d.visible_at <= v_now AND (d.lease_until IS NULL OR d.lease_until <= v_now)
    ORDER BY d.seq LIMIT p_limit
    FOR UPDATE SKIP LOCKED
  ) AS c;
  FOR r IN
    WITH u AS (
      UPDATE ${s}.broker_deliveries d
      SET attempt = d.attempt + 1, lease_until = v_now + p_lease_ms * interval '1 millisecond', lease_token = p_token, lease_owner = p_owner
      WHERE d.group_id = g.id AND d.message_id = ANY (coalesce(v_ids, '{}'))
      RETURNING d.message_id, d.key, d.attempt, d.seq
    )
    SELECT u.message_id::text AS id, u.key, u.attempt,
      CASE WHEN octet_length(m.body) <= p_max_bytes THEN m.body ELSE left(m.body, 1024) END AS body,
      octet_length(m.body) AS bytes
    FROM u LEFT JOIN ${s}.broker_messages m ON m.id = u.message_id
    ORDER BY u.seq
  LOOP
    out_message_id := r.id; out_key := r.key; out_attempt := r.attempt; out_body := r.body; out_bytes := r.bytes;
    v_claimed := v_claimed + 1;
    RETURN NEXT;
  END LOOP;
  out_message_id := NULL; out_key := NULL; out_attempt := NULL; out_body := NULL; out_bytes := NULL;
  out_backlog := v_backlog;
  IF v_claimed < p_limit THEN
    -- Only blocked heads remain (leased or delayed): when does the first of them come free?
    SELECT extract(epoch FROM min(greatest(d.visible_at, coalesce(d.lease_until, '-infinity'))) - v_now) * 1000
    INTO out_wake_ms FROM ${s}.broker_deliveries d
    WHERE d.group_id = g.id AND d.head AND (d.visible_at > v_now OR d.lease_until > v_now);
  END IF;
  RETURN NEXT;
END
$fn$`,
      `
-- Acks: deletes the leased rows whose token still matches, then marks the next row of each of
-- their keys as its head. The promotion is a later statement with a fresh snapshot, so it sees
-- rows an admission committed while the delete waited on that admission's tail lock.
CREATE FUNCTION ${s}.broker_ack(p_topic text, p_group text, p_ids bigint[], p_tokens text[])
RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
  v_group bigint;
  v_keys text[];
  v_n integer;
BEGIN
  SELECT id INTO v_group FROM ${s}.broker_groups WHERE topic = p_topic AND group_name = p_group;
  IF NOT FOUND THEN
    RETURN 0;
  END IF;
  -- By primary key (= ANY), whatever the statistics say (see broker_claim); the join checks tokens.
  PERFORM set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true);
  -- Row locks in message_id order, the order broker_claim locks tails in: no deadlock between them.
  PERFORM 1 FROM ${s}.broker_deliveries d WHERE d.group_id = v_group AND d.message_id = ANY (p_ids)
    ORDER BY d.message_id FOR UPDATE;
  WITH del AS (
    DELETE FROM ${s}.broker_deliveries d USING unnest(p_ids, p_tokens) AS a (id, token)
    WHERE d.group_id = v_group AND d.message_id = ANY (p_ids) AND d.message_id = a.id AND d.lease_token = a.token
    RETURNING d.key
  )
  SELECT array_agg(DISTINCT del.key), count(*) INTO v_keys, v_n FROM del;
  IF v_n > 0 THEN
    UPDATE ${s}.broker_deliveries d SET head = true
    WHERE d.group_id = v_group AND NOT d.head AND d.message_id = ANY (ARRAY(
      SELECT nxt.message_id FROM unnest(v_keys) AS k (key)
      CROSS JOIN LATERAL (SELECT n.message_id FROM ${s}.broker_deliveries n
        WHERE n.group_id = v_group AND n.key = k.key ORDER BY n.seq LIMIT 1) AS nxt));
  END IF;
  RETURN v_n;
END
$fn$`,
    ],
  },
];
