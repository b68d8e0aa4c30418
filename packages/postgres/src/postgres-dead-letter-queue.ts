import { createHash } from 'node:crypto';
import {
  validateDeadLetterFilter,
  validateOperatorNote,
  validatePageRequest,
  type DeadLetter,
  type DeadLetterActionResult,
  type DeadLetterDetail,
  type DeadLetterFilter,
  type DeadLetterGroup,
  type DeadLetterHistoryEntry,
  type DeadLetterPage,
  type DeadLetterPageRequest,
  type DeadLetterQueue,
  type DeadLetterReplayResult,
  type DeadLetterReplaySource,
  type DeadLetterSink,
  type OperatorNote,
  type ReplayItem,
  type ReplayOutcome,
} from '@causeway/core';
import {
  claimRows,
  DETAIL_COLUMNS,
  filterSql,
  HISTORY_COLUMNS,
  iso,
  SUMMARY_COLUMNS,
  toDetail,
  toHistoryEntry,
  toSummary,
  type DetailRow,
  type HistoryRow,
  type SummaryRow,
} from './dead-letter-rows.js';
import { schemaNames, type SchemaNames } from './schema.js';
import type { SqlExecutor } from './sql-executor.js';

/** Longest error message and stack kept per letter (a runaway message must not bloat the table). */
const MAX_MESSAGE_CHARS = 8_192;
const MAX_STACK_CHARS = 16_384;

/**
 * The dead-letter queue in PostgreSQL/PGlite (`<schema>.dead_letters` and its history, migration 7).
 *
 * - As a DeadLetterSink (give it to deadLetter()): one row per message and consumer. A message
 *   put again (a crash between put and ack, a replay that fails) updates that row: attempts go
 *   up, the last failure and its error are replaced, the first failure time stays.
 * - As a DeadLetterQueue: the operations the CLI and console call (list, groups, inspect,
 *   replay, skip, purge), every action recorded in the letter's history with who and why.
 * - As a DeadLetterReplaySource: replayDeadLetters() in the consumer's process claims the
 *   letters an operator marked for replay (FOR UPDATE SKIP LOCKED, with a lease) and settles them.
 */
export class PostgresDeadLetterQueue implements DeadLetterSink, DeadLetterQueue, DeadLetterReplaySource {
  private readonly names: SchemaNames;

  /** `schema`: holding Causeway's tables, migrated to version 7 or later. Default 'causeway'. */
  constructor(
    private readonly db: SqlExecutor,
    schema = 'causeway',
  ) {
    this.names = schemaNames(schema);
  }

  async put(letter: DeadLetter): Promise<void> {
    const s = this.names.schema;
    const e = letter.event;
    const identity = e !== undefined ? `e:${e.tenantId}/${e.eventId}` : `u:${letter.topic}/${bodyHash(letter.raw?.body)}`;
    await this.db.query(
      `WITH up AS (
         INSERT INTO ${s}.dead_letters AS d (consumer, identity, topic, group_name, key, broker_id, tenant_id, event_id, event_type, event,
           raw_headers, raw_body, reason, error_class, error_message, stack, fingerprint, attempts)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8::uuid, $9, $10::json, $11::jsonb, $12, $13, $14, $15, $16, $17, $18)
         ON CONFLICT (consumer, identity) DO UPDATE SET
           status = 'dead', attempts = GREATEST(d.attempts + 1, EXCLUDED.attempts), last_failed_at = clock_timestamp(),
           broker_id = EXCLUDED.broker_id, reason = EXCLUDED.reason, error_class = EXCLUDED.error_class,
           error_message = EXCLUDED.error_message, stack = EXCLUDED.stack, fingerprint = EXCLUDED.fingerprint,
           claim = NULL, not_before = NULL
         RETURNING d.id, d.consumer, d.event_id, d.reason, d.attempts, d.error_class, d.error_message)
       INSERT INTO ${s}.dead_letter_history (letter_id, consumer, event_id, action, detail)
       SELECT id, consumer, event_id, 'dead_lettered', reason || ' at attempt ' || attempts || ': ' || error_class || ': ' || left(error_message, 500) FROM up`,
      [
        letter.consumer,
        identity,
        letter.topic,
        letter.group,
        letter.key,
        letter.brokerId,
        e?.tenantId ?? '',
        e?.eventId ?? null,
        e?.eventType ?? null,
        e === undefined ? null : JSON.stringify(e),
        letter.raw === undefined ? null : JSON.stringify(letter.raw.headers),
        letter.raw === undefined ? null : Buffer.from(letter.raw.body.buffer, letter.raw.body.byteOffset, letter.raw.body.byteLength),
        letter.reason,
        letter.errorClass,
        letter.errorMessage.slice(0, MAX_MESSAGE_CHARS),
        letter.stack?.slice(0, MAX_STACK_CHARS) ?? null,
        letter.fingerprint,
        letter.attempts,
      ],
      `${this.names.raw}.dlq-put`,
    );
  }

