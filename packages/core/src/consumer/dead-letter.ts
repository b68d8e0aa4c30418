import type { Delivery, ReceivedEvent } from '../message.js';
import type { Middleware } from './handler-pipeline.js';
import { fingerprint, isPermanentFailure, isRetriesExhaustedError } from './failures.js';

/** What the dead-letter queue keeps about one failed message. */
export interface DeadLetter {
  readonly consumer: string;
  readonly topic: string;
  readonly group: string;
  readonly key: string;
  readonly attempts: number;
  readonly brokerId: string;
  /** The event, when the message could be decoded. */
  readonly event?: ReceivedEvent;
  /** What arrived, when it could not. */
  readonly raw?: { readonly headers: Readonly<Record<string, string>>; readonly body: Uint8Array };
  /** 'undecodable' | 'permanent' | 'retries-exhausted'. */
  readonly reason: 'undecodable' | 'permanent' | 'retries-exhausted';
  readonly errorClass: string;
  readonly errorMessage: string;
  readonly stack?: string;
  /** Error class + first application frame, hashed: failures with one cause share it. */
  readonly fingerprint: string;
  readonly failedAt: string;
}

/**
 * Where dead letters go (the PostgreSQL DLQ table, or memory in tests). `put` must be durable
 * when it resolves: only then is the message acked. If it throws, the message is nacked and
 * comes back, so nothing is lost when the DLQ itself is down.
 */
export interface DeadLetterSink {
  put(letter: DeadLetter): Promise<void>;
}

export interface DeadLetterOptions {
  /** Names the consumer in every letter (the DLQ groups and replays by it). */
  readonly consumer: string;
}

/**
 * Sends to the sink, then acks: undecodable messages at once (the handler never sees them),
 * permanent failures at once, and what retry() gave up on. Any other error goes on up (the
 * runtime nacks it).
 */
export function deadLetter(sink: DeadLetterSink, options: DeadLetterOptions): Middleware {
  return (next) =>
    async function deadLettering(delivery) {
      if (delivery.kind === 'undecodable') {
        await sink.put(letter(delivery, 'undecodable', delivery.error, options.consumer));
        await delivery.ack();
        return;
      }
      try {
        await next(delivery);
      } catch (error) {
        const exhausted = isRetriesExhaustedError(error);
        if (!exhausted && !isPermanentFailure(error)) throw error;
        if (delivery.settled) return;
        const cause = exhausted ? (error as Error).cause : error;
        await sink.put(letter(delivery, exhausted ? 'retries-exhausted' : 'permanent', cause, options.consumer));
        await delivery.ack();
      }
    };
}

function letter(d: Delivery, reason: DeadLetter['reason'], error: unknown, consumer: string): DeadLetter {
  const e = error instanceof Error ? error : new Error(String(error));
  const out: { -readonly [K in keyof DeadLetter]: DeadLetter[K] } = {
    consumer,
    topic: d.topic,
    group: d.group,
    key: d.key,
    attempts: d.attempt,
    brokerId: d.brokerId,
    reason,
    errorClass: e.constructor.name,
    errorMessage: e.message,
    fingerprint: fingerprint(e),
    failedAt: new Date().toISOString(),
  };
  if (e.stack !== undefined) out.stack = e.stack;
  if (d.kind === 'event') out.event = d.event;
  else out.raw = d.raw;
  return out;
}

/** Keeps dead letters in memory, for tests and the in-memory setup. */
export class InMemoryDeadLetterSink implements DeadLetterSink {
  readonly letters: DeadLetter[] = [];
  async put(letter: DeadLetter): Promise<void> {
    this.letters.push(letter);
  }
}
