import { DEFAULT_MAX_MESSAGE_BYTES, InvalidOptionsError, reportToStderr, type ErrorReporter } from '@causeway/core';
import { schemaNames, type SchemaNames } from './schema.js';
import type { SqlDatabase } from './sql-executor.js';

/** What the publisher and the subscriber share. */
export interface PostgresBrokerOptions {
  /** The database (createPgDatabase or createPGliteDatabase). */
  readonly db: SqlDatabase;
  /** Schema holding the broker tables (migration 3). Default 'causeway'. */
  readonly schema?: string;
  /**
   * Largest encoded message (the structured CloudEvent JSON, in UTF-8 bytes), checked before
   * writing and, on the consuming side, before parsing. Default 1 MiB.
   */
  readonly maxMessageBytes?: number;
  /** Close `db` when this publisher or subscriber closes. Default false. */
  readonly ownsDatabase?: boolean;
  /** createPostgresPublisher/createPostgresSubscriber run migrate() first. Default true. Constructors never migrate. */
  readonly migrate?: boolean;
}

export interface PostgresPublisherOptions extends PostgresBrokerOptions {
  /**
   * How long one publish() keeps retrying while the database is unreachable (restart, failover)
   * before it rejects with AdapterError. Retries are safe: a re-sent event id is dropped. Default 30,000 ms.
   */
  readonly publishTimeoutMs?: number;
}

export interface PostgresSubscriberOptions extends PostgresBrokerOptions {
  /**
   * The lease on a claimed message: not settled within this time (the consumer crashed or hung),
   * it goes to another consumer of the group with attempt + 1. Default 30,000 ms.
   */
  readonly ackTimeoutMs?: number;
  /**
   * The fallback poll while idle, for a missed NOTIFY (LISTEN is the wake-up path). Default 2,000 ms.
   */
  readonly pollIntervalMs?: number;
  /** How long an ack or nack keeps retrying while the database is unreachable. Default 30,000 ms. */
  readonly settleTimeoutMs?: number;
  /** Rows moved from the log into a group per turn at most (a turn also admits no more than it can lease). Default 500. */
  readonly admitBatch?: number;
  /** Where adapter trouble goes (lost connection, failed claim or ack). Default: core's reportToStderr. */
  readonly onError?: ErrorReporter;
}

export interface ResolvedBrokerOptions {
  readonly db: SqlDatabase;
  readonly names: SchemaNames;
  readonly maxMessageBytes: number;
  readonly ownsDatabase: boolean;
}

export interface ResolvedPublisherOptions extends ResolvedBrokerOptions {
  readonly publishTimeoutMs: number;
}

export interface ResolvedSubscriberOptions extends ResolvedBrokerOptions {
  readonly ackTimeoutMs: number;
  readonly pollIntervalMs: number;
  readonly settleTimeoutMs: number;
  readonly admitBatch: number;
  readonly onError: ErrorReporter;
}

function resolveBroker(options: PostgresBrokerOptions): ResolvedBrokerOptions {
  if (typeof options !== 'object' || options === null || typeof options.db?.query !== 'function') {
    throw new InvalidOptionsError('db is required: a SqlDatabase from createPgDatabase() or createPGliteDatabase()');
  }
  return {
    db: options.db,
    names: schemaNames(options.schema ?? 'causeway'),
    maxMessageBytes: integer(options.maxMessageBytes, DEFAULT_MAX_MESSAGE_BYTES, 'maxMessageBytes', 1, 256 * 1024 * 1024),
    ownsDatabase: options.ownsDatabase ?? false,
  };
}

export function resolvePublisherOptions(options: PostgresPublisherOptions): ResolvedPublisherOptions {
  return {
    ...resolveBroker(options),
    publishTimeoutMs: integer(options.publishTimeoutMs, 30_000, 'publishTimeoutMs', 1, 3_600_000),
  };
}

export function resolveSubscriberOptions(options: PostgresSubscriberOptions): ResolvedSubscriberOptions {
  if (options.onError !== undefined && typeof options.onError !== 'function') throw new InvalidOptionsError('onError must be a function');
  return {
    ...resolveBroker(options),
    // The lease is bound as an integer of milliseconds (int4), so at most about 24 days.
    ackTimeoutMs: integer(options.ackTimeoutMs, 30_000, 'ackTimeoutMs', 10, 2_000_000_000),
    pollIntervalMs: integer(options.pollIntervalMs, 2_000, 'pollIntervalMs', 10, 3_600_000),
    settleTimeoutMs: integer(options.settleTimeoutMs, 30_000, 'settleTimeoutMs', 0, 3_600_000),
    admitBatch: integer(options.admitBatch, 500, 'admitBatch', 1, 100_000),
    onError: options.onError ?? reportToStderr,
  };
}

function integer(value: number | undefined, fallback: number, name: string, min: number, max: number): number {
  const n = value ?? fallback;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new InvalidOptionsError(`${name} must be an integer from ${min} to ${max}; got ${String(value)}`);
  }
  return n;
}
