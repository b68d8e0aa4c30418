import { InvalidOptionsError, backoffDelay, delay, type EventEnvelope, type Message, type StreamFacts } from '@causeway/core';
import { outboxChannel, validateOutboxName } from './postgres-outbox.js';
import {
  commitFenced,
  publishBatch,
  resolveRelayOptions,
  runRelay,
  statsFromRow,
  type Relay,
  type RelayCounters,
  type RelayOptions,
  type RelayStats,
  type RelayTurn,
  type ResolvedRelayOptions,
} from './relay-loop.js';
import { MarkPipeline, advanceRelayCheckpoint, advanceRelayCheckpointFenced, checkpointOf, loadRelayCheckpoint } from './relay-checkpoint.js';
import { schemaNames, type SchemaNames } from './schema.js';
import type { SqlDatabase } from './sql-executor.js';

export interface OutboxRelayOptions extends RelayOptions {
  /** `name` is the outbox's name (PostgresOutbox `name`); its lease is `relay:outbox:<name>`. Default 'default'. */
  readonly name?: string;
  /**
   * How long rows are kept after they were written (for inspection), counted from `created_at`;
   * a row is deleted only once sent. Default 86,400,000 ms (24 h). 0 deletes each batch in the
   * transaction that marks it sent.
   */
  readonly retentionMs?: number;
  /** How often the active relay deletes sent rows past the retention. Default 60,000 ms. */
  readonly cleanupIntervalMs?: number;
}

interface OutboxRow {
  id: string;
  tx: string;
  topic: string;
  partition_key: string;
  envelope: EventEnvelope & StreamFacts;
  traceparent: string | null;
  tracestate: string | null;
}

const CLEANUP_BATCH = 1000;
/**
 * Re-reads while committed rows wait below the read horizon: 5, 10, 20, 40, then every 50 ms (or
 * the poll interval, if shorter). Only while rows are held back; an idle relay sleeps until a
 * NOTIFY or the poll. The cap bounds how late a row is seen after the horizon passes it.
 */
const CHASE_MIN_MS = 5;
const CHASE_MAX_MS = 50;

function outboxSql(names: SchemaNames) {
  const s = names.schema;
  return {
    // Gap safety as in the event log: only transactions older than the oldest still running are
    // read, in (tx, id) order, so nothing can commit behind the checkpoint later.
    read: `SELECT o.id::text AS id, o.tx::text AS tx, o.topic, o.partition_key, o.envelope, o.traceparent, o.tracestate
      FROM ${s}.outbox o
      WHERE o.outbox = $1 AND (o.tx, o.id) > ($2::text::xid8, $3::bigint)
        AND o.tx < pg_snapshot_xmin(pg_current_snapshot())
      ORDER BY o.tx, o.id LIMIT $4`,
    // Committed rows after the checkpoint that the read did not return: above the read horizon.
    heldBack: `SELECT EXISTS (SELECT 1 FROM ${s}.outbox o WHERE o.outbox = $1 AND (o.tx, o.id) > ($2::text::xid8, $3::bigint)) AS held`,
    deleteBatch: `DELETE FROM ${s}.outbox WHERE id = ANY ($1::bigint[])`,
    // The oldest sent rows, a small batch per statement (row locks only); of those, the ones past
    // the retention. Stops at the first young row rather than scanning everything sent.
    cleanup: `DELETE FROM ${s}.outbox WHERE id IN (
        SELECT h.id FROM (
          SELECT o.id, o.created_at FROM ${s}.outbox o, ${checkpointOf(names, 2)} c
          WHERE o.outbox = $1 AND (o.tx, o.id) <= (c.tx, c.seq) ORDER BY o.tx, o.id LIMIT $4
        ) h WHERE h.created_at < clock_timestamp() - $3 * interval '1 millisecond')`,
    stats: `SELECT count(*)::text AS pending,
        coalesce(floor(extract(epoch FROM clock_timestamp() - min(o.created_at)) * 1000), 0)::text AS age
      FROM ${s}.outbox o, ${checkpointOf(names, 2)} c WHERE o.outbox = $1 AND (o.tx, o.id) > (c.tx, c.seq)`,
  };
}

const checkpointKey = (name: string): string => `outbox:${name}`;

/** Pending rows and the oldest one's age for an outbox, without a running relay (CLI, health checks). */
export async function outboxStats(db: SqlDatabase, options: { readonly schema?: string; readonly name?: string } = {}): Promise<RelayStats> {
  const sql = outboxSql(schemaNames(options.schema ?? 'causeway'));
  const name = validateOutboxName(options.name ?? 'default');
  const { rows } = await db.query<{ pending: string; age: string }>(sql.stats, [name, checkpointKey(name)]);
  return statsFromRow(rows[0]);
}

/**
 * Deletes sent rows (at or below the relay's checkpoint) written more than `olderThanMs` ago, in
 * batches of 1,000 (each its own statement), oldest first. Pending rows are never touched.
 * Returns the count.
 */
