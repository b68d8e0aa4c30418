import type { BrokerCapabilities, BrokerHarness, BrokerSettings } from '@causeway/conformance';
import type { Publisher, Subscriber } from '@causeway/core';
import { NatsPublisher, NatsSubscriber, subjectOf, type NatsSubscriberOptions } from '@causeway/nats';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { it } from 'vitest';

/** The NATS server the integration tests use. */
export const NATS_URL = process.env.CAUSEWAY_NATS_URL ?? 'nats://127.0.0.1:4222';

/** In CI (CAUSEWAY_REQUIRE_SERVICES=1) a missing server fails the tests instead of skipping them. */
export const REQUIRE_SERVICES = process.env.CAUSEWAY_REQUIRE_SERVICES === '1';

export const NATS_CAPABILITIES: BrokerCapabilities = {
  ordering: 'none',
  persistence: true,
  replay: true,
  nativeDelay: true,
  brokerDedup: true,
};

export async function natsAvailable(): Promise<boolean> {
  if (REQUIRE_SERVICES) return true; // let the tests run and fail loudly
  try {
    const nc = await connect({ servers: NATS_URL, timeout: 2_000, maxReconnectAttempts: 0 });
    try {
      await jetstreamManager(nc); // JetStream enabled, not just the core server
      return true;
    } finally {
      await nc.close();
    }
  } catch {
    return false;
  }
}

/** Registers one skipped test that says why the file's tests did not run. */
export function skipBecauseNoServer(what: string): void {
  it.skip(`${what}: skipped because NATS JetStream is not reachable at ${NATS_URL} (set CAUSEWAY_REQUIRE_SERVICES=1 to fail instead)`, () => {});
}

/** A subject prefix no other harness or process uses, so close() can delete exactly its streams. */
export function uniquePrefix(label: string): string {
  return `cwt_${label}_${process.pid}_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6).toString(36)}`;
}

export async function rawConnection(): Promise<NatsConnection> {
  return connect({ servers: NATS_URL, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
}

/** Deletes every stream holding a subject under the prefix. */
export async function deleteStreams(nc: NatsConnection, subjectPrefix: string): Promise<number> {
  const jsm = await jetstreamManager(nc);
  const names: string[] = [];
  for await (const name of jsm.streams.names(`${subjectPrefix}.>`)) names.push(name);
  await Promise.all(names.map((name) => jsm.streams.delete(name)));
  return names.length;
}

/** The harness brokerSuite and brokerRestartSuite drive; its streams live under a prefix of their own. */
export async function createNatsHarness(settings: BrokerSettings, extra: Partial<NatsSubscriberOptions> = {}): Promise<BrokerHarness> {
  const subjectPrefix = uniquePrefix('h');
  const options = {
    servers: NATS_URL,
    subjectPrefix,
    ackTimeoutMs: settings.ackTimeoutMs,
    maxMessageBytes: settings.maxMessageBytes,
    // Adapter trouble is expected around restarts; CAUSEWAY_NATS_DEBUG=1 shows it.
    onError: process.env.CAUSEWAY_NATS_DEBUG === '1' ? (error: unknown, context: string) => console.error(`[nats ${context}]`, error) : () => undefined,
    ...extra,
  };
  const made: Array<Publisher | Subscriber> = [];
  let raw: NatsConnection | undefined;
  const rawNc = async () => (raw ??= await rawConnection());
  return {
    publisher() {
      const p = new NatsPublisher(options);
      made.push(p);
      return p;
    },
    subscriber() {
      const s = new NatsSubscriber(options);
      made.push(s);
      return s;
    },
    async crash(subscriber) {
      await (subscriber as NatsSubscriber).simulateCrashForTests();
    },
    async publishRaw(topic, body) {
      await jetstream(await rawNc()).publish(subjectOf(subjectPrefix, topic), body);
    },
    async close() {
      await Promise.all(made.map((x) => x.close({ timeoutMs: 1_000 }).catch(() => undefined)));
      const nc = await rawNc();
      await deleteStreams(nc, subjectPrefix);
      await nc.close();
    },
  };
}
