import { deliveries, type Delivery, type Message } from '@causeway/core';
import { expect, it } from 'vitest';
import type { CaseContext } from './broker-context.js';
import { uniqueTopic } from './broker-harness.js';
import { Collector, gate, idsOf, keyedMessages, quietPeriod, WAIT_MS } from './broker-kit.js';
import { waitFor } from './store-harness.js';

/** Nack, delay, attempts, crashes, close and abort, idleness. */
export function failureCases(ctx: CaseContext): void {
  const reclaimMs = (): number => ctx.settings.ackTimeoutMs + WAIT_MS;

  it('nack and throwing handlers redeliver with a growing attempt; a run of them wedges nothing', async () => {
    const topic = uniqueTopic('nack-run');
    const poison: Message = { ...(keyedMessages(1, 1)[0] as Message), key: 'poison' };
    const others = keyedMessages(20, 20, 'other');
    const c = new Collector();
    await ctx.subscriber().subscribe(topic, { group: 'g', concurrency: 4 }, c.handler(0, async (d) => {
      if (d.kind !== 'event' || d.event.eventId !== poison.event.eventId || d.attempt > 4) return;
      if (d.attempt % 2 === 1) await d.nack();
      else throw new Error(`handler failure on attempt ${d.attempt}`);
    }));
    await ctx.publisher().publish(topic, [poison, ...others]);
    await c.waitForAcked([poison.event.eventId, ...idsOf(others)], 'the poison message after 4 failures, and every other');
    const attempts = c.received.filter((r) => r.id === poison.event.eventId).map((r) => r.attempt);
    expect(attempts).toEqual([1, 2, 3, 4, 5]);
    for (const m of others) expect(c.count(m.event.eventId)).toBe(1);
  });

  it('a delayed nack is redelivered no sooner than the delay, and others flow meanwhile', async () => {
    const topic = uniqueTopic('nack-delay');
    const [m] = keyedMessages(1, 1, 'delayed');
    const after = keyedMessages(3, 3, 'after');
    const c = new Collector();
    let nackedAt = 0;
    await ctx.subscriber().subscribe(topic, { group: 'g', concurrency: 4 }, c.handler(0, async (d) => {
      if (d.kind === 'event' && d.event.eventId === m?.event.eventId && d.attempt === 1) {
        nackedAt = Date.now();
        await d.nack({ delayMs: 1_500 });
      }
    }));
    const pub = ctx.publisher();
    await pub.publish(topic, [m as Message]);
    await waitFor(() => nackedAt > 0, WAIT_MS, 'first delivery');
    await pub.publish(topic, after);
    await c.waitForAcked([m?.event.eventId as string, ...idsOf(after)], 'redelivery and the later messages');
    const second = c.received.find((r) => r.id === m?.event.eventId && r.attempt === 2);
    expect(second, 'second delivery has attempt 2').toBeDefined();
    expect((second?.at ?? 0) - nackedAt).toBeGreaterThanOrEqual(1_450);
    const othersDone = Math.max(...c.received.filter((r) => idsOf(after).includes(r.id)).map((r) => r.at));
    expect(othersDone).toBeLessThan(second?.at ?? 0);
  });

  it('the attempt count survives a consumer restart', async () => {
    const topic = uniqueTopic('attempt-restart');
    const messages = keyedMessages(1, 1);
    const first = new Collector();
    const held = gate();
    const sub1 = ctx.subscriber();
    await sub1.subscribe(topic, { group: 'g' }, first.handler(0, async (d) => {
      if (d.attempt === 1) await d.nack();
      else await held.promise; // attempt 2: hold it unsettled while the consumer goes away
    }));
    await ctx.publisher().publish(topic, messages);
    await waitFor(() => first.received.some((r) => r.attempt === 2), WAIT_MS, 'second attempt on the first consumer');
    await sub1.close({ timeoutMs: 200 });
    held.open();
    const second = new Collector();
    await ctx.subscriber().subscribe(topic, { group: 'g' }, second.handler(1));
    await second.waitForIds(idsOf(messages), 'the message on a new consumer', reclaimMs());
    expect(second.received[0]?.attempt).toBeGreaterThanOrEqual(3);
  });

  it("reclaims a crashed consumer's in-flight message for another consumer of the group", async () => {
    const topic = uniqueTopic('crash');
    const messages = keyedMessages(1, 1);
    const doomed = ctx.harness().subscriber();
    const a = new Collector();
    await doomed.subscribe(topic, { group: 'g' }, a.handler(0, () => new Promise<void>(() => undefined)));
    await ctx.publisher().publish(topic, messages);
    await a.waitForIds(idsOf(messages), 'delivery to the consumer that will crash');
    await ctx.harness().crash(doomed);
    const b = new Collector();
    await ctx.subscriber().subscribe(topic, { group: 'g' }, b.handler(1));
    await b.waitForAcked(idsOf(messages), 'the reclaimed message', reclaimMs());
    expect(b.received[0]?.attempt).toBeGreaterThanOrEqual(2);
  });

  it('close() drains a running handler, is idempotent, and the drained message stays acked', async () => {
    const topic = uniqueTopic('drain');
    const [m] = keyedMessages(1, 1);
    let finished = false;
    const sub = ctx.subscriber();
    const c = new Collector();
    const subscription = await sub.subscribe(topic, { group: 'g' }, c.handler(0, async () => {
      await new Promise((r) => setTimeout(r, 300));
      finished = true;
    }));
    const pub = ctx.publisher();
    await pub.publish(topic, [m as Message]);
    await c.waitForIds([m?.event.eventId as string], 'delivery');
    const closing = sub.close();
    expect(sub.close()).toBe(closing);
    await closing;
    expect(finished).toBe(true);
    await subscription.closed;
    await subscription.close();
    const next = new Collector();
    await ctx.subscriber().subscribe(topic, { group: 'g' }, next.handler(1));
    const marker = keyedMessages(1, 1, 'marker');
    await pub.publish(topic, marker);
    await next.waitForIds(idsOf(marker), 'the marker');
    await quietPeriod(300);
    expect(next.count(m?.event.eventId as string)).toBe(0);
  });

  it('close() gives up on a hung handler after its timeout, and the message comes back', async () => {
    const topic = uniqueTopic('hung');
    const messages = keyedMessages(1, 1);
    const sub = ctx.subscriber();
    const c = new Collector();
    await sub.subscribe(topic, { group: 'g' }, c.handler(0, () => new Promise<void>(() => undefined)));
    await ctx.publisher().publish(topic, messages);
    await c.waitForIds(idsOf(messages), 'delivery to the hung handler');
    const started = Date.now();
    await sub.close({ timeoutMs: 300 });
    expect(Date.now() - started).toBeLessThan(5_000);
    const next = new Collector();
    await ctx.subscriber().subscribe(topic, { group: 'g' }, next.handler(1));
    await next.waitForAcked(idsOf(messages), 'the abandoned message', reclaimMs());
  });

  it('aborting the signal ends the subscription; later messages go to the next consumer', async () => {
    const topic = uniqueTopic('abort');
    const abort = new AbortController();
    const c = new Collector();
    const subscription = await ctx.subscriber().subscribe(topic, { group: 'g', signal: abort.signal }, c.handler());
    const pub = ctx.publisher();
    const before = keyedMessages(1, 1, 'before');
    await pub.publish(topic, before);
    await c.waitForAcked(idsOf(before), 'delivery before abort');
    abort.abort();
    await Promise.race([subscription.closed, new Promise((_, reject) => setTimeout(() => reject(new Error('not closed 5 s after abort')), 5_000))]);
    const afterAbort = keyedMessages(2, 2, 'after');
    await pub.publish(topic, afterAbort);
    const next = new Collector();
    await ctx.subscriber().subscribe(topic, { group: 'g' }, next.handler(1));
    await next.waitForAcked(idsOf(afterAbort), 'messages published after the abort');
    expect(c.ids().has(afterAbort[0]?.event.eventId as string)).toBe(false);
  });

  it('the async-iterator form acks on next() and nacks what is left when the loop breaks', async () => {
    const topic = uniqueTopic('iterator');
    const messages = keyedMessages(3, 3);
    const stream = await deliveries(ctx.subscriber(), topic, { group: 'g' });
    await ctx.publisher().publish(topic, messages);
    const seen: Delivery[] = [];
    for await (const d of stream) {
      seen.push(d);
      if (seen.length === 2) break; // the first is acked by next(); the second is nacked by break
    }
    expect(seen.every((d) => d.kind === 'event' && d.attempt === 1)).toBe(true);
    const ids = seen.map((d) => (d.kind === 'event' ? d.event.eventId : ''));
    const next = new Collector();
    await ctx.subscriber().subscribe(topic, { group: 'g' }, next.handler(1));
    const rest = idsOf(messages).filter((id) => id !== ids[0]);
    await next.waitForAcked(rest, 'the nacked and the unread messages', reclaimMs());
    expect(next.count(ids[0] as string)).toBe(0);
    expect(next.received.find((r) => r.id === ids[1])?.attempt).toBeGreaterThanOrEqual(2);
  });

  it('an idle subscriber does not poll busily', async () => {
    const topic = uniqueTopic('idle');
    const c = new Collector();
    await ctx.subscriber().subscribe(topic, { group: 'g' }, c.handler());
    await quietPeriod(300);
    const cpu0 = process.cpuUsage();
    const t0 = Date.now();
    await quietPeriod(2_000);
    const used = process.cpuUsage(cpu0);
    const share = (used.user + used.system) / 1000 / (Date.now() - t0);
    console.info(`[${ctx.name}] idle subscriber: ${(share * 100).toFixed(1)}% of one core over ${Date.now() - t0} ms`);
    expect(share).toBeLessThan(0.1);
  });
}