export async function deleteSentOutboxRows(
  db: SqlDatabase,
  options: { readonly schema?: string; readonly name?: string; readonly olderThanMs: number; readonly signal?: AbortSignal },
): Promise<number> {
  if (!Number.isFinite(options.olderThanMs) || options.olderThanMs < 0) {
    throw new InvalidOptionsError(`olderThanMs must be a number >= 0; got ${String(options.olderThanMs)}`);
  }
  const sql = outboxSql(schemaNames(options.schema ?? 'causeway'));
  const name = validateOutboxName(options.name ?? 'default');
  let total = 0;
  for (;;) {
    const { rowCount } = await db.query(sql.cleanup, [name, checkpointKey(name), options.olderThanMs, CLEANUP_BATCH]);
    total += rowCount;
    if (rowCount < CLEANUP_BATCH || options.signal?.aborted) return total;
  }
}

/**
 * The outbox relay: publishes what `PostgresOutbox.add` wrote, once it is committed.
 *
 * - One active relay per outbox: it holds the lease `relay:outbox:<name>`; other instances stand
 *   by and take over when it stops, dies or stops heartbeating.
 * - Wakes on the NOTIFY sent by the writing transaction (delivered at its COMMIT); without one it
 *   reads once per `pollIntervalMs`. When a read after a wake-up or after a published batch
 *   finds nothing, yet committed rows wait (an older transaction still running holds the read
 *   horizon back), it re-reads at 5, 10, 20, 40, then every 50 ms until they are readable:
 *   their NOTIFY has come already, so waiting for the next one could take a whole poll.
 * - Reads up to `batchSize` rows after its checkpoint in (tx, id) order, publishes them grouped by
 *   topic (each key in order), and only after `publish` resolved marks them sent by moving the
 *   checkpoint past them, in a write that checks the lease first (one statement on the server):
 *   a relay that lost its lease cannot mark anything (LeaseLostError) and stands by again. That
 *   mark overlaps the next batches' reads and publishes, which the next mark covers together
 *   (see MarkPipeline). A failing publish is retried with backoff; nothing is marked or dropped.
 * - At least once: after a crash between publish and mark the same rows are published again with
 *   the same message ids (= event ids), for broker and consumer dedup to absorb.
 */
export function createOutboxRelay(options: OutboxRelayOptions): Relay {
  const o = resolveRelayOptions(options);
  validateOutboxName(o.name);
  const retentionMs = options.retentionMs ?? 86_400_000;
  if (!Number.isInteger(retentionMs) || retentionMs < 0) throw new InvalidOptionsError(`retentionMs must be an integer >= 0; got ${String(options.retentionMs)}`);
  const cleanupIntervalMs = options.cleanupIntervalMs ?? 60_000;
  if (!Number.isInteger(cleanupIntervalMs) || cleanupIntervalMs < 10) {
    throw new InvalidOptionsError(`cleanupIntervalMs must be an integer >= 10; got ${String(options.cleanupIntervalMs)}`);
  }
  const sql = outboxSql(o.names);
  const label = `outbox relay "${o.name}"`;
  const turn = async (t: RelayTurn, counters: RelayCounters): Promise<void> => {
    const ended = new AbortController();
    const cleanupSignal = AbortSignal.any([t.interrupt, ended.signal]);
    const cleanup = retentionMs > 0 ? cleanupLoop(o, cleanupSignal, label, retentionMs, cleanupIntervalMs) : Promise.resolve();
    try {
      await relayRows(o, t, counters, label, sql, retentionMs === 0);
    } finally {
      ended.abort();
      await cleanup;
    }
  };
  return runRelay(o, `relay:outbox:${o.name}`, label, turn, () => outboxStats(o.db, { schema: o.names.raw, name: o.name }));
}

