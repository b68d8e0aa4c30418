import { DEFAULT_MAX_MESSAGE_BYTES, InvalidOptionsError, reportToStderr, type ErrorReporter } from '@causeway/core';
import type { SASLOptions } from '@platformatic/kafka';
import type { ConnectionOptions as TlsOptions } from 'node:tls';

/** What the publisher and the subscriber share. */
export interface KafkaConnectionOptions {
  /** Bootstrap brokers as "host:port". Default ['127.0.0.1:9092']. */
  readonly brokers?: readonly string[];
  /** Client id the broker sees (logs, quotas); the adapter appends a role and a counter. Default 'causeway'. */
  readonly clientId?: string;
  /** TLS options for node:tls. Default: none (plaintext). */
  readonly tls?: TlsOptions;
  /** SASL credentials as @platformatic/kafka takes them. Default: none. Never logged. */
  readonly sasl?: SASLOptions;
  /**
   * Largest encoded message (header names and values plus the value). Checked before sending
   * and before parsing. Default 1 MiB, which is also about the broker's own default
   * (`message.max.bytes`); raise both together.
   */
  readonly maxMessageBytes?: number;
  /**
   * Create a missing topic on first use (CreateTopics). Default true. Set false where topics are
   * provisioned elsewhere or the principal has no CREATE permission: a missing topic then fails.
   */
  readonly createTopics?: boolean;
  /** Partitions of a topic the adapter creates. Default 6. An existing topic keeps its count. */
  readonly partitions?: number;
  /** Replication factor of a topic the adapter creates. Default -1: the broker's `default.replication.factor`. */
  readonly replicationFactor?: number;
  /** Where connection losses and failed commits are reported. Default: core's reportToStderr. */
  readonly onError?: ErrorReporter;
}

export interface KafkaPublisherOptions extends KafkaConnectionOptions {
  /**
   * How long a publish waits for the broker's acknowledgement (acks=all), reconnects and retries
   * included, so it covers a broker restart; then it rejects with AdapterError. Default 30,000 ms.
   */
  readonly publishTimeoutMs?: number;
}

export interface KafkaSubscriberOptions extends KafkaConnectionOptions {
  /**
   * Two jobs. It is the consumer group's session timeout: a consumer that stops heartbeating
   * (crashed, cut off) loses its partitions to the rest of the group after this long. It is also
   * a lease: a handler that has not settled its message after this long is given up on and the
   * message is redelivered (attempt + 1). Default 30,000 ms. The broker only accepts session
   * timeouts between `group.min.session.timeout.ms` and `group.max.session.timeout.ms`
   * (6 s and 30 min by default); outside that range subscribe() fails with AdapterError.
   */
  readonly ackTimeoutMs?: number;
  /**
   * Longest a fetch waits at the broker for new records (long poll). Default 1,000 ms. It also
   * bounds how long a newly assigned partition waits for its first fetch after a rebalance.
   */
  readonly fetchMaxWaitMs?: number;
  /** Records fetched but not yet handed to a handler, per subscription, before fetching pauses. Default 1,000. */
  readonly maxBufferedRecords?: number;
}

/**
 * The Kafka consumer group behind a Causeway group on a topic. A Kafka group id is cluster-wide
 * and may span topics, while a Causeway group belongs to one topic; sharing one Kafka group
 * across topics would rebalance unrelated subscriptions together (and the driver's assigner
 * hands a topic's partitions to members that do not read it). Group names have no dots, so
 * the first segment is always the group: `billing.orders.placed` = group billing on orders.placed.
 */
export function kafkaGroupId(topic: string, group: string): string {
  return `${group}.${topic}`;
}

export const DEFAULT_BROKERS: readonly string[] = ['127.0.0.1:9092'];
export const DEFAULT_CLIENT_ID = 'causeway';
export const DEFAULT_PARTITIONS = 6;
export const DEFAULT_PUBLISH_TIMEOUT_MS = 30_000;
export const DEFAULT_ACK_TIMEOUT_MS = 30_000;
export const DEFAULT_FETCH_MAX_WAIT_MS = 1_000;
export const DEFAULT_MAX_BUFFERED_RECORDS = 1_000;

