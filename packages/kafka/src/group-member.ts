import { AdapterError, backoffDelay } from '@causeway/core';
import { Consumer, type ConsumerGroupJoinPayload, type Message, type MessagesStream } from '@platformatic/kafka';
import { anchorNewGroup, clientOptions, closeClient, dropWithoutLeaving, fetchCommitted, forceClose } from './kafka-client.js';
import { kafkaGroupId, type ResolvedSubscriberOptions } from './kafka-options.js';
import type { CommitTarget } from './offset-committer.js';
import { PartitionLane } from './partition-lane.js';

export type KafkaRecord = Message<Buffer, Buffer, Buffer, Buffer>;
export type Lane = PartitionLane<KafkaRecord>;

export interface MemberSpec {
  readonly topic: string;
  readonly group: string;
  readonly startFrom: 'earliest' | 'latest';
  readonly options: ResolvedSubscriberOptions;
}

/** How a member tells its subscription what happened. */
export interface MemberEvents {
  /** Records arrived or a lane finished loading: something may be ready to start. */
  readonly changed: () => void;
  /** A partition went to another member: its running deliveries are to be abandoned. */
  readonly revoked: (lane: Lane) => void;
  /** Fetching failed or the client gave up rejoining the group. */
  readonly lost: (member: GroupMember, error: unknown, what: string) => void;
  readonly report: (error: unknown, what: string) => void;
  readonly sleep: (ms: number) => Promise<void>;
}

/**
 * One membership of the consumer group: a Consumer (join, sync, heartbeats and rejoining are the
 * client's), its fetch stream in 'committed' mode (every (re)assignment fetches from the
 * committed offset), and a lane per assigned partition, loaded from the committed offset and its
 * ledger. A broken membership is not repaired: the subscription discards it and joins anew.
 */
export class GroupMember implements CommitTarget {
  readonly consumer: Consumer;
  readonly lanes = new Map<number, Lane>();
  readonly committed = new Map<number, string>();
  dead = false;
  readonly #spec: MemberSpec;
  readonly #events: MemberEvents;
  readonly #loads = new Set<Promise<void>>();
  #stream: MessagesStream<Buffer, Buffer, Buffer, Buffer> | undefined;
  #stopping = false;
  #paused = false;

  /** Joins the group; resolves once this member has its assignment and its lanes are loaded. */
  static async join(spec: MemberSpec, events: MemberEvents): Promise<GroupMember> {
    const member = new GroupMember(spec, events);
    try {
      await member.#join();
      return member;
    } catch (error) {
      member.discard();
      throw error;
    }
  }

