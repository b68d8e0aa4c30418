import {
  AdapterError,
  backoffDelay,
  ClosedError,
  createDelivery,
  DEFAULT_CLOSE_TIMEOUT_MS,
  delay,
  handleDelivery,
  HandlerPool,
  type BrokerSubscription,
  type CloseOptions,
  type DeliveryControl,
  type DeliveryHandler,
} from '@causeway/core';
import { decodeDelivery } from './codec.js';
import { GroupMember, type KafkaRecord, type Lane, type MemberEvents } from './group-member.js';
import type { ResolvedSubscriberOptions } from './kafka-options.js';
import { OffsetCommitter } from './offset-committer.js';
import type { LaneEntry } from './partition-lane.js';

export interface SubscriptionParts {
  readonly topic: string;
  readonly group: string;
  readonly startFrom: 'earliest' | 'latest';
  readonly options: ResolvedSubscriberOptions;
  readonly handler: DeliveryHandler;
  readonly concurrency: number;
  /** Creates the topic if allowed and waits for its leaders (shared by the subscriber's subscriptions). */
  readonly ensureTopic: () => Promise<void>;
}

type Entry = LaneEntry<KafkaRecord>;

interface Running {
  readonly member: GroupMember;
  readonly lane: Lane;
  readonly lease: ReturnType<typeof setTimeout>;
}

/** The longest close() spends on the final commit and on leaving the group, after the drain. */
const GOODBYE_MS = 5_000;

/**
 * One consumer of a group on a topic. The group membership (group-member.ts) fetches records
 * into per-partition lanes; this class decides what runs and when it counts as done:
 *
 * - Each lane hands out one record per key at a time, in offset order (partition-lane.ts);
 *   handlers run in a HandlerPool of `concurrency` slots.
 * - Before a record reaches a handler, its delivery count is committed with the offsets (the
 *   ledger, offset-ledger.ts): that write-ahead is what makes `attempt` survive a crash.
 * - Ack: the partition's first unacked offset is committed (never past an unacked record), and
 *   ack() resolves once the broker has it. Nack: the record stays at the head of its key and is
 *   handed out again after the delay; other keys carry on.
 * - A handler that has not settled within ackTimeoutMs is abandoned and its record redelivered.
 * - When fetching or the membership fails (broker restart, network, commits failing for a
 *   session timeout), the membership is discarded, the old handlers drain, and the subscription
 *   joins again with backoff, starting from what was committed.
 */
export class KafkaSubscription implements BrokerSubscription {
  readonly topic: string;
  readonly group: string;
  readonly closed: Promise<void>;
  readonly #p: SubscriptionParts;
  readonly #o: ResolvedSubscriberOptions;
  readonly #pool: HandlerPool;
  readonly #commits: OffsetCommitter;
  readonly #events: MemberEvents;
  readonly #controls = new Map<DeliveryControl, Running>();
  readonly #sleepers = new Set<() => void>();
  #member: GroupMember | undefined;
  #state: 'attaching' | 'running' | 'reconnecting' | 'closing' | 'closed' = 'attaching';
  #resolveClosed!: () => void;
  #closing: Promise<void> | undefined;
  /** Pool slots promised to records whose write-ahead commit is in flight. */
  #reserved = 0;
  #pumpQueued = false;
  #wake: { readonly at: number; readonly timer: ReturnType<typeof setTimeout> } | undefined;
  #roundRobin = 0;

