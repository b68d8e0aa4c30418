import {
  brokerRestartSuite,
  Collector,
  keyedMessages,
  restartLocalBroker,
  startLocalBroker,
  stopLocalBroker,
  uniqueTopic,
} from '@causeway/conformance';
import type { Message } from '@causeway/core';
import { RedisPublisher, RedisSubscriber, streamKey } from '@causeway/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  deleteKeys,
  rawClient,
  REDIS_CAPABILITIES,
  REDIS_URL,
  redisAvailable,
  redisHarness,
  skipBecauseNoServer,
  uniquePrefix,
  type RawClient,
} from './support.js';

// These cases stop or restart the local Redis (SHUTDOWN SAVE, then start): the vitest `restart`
// project runs this file after every other one.
if (await redisAvailable()) {
  brokerRestartSuite({
    name: 'redis',
    capabilities: REDIS_CAPABILITIES,
    create: (settings) => redisHarness(settings, 'restart'),
    restart: () => restartLocalBroker('redis'),
  });

  describe('redis outage and data loss', () => {
    const prefix = uniquePrefix('outage');
    const open: Array<{ close(): Promise<void> }> = [];
    let raw: RawClient;
    const connect = async (): Promise<RawClient> => {
      const client = rawClient();
      client.on('error', () => undefined);
      await client.connect();
      return client;
    };
    beforeAll(async () => {
      raw = await connect();
    });
    afterAll(async () => {
      await Promise.all(open.map((x) => x.close()));
      // The raw client does not reconnect after the stop below.
      const cleaner = raw.isReady ? raw : await connect();
      await deleteKeys(cleaner, prefix);
      for (const c of new Set([raw, cleaner])) if (c.isOpen) c.destroy();
    });

    it('a publish while Redis is down waits up to publishTimeoutMs, then rejects; one that Redis is back for goes through', async () => {
      const topic = uniqueTopic('outage');
      const quick = new RedisPublisher({ url: REDIS_URL, prefix, publishTimeoutMs: 1_500 });
      const patient = new RedisPublisher({ url: REDIS_URL, prefix, publishTimeoutMs: 60_000 });
      open.push(quick, patient);
      await quick.publish(topic, keyedMessages(1, 1, 'warm'));
      await patient.publish(topic, keyedMessages(1, 1, 'warm'));
      const refused = keyedMessages(1, 1, 'refused');
      const later = keyedMessages(3, 3, 'later');
      let pending: Promise<void> | undefined;
      let error: unknown;
      let waited = 0;
      await stopLocalBroker('redis');
      try {
        const started = Date.now();
        error = await quick.publish(topic, refused).then(() => null, (e: unknown) => e);
        waited = Date.now() - started;
        pending = patient.publish(topic, later);
        pending.catch(() => undefined);
      } finally {
        await startLocalBroker('redis');
      }
      expect((error as { code?: string })?.code, String(error)).toBe('ADAPTER_FAILED');
      expect(waited).toBeGreaterThanOrEqual(1_400);
      expect(waited).toBeLessThan(5_000);
      await pending;
      raw = raw.isReady ? raw : await connect();
      const ids = ((await raw.xRange(streamKey(prefix, topic), "-", "+")) ?? []).map((e) => e.message?.id);
      expect(ids).toEqual([...ids.slice(0, 2), ...later.map((m) => m.event.eventId)]);
      expect(ids).not.toContain(refused[0]?.event.eventId);
    });

    it('a subscription whose stream and group Redis lost re-creates them and carries on', async () => {
      const topic = uniqueTopic('lost');
      const c = new Collector();
      const sub = new RedisSubscriber({ url: REDIS_URL, prefix, ackTimeoutMs: 2_000, onError: () => undefined });
      const pub = new RedisPublisher({ url: REDIS_URL, prefix });
      open.push(sub, pub);
      await sub.subscribe(topic, { group: 'g' }, c.handler());
      const before = keyedMessages(2, 2, 'before');
      await pub.publish(topic, before);
      await c.waitForAcked(before.map((m) => m.event.eventId), 'before the loss');
      raw = raw.isReady ? raw : await connect();
      await raw.del(streamKey(prefix, topic)); // as a restart without persistence would
      const after: Message[] = keyedMessages(3, 3, 'after');
      // The first publish may land before the group is back: it is still read (the group restarts at '0').
      await pub.publish(topic, after);
      await c.waitForAcked(after.map((m) => m.event.eventId), 'after the loss', 20_000);
      expect(c.duplicates()).toBe(0);
    });
  });
} else {
  skipBecauseNoServer('brokerRestartSuite on Redis Streams');
}
