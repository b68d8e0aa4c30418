import { createHash } from 'node:crypto';
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type ConsumerConfig,
  type ConsumerInfo,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';
import { AdapterError } from '@causeway/core';
import type { ResolvedNatsOptions, ResolvedSubscriberOptions } from './nats-options.js';

/**
 * Where a topic lives on the server: one JetStream stream per topic, holding the single subject
 * `<subjectPrefix>.<topic>`, and one durable pull consumer per group on it (durable name = group).
 * Everything here works on NATS 2.9: one filter-less consumer per stream, created through the
 * `CONSUMER.CREATE.<stream>.<name>` API (2.9+), nothing that needs 2.10's multi-filter consumers.
 */

export function subjectOf(subjectPrefix: string, topic: string): string {
  return `${subjectPrefix}.${topic}`;
}

const MAX_STREAM_NAME = 255; // the server's limit (it becomes a directory name)
const HASHED_HEAD = 180;

/**
 * The stream name of a subject. Stream names cannot hold `.`, `*`, `>`, `/` or whitespace, and the
 * NATS tools recommend `[A-Za-z0-9_-]`, so the subject is escaped into that alphabet:
 * `.` -> `_`, `_` -> `-_`, `-` -> `--`, letters and digits unchanged (`causeway.orders` ->
 * `causeway_orders`, `order_placed` -> `order-_placed`). Every `-` starts a two-character code,
 * so the escaping is prefix-free and therefore injective: two subjects never share a stream.
 * A name that would pass 255 characters becomes its escaped head + `-h` + 32 hex characters of
 * the subject's SHA-256; `-h` is no code of the escaping, so hashed names never meet escaped ones.
 */
export function streamNameOf(subject: string): string {
  const escaped = escapeName(subject);
  if (escaped.length <= MAX_STREAM_NAME) return escaped;
  let head = '';
  for (const ch of subject) {
    const next = head + escapeName(ch);
    if (next.length > HASHED_HEAD) break;
    head = next;
  }
  return `${head}-h${createHash('sha256').update(subject).digest('hex').slice(0, 32)}`;
}

function escapeName(text: string): string {
  let out = '';
  for (const ch of text) out += ch === '.' ? '_' : ch === '_' ? '-_' : ch === '-' ? '--' : ch;
  return out;
}

const NS_PER_MS = 1_000_000;

export function streamConfig(subject: string, options: ResolvedNatsOptions): Partial<StreamConfig> & { name: string } {
  return {
    name: streamNameOf(subject),
    subjects: [subject],
    storage: StorageType.File,
    // Limits retention keeps messages after every group acked them, so a new group can replay history.
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    duplicate_window: options.duplicateWindowMs * NS_PER_MS,
    max_age: options.maxAgeMs * NS_PER_MS,
    num_replicas: options.replicas,
  };
}

/**
 * Makes sure the topic's stream exists. An existing stream is used as it stands (its limits
 * may have been set by another service or by hand); only its subject is checked.
 */
export async function ensureStream(jsm: JetStreamManager, subject: string, options: ResolvedNatsOptions): Promise<string> {
  const config = streamConfig(subject, options);
  for (let attempt = 0; ; attempt++) {
    try {
      const info = await jsm.streams.info(config.name);
      if (!info.config.subjects?.includes(subject)) {
        throw new AdapterError('nats', `stream ${config.name} exists but does not hold subject ${subject}; it was not made by Causeway for this topic`);
      }
      return config.name;
    } catch (error) {
      if (!isApiError(error, STREAM_NOT_FOUND)) throw error;
    }
    try {
      await jsm.streams.add(config);
      return config.name;
    } catch (error) {
      // Another process created it between our info and add (with other limits): use theirs.
      if (attempt === 0 && isApiError(error, STREAM_NAME_IN_USE)) continue;
      throw error;
    }
  }
}

export interface GroupDeclaration {
  readonly stream: string;
  readonly group: string;
  readonly startFrom: 'earliest' | 'latest';
}

/**
 * Makes sure the group's durable consumer exists. A new one starts at the end of the stream
 * ('latest': deliver_policy new) or at its start ('earliest': all). An existing one resumes where
 * it is; only its ack_wait, max_deliver and (when set) max_ack_pending are brought to this subscriber's options.
 */
export async function ensureConsumer(jsm: JetStreamManager, declaration: GroupDeclaration, options: ResolvedSubscriberOptions): Promise<ConsumerInfo> {
  const { stream, group } = declaration;
  const ackWait = options.ackTimeoutMs * NS_PER_MS;
  try {
    const info = await jsm.consumers.info(stream, group);
    if (info.config.deliver_subject !== undefined && info.config.deliver_subject !== '') {
      throw new AdapterError('nats', `group ${group} on stream ${stream} exists as a push consumer; Causeway groups are pull consumers (delete it or use another group name)`);
    }
    const maxAckPending = options.maxAckPending ?? info.config.max_ack_pending;
    if (info.config.ack_wait !== ackWait || info.config.max_deliver !== options.maxDeliver || info.config.max_ack_pending !== maxAckPending) {
      return await jsm.consumers.update(stream, group, {
        ack_wait: ackWait,
        max_deliver: options.maxDeliver,
        ...(maxAckPending === undefined ? {} : { max_ack_pending: maxAckPending }),
      });
    }
    return info;
  } catch (error) {
    if (!isApiError(error, CONSUMER_NOT_FOUND)) throw error;
  }
  const config: Partial<ConsumerConfig> = {
    durable_name: group,
    ack_policy: AckPolicy.Explicit,
    ack_wait: ackWait,
    max_deliver: options.maxDeliver,
    ...(options.maxAckPending === undefined ? {} : { max_ack_pending: options.maxAckPending }),
    deliver_policy: declaration.startFrom === 'earliest' ? DeliverPolicy.All : DeliverPolicy.New,
  };
  // Two subscribers creating the same new group at once send the same config: the server accepts both.
  return jsm.consumers.add(stream, config);
}

const STREAM_NOT_FOUND = 10059;
const CONSUMER_NOT_FOUND = 10014;
const STREAM_NAME_IN_USE = 10058;

function isApiError(error: unknown, code: number): boolean {
  return error instanceof JetStreamApiError && error.code === code;
}
