import {
  DEFAULT_MAX_MESSAGE_BYTES,
  InvalidOptionsError,
  SchemaError,
  encodeStructured,
  envelopeProblems,
  isMessageTooLargeError,
  jsonProblem,
  messageKey,
  streamIdProblem,
  utf8Length,
  validateTopic,
  type EventEnvelope,
  type Message,
  type StreamFacts,
} from '@causeway/core';
import { migrate } from './migrate.js';
import { schemaNames, type SchemaNames } from './schema.js';
import type { SqlDatabase, SqlExecutor } from './sql-executor.js';

export interface PostgresOutboxOptions {
  /** Schema holding the `outbox` table (migration 6). Default 'causeway'. */
  readonly schema?: string;
  /** Which outbox of the schema (one relay each): 1-64 letters, digits, "_" or "-". Default 'default'. */
  readonly name?: string;
  /** Largest message, as encoded on the wire (CloudEvents structured JSON). Default 1 MiB. */
  readonly maxMessageBytes?: number;
  /** Accept event types that break the past-tense dot-notation rule. Default false. */
  readonly allowAnyTypeName?: boolean;
}

/** Most messages in one `add` call: one INSERT carries them all. */
export const MAX_OUTBOX_MESSAGES_PER_ADD = 10_000;
const OUTBOX_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_KEY_BYTES = 1024;
const MAX_TRACE_CHARS = 512;

/** Creates the outbox, running migrate() first unless `migrate: false`. */
export async function createPostgresOutbox(
  options: PostgresOutboxOptions & { readonly db: SqlDatabase; readonly migrate?: boolean },
): Promise<PostgresOutbox> {
  const outbox = new PostgresOutbox(options);
  if (options.migrate ?? true) await migrate(options.db, { schema: outbox.names.raw });
  return outbox;
}

/** The NOTIFY channel of a schema's outboxes; the payload is the outbox name. */
export function outboxChannel(names: SchemaNames): string {
  return `${names.raw}_outbox`;
}

/** Checks an outbox name (it becomes part of the relay's lease name and the NOTIFY payload). */
export function validateOutboxName(name: string): string {
  if (typeof name !== 'string' || !OUTBOX_NAME.test(name)) {
    throw new InvalidOptionsError(`outbox name must be 1-64 letters, digits, "_" or "-"; got ${JSON.stringify(name)}`);
  }
  return name;
}

/**
 * The write side of the transactional outbox. `add(tx, topic, messages)` inserts the messages with
 * the caller's own transaction, so they exist exactly when the business change does: COMMIT makes
 * both visible, ROLLBACK removes both. The NOTIFY that wakes the relay is sent in that transaction
 * too, and PostgreSQL delivers it only at COMMIT. The relay (outbox-relay.ts) publishes them.
 *
 * Every message is validated (envelope rules, key, trace context, encoded size under the limit)
 * before anything is written: one bad message fails the call and writes nothing.
 */
export class PostgresOutbox {
  readonly names: SchemaNames;
  readonly name: string;
  readonly maxMessageBytes: number;
  readonly #allowAnyTypeName: boolean;
  readonly #insert: string;

