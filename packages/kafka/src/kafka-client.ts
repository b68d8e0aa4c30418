import { AdapterError, backoffDelay, delay } from '@causeway/core';
import {
  Base,
  kGetApi,
  kGetBootstrapConnection,
  kGetConnection,
  ListOffsetTimestamps,
  type Admin,
  type API,
  type CallbackWithPromise,
  type Connection,
  type Consumer,
} from '@platformatic/kafka';
import type { ResolvedConnection } from './kafka-options.js';

/** The driver glue both roles share: client options, topics, group offsets with metadata, teardown. */

let clients = 0;

/** Options every @platformatic/kafka client gets. Credentials stay in `sasl`; nothing here is logged. */
export function clientOptions(o: ResolvedConnection, role: string) {
  return {
    clientId: `${o.clientId}-${role}-${process.pid}-${++clients}`,
    bootstrapBrokers: [...o.brokers],
    ...(o.tls === undefined ? {} : { tls: o.tls }),
    ...(o.sasl === undefined ? {} : { sasl: o.sasl }),
  };
}

/** True when a driver error (or one it wraps) carries this Kafka protocol error id. */
export function hasKafkaError(error: unknown, apiId: string): boolean {
  const findBy = (error as { findBy?: (property: string, value: unknown) => unknown } | null)?.findBy;
  return typeof findBy === 'function' && findBy.call(error, 'apiId', apiId) != null;
}

/**
 * Creates the topic when allowed (an existing one is left as it is), then waits until every
 * partition has a leader: right after CreateTopics the metadata lags for a moment.
 */
export async function ensureTopic(admin: Admin, topic: string, o: ResolvedConnection): Promise<void> {
  if (o.createTopics) {
    try {
      await admin.createTopics({ topics: [topic], partitions: o.partitions, replicas: o.replicationFactor });
    } catch (error) {
      if (!hasKafkaError(error, 'TOPIC_ALREADY_EXISTS')) throw new AdapterError('kafka', `creating topic ${topic} failed`, { cause: error });
    }
  }
  const deadline = Date.now() + 30_000;
  for (let attempt = 0; ; attempt++) {
    let problem: unknown;
    try {
      const metadata = await admin.metadata({ topics: [topic], forceUpdate: true });
      const t = metadata.topics.get(topic);
      if (t !== undefined && t.partitionsCount > 0 && t.partitions.every((p) => p !== undefined && p.leader >= 0)) return;
      problem = new Error('not every partition has a leader yet');
    } catch (error) {
      if (!o.createTopics && hasKafkaError(error, 'UNKNOWN_TOPIC_OR_PARTITION')) {
        throw new AdapterError('kafka', `topic ${topic} does not exist and createTopics is false`, { cause: error });
      }
      problem = error;
    }
    if (Date.now() > deadline) throw new AdapterError('kafka', `topic ${topic} is not ready after 30 s`, { cause: problem });
    await delay(backoffDelay(attempt, 50, 1_000, () => 1));
  }
}

/** One partition's entry of OffsetCommit (the driver's request shape). */
export interface CommitPartition {
  readonly partitionIndex: number;
  readonly committedOffset: bigint;
  readonly committedLeaderEpoch: number;
  readonly committedMetadata: string | null;
}

type CommitArgs = [
  groupId: string,
  generationIdOrMemberEpoch: number,
  memberId: string | null,
  groupInstanceId: string | null,
  topics: Array<{ name: string; partitions: CommitPartition[] }>,
];
type FetchArgs = [
  groups: Array<{ groupId: string; memberId?: string | null; memberEpoch: number; topics?: Array<{ name: string; partitionIndexes: number[] }> | null }>,
  requireStable: boolean,
];
interface FetchResponse {
  readonly groups: ReadonlyArray<{
    readonly topics: ReadonlyArray<{
      readonly name: string;
      readonly partitions: ReadonlyArray<{ readonly partitionIndex: number; readonly committedOffset: bigint; readonly metadata: string | null }>;
    }>;
  }>;
}

export interface Committed {
  /** -1 when the group has no offset for the partition. */
  readonly offset: bigint;
  readonly metadata: string | null;
}

/**
 * The group's committed offsets and their metadata (the ledger). Consumer.listCommittedOffsets
 * drops the metadata, so this speaks OffsetFetch itself, over the consumer's own connection to
 * the group coordinator. As a member it names itself; before joining it asks anonymously.
 */
export async function fetchCommitted(consumer: Consumer, topic: string, partitions: readonly number[], asMember: boolean): Promise<Map<number, Committed>> {
  const api = await groupApi<FetchArgs, FetchResponse>(consumer, 'OffsetFetch');
  const connection = await coordinator(consumer, topic);
  const response = await api.async(connection, [
    { groupId: consumer.groupId, memberId: asMember ? consumer.memberId : null, memberEpoch: -1, topics: [{ name: topic, partitionIndexes: [...partitions] }] },
  ], false);
  const out = new Map<number, Committed>();
  for (const group of response.groups) {
    for (const t of group.topics) {
      if (t.name !== topic) continue;
      for (const p of t.partitions) out.set(p.partitionIndex, { offset: p.committedOffset, metadata: p.metadata });
    }
  }
  return out;
}

