import { DEFAULT_MAX_MESSAGE_BYTES, InvalidOptionsError, reportToStderr, topicProblem, type ErrorReporter } from '@causeway/core';
import type { ConnectionOptions } from '@nats-io/transport-node';

/** What the publisher and the subscriber both need: where the server is, and how topics become streams. */
export interface NatsOptions {
  /** Server URL(s). Default 'nats://127.0.0.1:4222'. Credentials in a URL are never logged. */
  readonly servers?: string | readonly string[];
  /**
   * Extra client options (user/pass, token, authenticator, tls, name, inboxPrefix...). Default {}
   * on top of the adapter's reconnectTimeWait 1,000 ms, pingInterval 10,000 ms, maxPingOut 2,
   * noAsyncTraces true. `servers`, `reconnect`, `maxReconnectAttempts` and `waitOnFirstConnect`
   * are the adapter's: it reconnects forever, because a process that stops reconnecting stops
   * working silently.
   */
  readonly connection?: Omit<ConnectionOptions, 'servers' | 'port' | 'reconnect' | 'maxReconnectAttempts' | 'waitOnFirstConnect'>;
  /** First subject token(s): topic `orders` travels on subject `<subjectPrefix>.orders`. Default 'causeway'. */
  readonly subjectPrefix?: string;
  /** Largest encoded message (headers + body), checked before sending and before parsing. Default 1 MiB. */
  readonly maxMessageBytes?: number;
  /** Stream `duplicate_window`: a re-publish of an event id within it is dropped by the server. Default 120,000 ms. */
  readonly duplicateWindowMs?: number;
  /**
   * Stream `max_age`: messages older than this are deleted, whether or not every group has them.
   * 0 keeps them until deleted by hand. Default 7 days.
   */
  readonly maxAgeMs?: number;
  /** Stream `num_replicas` (1 on a single server, 3 in a cluster). Default 1. */
  readonly replicas?: number;
  /** Adapter trouble (lost connection, failed ack, consume loop errors). Default: reportToStderr. */
  readonly onError?: ErrorReporter;
}

export interface NatsPublisherOptions extends NatsOptions {
  /**
   * How long one publish() call may take in all: waiting for the connection while the server is
   * away, and for every PubAck. Past it the call rejects with AdapterError. Default 30,000 ms.
   */
  readonly publishTimeoutMs?: number;
}

export interface NatsSubscriberOptions extends NatsOptions {
  /**
   * Consumer `ack_wait`: a delivery not settled within it is redelivered to the group (the
   * subscriber crashed or hung). Set on groups this subscriber creates, and on existing ones it
   * attaches to. Default 30,000 ms.
   */
  readonly ackTimeoutMs?: number;
  /**
   * Consumer `max_deliver`: deliveries of one message before the server stops offering it to the
   * group (it stays in the stream; the server emits a MAX_DELIVERIES advisory). Default -1,
   * unlimited: the port promises redelivery until ack, and dead-lettering is the consumer
   * runtime's decision (it sees `attempt`), not a silent drop here.
   */
  readonly maxDeliver?: number;
  /**
   * Consumer `max_ack_pending`: unacknowledged messages the server lets the group hold at once.
   * Default: the server's (1,000 on 2.9). 1 keeps a group with one subscriber at concurrency 1 in
   * stream order across crashes and ack timeouts (the next message waits for the ack), at the
   * price of holding every key while a message waits out a delayed nack.
   */
  readonly maxAckPending?: number;
  /** How long subscribe() waits for the connection and the stream/consumer declarations. Default 30,000 ms. */
  readonly subscribeTimeoutMs?: number;
}

export interface ResolvedNatsOptions {
  readonly servers: string[];
  readonly connection: NatsOptions['connection'] & object;
  readonly subjectPrefix: string;
  readonly maxMessageBytes: number;
  readonly duplicateWindowMs: number;
  readonly maxAgeMs: number;
  readonly replicas: number;
  readonly onError: ErrorReporter;
}

export interface ResolvedPublisherOptions extends ResolvedNatsOptions {
  readonly publishTimeoutMs: number;
}

export interface ResolvedSubscriberOptions extends ResolvedNatsOptions {
  readonly ackTimeoutMs: number;
  readonly maxDeliver: number;
  readonly maxAckPending: number | undefined;
  readonly subscribeTimeoutMs: number;
}

export const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';
const DAY_MS = 24 * 60 * 60 * 1000;

export function resolveNatsOptions(options: NatsOptions): ResolvedNatsOptions {
  const servers = options.servers === undefined ? [DEFAULT_NATS_URL] : typeof options.servers === 'string' ? [options.servers] : [...options.servers];
  if (servers.length === 0 || servers.some((s) => typeof s !== 'string' || s.trim() === '')) {
    throw new InvalidOptionsError('servers must be one or more non-empty server URLs');
  }
  const subjectPrefix = options.subjectPrefix ?? 'causeway';
  const prefixProblem = topicProblem(subjectPrefix);
  if (prefixProblem !== null || subjectPrefix.length > 64) {
    throw new InvalidOptionsError(`subjectPrefix follows the topic rule and is at most 64 characters; ${prefixProblem ?? `got ${subjectPrefix.length}`}`);
  }
  const duplicateWindowMs = integer(options.duplicateWindowMs ?? 120_000, 'duplicateWindowMs', 1);
  const maxAgeMs = integer(options.maxAgeMs ?? 7 * DAY_MS, 'maxAgeMs', 0);
  if (maxAgeMs > 0 && duplicateWindowMs > maxAgeMs) {
    // The server refuses a stream whose dedup window outlives its messages.
    throw new InvalidOptionsError(`duplicateWindowMs (${duplicateWindowMs}) must not exceed maxAgeMs (${maxAgeMs})`);
  }
  return {
    servers,
    connection: { ...(options.connection ?? {}) },
    subjectPrefix,
    maxMessageBytes: integer(options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES, 'maxMessageBytes', 1),
    duplicateWindowMs,
    maxAgeMs,
    replicas: integer(options.replicas ?? 1, 'replicas', 1, 5),
    onError: options.onError ?? reportToStderr,
  };
}

export function resolvePublisherOptions(options: NatsPublisherOptions): ResolvedPublisherOptions {
  return { ...resolveNatsOptions(options), publishTimeoutMs: integer(options.publishTimeoutMs ?? 30_000, 'publishTimeoutMs', 1) };
}

export function resolveSubscriberOptions(options: NatsSubscriberOptions): ResolvedSubscriberOptions {
  const maxDeliver = options.maxDeliver ?? -1;
  if (maxDeliver !== -1 && (!Number.isInteger(maxDeliver) || maxDeliver < 1)) {
    throw new InvalidOptionsError(`maxDeliver must be -1 (unlimited) or an integer >= 1; got ${String(options.maxDeliver)}`);
  }
  return {
    ...resolveNatsOptions(options),
    ackTimeoutMs: integer(options.ackTimeoutMs ?? 30_000, 'ackTimeoutMs', 100),
    maxDeliver,
    maxAckPending: options.maxAckPending === undefined ? undefined : integer(options.maxAckPending, 'maxAckPending', 1),
    subscribeTimeoutMs: integer(options.subscribeTimeoutMs ?? 30_000, 'subscribeTimeoutMs', 1),
  };
}

function integer(value: number, name: string, min: number, max = Number.MAX_SAFE_INTEGER / 1e6): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionsError(`${name} must be an integer from ${min} to ${Math.floor(max)}; got ${String(value)}`);
  }
  return value;
}