  constructor(parts: SubscriptionParts) {
    this.topic = parts.topic;
    this.group = parts.group;
    this.#p = parts;
    this.#o = parts.options;
    this.#pool = new HandlerPool(parts.concurrency);
    this.#commits = new OffsetCommitter({
      topic: parts.topic,
      ackTimeoutMs: parts.options.ackTimeoutMs,
      current: () => this.#member,
      report: (error, what) => this.#report(error, what),
      lost: (member, error) => this.#lost(member as GroupMember, error, 'offset commits keep failing'),
      // Not #sleep: commits must keep their backoff while close() drains. The loop ends with the member.
      sleep: delay,
    });
    this.#events = {
      changed: () => this.#schedulePump(),
      revoked: (lane) => this.#abandon((r) => r.lane === lane),
      lost: (member, error, what) => this.#lost(member, error, what),
      report: (error, what) => this.#report(error, what),
      sleep: delay,
    };
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
  }

  /** Joins the group; resolves once this consumer is a member and its partitions are loaded. */
  async start(): Promise<void> {
    const member = await this.#join();
    if (this.#state !== 'attaching') {
      member.discard();
      throw new ClosedError('kafka subscription');
    }
    this.#member = member;
    this.#state = 'running';
    this.#schedulePump();
  }

  async #join(): Promise<GroupMember> {
    await this.#p.ensureTopic();
    return GroupMember.join({ topic: this.topic, group: this.group, startFrom: this.#p.startFrom, options: this.#o }, this.#events);
  }

  #schedulePump(): void {
    if (this.#pumpQueued) return;
    this.#pumpQueued = true;
    queueMicrotask(() => {
      this.#pumpQueued = false;
      this.#pump();
    });
  }

  #pump(): void {
    const member = this.#member;
    if (this.#state !== 'running' || member === undefined || member.dead) return;
    const now = Date.now();
    let budget = this.#pool.free - this.#reserved;
    const lanes = [...member.lanes.values()];
    const batch: Array<{ readonly lane: Lane; readonly entry: Entry }> = [];
    this.#roundRobin = (this.#roundRobin + 1) % Math.max(1, lanes.length);
    for (let i = 0; i < lanes.length && budget > 0; i++) {
      const lane = lanes[(this.#roundRobin + i) % lanes.length] as Lane;
      for (const entry of lane.startable(now, budget)) {
        lane.begin(entry);
        batch.push({ lane, entry });
        budget--;
      }
    }
    if (batch.length > 0) {
      this.#reserved += batch.length;
      // Write-ahead: the delivery counts reach the broker before any handler sees the records.
      void this.#commits.committedUpTo(this.#commits.bump()).then((written) => {
        this.#reserved -= batch.length;
        for (const { lane, entry } of batch) this.#start(member, lane, entry, written);
        this.#schedulePump();
      });
    }
    let wake: number | undefined;
    for (const lane of lanes) {
      const at = lane.nextWake(now);
      if (at !== undefined) wake = Math.min(wake ?? at, at);
    }
    this.#wakeAt(wake);
    member.resumeIfDrained();
  }

  /** A timer for the earliest delayed nack that comes due. */
  #wakeAt(at: number | undefined): void {
    if (at === undefined || (this.#wake !== undefined && this.#wake.at <= at)) return;
    if (this.#wake !== undefined) clearTimeout(this.#wake.timer);
    const timer = setTimeout(() => {
      this.#wake = undefined;
      this.#pump();
    }, Math.max(0, at - Date.now()));
    this.#wake = { at, timer };
  }

  #start(member: GroupMember, lane: Lane, entry: Entry, written: boolean): void {
    const current = this.#state === 'running' && !member.dead && member.lanes.get(lane.partition) === lane && entry.state === 'starting';
    if (!current) return;
    if (!written) {
      lane.release(entry);
      return;
    }
    lane.run(entry);
    const info = decodeDelivery(
      { topic: this.topic, group: this.group, attempt: entry.delivered, brokerId: `${lane.partition}:${entry.offset}` },
      entry.record,
      { maxMessageBytes: this.#o.maxMessageBytes },
    );
    const control: DeliveryControl = createDelivery(info, {
      ack: async () => {
        if (!this.#forget(control)) return;
        lane.ack(entry);
        this.#schedulePump();
        await this.#commits.committedUpTo(this.#commits.bump());
      },
      nack: async (delayMs) => {
        if (!this.#forget(control)) return;
        lane.nack(entry, Date.now() + delayMs);
        this.#schedulePump();
      },
    });
    const lease = setTimeout(() => {
      // The handler hangs: give up on it and hand the record out again (attempt + 1).
      if (!this.#forget(control)) return;
      control.abandon();
      lane.release(entry);
      this.#schedulePump();
    }, this.#o.ackTimeoutMs);
    this.#controls.set(control, { member, lane, lease });
    this.#pool.run(async () => {
      await handleDelivery(this.#p.handler, control.delivery, this.#o.onError);
      this.#schedulePump();
    });
  }

  /** Ends the bookkeeping of a delivery; false when it was already over (abandoned or settled). */
  #forget(control: DeliveryControl): boolean {
    const running = this.#controls.get(control);
    if (running === undefined) return false;
    clearTimeout(running.lease);
    this.#controls.delete(control);
    return true;
  }

  #abandon(which: (r: Running) => boolean): void {
    for (const [control, running] of [...this.#controls]) {
      if (!which(running)) continue;
      this.#forget(control);
      control.abandon();
    }
  }

  #lost(member: GroupMember, error: unknown, what: string): void {
    // While closing, the fetch ends because close() ended it; the final commit still needs the member.
    if (member.dead || this.#state === 'closing' || this.#state === 'closed') return;
    member.dead = true;
    if (this.#member !== member || this.#state !== 'running') return; // still joining: the join fails
    this.#report(error, `${what}; reconnecting`);
    void this.#reconnect(member);
  }

  async #reconnect(member: GroupMember): Promise<void> {
    this.#state = 'reconnecting';
    this.#abandon((r) => r.member === member);
    this.#commits.reset();
    member.discard();
    // Let the old handlers finish, so a redelivery after the reconnect does not overlap them.
    await this.#pool.drain(this.#o.ackTimeoutMs);
    for (let attempt = 0; this.#state === 'reconnecting'; attempt++) {
      await this.#sleep(backoffDelay(attempt, 250, 10_000));
      if (this.#state !== 'reconnecting') return;
      try {
        const next = await this.#join();
        if (this.#state !== 'reconnecting') {
          next.discard();
          return;
        }
        this.#member = next;
        this.#state = 'running';
        this.#schedulePump();
        return;
      } catch (error) {
        if (attempt % 10 === 0) this.#report(error, `reconnect attempt ${attempt + 1} failed`);
      }
    }
  }

  close(options?: CloseOptions): Promise<void> {
    this.#closing ??= (async () => {
      this.#stop();
      const member = this.#member;
      if (member !== undefined && !member.dead) member.stopFetching();
      const drained = await this.#pool.drain(options?.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS);
      if (!drained) this.#abandon(() => true);
      if (member !== undefined && !member.dead) {
        // One last commit: acks made while draining, and the counts of abandoned records.
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([this.#commits.committedUpTo(this.#commits.bump()), new Promise((r) => (timer = setTimeout(r, GOODBYE_MS)))]);
        clearTimeout(timer);
        this.#abandon(() => true);
        this.#commits.reset();
        await member.leave(GOODBYE_MS);
      }
      this.#finish();
    })();
    return this.#closing;
  }

  /** The process died: nothing is committed, released or left; the group notices by session timeout. */
  simulateCrash(): void {
    if (this.#closing !== undefined) return;
    this.#closing = Promise.resolve();
    this.#stop();
    this.#abandon(() => true);
    this.#commits.reset();
    this.#member?.crash();
    this.#finish();
  }

  #stop(): void {
    this.#state = 'closing';
    for (const done of [...this.#sleepers]) done();
    if (this.#wake !== undefined) clearTimeout(this.#wake.timer);
  }

  #finish(): void {
    this.#state = 'closed';
    this.#resolveClosed();
  }

  /** Waits, but wakes at once when the subscription closes. */
  #sleep(ms: number): Promise<void> {
    if (this.#state === 'closing' || this.#state === 'closed') return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#sleepers.add(done);
    });
  }

  #report(error: unknown, what: string): void {
    const wrapped = error instanceof AdapterError ? error : new AdapterError('kafka', what, { cause: error });
    this.#o.onError(wrapped, `kafka subscription ${this.topic}/${this.group}: ${what}`);
  }
}