async function relayRows(
  o: ResolvedRelayOptions,
  t: RelayTurn,
  counters: RelayCounters,
  label: string,
  sql: ReturnType<typeof outboxSql>,
  deleteWhenSent: boolean,
): Promise<void> {
  const key = checkpointKey(o.name);
  let cursor = await loadRelayCheckpoint(o.db, o.names, key);
  const wakes = new Wakes(t.interrupt);
  const unlisten = await o.db
    .listen(outboxChannel(o.names), (payload) => {
      if (payload === o.name || payload === '') wakes.fire();
    })
    .catch((error: unknown) => {
      o.report(error, `${label}: LISTEN failed; polling every ${o.pollIntervalMs} ms`);
      return null;
    });
  let chase = 0;
  const chaseMaxMs = Math.min(o.pollIntervalMs, CHASE_MAX_MS);
  let readFailures = 0;
  const marks = new MarkPipeline(o.batchSize, async (step) => {
    const ids = step.ids;
    const committed = await commitFenced(
      o,
      t,
      label,
      async (tx) => {
        await advanceRelayCheckpoint(tx, o.names, key, { ...step, fence: t.lease.fence });
        if (ids.length > 0) await tx.query(sql.deleteBatch, [ids], `${o.names.raw}.obdel`);
      },
      (db) => advanceRelayCheckpointFenced(db, o.names, key, t.lease.name, { ...step, fence: t.lease.fence }, ids.length > 0 ? ids : undefined),
    );
    if (committed) counters.marked += step.count;
    return committed;
  });
  try {
    while (!t.interrupt.aborted) {
      wakes.woken = false;
      let rows: OutboxRow[];
      try {
        rows = (await o.db.query<OutboxRow>(sql.read, [o.name, cursor.tx, cursor.seq, o.batchSize], `${o.names.raw}.obread`)).rows;
        readFailures = 0;
      } catch (error) {
        if (t.interrupt.aborted) break;
        o.report(error, `${label}: reading the outbox failed`);
        await delay(backoffDelay(readFailures++, o.retryBaseMs, o.retryMaxMs), t.interrupt);
        continue;
      }
      if (rows.length > 0) {
        if (!(await marks.room(rows.length))) break;
        const entries = rows.map((r) => ({ topic: r.topic, message: toMessage(r) }));
        if (!(await publishBatch(o, t, label, () => entries, counters))) break;
        await o.afterPublish?.({ ids: rows.map((r) => r.envelope.eventId), fence: t.lease.fence });
        const last = rows[rows.length - 1] as OutboxRow;
        const to = { tx: last.tx, seq: last.id };
        marks.published({ from: cursor, to, count: rows.length, ids: deleteWhenSent ? rows.map((r) => r.id) : [] });
        cursor = to;
        // Should the next read come back empty, rows committed meanwhile may wait below the horizon
        // (their NOTIFY came before that read): check for them rather than sleep until the poll.
        chase = CHASE_MIN_MS;
        if (t.stopping.aborted) break;
        continue;
      }
      // Idle: the last batch's mark must be done before the relay sleeps.
      if (!(await marks.settle())) break;
      if (wakes.woken) {
        chase = CHASE_MIN_MS;
        continue;
      }
      // Woken (or just busy), yet nothing readable: rows committed behind a transaction that is
      // still running (anywhere on the server) wait below the read horizon. Re-read soon while
      // that lasts; once nothing is held back, sleep until a NOTIFY or the poll.
      if (chase > 0) {
        const held = await o.db
          .query<{ held: boolean }>(sql.heldBack, [o.name, cursor.tx, cursor.seq], `${o.names.raw}.obheld`)
          .then((r) => r.rows[0]?.held === true, () => true);
        if (held) {
          await wakes.wait(chase);
          chase = Math.min(chase * 2, chaseMaxMs);
          continue;
        }
        chase = 0;
      }
      await wakes.wait(o.pollIntervalMs);
      if (wakes.woken) chase = CHASE_MIN_MS;
    }
    await marks.settle(); // stopping finishes the batch in flight; a lost lease surfaces here
  } finally {
    wakes.close();
    await marks.settle().catch(() => false); // only after a throw above: the mark's own error is secondary
    await unlisten?.().catch(() => undefined);
  }
}

/** Deletes old sent rows every `intervalMs` until `signal` aborts (the turn ended). */
async function cleanupLoop(o: ResolvedRelayOptions, signal: AbortSignal, label: string, retentionMs: number, intervalMs: number): Promise<void> {
  while (!signal.aborted) {
    await delay(intervalMs, signal);
    if (signal.aborted) return;
    try {
      await deleteSentOutboxRows(o.db, { schema: o.names.raw, name: o.name, olderThanMs: retentionMs, signal });
    } catch (error) {
      o.report(error, `${label}: deleting old sent rows failed`);
    }
  }
}

function toMessage(r: OutboxRow): Message {
  return {
    event: r.envelope,
    key: r.partition_key,
    ...(r.traceparent === null ? {} : { traceparent: r.traceparent }),
    ...(r.tracestate === null ? {} : { tracestate: r.tracestate }),
  };
}

/** Wake-ups from NOTIFY: `wait` ends early on one, or when the turn is interrupted. */
class Wakes {
  woken = false;
  #resolve: (() => void) | null = null;
  readonly #signal: AbortSignal;
  readonly #onAbort = (): void => this.#resolve?.();

  constructor(signal: AbortSignal) {
    this.#signal = signal;
    signal.addEventListener('abort', this.#onAbort, { once: true });
  }

  fire(): void {
    this.woken = true;
    this.#resolve?.();
  }

  wait(ms: number): Promise<void> {
    if (this.#signal.aborted || this.woken) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done(): void {
        clearTimeout(timer);
        self.#resolve = null;
        resolve();
      }
      this.#resolve = done;
    });
  }

  close(): void {
    this.#signal.removeEventListener('abort', this.#onAbort);
    this.#resolve?.();
  }
}
