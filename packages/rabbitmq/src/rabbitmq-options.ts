import { DEFAULT_MAX_MESSAGE_BYTES, InvalidOptionsError, reportToStderr, type ErrorReporter } from '@causeway/core';

/** What the publisher and the subscriber both take. Every field is validated at construction. */
export interface RabbitMqConnectionOptions {
  /**
   * AMQP 0-9-1 URL (`amqp://user:password@host:5672/vhost`). Default `amqp://127.0.0.1:5672`
   * (amqplib then logs in as guest/guest). The password never appears in errors or logs.
   */
  readonly url?: string;
  /**
   * Start of every exchange and queue name the adapter declares, so Causeway's topology is easy
   * to tell apart (and to grant permissions on). Default `causeway.`. Letters, digits, `_`, `-`,
   * `.` or `:`, at most 32 characters.
   */
  readonly prefix?: string;
  /** Connection name shown in the management UI. Default `causeway-publisher` / `causeway-subscriber`. */
  readonly connectionName?: string;
  /** AMQP heartbeat in seconds: how soon a silently dead TCP connection is noticed. Default 10; 0 turns it off. */
  readonly heartbeatSeconds?: number;
  /** Ceiling of the first reconnect delay (full jitter, doubling per failed attempt). Default 100 ms. */
  readonly reconnectBaseMs?: number;
  /** Largest reconnect delay. Default 5,000 ms. */
  readonly reconnectMaxMs?: number;
  /** Largest encoded message (body plus CloudEvents headers), checked before sending and before parsing. Default 1 MiB. */
  readonly maxMessageBytes?: number;
  /** Where adapter trouble goes (lost connection, failed ack, re-declare failures). Default: core's reportToStderr. */
  readonly onError?: ErrorReporter;
}

export interface RabbitMqPublisherOptions extends RabbitMqConnectionOptions {
  /**
   * How long one publish() may take in all: waiting for a connection while the broker is down,
   * re-sending after a connection loss, and waiting for the broker's confirms. After it the call
   * rejects with AdapterError. Default 30,000 ms.
   */
  readonly publishTimeoutMs?: number;
}

export interface RabbitMqSubscriberOptions extends RabbitMqConnectionOptions {
  /**
   * RabbitMQ has no per-message ack deadline (its consumer_timeout closes the whole channel after
   * 30 minutes), so the adapter keeps one: a message not settled this long after it arrived is
   * handed back to the queue (another consumer of the group gets it) and its handler is
   * abandoned. Default 30,000 ms.
   */
  readonly ackTimeoutMs?: number;
  /**
   * Deliveries of one message to a group before it goes to the group's dead-letter queue
   * (`<queue>~dead-letter`) instead of being redelivered. The broker enforces it through the
   * quorum queue's `x-delivery-limit` (= maxDeliveries - 1) and the adapter enforces it across
   * delayed nacks, whose re-published copy restarts the broker's count. Fixed when the group's
   * queue is created. Default 20 (RabbitMQ 4's own default, which 3.x does not have).
   */
  readonly maxDeliveries?: number;
  /** How long subscribe() waits for the broker (connection plus declarations) before rejecting. Default 30,000 ms. */
  readonly subscribeTimeoutMs?: number;
}

export interface ResolvedConnectionOptions {
  readonly url: string;
  readonly prefix: string;
  readonly connectionName: string;
  readonly heartbeatSeconds: number;
  readonly reconnectBaseMs: number;
  readonly reconnectMaxMs: number;
  readonly maxMessageBytes: number;
  readonly onError: ErrorReporter;
}

export interface ResolvedPublisherOptions extends ResolvedConnectionOptions {
  readonly publishTimeoutMs: number;
}

export interface ResolvedSubscriberOptions extends ResolvedConnectionOptions {
  readonly ackTimeoutMs: number;
  readonly maxDeliveries: number;
  readonly subscribeTimeoutMs: number;
}

export const DEFAULT_AMQP_URL = 'amqp://127.0.0.1:5672';
export const DEFAULT_PREFIX = 'causeway.';
/** Names built from it must stay under AMQP's 255-byte limit: prefix 32 + topic 128 + group 64 + suffixes. */
const PREFIX_RULE = /^[A-Za-z0-9_.:-]{0,32}$/;

export function resolvePublisherOptions(options: RabbitMqPublisherOptions): ResolvedPublisherOptions {
  return {
    ...resolveConnection(options, 'causeway-publisher'),
    publishTimeoutMs: positiveInt(options.publishTimeoutMs, 30_000, 'publishTimeoutMs'),
  };
}

export function resolveSubscriberOptions(options: RabbitMqSubscriberOptions): ResolvedSubscriberOptions {
  const maxDeliveries = positiveInt(options.maxDeliveries, 20, 'maxDeliveries');
  if (maxDeliveries > 10_000) throw new InvalidOptionsError(`maxDeliveries must be at most 10000; got ${maxDeliveries}`);
  return {
    ...resolveConnection(options, 'causeway-subscriber'),
    ackTimeoutMs: positiveInt(options.ackTimeoutMs, 30_000, 'ackTimeoutMs'),
    maxDeliveries,
    subscribeTimeoutMs: positiveInt(options.subscribeTimeoutMs, 30_000, 'subscribeTimeoutMs'),
  };
}

function resolveConnection(options: RabbitMqConnectionOptions, defaultName: string): ResolvedConnectionOptions {
  const url = options.url ?? DEFAULT_AMQP_URL;
  if (!/^amqps?:\/\//.test(url)) throw new InvalidOptionsError(`url must start with amqp:// or amqps://; got ${redactUrl(url)}`);
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  if (!PREFIX_RULE.test(prefix)) {
    throw new InvalidOptionsError(`prefix must be at most 32 letters, digits, "_", "-", "." or ":"; got ${JSON.stringify(prefix)}`);
  }
  const heartbeatSeconds = options.heartbeatSeconds ?? 10;
  if (!Number.isInteger(heartbeatSeconds) || heartbeatSeconds < 0 || heartbeatSeconds > 600) {
    throw new InvalidOptionsError(`heartbeatSeconds must be an integer 0-600; got ${String(options.heartbeatSeconds)}`);
  }
  const reconnectBaseMs = positiveInt(options.reconnectBaseMs, 100, 'reconnectBaseMs');
  const reconnectMaxMs = positiveInt(options.reconnectMaxMs, 5_000, 'reconnectMaxMs');
  if (reconnectMaxMs < reconnectBaseMs) {
    throw new InvalidOptionsError(`reconnectMaxMs (${reconnectMaxMs}) must be >= reconnectBaseMs (${reconnectBaseMs})`);
  }
  return {
    url,
    prefix,
    connectionName: options.connectionName ?? defaultName,
    heartbeatSeconds,
    reconnectBaseMs,
    reconnectMaxMs,
    maxMessageBytes: positiveInt(options.maxMessageBytes, DEFAULT_MAX_MESSAGE_BYTES, 'maxMessageBytes'),
    onError: options.onError ?? reportToStderr,
  };
}

function positiveInt(value: number | undefined, fallback: number, name: string): number {
  const n = value ?? fallback;
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidOptionsError(`${name} must be a positive integer; got ${String(value)}`);
  return n;
}

/** The URL with its password (userinfo and any `password=` query parameter) masked, for messages. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@').replace(/([?&]password=)[^&]*/gi, '$1***');
}
