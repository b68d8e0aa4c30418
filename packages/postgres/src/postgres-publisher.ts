import {
  ClosedError,
  DEFAULT_CLOSE_TIMEOUT_MS,
  InvalidOptionsError,
  validateTopic,
  type CloseOptions,
  type Message,
  type Publisher,
} from '@causeway/core';
import { adapterError, brokerChannel, brokerSql, retryTransient, type BrokerSql } from './broker-sql.js';
import { encodeMessages, type EncodedBatch } from './codec.js';
import { migrate } from './migrate.js';
import { resolvePublisherOptions, type PostgresPublisherOptions, type ResolvedPublisherOptions } from './postgres-broker-options.js';
import type { SqlExecutor } from './sql-executor.js';

/** Creates a publisher, running migrate() first unless `migrate: false`. */
export async function createPostgresPublisher(options: PostgresPublisherOptions): Promise<PostgresPublisher> {
  const publisher = new PostgresPublisher(options);
  if (options.migrate ?? true) await migrate(options.db, { schema: publisher.schema });
  return publisher;
}

/**
 * The Publisher port on PostgreSQL: a publish is one INSERT of every message into the broker log
 * (array order kept), with a NOTIFY, in one transaction. It resolves after COMMIT, so the
 * messages are as durable as the database (fsync on commit with the server's defaults).
 *
 * - A re-publish of an event id already in the topic's log is dropped (broker dedup), which also
 *   makes the retries after a lost connection safe.
 * - `publishInTransaction` writes the messages with the caller's transaction: they are delivered
 *   only if, and once, that transaction commits (the outbox pattern without a relay).
 */
export class PostgresPublisher implements Publisher {
  readonly #options: ResolvedPublisherOptions;
  readonly #sql: BrokerSql;
  readonly #channel: string;
  readonly #inFlight = new Set<Promise<unknown>>();
  #closing: Promise<void> | undefined;

  constructor(options: PostgresPublisherOptions) {
    this.#options = resolvePublisherOptions(options);
    this.#sql = brokerSql(this.#options.names);
    this.#channel = brokerChannel(this.#options.names);
  }

  /** The schema's name (unquoted). */
  get schema(): string {
    return this.#options.names.raw;
  }

  async publish(topic: string, messages: readonly Message[]): Promise<void> {
    if (this.#closing !== undefined) throw new ClosedError('postgres publisher');
    validateTopic(topic);
    const batch = encodeMessages(messages, this.#options);
    if (batch.bodies.length === 0) return;
    const deadline = Date.now() + this.#options.publishTimeoutMs;
    const write = retryTransient(() => this.#write(this.#options.db, topic, batch), deadline, `publish to ${topic}`);
    this.#inFlight.add(write);
    try {
      await write;
    } finally {
      this.#inFlight.delete(write);
    }
  }

  /**
   * Writes the messages inside the caller's transaction (`tx` from `db.transaction`): they become
   * visible to subscribers at its COMMIT and vanish with its ROLLBACK. Same validation and size
   * checks as publish(); no retry (the transaction is the caller's). Resolves when written, not
   * committed.
   */
  async publishInTransaction(tx: SqlExecutor, topic: string, messages: readonly Message[]): Promise<void> {
    if (this.#closing !== undefined) throw new ClosedError('postgres publisher');
    validateTopic(topic);
    const batch = encodeMessages(messages, this.#options);
    if (batch.bodies.length === 0) return;
    try {
      await this.#write(tx, topic, batch);
    } catch (error) {
      throw adapterError(error, `publish to ${topic} in a transaction`);
    }
  }

  /**
   * Deletes log rows published before `olderThan` that every consumer group of their topic has
   * admitted and acked (optionally of one topic). A row some group has not finished with is
   * never deleted. New groups starting from 'earliest' replay only what is left. Returns the count.
   */
  async pruneMessages(options: { readonly olderThan: Date | string; readonly topic?: string }): Promise<number> {
    const at = options.olderThan instanceof Date ? options.olderThan : new Date(options.olderThan);
    if (Number.isNaN(at.getTime())) throw new InvalidOptionsError(`olderThan must be a Date or an ISO time; got ${String(options.olderThan)}`);
    if (options.topic !== undefined) validateTopic(options.topic);
    try {
      const r = await this.#options.db.query(this.#sql.prune, [at.toISOString(), options.topic ?? null]);
      return r.rowCount;
    } catch (error) {
      throw adapterError(error, 'prune the broker log');
    }
  }

  /** Waits for publishes already started (up to the timeout), then closes the database if owned. Idempotent. */
  close(options?: CloseOptions): Promise<void> {
    this.#closing ??= (async () => {
      const timeoutMs = options?.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.allSettled([...this.#inFlight]),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, timeoutMs);
        }),
      ]);
      clearTimeout(timer);
      if (this.#options.ownsDatabase) await this.#options.db.close();
    })();
    return this.#closing;
  }

  #write(executor: SqlExecutor, topic: string, batch: EncodedBatch): Promise<unknown> {
    return executor.query(this.#sql.publish, [topic, batch.keys, batch.bodies, batch.eventIds, this.#channel], `${this.#options.names.raw}.bpub`);
  }
}