export interface ResolvedConnection {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly tls: TlsOptions | undefined;
  readonly sasl: SASLOptions | undefined;
  readonly maxMessageBytes: number;
  readonly createTopics: boolean;
  readonly partitions: number;
  readonly replicationFactor: number;
  readonly onError: ErrorReporter;
}

export interface ResolvedPublisherOptions extends ResolvedConnection {
  readonly publishTimeoutMs: number;
}

export interface ResolvedSubscriberOptions extends ResolvedConnection {
  readonly ackTimeoutMs: number;
  readonly fetchMaxWaitMs: number;
  readonly maxBufferedRecords: number;
}

const BROKER = /^[A-Za-z0-9._:[\]-]+:\d{1,5}$/;
const CLIENT_ID = /^[A-Za-z0-9._-]{1,100}$/;

function resolveConnection(options: KafkaConnectionOptions): ResolvedConnection {
  const brokers = options.brokers ?? DEFAULT_BROKERS;
  if (!Array.isArray(brokers) || brokers.length === 0) throw new InvalidOptionsError('brokers must be a non-empty list of "host:port"');
  for (const b of brokers) {
    // Echoing a broker address is safe: credentials travel in `sasl`, never in the address.
    if (typeof b !== 'string' || !BROKER.test(b)) throw new InvalidOptionsError(`brokers: each entry must be "host:port"; got ${JSON.stringify(b)}`);
  }
  const clientId = options.clientId ?? DEFAULT_CLIENT_ID;
  if (typeof clientId !== 'string' || !CLIENT_ID.test(clientId)) {
    throw new InvalidOptionsError(`clientId must be 1-100 letters, digits, ".", "_" or "-"; got ${JSON.stringify(clientId)}`);
  }
  const replicationFactor = options.replicationFactor ?? -1;
  if (!Number.isInteger(replicationFactor) || (replicationFactor !== -1 && (replicationFactor < 1 || replicationFactor > 32767))) {
    throw new InvalidOptionsError(`replicationFactor must be -1 (broker default) or 1-32767; got ${String(replicationFactor)}`);
  }
  return {
    brokers: [...brokers],
    clientId,
    tls: options.tls,
    sasl: options.sasl,
    maxMessageBytes: positiveInteger(options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES, 'maxMessageBytes'),
    createTopics: options.createTopics ?? true,
    partitions: boundedInteger(options.partitions ?? DEFAULT_PARTITIONS, 'partitions', 1, 100_000),
    replicationFactor,
    onError: options.onError ?? reportToStderr,
  };
}

export function resolvePublisherOptions(options: KafkaPublisherOptions): ResolvedPublisherOptions {
  return {
    ...resolveConnection(options),
    publishTimeoutMs: positiveInteger(options.publishTimeoutMs ?? DEFAULT_PUBLISH_TIMEOUT_MS, 'publishTimeoutMs'),
  };
}

export function resolveSubscriberOptions(options: KafkaSubscriberOptions): ResolvedSubscriberOptions {
  return {
    ...resolveConnection(options),
    // Below 1 s the heartbeat (a third of it, at most 1 s) would hammer the coordinator.
    ackTimeoutMs: boundedInteger(options.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS, 'ackTimeoutMs', 1_000, 1_800_000),
    fetchMaxWaitMs: boundedInteger(options.fetchMaxWaitMs ?? DEFAULT_FETCH_MAX_WAIT_MS, 'fetchMaxWaitMs', 10, 60_000),
    maxBufferedRecords: boundedInteger(options.maxBufferedRecords ?? DEFAULT_MAX_BUFFERED_RECORDS, 'maxBufferedRecords', 1, 1_000_000),
  };
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isInteger(value) || value <= 0) throw new InvalidOptionsError(`${name} must be a positive integer; got ${String(value)}`);
  return value;
}

function boundedInteger(value: number, name: string, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionsError(`${name} must be an integer from ${min} to ${max}; got ${String(value)}`);
  }
  return value;
}
