import { backoffDelay, type ErrorReporter } from '@causeway/core';
import type { Consumer } from '@platformatic/kafka';
import { commitOffsets, hasKafkaError, type CommitPartition } from './kafka-client.js';

/** What the committer reads from the current group membership. */
export interface CommitTarget {
  readonly consumer: Consumer;
  readonly lanes: ReadonlyMap<number, { readonly partition: number; watermark(): bigint | undefined; ledger(): string }>;
  /** `offset|ledger` last committed per partition, to skip commits that would change nothing. */
  readonly committed: Map<number, string>;
  readonly dead: boolean;
}

export interface CommitterParts {
  readonly topic: string;
  /** How long commits may keep failing before the membership is given up (the session timeout). */
  readonly ackTimeoutMs: number;
  readonly current: () => CommitTarget | undefined;
  readonly report: ErrorReporter;
  /** Commits kept failing: the membership is presumed broken and rebuilt. */
  readonly lost: (target: CommitTarget, error: unknown) => void;
  readonly sleep: (ms: number) => Promise<void>;
}

interface Waiter {
  readonly v: number;
  readonly resolve: (committed: boolean) => void;
}

/**
 * Commits the lanes' watermarks and ledgers, one OffsetCommit at a time, covering every change
 * made before it started. Each change bumps a version; `committedUpTo(v)` resolves true once a
 * commit that covers v succeeded, and false if the membership went away first (`reset`). Acks
 * and write-aheads made while a commit is in flight ride in the next one, so a busy partition
 * costs one round trip per batch, not per record. Commits refused during a rebalance are retried
 * (the client rejoins by itself); commits failing for longer than the session timeout hand the
 * membership to `lost`.
 */
export class OffsetCommitter {
  readonly #p: CommitterParts;
  #version = 0;
  #committedVersion = 0;
  #waiters: Waiter[] = [];
  #running = false;

  constructor(parts: CommitterParts) {
    this.#p = parts;
  }

  /** Records that something changed; returns the version a commit must reach to include it. */
  bump(): number {
    this.#version++;
    this.#kick();
    return this.#version;
  }

  committedUpTo(v: number): Promise<boolean> {
    if (this.#committedVersion >= v) return Promise.resolve(true);
    return new Promise((resolve) => this.#waiters.push({ v, resolve }));
  }

  /** Forgets every pending commit (the membership is gone): waiters learn it did not happen. */
  reset(): void {
    this.#committedVersion = this.#version;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.resolve(false);
  }

  #kick(): void {
    if (this.#running) return;
    this.#running = true;
    void this.#loop().finally(() => {
      this.#running = false;
      const target = this.#p.current();
      if (this.#version > this.#committedVersion && target !== undefined && !target.dead) this.#kick();
    });
  }

  async #loop(): Promise<void> {
    let failingSince = 0;
    for (let failures = 0; this.#version > this.#committedVersion; ) {
      const target = this.#p.current();
      if (target === undefined || target.dead) return;
      const v = this.#version;
      const partitions = snapshot(target);
      try {
        await commitOffsets(target.consumer, this.#p.topic, partitions, true);
        for (const p of partitions) {
          if (target.lanes.has(p.partitionIndex)) target.committed.set(p.partitionIndex, `${p.committedOffset}|${p.committedMetadata}`);
        }
        if (this.#p.current() === target) {
          this.#committedVersion = Math.max(this.#committedVersion, v);
          this.#settle(v);
        }
        failures = 0;
        failingSince = 0;
      } catch (error) {
        if (target.dead || this.#p.current() !== target) return;
        failures++;
        failingSince ||= Date.now();
        if (Date.now() - failingSince > this.#p.ackTimeoutMs) {
          this.#p.lost(target, error);
          return;
        }
        // A rebalance refuses commits until the client has rejoined; that is routine, not news.
        const rebalancing = ['REBALANCE_IN_PROGRESS', 'ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID'].some((id) => hasKafkaError(error, id));
        if (!rebalancing && failures === 1) this.#p.report(error, `offset commit on ${this.#p.topic} failed; retrying`);
        await this.#p.sleep(backoffDelay(failures, 100, 2_000));
      }
    }
  }

  #settle(v: number): void {
    const keep: Waiter[] = [];
    for (const w of this.#waiters) {
      if (w.v <= v) w.resolve(true);
      else keep.push(w);
    }
    this.#waiters = keep;
  }
}

function snapshot(target: CommitTarget): CommitPartition[] {
  const partitions: CommitPartition[] = [];
  for (const lane of target.lanes.values()) {
    const offset = lane.watermark();
    if (offset === undefined) continue;
    const metadata = lane.ledger();
    if (target.committed.get(lane.partition) === `${offset}|${metadata}`) continue;
    partitions.push({ partitionIndex: lane.partition, committedOffset: offset, committedLeaderEpoch: -1, committedMetadata: metadata });
  }
  return partitions;
}
