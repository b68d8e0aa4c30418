import { brokerRestartSuite, Collector, keyedMessages, restartLocalBroker, uniqueTopic, waitFor } from '@causeway/conformance';
import { RabbitMqPublisher, RabbitMqSubscriber, Topology } from '@causeway/rabbitmq';
import { describe, expect, it } from 'vitest';
import { AMQP_URL, CAPABILITIES, createHarness, deleteTopology, rabbitAvailable, skipBecauseNoServer, withRawChannel } from './support.js';

// Restarts the machine's RabbitMQ (rabbitmqctl stop; rabbitmq-server -detached): runs in the
// vitest `restart` project, after every other test file.
if (await rabbitAvailable()) {
  brokerRestartSuite({
    name: 'rabbitmq',
    capabilities: CAPABILITIES,
    create: (settings) => createHarness(settings),
    restart: () => restartLocalBroker('rabbitmq'),
  });

  describe('rabbitmq restart in full flight', () => {
    it('a restart in the middle of publishing and consuming loses nothing confirmed', async () => {
      const topic = uniqueTopic('inflight');
      const reports: unknown[] = [];
      const onError = (e: unknown) => reports.push(e);
      const pub = new RabbitMqPublisher({ url: AMQP_URL, publishTimeoutMs: 90_000, onError });
      const subs = [0, 1].map(() => new RabbitMqSubscriber({ url: AMQP_URL, ackTimeoutMs: 5_000, onError }));
      const c = new Collector();
      const slow = () => new Promise<void>((r) => setTimeout(r, Math.floor(Math.random() * 4)));
      for (const [i, s] of subs.entries()) await s.subscribe(topic, { group: 'g', concurrency: 8 }, c.handler(i, slow));
      const confirmed: string[] = [];
      let rejected = 0;
      let running = true;
      // Three publishers' worth of calls in flight at once, up to and through the restart.
      const loops = [0, 1, 2].map(async (n) => {
        for (let i = 0; running; i++) {
          const batch = keyedMessages(10, 10, `p${n}-${i}-`);
          try {
            await pub.publish(topic, batch);
            confirmed.push(...batch.map((m) => m.event.eventId));
          } catch {
            rejected++;
          }
        }
      });
      await waitFor(() => confirmed.length >= 300, 30_000, 'flow under way');
      await restartLocalBroker('rabbitmq');
      const atRestart = confirmed.length;
      await waitFor(() => confirmed.length >= atRestart + 300, 90_000, 'flow after the restart');
      running = false;
      await Promise.all(loops);
      await c.waitForAcked(confirmed, 'every confirmed message', 90_000);
      const got = c.ids();
      const lost = confirmed.filter((id) => !got.has(id)).length;
      console.info(
        `[rabbitmq] in-flight restart: confirmed=${confirmed.length} rejected=${rejected} delivered=${c.received.length} duplicates=${c.duplicates()} lost=${lost} reports=${reports.length}`,
      );
      expect(lost).toBe(0);
      expect(rejected).toBe(0); // publishTimeoutMs covers the restart: calls wait and resend
      await Promise.all([pub, ...subs].map((x) => x.close({ timeoutMs: 1_000 })));
      await withRawChannel((ch) => deleteTopology(ch, new Topology('causeway.'), [[topic, 'g']]));
    }, 240_000);
  });
} else {
  skipBecauseNoServer('brokerRestartSuite: rabbitmq');
}
