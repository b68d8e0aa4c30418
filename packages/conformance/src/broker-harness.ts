import type { Publisher, Subscriber } from '@causeway/core';

/** What an adapter declares; the suite runs, skips (saying why) or adapts each case from it. */
export interface BrokerCapabilities {
  /** 'per-key': one message of a key out at a time, in publish order, across the whole group. */
  readonly ordering: 'none' | 'per-key';
  /** Acknowledged publishes survive a broker restart (as the local broker is configured). */
  readonly persistence: boolean;
  /** A new group can start from the topic's retained history (startFrom: 'earliest'). */
  readonly replay: boolean;
  /** The broker itself holds a delayed nack (else the adapter emulates it). Informational. */
  readonly nativeDelay: boolean;
  /** The broker drops a re-publish of the same event id within its dedup window. */
  readonly brokerDedup: boolean;
}

/** Settings the suite asks the adapter to use for one harness. */
export interface BrokerSettings {
  /** Redelivery of an unsettled message (lease, ack_wait, XAUTOCLAIM min-idle...). */
  readonly ackTimeoutMs: number;
  /** Largest encoded message. */
  readonly maxMessageBytes: number;
}

/** What an adapter's test hands the suite. */
export interface BrokerHarness {
  /** A new publisher on each call (the suite closes the ones it makes; close() below may close any left). */
  publisher(): Publisher;
  /** A new subscriber with its own connection where the adapter has one, so a crash takes only it down. */
  subscriber(): Subscriber;
  /**
   * Simulates the subscriber's process dying: its connection drops (or it stops everything)
   * without settling or releasing anything. Its in-flight messages must come back through the
   * broker's own mechanism (lease, ack_wait, idle claim, channel loss).
   */
  crash(subscriber: Subscriber): Promise<void>;
  /**
   * Puts bytes that are not a valid CloudEvent on the topic with the raw client, where a group
   * already subscribed will receive them (the undecodable-message case).
   */
  publishRaw(topic: string, body: Uint8Array): Promise<void>;
  /** Releases what create() made. */
  close(): Promise<void>;
}

export interface BrokerSuiteOptions {
  readonly name: string;
  readonly capabilities: BrokerCapabilities;
  /** Called once per describe block. Topics are unique per case, so one harness serves every case. */
  readonly create: (settings: BrokerSettings) => Promise<BrokerHarness>;
  /** Parallel runs in the stress case. Default: env CAUSEWAY_BROKER_STRESS, else 3. */
  readonly stress?: number;
}

export interface BrokerRestartOptions extends BrokerSuiteOptions {
  /** Really restarts the local broker (stop, start, wait until it answers). */
  readonly restart: () => Promise<void>;
}

/** Settings every case uses unless it says otherwise. */
export const SUITE_SETTINGS: BrokerSettings = { ackTimeoutMs: 2_000, maxMessageBytes: 64 * 1024 };

let counter = 0;
/** A topic no other case or process uses. */
export function uniqueTopic(label: string): string {
  counter++;
  return `cw.test.${label}.${process.pid}_${Date.now().toString(36)}_${counter}`;
}