  async list(filter: DeadLetterFilter = {}, page: DeadLetterPageRequest = {}): Promise<DeadLetterPage> {
    validateDeadLetterFilter(filter);
    const limit = validatePageRequest(page);
    const params: unknown[] = [];
    let where = filterSql(filter, params);
    if (page.after !== undefined) {
      params.push(page.after);
      where += ` AND id < $${params.length}::bigint`;
    }
    params.push(limit + 1);
    const { rows } = await this.db.query<SummaryRow>(
      // Ordered by the column, not by the text `id` the select list makes of it.
      `SELECT ${SUMMARY_COLUMNS} FROM ${this.names.schema}.dead_letters d WHERE ${where} ORDER BY d.id DESC LIMIT $${params.length}`,
      params,
    );
    const items = rows.slice(0, limit).map(toSummary);
    return { items, next: rows.length > limit ? (items[items.length - 1]?.id ?? null) : null };
  }

  async groups(filter: DeadLetterFilter = {}): Promise<readonly DeadLetterGroup[]> {
    validateDeadLetterFilter(filter);
    const s = this.names.schema;
    const params: unknown[] = [];
    const { rows } = await this.db.query<{
      consumer: string;
      fingerprint: string;
      count: number;
      first_failed_at: string;
      last_failed_at: string;
      sample_id: string;
      error_class: string;
      error_message: string;
    }>(
      `WITH g AS (
         SELECT consumer, fingerprint, count(*) AS n, min(first_failed_at) AS f, max(last_failed_at) AS l, max(id) AS sample
         FROM ${s}.dead_letters WHERE ${filterSql(filter, params)} GROUP BY consumer, fingerprint)
       SELECT g.consumer, g.fingerprint, g.n::integer AS count, ${iso('g.f')} AS first_failed_at, ${iso('g.l')} AS last_failed_at,
         g.sample::text AS sample_id, d.error_class, d.error_message
       FROM g JOIN ${s}.dead_letters d ON d.id = g.sample
       ORDER BY g.n DESC, g.l DESC, g.consumer, g.fingerprint`,
      params,
    );
    return rows.map((r) => ({
      consumer: r.consumer,
      fingerprint: r.fingerprint,
      count: r.count,
      firstFailedAt: r.first_failed_at,
      lastFailedAt: r.last_failed_at,
      sampleId: r.sample_id,
      errorClass: r.error_class,
      sampleMessage: r.error_message,
    }));
  }

  async inspect(id: string): Promise<DeadLetterDetail | null> {
    validateDeadLetterFilter({ ids: [id] });
    const { rows } = await this.db.query<DetailRow>(`SELECT ${DETAIL_COLUMNS} FROM ${this.names.schema}.dead_letters WHERE id = $1::bigint`, [id]);
    const row = rows[0];
    return row === undefined ? null : toDetail(row, await this.historyRows(id));
  }

  async history(id: string): Promise<readonly DeadLetterHistoryEntry[]> {
    validateDeadLetterFilter({ ids: [id] });
    return (await this.historyRows(id)).map(toHistoryEntry);
  }

  async replay(filter: DeadLetterFilter, note: OperatorNote): Promise<DeadLetterReplayResult> {
    // A replayed letter is not replayed twice; undecodable bytes would fail the same way again.
    const rows = await this.act<{ id: string; marked: boolean }>('replay', filter, note, (s, where) =>
      `WITH sel AS (
         SELECT id, event IS NOT NULL AS replayable FROM ${s}.dead_letters WHERE ${where} AND status IN ('dead', 'skipped')),
       up AS (
         UPDATE ${s}.dead_letters d SET status = 'replay_requested', replay_by = $1, replay_reason = $2, claim = NULL, not_before = NULL
         FROM sel WHERE d.id = sel.id AND sel.replayable AND d.status IN ('dead', 'skipped')
         RETURNING d.id, d.consumer, d.event_id),
       h AS (
         INSERT INTO ${s}.dead_letter_history (letter_id, consumer, event_id, action, actor, reason)
         SELECT id, consumer, event_id, 'replay_requested', $1, $2 FROM up)
       SELECT id::text AS id, true AS marked FROM up
       UNION ALL SELECT id::text, false FROM sel WHERE NOT replayable`,
    );
    return { ids: sortedIds(rows.filter((r) => r.marked)), notReplayable: sortedIds(rows.filter((r) => !r.marked)) };
  }

  async skip(filter: DeadLetterFilter, note: OperatorNote): Promise<DeadLetterActionResult> {
    const rows = await this.act<{ id: string }>('skip', filter, note, (s, where) =>
      `WITH up AS (
         UPDATE ${s}.dead_letters SET status = 'skipped', claim = NULL, not_before = NULL
         WHERE ${where} AND status IN ('dead', 'replay_requested')
         RETURNING id, consumer, event_id),
       h AS (
         INSERT INTO ${s}.dead_letter_history (letter_id, consumer, event_id, action, actor, reason)
         SELECT id, consumer, event_id, 'skipped', $1, $2 FROM up)
       SELECT id::text AS id FROM up`,
    );
    return { ids: sortedIds(rows) };
  }

