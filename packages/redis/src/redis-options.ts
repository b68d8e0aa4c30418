import { DEFAULT_MAX_MESSAGE_BYTES, InvalidOptionsError, reportToStderr, type ErrorReporter } from '@causeway/core';
import { validatePrefix } from './keys.js';

/** What the publisher and the subscriber share. */
export interface RedisConnectionOptions {
  /**
   * Redis URL (`redis://[user:password@]host:port[/db]`, `rediss://` for TLS).
   * Default 'redis://127.0.0.1:6379'. Never logged: it may carry a password.
   */
  readonly url?: string;
  /** First part of every key: a topic's stream is `<prefix>:<topic>`. Default 'causeway'. Letters, digits, "_", "-" and "." only. */
  readonly prefix?: string;
  /** Largest encoded message (the `cloudevent` field). Checked before sending and before parsing. Default 1 MiB. */
  readonly maxMessageBytes?: number;
  /** Where connection losses and failed settles are reported. Default: core's reportToStderr. */
  readonly onError?: ErrorReporter;
}

export interface RedisPublisherOptions extends RedisConnectionOptions {
  /**
   * How long a publish waits for Redis (connection included, so it covers a restart) before it
   * rejects with AdapterError. Default 30,000 ms.
   */
  readonly publishTimeoutMs?: number;
  /**
   * Opt-in approximate trimming (`XADD ... MAXLEN ~ n`). Default: none, the stream keeps every
   * entry. Trimming deletes the oldest entries whether or not every group has read or acked
   * them: a slow or stopped group can lose messages, and replay only reaches back `maxLen`.
   */
  readonly maxLen?: number;
}

export interface RedisSubscriberOptions extends RedisConnectionOptions {
  /**
   * An entry delivered but not settled for this long (its consumer crashed or hangs) is claimed
   * by another consumer of the group (XPENDING IDLE + XCLAIM). Default 30,000 ms.
   */
  readonly ackTimeoutMs?: number;
  /**
   * How often a subscription looks for entries to claim: idle ones and delayed nacks that came
   * due. Default ackTimeoutMs / 2. Also the longest a blocking read waits.
   */
  readonly claimIntervalMs?: number;
  /**
   * Entries a subscription fetches ahead of free handler slots, so that reading overlaps
   * handling. They count as delivered from the moment they are fetched (their ack timeout runs),
   * and close() hands back those not started. Default: adaptive, from the subscription's
   * concurrency up to 256, as many as the handlers are expected to start within a tenth of
   * ackTimeoutMs at the pace they have been returning (fast handlers get large reads; slow ones
   * never hold entries long enough to run into the ack timeout). A number fixes it.
   */
  readonly prefetch?: number;
}

export const DEFAULT_URL = 'redis://127.0.0.1:6379';
export const DEFAULT_PREFIX = 'causeway';
export const DEFAULT_PUBLISH_TIMEOUT_MS = 30_000;
export const DEFAULT_ACK_TIMEOUT_MS = 30_000;

export interface ResolvedConnection {
  readonly url: string;
  readonly prefix: string;
  readonly maxMessageBytes: number;
  readonly onError: ErrorReporter;
}

export interface ResolvedPublisherOptions extends ResolvedConnection {
  readonly publishTimeoutMs: number;
  readonly maxLen: number | undefined;
}

export interface ResolvedSubscriberOptions extends ResolvedConnection {
  readonly ackTimeoutMs: number;
  readonly claimIntervalMs: number;
  readonly prefetch: number | undefined;
}

function resolveConnection(options: RedisConnectionOptions): ResolvedConnection {
  const url = options.url ?? DEFAULT_URL;
  // The URL is not echoed: it may carry a password.
  if (typeof url !== 'string' || !/^rediss?:\/\//.test(url)) throw new InvalidOptionsError('url must start with redis:// or rediss://');
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  validatePrefix(prefix);
  return {
    url,
    prefix,
    maxMessageBytes: positiveInteger(options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES, 'maxMessageBytes'),
    onError: options.onError ?? reportToStderr,
  };
}

export function resolvePublisherOptions(options: RedisPublisherOptions): ResolvedPublisherOptions {
  return {
    ...resolveConnection(options),
    publishTimeoutMs: positiveInteger(options.publishTimeoutMs ?? DEFAULT_PUBLISH_TIMEOUT_MS, 'publishTimeoutMs'),
    maxLen: options.maxLen === undefined ? undefined : positiveInteger(options.maxLen, 'maxLen'),
  };
}

export function resolveSubscriberOptions(options: RedisSubscriberOptions): ResolvedSubscriberOptions {
  const ackTimeoutMs = positiveInteger(options.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS, 'ackTimeoutMs');
  const claimIntervalMs = positiveInteger(options.claimIntervalMs ?? Math.max(1, Math.floor(ackTimeoutMs / 2)), 'claimIntervalMs');
  const prefetch = options.prefetch === undefined ? undefined : nonNegativeInteger(options.prefetch, 'prefetch');
  return { ...resolveConnection(options), ackTimeoutMs, claimIntervalMs, prefetch };
}

function nonNegativeInteger(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 0) throw new InvalidOptionsError(`${name} must be an integer >= 0; got ${String(value)}`);
  return value;
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isInteger(value) || value <= 0) throw new InvalidOptionsError(`${name} must be a positive integer; got ${String(value)}`);
  return value;
}
