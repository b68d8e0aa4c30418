import { decodeLedger, encodeLedger, type LedgerMark } from './offset-ledger.js';

/**
 * The records of one assigned partition, between the group's committed offset and what was
 * fetched, with no I/O: the subscription feeds it records and settlements and asks it what may
 * start and what to commit.
 *
 * - Per-key order: records of a key form a queue and only its head may be out; a nacked head
 *   goes back to the front of its queue (after its delay), so nothing of that key overtakes it.
 *   Other keys of the partition carry on meanwhile.
 * - The commit point (watermark) is the first record not acked: Kafka's committed offset means
 *   "everything below is done", so it never skips an unacked record.
 * - Past the watermark, deliveries and acks are remembered in the offset ledger (offset-ledger.ts).
 *   At most LEDGER_WINDOW records past the watermark may be touched (delivered or acked); beyond
 *   that the lane starts only redeliveries until the watermark moves, which bounds the ledger
 *   and how much a takeover has to redo.
 */
export interface LaneEntry<T> {
  readonly offset: bigint;
  readonly key: string;
  readonly record: T;
  /** Deliveries so far, the ledger's included. */
  delivered: number;
  state: 'queued' | 'starting' | 'running' | 'acked';
  /** A nacked entry may not start before this time (ms since epoch). */
  visibleAt: number;
}

export const LEDGER_WINDOW = 256;

export class PartitionLane<T> {
  readonly partition: number;
  #loaded = false;
  /** Next offset expected from the fetch; anything below was received already (or is done). -1: nothing known. */
  #next = -1n;
  /** Received entries not yet below the watermark, in ascending offset order (insertion order). */
  readonly #entries = new Map<bigint, LaneEntry<T>>();
  /** Per key, its entries that are not acked, in offset order. */
  readonly #keys = new Map<string, Array<LaneEntry<T>>>();
  #marks = new Map<bigint, LedgerMark>();
  #touched = 0;
  #queued = 0;

  constructor(partition: number) {
    this.partition = partition;
  }

  get loaded(): boolean {
    return this.#loaded;
  }

  /** Entries waiting to start (not running, not acked). */
  get queued(): number {
    return this.#queued;
  }

