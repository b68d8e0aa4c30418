import type { Message } from './message.js';

export interface CloseOptions {
  /** How long close() waits for pending work before giving up on it. Default 10,000 ms. */
  readonly timeoutMs?: number;
}

/**
 * Sends events to a topic.
 *
 * - `publish` resolves only when the broker has every message durably (publisher confirm,
 *   JetStream PubAck, XADD reply, COMMIT, Kafka acks=all). Resolved means a later subscriber
 *   group will get it; there is no fire-and-forget mode.
 * - On rejection some messages may have been published. Publishing the same events again is
 *   safe: brokers with dedup drop the repeats by event id, and consumers dedup by event id.
 * - Messages of one key within one call reach the broker in array order. Separate concurrent
 *   calls have no order between them.
 * - Every message is encoded and size-checked before anything is sent: one bad message fails
 *   the call with nothing published.
 * - After a broker restart the publisher reconnects by itself; a call made while the broker is
 *   down waits for the connection up to its own timeout, then rejects.
 */
export interface Publisher {
  publish(topic: string, messages: readonly Message[]): Promise<void>;
  /**
   * Waits for publishes already started (up to the timeout), then releases connections.
   * Idempotent: every call returns the same promise. publish() after close() rejects with ClosedError.
   */
  close(options?: CloseOptions): Promise<void>;
}
