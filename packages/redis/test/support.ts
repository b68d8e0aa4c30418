import { randomBytes } from 'node:crypto';
import type { BrokerCapabilities, BrokerHarness, BrokerSettings } from '@causeway/conformance';
import type { Publisher, Subscriber } from '@causeway/core';
import { RedisPublisher, RedisSubscriber, streamKey } from '@causeway/redis';
import { createClient } from 'redis';
import { it } from 'vitest';

/** The Redis server the integration tests use. */
export const REDIS_URL = process.env.CAUSEWAY_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** In CI (CAUSEWAY_REQUIRE_SERVICES=1) a missing server fails the tests instead of skipping them. */
export const REQUIRE_SERVICES = process.env.CAUSEWAY_REQUIRE_SERVICES === '1';

/** What the adapter declares (see README: persistence holds as far as the server persists). */
export const REDIS_CAPABILITIES: BrokerCapabilities = {
  ordering: 'none',
  persistence: true,
  replay: true,
  nativeDelay: false,
  brokerDedup: false,
};

export type RawClient = ReturnType<typeof rawClient>;

export function rawClient() {
  return createClient({ url: REDIS_URL, RESP: 2, socket: { reconnectStrategy: false, connectTimeout: 2_000 } });
}

export async function redisAvailable(): Promise<boolean> {
  if (REQUIRE_SERVICES) return true; // let the tests run and fail loudly
  const client = rawClient();
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
    return true;
  } catch {
    return false;
  } finally {
    if (client.isOpen) client.destroy();
  }
}

/** Registers one skipped test that says why the file's tests did not run. */
export function skipBecauseNoServer(what: string): void {
  it.skip(`${what}: skipped because Redis is not reachable at ${redactUrl(REDIS_URL)} (set CAUSEWAY_REQUIRE_SERVICES=1 to fail instead)`, () => {});
}

function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

/** A key prefix no other test file or run uses; the harness deletes every key under it on close. */
export function uniquePrefix(label: string): string {
  return `cwtest-${label}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/** Deletes every key under the prefix. */
export async function deleteKeys(client: RawClient, prefix: string): Promise<number> {
  let deleted = 0;
  for await (const keys of client.scanIterator({ MATCH: `${prefix}:*`, COUNT: 500 })) {
    if (keys.length > 0) deleted += await client.del(keys);
  }
  return deleted;
}

/** The BrokerHarness of the conformance suites, on its own key prefix. */
export async function redisHarness(settings: BrokerSettings, label: string): Promise<BrokerHarness & { readonly prefix: string }> {
  const prefix = uniquePrefix(label);
  const raw = rawClient();
  raw.on('error', () => undefined);
  await raw.connect();
  const made: Array<Publisher | Subscriber> = [];
  const common = { url: REDIS_URL, prefix, maxMessageBytes: settings.maxMessageBytes };
  return {
    prefix,
    publisher() {
      const p = new RedisPublisher(common);
      made.push(p);
      return p;
    },
    subscriber() {
      const s = new RedisSubscriber({ ...common, ackTimeoutMs: settings.ackTimeoutMs });
      made.push(s);
      return s;
    },
    async crash(subscriber) {
      (subscriber as RedisSubscriber).simulateCrashForTests();
    },
    async publishRaw(topic, body) {
      await raw.sendCommand(['XADD', streamKey(prefix, topic), '*', 'cloudevent', Buffer.from(body)]);
    },
    async close() {
      await Promise.all(made.map((x) => x.close({ timeoutMs: 1_000 }).catch(() => undefined)));
      // The raw client does not reconnect: after a broker restart it needs a new connection.
      const cleaner = raw.isReady ? raw : rawClient();
      if (cleaner !== raw) {
        cleaner.on('error', () => undefined);
        await cleaner.connect();
      }
      await deleteKeys(cleaner, prefix);
      for (const c of new Set([raw, cleaner])) if (c.isOpen) c.destroy();
    },
  };
}