  /**
   * The group's committed offset and ledger for the partition. Entries received before it that
   * lie below the committed offset are done for the group and dropped; the rest take the
   * ledger's counts. `committed` is -1 when the group has no offset for the partition.
   */
  load(committed: bigint, metadata: string | null | undefined): void {
    this.#marks = decodeLedger(committed, metadata);
    if (committed >= 0n) {
      for (const entry of [...this.#entries.values()]) if (entry.offset < committed) this.#remove(entry);
      if (this.#next < committed) this.#next = committed;
    }
    for (const entry of [...this.#entries.values()]) this.#applyMark(entry);
    this.#loaded = true;
    this.#trim();
  }

  /** Takes a fetched record. False when it was received before (a fetch rewound after a rebalance) or is done. */
  receive(offset: bigint, key: string, record: T): boolean {
    if (offset < this.#next) return false;
    this.#next = offset + 1n;
    const entry: LaneEntry<T> = { offset, key, record, delivered: 0, state: 'queued', visibleAt: 0 };
    this.#entries.set(offset, entry);
    this.#enqueue(entry);
    if (this.#loaded) this.#applyMark(entry);
    this.#trim();
    return true;
  }

  /** Key heads that may start now, oldest first, at most `limit`. */
  startable(now: number, limit: number): Array<LaneEntry<T>> {
    if (!this.#loaded || limit <= 0) return [];
    const heads: Array<LaneEntry<T>> = [];
    for (const queue of this.#keys.values()) {
      const head = queue[0];
      if (head !== undefined && head.state === 'queued' && head.visibleAt <= now) heads.push(head);
    }
    heads.sort((a, b) => (a.offset < b.offset ? -1 : 1));
    const out: Array<LaneEntry<T>> = [];
    let room = LEDGER_WINDOW - this.#touched;
    for (const head of heads) {
      if (out.length >= limit) break;
      if (head.delivered === 0) {
        if (room <= 0) continue;
        room--;
      }
      out.push(head);
    }
    return out;
  }

  /** Counts a delivery before it is written ahead; returns its attempt number. */
  begin(entry: LaneEntry<T>): number {
    if (entry.state !== 'queued') throw new Error(`begin on a ${entry.state} entry`);
    if (entry.delivered === 0) this.#touched++;
    entry.delivered++;
    entry.state = 'starting';
    this.#queued--;
    return entry.delivered;
  }

  /** The write-ahead is on the broker: the handler runs. */
  run(entry: LaneEntry<T>): void {
    if (entry.state === 'starting') entry.state = 'running';
  }

  ack(entry: LaneEntry<T>): void {
    if (entry.state === 'acked' || !this.#entries.has(entry.offset)) return;
    if (entry.state === 'queued') this.#queued--;
    if (entry.delivered === 0) this.#touched++; // an ack counts as touched, like a delivery
    entry.state = 'acked';
    this.#dequeue(entry);
    this.#trim();
  }

  /** Back to the head of its key's queue, not before `visibleAt`. */
  nack(entry: LaneEntry<T>, visibleAt: number): void {
    if (entry.state !== 'starting' && entry.state !== 'running') return;
    entry.state = 'queued';
    entry.visibleAt = visibleAt;
    this.#queued++;
  }

  /** Given up on (lease expired, subscription reset): may start again at once, as a redelivery. */
  release(entry: LaneEntry<T>): void {
    this.nack(entry, 0);
  }

  /** The earliest time a delayed key head becomes startable, if any is waiting for its time. */
  nextWake(now: number): number | undefined {
    let wake: number | undefined;
    for (const queue of this.#keys.values()) {
      const head = queue[0];
      if (head !== undefined && head.state === 'queued' && head.visibleAt > now) wake = Math.min(wake ?? head.visibleAt, head.visibleAt);
    }
    return wake;
  }

  /** The offset to commit: the first record not acked. Undefined while nothing is known. */
  watermark(): bigint | undefined {
    if (!this.#loaded) return undefined;
    for (const offset of this.#entries.keys()) return offset;
    return this.#next >= 0n ? this.#next : undefined;
  }

  /** The ledger to commit with watermark(). */
  ledger(): string {
    const committed = this.watermark() ?? 0n;
    const marks = new Map<bigint, LedgerMark>();
    for (const entry of this.#entries.values()) {
      if (entry.state === 'acked' || entry.delivered > 0) marks.set(entry.offset, { delivered: entry.delivered, acked: entry.state === 'acked' });
    }
    return encodeLedger(committed, marks);
  }

  /** Entries handed out and not settled (for the subscription's bookkeeping). */
  inFlight(): Array<LaneEntry<T>> {
    return [...this.#entries.values()].filter((e) => e.state === 'starting' || e.state === 'running');
  }

  #applyMark(entry: LaneEntry<T>): void {
    const mark = this.#marks.get(entry.offset);
    if (mark === undefined) return;
    this.#marks.delete(entry.offset);
    if (entry.delivered === 0 && (mark.delivered > 0 || mark.acked)) this.#touched++;
    entry.delivered = Math.max(entry.delivered, mark.delivered);
    if (mark.acked && entry.state === 'queued') {
      entry.state = 'acked';
      this.#queued--;
      this.#dequeue(entry);
    }
  }

  #enqueue(entry: LaneEntry<T>): void {
    const queue = this.#keys.get(entry.key);
    if (queue === undefined) this.#keys.set(entry.key, [entry]);
    else queue.push(entry);
    this.#queued++;
  }

  #dequeue(entry: LaneEntry<T>): void {
    const queue = this.#keys.get(entry.key);
    if (queue === undefined) return;
    const i = queue.indexOf(entry);
    if (i >= 0) queue.splice(i, 1);
    if (queue.length === 0) this.#keys.delete(entry.key);
  }

  #remove(entry: LaneEntry<T>): void {
    if (entry.state === 'queued') this.#queued--;
    if (entry.state === 'acked' || entry.delivered > 0) this.#touched--;
    if (entry.state !== 'acked') this.#dequeue(entry);
    this.#entries.delete(entry.offset);
  }

  /** Drops the acked prefix: the watermark moves to the first record not acked. */
  #trim(): void {
    for (const entry of this.#entries.values()) {
      if (entry.state !== 'acked') break;
      this.#remove(entry);
    }
  }
}
