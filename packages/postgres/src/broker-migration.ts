import type { Migration } from './migrations.js';

/** Migration 3: the PostgreSQL broker's tables and functions (see BROKER.md). Never edit once shipped. */
export const BROKER_MIGRATION: Migration = {
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
    // A group's queued messages: the rows that are not simply out on a first delivery (those
    // are in broker_leases): rows waiting behind an older row of their key, nacked, expired,
    // handed back, or admitted beyond a turn's room. `seq` is the admission order within the
    // group; `head` marks the oldest row of each key, the only one that may be claimed
    // (per-key order). Room left in each page (fillfactor) lets lease updates stay HOT.
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
    // First deliveries, one row per turn: the messages a turn admitted and leased at once
    // (attempt 1, each the head of its key), as parallel arrays. One row write per turn instead
    // of a queue row per message; acks take members out, and a member that is nacked, handed
    // back or whose lease ran out moves to broker_deliveries as its key's head. A message is
    // in at most one lease row in its life (only fresh admissions go here).
    `CREATE TABLE ${s}.broker_leases (
group_id    bigint      NOT NULL,
token       text        NOT NULL,
owner       text,
lease_until timestamptz NOT NULL,
ids         bigint[]    NOT NULL,
seqs        bigint[]    NOT NULL,
keys        text[]      NOT NULL,
PRIMARY KEY (group_id, token)
)`,
    `
-- Takes the members (p_ids, matched with their row's token in p_tokens) out of the group's lease
-- rows, deleting rows left empty; returns what it took. The caller holds the group's lock.
CREATE FUNCTION ${s}.broker_unlease(p_group bigint, p_ids bigint[], p_tokens text[])
RETURNS TABLE (out_id bigint, out_seq bigint, out_key text, out_token text, out_owner text, out_lease_until timestamptz)
-- plpgsql rather than sql: its plan is cached per session (a sql function is planned per call).
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $fn$
BEGIN
RETURN QUERY
WITH hit AS (
  SELECT l.token, l.owner, l.lease_until, u.id, u.seq, u.key, u.o
  FROM ${s}.broker_leases l
    CROSS JOIN LATERAL unnest(l.ids, l.seqs, l.keys) WITH ORDINALITY AS u (id, seq, key, o)
  WHERE l.group_id = p_group AND l.token = ANY (p_tokens)
),
taken AS (
  SELECT h.* FROM hit h JOIN unnest(p_ids, p_tokens) AS a (id, token) ON a.id = h.id AND a.token = h.token
),
kept AS (
  SELECT h.token, array_agg(h.id ORDER BY h.o) AS ids, array_agg(h.seq ORDER BY h.o) AS seqs, array_agg(h.key ORDER BY h.o) AS keys
  FROM hit h WHERE NOT EXISTS (SELECT 1 FROM taken t WHERE t.id = h.id)
  GROUP BY h.token
),
upd AS (
  UPDATE ${s}.broker_leases l SET ids = k.ids, seqs = k.seqs, keys = k.keys
  FROM kept k WHERE l.group_id = p_group AND l.token = k.token AND k.token IN (SELECT token FROM taken)
),
del AS (
  DELETE FROM ${s}.broker_leases l
  WHERE l.group_id = p_group AND l.token IN (SELECT token FROM taken) AND l.token NOT IN (SELECT token FROM kept)
)
SELECT t.id, t.seq, t.key, t.token, t.owner, t.lease_until FROM taken t;
END
$fn$`,
    `
-- One consumer's turn, one round trip, under the group's advisory lock (every change to a
-- group's queue and leases takes it, so admissions, acks, nacks and expiries never race over a
-- key's head): move the members of lease rows that ran out into the queue; delete the acked
-- messages ($3/$4, matched by lease token) and promote the next row of each of their keys; admit
-- new log rows (gap-safe); lease up to p_limit messages: claimable queued heads first (they were
-- admitted earlier), then new heads straight at admission, as one lease row. Each statement of
-- this VOLATILE function takes a fresh snapshot (READ COMMITTED), so it sees everything
-- committed before the lock was granted. A turn carrying acks commits synchronously (an ack is
-- durable, like a publish); one without commits asynchronously: a lease is derived state (a
-- server crash can forget the last claims, and the admissions with them; their rows are simply
-- claimable or admitted again).
-- Generic plans always (force_generic_plan on every broker function): with seqscans disabled the
-- planner keeps choosing custom plans, i.e. planning every statement on every call, which cost
-- more than the work itself.
-- Returns the claimed rows, then one row with message_id NULL: milliseconds until the next lease
-- or delay ends (null when none), and the backlog state ('full': admit again at once, 'waiting':
-- committed rows wait behind an older running transaction, 'none').
CREATE FUNCTION ${s}.broker_turn(p_topic text, p_group text, p_ack_ids bigint[], p_ack_tokens text[],
p_limit integer, p_admit integer, p_lease_ms integer, p_token text, p_owner text, p_max_bytes integer)
RETURNS TABLE (out_message_id text, out_key text, out_attempt integer, out_body text, out_bytes integer,
out_wake_ms double precision, out_backlog text)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $fn$
DECLARE
g record;
r record;
v_ids bigint[];
v_keys text[];
v_acked_keys text[];
v_heads bigint[];
v_n integer := 0;
v_last_tx xid8;
v_last_id bigint;
v_now timestamptz;
v_until timestamptz;
v_room integer;
v_claimed integer := 0;
v_backlog text := 'none';
BEGIN
-- Every statement here reaches rows by index (by id, by key, or the heads in seq order). A
-- queue table grows and shrinks faster than its statistics follow; without these, a stale
-- estimate turns a lookup of 50 ids into a scan of the group's whole queue.
PERFORM set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true),
  set_config('synchronous_commit', CASE WHEN coalesce(cardinality(p_ack_ids), 0) = 0 THEN 'off' ELSE current_setting('synchronous_commit') END, true);
-- The group's lock is keyed by its names (a hash: two groups may share one, which only
-- serialises them), so it is taken before the group row is read, in one lookup.
PERFORM pg_advisory_xact_lock(hashtext('${raw}.broker'), hashtext(p_topic || '/' || p_group));
SELECT id, cursor_tx, cursor_id, start_snapshot, admitted INTO g FROM ${s}.broker_groups WHERE topic = p_topic AND group_name = p_group;
IF NOT FOUND THEN
  RAISE EXCEPTION 'consumer group % of topic % does not exist', p_group, p_topic USING ERRCODE = 'P0002';
END IF;
v_now := clock_timestamp();
-- Leases that ran out: their members become their keys' heads in the queue, still holding the
-- old token (a late ack still counts until someone claims them again).
WITH gone AS (
  DELETE FROM ${s}.broker_leases l WHERE l.group_id = g.id AND l.lease_until <= v_now
  RETURNING l.token, l.owner, l.lease_until, l.ids, l.seqs, l.keys
)
INSERT INTO ${s}.broker_deliveries (group_id, message_id, seq, key, head, attempt, lease_until, lease_token, lease_owner)
SELECT g.id, u.id, u.seq, u.key, true, 1, gone.lease_until, gone.token, gone.owner
FROM gone CROSS JOIN LATERAL unnest(gone.ids, gone.seqs, gone.keys) AS u (id, seq, key)
ON CONFLICT DO NOTHING;
IF coalesce(cardinality(p_ack_ids), 0) > 0 THEN
  -- The usual case first, in one cheap statement: every member of a lease row acked at once.
  WITH a AS (
    SELECT a.token, array_agg(a.id) AS ids FROM unnest(p_ack_ids, p_ack_tokens) AS a (id, token) GROUP BY a.token
  ),
  whole AS (
    DELETE FROM ${s}.broker_leases l USING a
    WHERE l.group_id = g.id AND l.token = a.token AND l.ids <@ a.ids
    RETURNING l.keys
  )
  SELECT coalesce(array_agg(k.key), '{}') INTO v_acked_keys FROM whole CROSS JOIN LATERAL unnest(whole.keys) AS k (key);
  IF cardinality(v_acked_keys) < cardinality(p_ack_ids) THEN
    -- Some acks are of queued rows, of part of a lease row, or stale.
    SELECT v_acked_keys || coalesce(array_agg(u.out_key), '{}') INTO v_acked_keys
    FROM ${s}.broker_unlease(g.id, p_ack_ids, p_ack_tokens) AS u;
    WITH del AS (
      DELETE FROM ${s}.broker_deliveries d USING unnest(p_ack_ids, p_ack_tokens) AS a (id, token)
      WHERE d.group_id = g.id AND d.message_id = ANY (p_ack_ids) AND d.message_id = a.id AND d.lease_token = a.token
      RETURNING d.key
    )
    SELECT v_acked_keys || coalesce(array_agg(del.key), '{}') INTO v_acked_keys FROM del;
  END IF;
  IF cardinality(v_acked_keys) > 0 THEN
    UPDATE ${s}.broker_deliveries d SET head = true
    WHERE d.group_id = g.id AND NOT d.head AND d.message_id = ANY (ARRAY(
      SELECT nxt.message_id FROM unnest(v_acked_keys) AS k (key)
      CROSS JOIN LATERAL (SELECT n.message_id FROM ${s}.broker_deliveries n
        WHERE n.group_id = g.id AND n.key = k.key ORDER BY n.seq LIMIT 1) AS nxt));
  END IF;
END IF;
IF p_limit > 0 THEN
  v_until := v_now + p_lease_ms * interval '1 millisecond';
  -- Claimable queued heads, oldest first; the lease UPDATE then finds them by primary key
  -- (= ANY), never by a join that would scan the group's whole queue.
  SELECT array_agg(c.message_id) INTO v_heads FROM (
    SELECT d.message_id FROM ${s}.broker_deliveries d
    WHERE d.group_id = g.id AND d.head
      AND d.visible_at <= v_now AND (d.lease_until IS NULL OR d.lease_until <= v_now)
    ORDER BY d.seq LIMIT p_limit
    FOR UPDATE SKIP LOCKED
  ) AS c;
  v_room := p_limit - coalesce(cardinality(v_heads), 0);
  -- Admit no more than can be leased now: a row admitted beyond the room would cost a queue
  -- row and a later lease update instead of one lease-row entry. (Rows blocked behind their
  -- key still take a place here, so admission always moves on.)
  IF v_room > 0 THEN
    WITH batch AS (
      SELECT m.id, m.tx, m.key FROM ${s}.broker_messages m
      WHERE m.topic = p_topic AND (m.tx, m.id) > (g.cursor_tx, g.cursor_id)
        AND m.tx < pg_snapshot_xmin(pg_current_snapshot())
      ORDER BY m.tx, m.id LIMIT least(p_admit, v_room)
    )
    SELECT array_agg(b.id ORDER BY b.tx, b.id) FILTER (WHERE g.start_snapshot IS NULL OR NOT pg_visible_in_snapshot(b.tx, g.start_snapshot)),
      array_agg(b.key ORDER BY b.tx, b.id) FILTER (WHERE g.start_snapshot IS NULL OR NOT pg_visible_in_snapshot(b.tx, g.start_snapshot)),
      count(*), (array_agg(b.tx ORDER BY b.tx DESC, b.id DESC))[1], (array_agg(b.id ORDER BY b.tx DESC, b.id DESC))[1]
    INTO v_ids, v_keys, v_n, v_last_tx, v_last_id FROM batch b;
    IF v_n > 0 THEN
      UPDATE ${s}.broker_groups SET cursor_tx = v_last_tx, cursor_id = v_last_id,
        admitted = admitted + coalesce(cardinality(v_ids), 0)
      WHERE id = g.id;
    END IF;
    IF v_n = least(p_admit, v_room) THEN
      v_backlog := 'full';
    ELSIF EXISTS (SELECT 1 FROM ${s}.broker_messages m
        WHERE m.topic = p_topic AND (m.tx, m.id) > (coalesce(v_last_tx, g.cursor_tx), coalesce(v_last_id, g.cursor_id))) THEN
      v_backlog := 'waiting';
    END IF;
  END IF;
  FOR r IN
    WITH upd AS (
      UPDATE ${s}.broker_deliveries d
      SET attempt = d.attempt + 1, lease_until = v_until, lease_token = p_token, lease_owner = p_owner
      WHERE d.group_id = g.id AND d.message_id = ANY (coalesce(v_heads, '{}'))
      RETURNING d.message_id, d.key, d.attempt, d.seq
    ),
    -- A new row is its key's head when it is the key's first in this batch and the group holds
    -- no row of the key, queued or leased; the first v_room new heads are leased at once.
    leased_keys AS (
      SELECT u.key FROM ${s}.broker_leases l CROSS JOIN LATERAL unnest(l.keys) AS u (key) WHERE l.group_id = g.id
    ),
    adm AS (
      SELECT a.id, a.key, a.seq, a.head,
        a.head AND count(*) FILTER (WHERE a.head) OVER (ORDER BY a.seq) <= v_room AS leased
      FROM (
        SELECT a.id, a.key, g.admitted + a.ord AS seq,
          row_number() OVER (PARTITION BY a.key ORDER BY a.ord) = 1
            AND NOT EXISTS (SELECT 1 FROM ${s}.broker_deliveries d WHERE d.group_id = g.id AND d.key = a.key)
            AND a.key NOT IN (SELECT lk.key FROM leased_keys lk) AS head
        FROM unnest(coalesce(v_ids, '{}'), coalesce(v_keys, '{}')) WITH ORDINALITY AS a (id, key, ord)
      ) AS a
    ),
    queued AS (
      INSERT INTO ${s}.broker_deliveries (group_id, message_id, seq, key, head)
      SELECT g.id, a.id, a.seq, a.key, a.head FROM adm a WHERE NOT a.leased ORDER BY a.seq
      ON CONFLICT DO NOTHING
    ),
    lease AS (
      INSERT INTO ${s}.broker_leases (group_id, token, owner, lease_until, ids, seqs, keys)
      SELECT g.id, p_token, p_owner, v_until, array_agg(a.id ORDER BY a.seq), array_agg(a.seq ORDER BY a.seq), array_agg(a.key ORDER BY a.seq)
      FROM adm a WHERE a.leased HAVING count(*) > 0
      RETURNING ids, seqs, keys
    ),
    got AS (
      SELECT u.message_id, u.key, u.attempt, u.seq FROM upd u
      UNION ALL
      SELECT x.id, x.key, 1, x.seq FROM lease l CROSS JOIN LATERAL unnest(l.ids, l.seqs, l.keys) AS x (id, seq, key)
    )
    SELECT c.message_id::text AS id, c.key, c.attempt,
      CASE WHEN octet_length(m.body) <= p_max_bytes THEN m.body ELSE left(m.body, 1024) END AS body,
      octet_length(m.body) AS bytes
    FROM got c LEFT JOIN ${s}.broker_messages m ON m.id = c.message_id
    ORDER BY c.seq
  LOOP
    out_message_id := r.id; out_key := r.key; out_attempt := r.attempt; out_body := r.body; out_bytes := r.bytes;
    v_claimed := v_claimed + 1;
    RETURN NEXT;
  END LOOP;
END IF;
out_message_id := NULL; out_key := NULL; out_attempt := NULL; out_body := NULL; out_bytes := NULL;
out_backlog := v_backlog;
IF p_limit > 0 AND v_claimed < p_limit THEN
  -- Only blocked messages remain (leased or delayed): when does the first of them come free?
  SELECT extract(epoch FROM least(
      (SELECT min(greatest(d.visible_at, coalesce(d.lease_until, '-infinity'))) FROM ${s}.broker_deliveries d
        WHERE d.group_id = g.id AND d.head AND (d.visible_at > v_now OR d.lease_until > v_now)),
      (SELECT min(l.lease_until) FROM ${s}.broker_leases l WHERE l.group_id = g.id)) - v_now) * 1000
  INTO out_wake_ms;
END IF;
RETURN NEXT;
END
$fn$`,
    `
-- A nack: the message goes back to its key's head in the queue, visible again after p_delay_ms
-- (the key waits with it). Matched by lease token; a stale token changes nothing.
CREATE FUNCTION ${s}.broker_nack(p_topic text, p_group text, p_id bigint, p_token text, p_delay_ms integer)
RETURNS integer
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $fn$
BEGIN
RETURN ${s}.broker_hand_back(p_topic, p_group, ARRAY[p_id], ARRAY[p_token], 0,
  clock_timestamp() + p_delay_ms * interval '1 millisecond');
END
$fn$`,
    `
-- Hands leased messages back (nack, close, stale buffer): each becomes claimable again from
-- p_visible_at, its lease cleared; p_undo = 1 when its handler never started (attempt undone).
CREATE FUNCTION ${s}.broker_hand_back(p_topic text, p_group text, p_ids bigint[], p_tokens text[], p_undo integer,
p_visible_at timestamptz)
RETURNS integer
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $fn$
DECLARE
v_group bigint;
v_n integer;
v_m integer;
BEGIN
PERFORM set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true);
PERFORM pg_advisory_xact_lock(hashtext('${raw}.broker'), hashtext(p_topic || '/' || p_group));
SELECT id INTO v_group FROM ${s}.broker_groups WHERE topic = p_topic AND group_name = p_group;
IF NOT FOUND THEN
  RETURN 0;
END IF;
UPDATE ${s}.broker_deliveries d
SET lease_until = NULL, lease_token = NULL, lease_owner = NULL, attempt = d.attempt - p_undo, visible_at = p_visible_at
FROM unnest(p_ids, p_tokens) AS a (id, token)
WHERE d.group_id = v_group AND d.message_id = ANY (p_ids) AND d.message_id = a.id AND d.lease_token = a.token;
GET DIAGNOSTICS v_n = ROW_COUNT;
INSERT INTO ${s}.broker_deliveries (group_id, message_id, seq, key, head, attempt, visible_at)
SELECT v_group, u.out_id, u.out_seq, u.out_key, true, 1 - p_undo, p_visible_at
FROM ${s}.broker_unlease(v_group, p_ids, p_tokens) AS u
ON CONFLICT DO NOTHING;
GET DIAGNOSTICS v_m = ROW_COUNT;
RETURN v_n + v_m;
END
$fn$`,
  ],
};