/**
 * Commits offsets with metadata (Consumer.commit always sends null metadata). As a member it
 * commits under the current generation; anonymously (generation -1) only an empty or new group
 * accepts the commit, which is how a new group is anchored before anyone joins it.
 */
export async function commitOffsets(consumer: Consumer, topic: string, partitions: readonly CommitPartition[], asMember: boolean): Promise<void> {
  if (partitions.length === 0) return;
  const api = await groupApi<CommitArgs, unknown>(consumer, 'OffsetCommit');
  const connection = await coordinator(consumer, topic);
  await api.async(
    connection,
    consumer.groupId,
    asMember ? consumer.generationId : -1,
    asMember ? (consumer.memberId ?? '') : '',
    null,
    [{ name: topic, partitions: [...partitions] }],
  );
}

/**
 * Gives every partition the group has no offset for one at `startFrom` (earliest: the log start;
 * latest: the current end), before the consumer joins. Kafka would otherwise pick the start
 * whenever a partition is first fetched, which after a rebalance can be later than when
 * subscribe() resolved, and messages in between would be skipped. A group that already has
 * members refuses the anonymous commit; its members anchored it when it was new.
 */
export async function anchorNewGroup(consumer: Consumer, topic: string, startFrom: 'earliest' | 'latest'): Promise<void> {
  const metadata = await consumer.metadata({ topics: [topic] });
  const count = metadata.topics.get(topic)?.partitionsCount ?? 0;
  const all = Array.from({ length: count }, (_, i) => i);
  const committed = await fetchCommitted(consumer, topic, all, false);
  const missing = all.filter((p) => (committed.get(p)?.offset ?? -1n) < 0n);
  if (missing.length === 0) return;
  const offsets = await consumer.listOffsets({
    topics: [topic],
    partitions: { [topic]: missing },
    timestamp: startFrom === 'earliest' ? ListOffsetTimestamps.EARLIEST : ListOffsetTimestamps.LATEST,
  });
  const at = offsets.get(topic) ?? [];
  const anchors: CommitPartition[] = [];
  for (const p of missing) {
    const offset = at[p];
    if (offset !== undefined && offset >= 0n) anchors.push({ partitionIndex: p, committedOffset: offset, committedLeaderEpoch: -1, committedMetadata: null });
  }
  try {
    await commitOffsets(consumer, topic, anchors, false);
  } catch (error) {
    const live = ['UNKNOWN_MEMBER_ID', 'ILLEGAL_GENERATION', 'REBALANCE_IN_PROGRESS'].some((id) => hasKafkaError(error, id));
    if (!live) throw error;
  }
}

async function groupApi<A extends unknown[], R>(client: Consumer, name: string): Promise<API<A, R>> {
  return new Promise((resolve, reject) => {
    client[kGetApi]<A, R>(name, (error, api) => (error || api === undefined ? reject(error ?? new Error(`no ${name} API`)) : resolve(api)));
  });
}

async function coordinator(consumer: Consumer, topic: string): Promise<Connection> {
  const id = await consumer.findGroupCoordinator();
  const metadata = await consumer.metadata({ topics: [topic] });
  const broker = metadata.brokers.get(id);
  if (broker === undefined) throw new Error(`group coordinator ${id} is not in the cluster metadata`);
  return new Promise((resolve, reject) => {
    consumer[kGetConnection](broker, (error, connection) => (error || connection === undefined ? reject(error ?? new Error('no connection')) : resolve(connection)));
  });
}

/**
 * Closes a client, never for longer than `timeoutMs`. A consumer's close leaves its group
 * first; if that cannot reach the broker, the client's sockets are closed regardless.
 */
export async function closeClient(client: Base, timeoutMs: number, close: () => Promise<void>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const gaveUp = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const outcome = await Promise.race([close().then(() => 'closed' as const, () => 'failed' as const), gaveUp]);
  clearTimeout(timer);
  if (outcome !== 'closed') await (Base.prototype.close as (this: Base) => Promise<void>).call(client).catch(() => undefined);
}

/** close(true) of a producer or consumer (the promise overload is shadowed by the callback one in the typings). */
export function forceClose(client: { close(force: boolean, callback: CallbackWithPromise<void>): void }): Promise<void> {
  return new Promise((resolve, reject) => client.close(true, (error) => (error ? reject(error) : resolve())));
}

/**
 * Makes a consumer vanish as a killed process would: no LeaveGroup, no commit, sockets dropped.
 * The group coordinator notices only when the session times out, then hands its partitions to
 * the rest of the group. For tests (BrokerHarness.crash).
 */
export function dropWithoutLeaving(consumer: Consumer): void {
  const refuse = (...args: unknown[]): void => {
    const callback = args[args.length - 1];
    if (typeof callback === 'function') (callback as (error: Error) => void)(new Error('simulated crash: no connection'));
  };
  // Every later request (heartbeat, LeaveGroup, commit) fails before it reaches a socket.
  Object.assign(consumer, { [kGetConnection]: refuse, [kGetBootstrapConnection]: refuse });
  // leaveGroup() stops the heartbeat timer first; its LeaveGroup request then fails as above.
  consumer.leaveGroup(true, () => undefined);
  void consumer.connections.close().catch(() => undefined);
}
