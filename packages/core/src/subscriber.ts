import type { DeliveryHandler } from './message.js';
import type { CloseOptions } from './publisher.js';

export interface GroupSubscribeOptions {
  /**
   * Consumer group. Subscriptions with the same group on a topic compete (each message goes to
   * one of them); each group gets every message (fan-out). Must match GROUP_RULE.
   */
  readonly group: string;
  /**
   * Where a group that does not exist yet starts. Default 'latest': messages published after
   * subscribe() resolved. 'earliest' replays the topic's retained history, where the adapter
   * declares replay. An existing group always resumes where it left off.
   */
  readonly startFrom?: 'earliest' | 'latest';
  /** Handlers running at once in this subscription. Default 8. Per-key order holds at any value where declared. */
  readonly concurrency?: number;
  /** Aborting ends the subscription like close(): nothing new starts, in-flight handlers drain. */
  readonly signal?: AbortSignal;
}

/**
 * Receives a topic's messages for a consumer group.
 *
 * - At least once: a message is redelivered until a subscriber of its group acks it. Duplicates
 *   happen (after a crash, a lease expiry, a reconnect); consumers absorb them by event id.
 * - Ack means the group is done with the message. Nack (or a throwing handler) redelivers it,
 *   after the given delay; a run of nacks never holds back other keys.
 * - Ordering: where the adapter declares `per-key`, messages of one key are handed over one at a
 *   time in publish order, across every subscriber of the group: the next waits until the
 *   previous is acked. Elsewhere there is no order guarantee.
 * - A message delivered but not settled within the adapter's ack timeout (the subscriber crashed
 *   or hung) is redelivered to another subscriber of the group.
 */
export interface Subscriber {
  /**
   * Resolves once the group exists and this subscription is attached: a message published after
   * that is delivered to the group. Rejects with InvalidOptionsError on a bad topic or group.
   */
  subscribe(topic: string, options: GroupSubscribeOptions, handler: DeliveryHandler): Promise<BrokerSubscription>;
  /**
   * Closes every subscription (see BrokerSubscription.close) and releases connections.
   * Idempotent: every call returns the same promise.
   */
  close(options?: CloseOptions): Promise<void>;
}

export interface BrokerSubscription {
  readonly topic: string;
  readonly group: string;
  /**
   * Stops taking messages, hands back those fetched but not started, and waits for running
   * handlers up to the timeout. A handler still running after it is abandoned: its message is
   * redelivered later (ack timeout or connection close), and its late ack/nack is ignored.
   * Never hangs past the timeout. Idempotent.
   */
  close(options?: CloseOptions): Promise<void>;
  /** Resolves when the subscription has stopped, for whatever reason. */
  readonly closed: Promise<void>;
}