  constructor(options: PostgresOutboxOptions = {}) {
    this.names = schemaNames(options.schema ?? 'causeway');
    this.name = validateOutboxName(options.name ?? 'default');
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    if (!Number.isInteger(this.maxMessageBytes) || this.maxMessageBytes < 1) {
      throw new InvalidOptionsError(`maxMessageBytes must be a positive integer; got ${String(options.maxMessageBytes)}`);
    }
    this.#allowAnyTypeName = options.allowAnyTypeName ?? false;
    const s = this.names.schema;
    // One statement: the rows, then the NOTIFY (only when a row was written).
    this.#insert = `WITH ins AS (
        INSERT INTO ${s}.outbox (outbox, topic, partition_key, message_id, tenant_id, event_type, envelope, traceparent, tracestate)
        SELECT $1, $2, m.k, m.id, m.tenant, m.type, m.env, m.tp, m.ts
        FROM unnest($3::text[], $4::uuid[], $5::text[], $6::text[], $7::jsonb[], $8::text[], $9::text[]) WITH ORDINALITY
          AS m (k, id, tenant, type, env, tp, ts, ord)
        ORDER BY m.ord
        RETURNING 1
      )
      SELECT pg_notify($10, $1) FROM (SELECT 1 FROM ins LIMIT 1) AS wrote`;
  }

  /**
   * Writes `messages` for `topic` in `tx` (the handle `db.transaction` gives). Messages of one key
   * are published in the order they were added (across calls and transactions: in commit order of
   * the writing transactions' ids, then add order). Resolves when written, not committed.
   * Throws InvalidOptionsError for a bad topic, SchemaError or MessageTooLargeError for a bad message.
   */
  async add(tx: SqlExecutor, topic: string, messages: readonly Message[]): Promise<void> {
    validateTopic(topic);
    if (!Array.isArray(messages)) throw new SchemaError(['messages must be an array']);
    if (messages.length === 0) return;
    if (messages.length > MAX_OUTBOX_MESSAGES_PER_ADD) {
      throw new SchemaError([`at most ${MAX_OUTBOX_MESSAGES_PER_ADD} messages per add; got ${messages.length}`]);
    }
    const cols = { key: [] as string[], id: [] as string[], tenant: [] as string[], type: [] as string[], env: [] as string[], tp: [] as (string | null)[], ts: [] as (string | null)[] };
    messages.forEach((message, i) => {
      const event = this.#check(message, i);
      cols.key.push(messageKey(message));
      cols.id.push(event.eventId);
      cols.tenant.push(event.tenantId);
      cols.type.push(event.eventType);
      cols.env.push(JSON.stringify(event));
      cols.tp.push(message.traceparent ?? null);
      cols.ts.push(message.tracestate ?? null);
    });
    await tx.query(
      this.#insert,
      [this.name, topic, cols.key, cols.id, cols.tenant, cols.type, cols.env, cols.tp, cols.ts, outboxChannel(this.names)],
      `${this.names.raw}.obadd`,
    );
  }

  /** Validates one message; returns the envelope as it will be stored (known fields only). */
  #check(message: Message, index: number): EventEnvelope & StreamFacts {
    const at = `message ${index}`;
    if (typeof message !== 'object' || message === null || typeof message.event !== 'object' || message.event === null) {
      throw new SchemaError([`${at}: must be an object with an \`event\` envelope`]);
    }
    const e = message.event;
    const event: EventEnvelope & StreamFacts = {
      eventId: e.eventId,
      eventType: e.eventType,
      eventVersion: e.eventVersion,
      tenantId: e.tenantId,
      occurredAt: e.occurredAt,
      correlationId: e.correlationId,
      causationId: e.causationId,
      producer: e.producer,
      data: e.data,
      metadata: e.metadata,
      ...(e.streamId === undefined ? {} : { streamId: e.streamId }),
      ...(e.streamVersion === undefined ? {} : { streamVersion: e.streamVersion }),
      ...(e.recordedAt === undefined ? {} : { recordedAt: e.recordedAt }),
    };
    const problems = envelopeProblems(event, this.#allowAnyTypeName);
    if (e.streamId !== undefined) {
      const p = streamIdProblem(e.streamId);
      if (p) problems.push(p);
    }
    if (e.streamVersion !== undefined && (!Number.isSafeInteger(e.streamVersion) || e.streamVersion < 1)) {
      problems.push(`streamVersion must be an integer >= 1; got ${String(e.streamVersion)}`);
    }
    if (e.recordedAt !== undefined && (typeof e.recordedAt !== 'string' || Number.isNaN(Date.parse(e.recordedAt)))) {
      problems.push(`recordedAt must be an RFC 3339 timestamp; got ${JSON.stringify(e.recordedAt)}`);
    }
    if (message.key !== undefined) problems.push(...keyProblems(message.key));
    for (const field of ['traceparent', 'tracestate'] as const) {
      const v = message[field];
      if (v !== undefined && (typeof v !== 'string' || v.length > MAX_TRACE_CHARS || !/^[\x20-\x7e]*$/.test(v))) {
        problems.push(`${field} must be printable ASCII of at most ${MAX_TRACE_CHARS} characters`);
      }
    }
    if (problems.length > 0) throw new SchemaError(problems.map((p) => `${at} (${String(e.eventId)}): ${p}`));
    try {
      encodeStructured(message, { maxMessageBytes: this.maxMessageBytes });
    } catch (error) {
      if (isMessageTooLargeError(error)) throw error;
      throw new SchemaError([`${at} (${e.eventId}): cannot be encoded: ${error instanceof Error ? error.message : String(error)}`], { cause: error });
    }
    return event;
  }
}

function keyProblems(key: unknown): string[] {
  if (typeof key !== 'string' || key.length === 0) return ['key must be a non-empty string'];
  const p = jsonProblem(key, 'key');
  if (p) return [p];
  const bytes = utf8Length(key);
  return bytes > MAX_KEY_BYTES ? [`key must be at most ${MAX_KEY_BYTES} bytes of UTF-8; got ${bytes}`] : [];
}
