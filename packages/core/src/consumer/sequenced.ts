import { CausewayError, InvalidOptionsError } from '../errors.js';
import type { EventDelivery } from '../message.js';
import type { Middleware } from './handler-pipeline.js';
import { isReplayDelivery } from './replay-dead-letters.js';

/** What parking did with a message: nothing (its key is free), stored it, or refused (the cap). */
export type ParkOutcome = 'free' | 'parked' | 'full';

/**
 * Durable parking for sequenced mode (the PostgreSQL implementation keeps it beside the DLQ).
 * A key is blocked for a consumer while the consumer has an unresolved dead letter of that key
 * (dead, replay requested, replaying) other than this very event, or has messages of the key
 * parked already (they go first).
 *
 * `park` checks and stores in one step: 'free' when the key is not blocked (nothing stored);
 * 'parked' when it is and the message is stored durably behind the key (also when it was parked
 * before: a redelivery); 'full' when it is blocked but `maxParked` messages of the consumer are
 * parked already (nothing stored). Parked messages leave through the store's DeadLetterReplaySource
 * side, in key order, once their key's head is replayed, skipped or purged.
 */
export interface KeyParking {
  park(consumer: string, delivery: EventDelivery, maxParked: number): Promise<ParkOutcome>;
}

/** Sequenced mode stopped the consumer: parking is full. The message that hit the cap was nacked, not dropped. */
export class ParkingFullError extends CausewayError {
  readonly consumer: string;
  readonly key: string;
  readonly maxParked: number;
  constructor(consumer: string, key: string, maxParked: number) {
    super(
      'PARKING_FULL',
      `consumer ${JSON.stringify(consumer)} stopped: ${maxParked} messages are parked behind dead letters (maxParked) and key ${JSON.stringify(key)} is blocked too; ` +
        'replay, skip or purge the dead letters at the head of their keys, then restart the consumer',
    );
    this.consumer = consumer;
    this.key = key;
    this.maxParked = maxParked;
  }
}

export const isParkingFullError = (e: unknown): e is ParkingFullError =>
  typeof e === 'object' && e !== null && (e as { code?: unknown }).code === 'PARKING_FULL';

export interface SequencedOptions {
  /** The consumer (as given to deadLetter(); its dead letters block their keys). */
  readonly consumer: string;
  /** Parked messages of this consumer, all keys together, at which it stops. Default 10,000. */
  readonly maxParked?: number;
  /**
   * Aborted with the ParkingFullError when the cap is hit. Pass its signal to subscribe() so the
   * subscription stops; `signal.reason` is the error. Default: none (the middleware still refuses
   * every later message, nacking it with a delay of 1 s).
   */
  readonly stop?: AbortController;
  /** Called once with the ParkingFullError when the cap is hit (alerts, logs). */
  readonly onStop?: (error: ParkingFullError) => void;
}

/** Redelivery delay for messages refused after the consumer stopped (they wait in the broker). */
const STOPPED_NACK_DELAY_MS = 1_000;

/**
 * Sequenced mode, for consumers whose effects depend on per-key order: once a message of a key
 * is dead-lettered, later messages of that key are parked (durably) and acked, until the head
 * is replayed, skipped or purged; then replayDeadLetters() sends the parked ones through the
 * consumer path in order. Other keys keep flowing. It needs a broker that hands over one message
 * per key at a time (ordering 'per-key'), so a key's next message arrives only after the head
 * was dead-lettered and acked.
 *
 * Put it outermost: pipeline(handler, sequenced(parking, o), deadLetter(dlq, o), retry(policy)).
 * Undecodable messages and the replay worker's own deliveries pass straight through.
 */
export function sequenced(parking: KeyParking, options: SequencedOptions): Middleware {
  const maxParked = options.maxParked ?? 10_000;
  if (!Number.isInteger(maxParked) || maxParked < 1) throw new InvalidOptionsError(`sequenced maxParked must be an integer >= 1; got ${String(options.maxParked)}`);
  if (typeof options.consumer !== 'string' || options.consumer === '') throw new InvalidOptionsError('sequenced needs the consumer name');
  let stoppedBy: ParkingFullError | null = null;
  return (next) =>
    async function sequencing(delivery) {
      if (stoppedBy !== null) {
        await delivery.nack({ delayMs: STOPPED_NACK_DELAY_MS });
        throw stoppedBy;
      }
      if (delivery.kind !== 'event' || isReplayDelivery(delivery)) return next(delivery);
      const outcome = await parking.park(options.consumer, delivery, maxParked);
      if (outcome === 'free') return next(delivery);
      if (outcome === 'parked') return delivery.ack();
      const error = new ParkingFullError(options.consumer, delivery.key, maxParked);
      await delivery.nack({ delayMs: STOPPED_NACK_DELAY_MS });
      if (stoppedBy === null) {
        stoppedBy = error;
        options.onStop?.(error);
        options.stop?.abort(error);
      }
      throw stoppedBy;
    };
}
