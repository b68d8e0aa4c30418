import type { Delivery, Message } from '@causeway/core';
import { expect, it } from 'vitest';
import { itWhen } from './capability-case.js';
import type { CaseContext } from './broker-context.js';
import { uniqueTopic } from './broker-harness.js';
import { Collector, gate, idsOf, keyedMessages, quietPeriod, WAIT_MS } from './broker-kit.js';
import { waitFor } from './store-harness.js';

/** Consumer groups: competing, fan-out, replay for new groups, per-key order. */
export function groupCases(ctx: CaseContext): void {
  it('competing consumers of one group together see every message', async () => {
    const topic = uniqueTopic('compete');
    const c = new Collector();
    for (let i = 0; i < 3; i++) await ctx.subscriber().subscribe(topic, { group: 'workers', concurrency: 4 }, c.handler(i));
    const messages = keyedMessages(300, 30);
    const pub = ctx.publisher();
    for (let i = 0; i < messages.length; i += 50) await pub.publish(topic, messages.slice(i, i + 50));
    await c.waitForAcked(idsOf(messages), '300 messages across 3 consumers');
    const share = [0, 1, 2].map((by) => c.received.filter((r) => r.by === by).length);
    console.info(`[${ctx.name}] competing: delivered=${c.received.length} unique=${c.ids().size} per consumer=${share.join('/')}`);
    expect(c.ids().size).toBe(300);
    expect(c.duplicates()).toBe(0);
    expect(share.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
  });

  it('each group gets every message (fan-out)', async () => {
    const topic = uniqueTopic('fanout');
    const [c1, c2] = [new Collector(), new Collector()];
    await ctx.subscriber().subscribe(topic, { group: 'billing' }, c1.handler());
    await ctx.subscriber().subscribe(topic, { group: 'shipping' }, c2.handler());
    const messages = keyedMessages(100, 10);
    await ctx.publisher().publish(topic, messages);
    await c1.waitForIds(idsOf(messages), 'group billing');
    await c2.waitForIds(idsOf(messages), 'group shipping');
    expect(c1.ids().size).toBe(100);
    expect(c2.ids().size).toBe(100);
  });

  itWhen(ctx.capabilities.replay, 'the adapter declares no replay', 'a new group starts from the earliest retained message, or from now', async () => {
    const topic = uniqueTopic('replay');
    const pub = ctx.publisher();
    // Create the topic's storage the way the adapter does on first use, then fill history.
    const warm = new Collector();
    await ctx.subscriber().subscribe(topic, { group: 'first' }, warm.handler());
    const history = keyedMessages(5, 5);
    await pub.publish(topic, history);
    await warm.waitForIds(idsOf(history), 'history through the first group');

    const early = new Collector();
    await ctx.subscriber().subscribe(topic, { group: 'early', startFrom: 'earliest' }, early.handler());
    await early.waitForIds(idsOf(history), 'replayed history');
    const late = new Collector();
    await ctx.subscriber().subscribe(topic, { group: 'late', startFrom: 'latest' }, late.handler());
    const fresh = keyedMessages(1, 1, 'fresh');
    await pub.publish(topic, fresh);
    await late.waitForIds(idsOf(fresh), 'the fresh message in the late group');
    await early.waitForIds(idsOf(fresh), 'the fresh message in the early group');
    await quietPeriod(300);
    expect(late.ids()).toEqual(new Set(idsOf(fresh)));
    expect(early.ids().size).toBe(6);
  });

  itWhen(ctx.capabilities.ordering === 'per-key', 'the adapter declares no per-key ordering', 'keeps per-key order across 3 consumers, through nacks', async () => {
    const topic = uniqueTopic('order');
    const keys = 12;
    const perKey = 15;
    const index = new Map<string, number>();
    const messages: Message[] = [];
    for (let n = 0; n < perKey; n++) {
      for (let k = 0; k < keys; k++) {
        const m = keyedMessages(1, 1, `key${k}-`)[0] as Message;
        const msg = { ...m, key: `key${k}` };
        index.set(msg.event.eventId, n);
        messages.push(msg);
      }
    }
    const inFlight = new Map<string, number>();
    let overlaps = 0;
    const c = new Collector();
    const behave = async (d: Delivery) => {
      const now = (inFlight.get(d.key) ?? 0) + 1;
      inFlight.set(d.key, now);
      if (now > 1) overlaps++;
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 3)));
      inFlight.set(d.key, (inFlight.get(d.key) ?? 1) - 1);
      // Every 7th message fails its first attempt: the redelivery must come before the key's next.
      if (d.kind === 'event' && d.attempt === 1 && (index.get(d.event.eventId) ?? 0) % 7 === 3) await d.nack();
    };
    for (let i = 0; i < 3; i++) await ctx.subscriber().subscribe(topic, { group: 'ordered', concurrency: 4 }, c.handler(i, behave));
    const pub = ctx.publisher();
    for (let i = 0; i < messages.length; i += 36) await pub.publish(topic, messages.slice(i, i + 36));
    await waitFor(() => new Set(c.acked).size >= messages.length, WAIT_MS, 'every ordered message acked');
    // Per key, the order of first acks must be the publish order 0, 1, 2, ...
    const keyOf = new Map(messages.map((m) => [m.event.eventId, m.key]));
    const violations = [...Array(keys).keys()].filter((k) => {
      const order = [...new Set(c.acked.filter((id) => keyOf.get(id) === `key${k}`))].map((id) => index.get(id));
      return order.length !== perKey || order.some((v, i) => v !== i);
    });
    console.info(`[${ctx.name}] per-key order: ${messages.length} messages, ${keys} keys, overlaps=${overlaps}, keys out of order=${violations.length}`);
    expect(overlaps).toBe(0);
    expect(violations).toEqual([]);
  });

  itWhen(ctx.capabilities.ordering === 'per-key', 'the adapter declares no per-key ordering', 'an unacked message holds back its key, not other keys', async () => {
    const topic = uniqueTopic('blocks');
    const [k1a, k1b, k2] = [keyedMessages(1, 1, 'k1-')[0], keyedMessages(1, 1, 'k1-')[0], keyedMessages(1, 1, 'k2-')[0]] as Message[];
    const first = { ...(k1a as Message), key: 'k1' };
    const second = { ...(k1b as Message), key: 'k1' };
    const other = { ...(k2 as Message), key: 'k2' };
    const hold = gate();
    const c = new Collector();
    let releasedAt = 0;
    await ctx.subscriber().subscribe(topic, { group: 'g', concurrency: 4 }, c.handler(0, async (d) => {
      if (d.kind === 'event' && d.event.eventId === first.event.eventId) {
        await hold.promise;
        releasedAt = Date.now();
      }
    }));
    await ctx.publisher().publish(topic, [first, second, other]);
    await c.waitForIds([first.event.eventId, other.event.eventId], 'the head of k1 and the k2 message');
    await quietPeriod(400);
    expect(c.count(second.event.eventId)).toBe(0);
    hold.open();
    await c.waitForIds([second.event.eventId], 'k1 second message after the ack');
    const at = c.received.find((r) => r.id === second.event.eventId)?.at ?? 0;
    expect(at).toBeGreaterThanOrEqual(releasedAt);
  });
}