  private constructor(spec: MemberSpec, events: MemberEvents) {
    this.#spec = spec;
    this.#events = events;
    const o = spec.options;
    this.consumer = new Consumer({
      ...clientOptions(o, 'consumer'),
      groupId: kafkaGroupId(spec.topic, spec.group),
      ...groupTimeouts(o),
      autocommit: false,
      maxWaitTime: o.fetchMaxWaitMs,
      // A JoinGroup can wait a whole session timeout for a dead member to be dropped.
      requestTimeout: o.ackTimeoutMs + 30_000,
    });
    this.consumer.on('error', (error: unknown) => this.#events.lost(this, error, 'the consumer lost its group membership'));
    this.consumer.on('consumer:group:join', (payload: ConsumerGroupJoinPayload) => this.#onJoin(payload));
  }

  async #join(): Promise<void> {
    const { topic, startFrom, options: o } = this.#spec;
    await anchorNewGroup(this.consumer, topic, startFrom);
    const stream = await this.consumer.consume({
      topics: [topic],
      mode: 'committed',
      fallbackMode: startFrom,
      autocommit: false,
      maxWaitTime: o.fetchMaxWaitMs,
      ...groupTimeouts(o),
    });
    this.#stream = stream;
    stream.on('data', (record: KafkaRecord) => this.#onRecord(record));
    stream.on('error', (error: Error) => this.#fetchEnded(error, 'fetching failed'));
    stream.on('close', () => this.#fetchEnded(new Error('the fetch stream ended'), 'fetching stopped'));
    const deadline = Date.now() + o.ackTimeoutMs;
    while (this.#loads.size > 0 && !this.dead && Date.now() < deadline) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - Date.now()))));
      await Promise.race([Promise.allSettled([...this.#loads]), late]);
      clearTimeout(timer);
    }
    if (this.dead) throw new AdapterError('kafka', `the connection was lost while joining group ${this.#spec.group}`);
  }

  /** Records fetched and not yet handed to a handler. */
  queued(): number {
    let n = 0;
    for (const lane of this.lanes.values()) n += lane.queued;
    return n;
  }

  /** Resumes fetching once the subscription has worked its backlog down to half the limit. */
  resumeIfDrained(): void {
    if (this.#paused && this.queued() <= this.#spec.options.maxBufferedRecords / 2) {
      this.#paused = false;
      this.#stream?.resume();
    }
  }

  /** Stops fetching for good (close): what was fetched and not started is not committed, so it is handed back. */
  stopFetching(): void {
    this.#stopping = true;
    this.#stream?.destroy();
  }

  /** Leaves the group (LeaveGroup, so the partitions move at once), never for longer than timeoutMs. */
  async leave(timeoutMs: number): Promise<void> {
    this.dead = true;
    this.stopFetching();
    await closeClient(this.consumer, timeoutMs, () => forceClose(this.consumer));
  }

  /** Drops the membership without committing anything; the client is closed in the background. */
  discard(): void {
    this.dead = true;
    this.stopFetching();
    void closeClient(this.consumer, 5_000, () => forceClose(this.consumer));
  }

  /** As a killed process: no commit, no LeaveGroup; the group notices when the session times out. */
  crash(): void {
    this.dead = true;
    this.stopFetching();
    dropWithoutLeaving(this.consumer);
  }

  #fetchEnded(error: unknown, what: string): void {
    if (!this.#stopping) this.#events.lost(this, error, what);
  }

  #onJoin(payload: ConsumerGroupJoinPayload): void {
    if (this.dead) return;
    const topic = this.#spec.topic;
    const mine = new Set<number>();
    for (const a of payload.assignments ?? this.consumer.assignments ?? []) if (a.topic === topic) for (const p of a.partitions) mine.add(p);
    for (const [partition, lane] of this.lanes) {
      if (mine.has(partition)) continue;
      // Its new owner starts from the committed offset. Handlers still running here are abandoned
      // (their late acks are ignored); the new owner may deliver the same record meanwhile.
      this.lanes.delete(partition);
      this.committed.delete(partition);
      this.#events.revoked(lane);
    }
    for (const partition of mine) {
      if (this.lanes.has(partition)) continue;
      const lane: Lane = new PartitionLane(partition);
      this.lanes.set(partition, lane);
      const load = this.#load(lane);
      this.#loads.add(load);
      void load.finally(() => this.#loads.delete(load));
    }
    this.#events.changed();
  }

  async #load(lane: Lane): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        const committed = (await fetchCommitted(this.consumer, this.#spec.topic, [lane.partition], true)).get(lane.partition);
        if (this.lanes.get(lane.partition) !== lane) return;
        lane.load(committed?.offset ?? -1n, committed?.metadata);
        this.#events.changed();
        return;
      } catch (error) {
        if (this.dead || this.lanes.get(lane.partition) !== lane) return;
        if (attempt === 2) this.#events.report(error, `reading the committed offset of partition ${lane.partition}`);
        await this.#events.sleep(backoffDelay(attempt, 100, 5_000));
      }
    }
  }

  #onRecord(record: KafkaRecord): void {
    if (this.dead || record.topic !== this.#spec.topic) return;
    const lane = this.lanes.get(record.partition);
    if (lane === undefined) return; // a partition no longer ours: its new owner fetches it
    const key = record.key === undefined || record.key === null ? '' : record.key.toString('latin1');
    if (!lane.receive(record.offset, key, record)) return;
    if (!this.#paused && this.queued() >= this.#spec.options.maxBufferedRecords) {
      this.#paused = true;
      this.#stream?.pause();
    }
    this.#events.changed();
  }
}

/** Session timeout = ackTimeoutMs; heartbeats often enough that a rebalance is noticed within a second. */
function groupTimeouts(o: ResolvedSubscriberOptions) {
  return {
    sessionTimeout: o.ackTimeoutMs,
    rebalanceTimeout: o.ackTimeoutMs,
    heartbeatInterval: Math.min(1_000, Math.floor(o.ackTimeoutMs / 3)),
  };
}
