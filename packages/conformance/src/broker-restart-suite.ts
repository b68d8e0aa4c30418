import { describe, expect, it } from 'vitest';
import { caseContext } from './broker-context.js';
import { SUITE_SETTINGS, uniqueTopic, type BrokerRestartOptions } from './broker-harness.js';
import { Collector, idsOf, keyedMessages } from './broker-kit.js';
import { formatFigures, runFlow } from './broker-stress.js';

/**
 * The adapter recovers from a real restart of the local broker by itself: live subscribers and
 * publishers carry on, a durable group that was away gets what was published meanwhile, and a
 * busy flow with a restart in the middle loses nothing acknowledged. Runs in the vitest
 * `restart` project, after every other test file.
 */
export function brokerRestartSuite(options: BrokerRestartOptions): void {
  describe(`brokerRestartSuite: ${options.name}`, () => {
    const ctx = caseContext(options, SUITE_SETTINGS);

    it('live publishers and subscribers recover from a broker restart by themselves', async () => {
      const topic = uniqueTopic('restart');
      const live = new Collector();
      await ctx.subscriber().subscribe(topic, { group: 'live' }, live.handler());
      const away = ctx.subscriber();
      await away.subscribe(topic, { group: 'away' }, () => undefined);
      await away.close();
      const pub = ctx.publisher();
      const before = keyedMessages(20, 5, 'before');
      await pub.publish(topic, before);
      await live.waitForAcked(idsOf(before), 'messages before the restart');

      await options.restart();

      const after = keyedMessages(20, 5, 'after');
      await pub.publish(topic, after);
      await live.waitForAcked(idsOf(after), 'messages after the restart on the live subscriber', 90_000);
      const back = new Collector();
      await ctx.subscriber().subscribe(topic, { group: 'away' }, back.handler());
      const expected = options.capabilities.persistence ? [...before, ...after] : after;
      await back.waitForAcked(idsOf(expected), 'the durable group that was away', 90_000);
      expect(new Set(live.acked).size).toBe(40);
    }, 240_000);

    it('a busy flow with a restart in the middle loses nothing acknowledged', async () => {
      const figures = await runFlow(ctx, 'chaos', {
        messages: 400,
        keys: 40,
        midway: options.restart,
        retryForMs: 60_000,
        timeoutMs: 120_000,
      });
      console.info(`[${options.name}] restart chaos: ${formatFigures(figures)}`);
      expect(figures.lost).toBe(0);
      expect(figures.orderViolations).toBe(0);
    }, 300_000);
  });
}
