import type { Delivery, Message } from '@causeway/core';
import type { CaseContext } from './broker-context.js';
import { uniqueTopic } from './broker-harness.js';
import { Collector, keyedMessages, publishInBatches, WAIT_MS } from './broker-kit.js';
import { waitFor } from './store-harness.js';

export interface FlowFigures {
  readonly published: number;
  /** Per group: deliveries, unique messages acked, duplicates delivered, lost. */
  readonly delivered: number;
  readonly duplicates: number;
  readonly lost: number;
  readonly orderViolations: number;
  readonly publishRetries: number;
}

export interface FlowOptions {
  readonly messages: number;
  readonly keys: number;
  /** Called once half the messages are published (the restart suite restarts the broker here). */
  readonly midway?: () => Promise<void>;
  /** How long a rejected publish batch is retried (while the broker restarts). */
  readonly retryForMs?: number;
  readonly timeoutMs?: number;
}

/**
 * One busy topic: 2 groups x 2 consumers, messages over many keys, 1 in 20 nacked once. Every
 * published message must be acked in both groups; where ordering is per-key, the first acks of
 * each key must follow publish order.
 */
export async function runFlow(ctx: CaseContext, label: string, options: FlowOptions): Promise<FlowFigures> {
  const topic = uniqueTopic(label);
  const messages = keyedMessages(options.messages, options.keys, `${label}-`);
  const order = new Map(messages.map((m, i) => [m.event.eventId, i]));
  const groups = ['ga', 'gb'].map(() => new Collector());
  const behave = async (d: Delivery): Promise<void> => {
    if (d.kind === 'event' && d.attempt === 1 && (order.get(d.event.eventId) ?? 0) % 20 === 7) await d.nack();
  };
  for (const [g, c] of groups.entries()) {
    for (let i = 0; i < 2; i++) await ctx.subscriber().subscribe(topic, { group: `g${g}`, concurrency: 8 }, c.handler(i, behave));
  }
  const pub = ctx.publisher();
  const publish = (batch: Message[]) => pub.publish(topic, batch);
  const half = Math.floor(messages.length / 2);
  const retryForMs = options.retryForMs ?? 0;
  const first = await publishInBatches(publish, messages.slice(0, half), 25, retryForMs);
  await options.midway?.();
  const second = await publishInBatches(publish, messages.slice(half), 25, retryForMs);
  const ids = messages.map((m) => m.event.eventId);
  const timeoutMs = options.timeoutMs ?? WAIT_MS * 2;
  await Promise.all(groups.map((c, g) => waitFor(() => {
    const acked = new Set(c.acked);
    return ids.every((id) => acked.has(id));
  }, timeoutMs, `group ${g} of ${topic} to ack ${ids.length}`).catch(() => undefined)));

  let lost = 0;
  let duplicates = 0;
  let delivered = 0;
  let orderViolations = 0;
  for (const c of groups) {
    const acked = new Set(c.acked);
    lost += ids.filter((id) => !acked.has(id)).length;
    delivered += c.received.length;
    // A nacked message comes back by design; a duplicate is a second ack of one message.
    duplicates += c.acked.length - acked.size;
    if (ctx.capabilities.ordering === 'per-key') {
      const lastIndex = new Map<string, number>();
      for (const id of new Set(c.acked)) {
        const i = order.get(id) ?? -1;
        const key = messages[i]?.key ?? '';
        if ((lastIndex.get(key) ?? -1) > i) orderViolations++;
        lastIndex.set(key, i);
      }
    }
  }
  return { published: messages.length, delivered, duplicates, lost, orderViolations, publishRetries: first.retries + second.retries };
}

export function formatFigures(f: FlowFigures): string {
  return `published=${f.published} delivered=${f.delivered} duplicates=${f.duplicates} lost=${f.lost} orderViolations=${f.orderViolations} publishRetries=${f.publishRetries}`;
}