  async purge(filter: DeadLetterFilter, note: OperatorNote): Promise<DeadLetterActionResult> {
    const rows = await this.act<{ id: string }>('purge', filter, note, (s, where) =>
      `WITH gone AS (
         DELETE FROM ${s}.dead_letters WHERE ${where} AND status <> 'replaying'
         RETURNING id, consumer, event_id, status, error_class, error_message),
       h AS (
         INSERT INTO ${s}.dead_letter_history (letter_id, consumer, event_id, action, actor, reason, detail)
         SELECT id, consumer, event_id, 'purged', $1, $2, 'was ' || status || ': ' || error_class || ': ' || left(error_message, 500) FROM gone)
       SELECT id::text AS id FROM gone`,
    );
    return { ids: sortedIds(rows) };
  }

  claim(consumer: string, limit: number, leaseMs: number): Promise<readonly ReplayItem[]> {
    const s = this.names.schema;
    // A 'replaying' letter whose lease ran out belonged to a worker that died: take it over.
    const pick = `SELECT id FROM ${s}.dead_letters
      WHERE consumer = $1 AND (status = 'replay_requested' OR (status = 'replaying' AND not_before < clock_timestamp()))
      ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED`;
    const table = `${s}.dead_letters`;
    return claimRows(this.db, 'dead-letter', { table, pick, set: `status = 'replaying',`, name: `${this.names.raw}.dlq-claim` }, consumer, limit, leaseMs);
  }

  async settle(item: ReplayItem, outcome: ReplayOutcome): Promise<void> {
    const s = this.names.schema;
    if (outcome.kind === 'acked') {
      // Acked, but the consumer path may have dead-lettered it again (deadLetter() puts, then
      // acks): that put set the row back to 'dead' and dropped the claim.
      await this.db.query(
        `WITH done AS (
           UPDATE ${s}.dead_letters SET status = 'replayed', claim = NULL, not_before = NULL
           WHERE id = $1::bigint AND claim = $2 AND status = 'replaying'
           RETURNING id, consumer, event_id, replay_by, replay_reason),
         ok AS (
           INSERT INTO ${s}.dead_letter_history (letter_id, consumer, event_id, action, actor, reason, detail)
           SELECT id, consumer, event_id, 'replayed', replay_by, replay_reason, 'acked by the consumer path' FROM done)
         INSERT INTO ${s}.dead_letter_history (letter_id, consumer, event_id, action, actor, reason, detail)
         SELECT id, consumer, event_id, 'replay_failed', replay_by, replay_reason,
           'dead-lettered again at attempt ' || attempts || ': ' || error_class || ': ' || left(error_message, 500)
         FROM ${s}.dead_letters WHERE id = $1::bigint AND status = 'dead' AND claim IS NULL AND NOT EXISTS (SELECT 1 FROM done)`,
        [item.id, item.claim],
      );
      return;
    }
    const e = outcome.error;
    await this.db.query(
      `WITH back AS (
         UPDATE ${s}.dead_letters SET status = 'dead', claim = NULL, not_before = NULL, attempts = attempts + 1, last_failed_at = clock_timestamp(),
           error_class = coalesce($3, error_class), error_message = coalesce($4, error_message),
           stack = CASE WHEN $3::text IS NULL THEN stack ELSE $5 END, fingerprint = coalesce($6, fingerprint)
         WHERE id = $1::bigint AND claim = $2 AND status = 'replaying'
         RETURNING id, consumer, event_id, attempts, replay_by, replay_reason)
       INSERT INTO ${s}.dead_letter_history (letter_id, consumer, event_id, action, actor, reason, detail)
       SELECT id, consumer, event_id, 'replay_failed', replay_by, replay_reason,
         'nacked by the consumer path at attempt ' || attempts || coalesce(': ' || $3 || ': ' || left($4, 500), '') FROM back`,
      [item.id, item.claim, e?.errorClass ?? null, e?.errorMessage.slice(0, MAX_MESSAGE_CHARS) ?? null, e?.stack?.slice(0, MAX_STACK_CHARS) ?? null, e?.fingerprint ?? null],
    );
  }

  /** An operator action: checked, then one statement with $1 = who, $2 = why, and the filter's values after them. */
  private async act<R>(action: string, filter: DeadLetterFilter, note: OperatorNote, sql: (schema: string, where: string) => string): Promise<R[]> {
    validateDeadLetterFilter(filter, action);
    validateOperatorNote(note, action);
    const params: unknown[] = [note.by, note.reason];
    const where = filterSql(filter, params);
    const { rows } = await this.db.query<R>(sql(this.names.schema, where), params);
    return rows;
  }

  private async historyRows(id: string): Promise<HistoryRow[]> {
    const { rows } = await this.db.query<HistoryRow>(
      `SELECT ${HISTORY_COLUMNS} FROM ${this.names.schema}.dead_letter_history WHERE letter_id = $1::bigint ORDER BY id`,
      [id],
    );
    return rows;
  }
}

function bodyHash(body: Uint8Array | undefined): string {
  return createHash('sha256')
    .update(body ?? new Uint8Array())
    .digest('hex');
}

const sortedIds = (rows: readonly { id: string }[]): string[] =>
  rows.map((r) => r.id).sort((a, b) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0));
