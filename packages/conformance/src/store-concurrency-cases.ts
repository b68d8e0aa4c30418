import {
  ConcurrencyError,
  isConcurrencyError,
  isDuplicateEventError,
  uuidv7,
  type AppendResult,
  type RecordedEvent,
} from '@causeway/core';
import { expect, it } from 'vitest';
import { placed } from './store-append-cases.js';
import { uniqueTenant } from './store-harness.js';
import type { StoreSuiteContext } from './store-suite.js';

export function concurrencyCases(ctx: StoreSuiteContext): void {
  it('writers racing for one version: exactly one wins, the others see the winner', async () => {
    const { store } = ctx.harness();
    const stream = { tenantId: uniqueTenant('race1'), streamId: 'hot' };
    const racers = 20;
    const outcomes = await Promise.allSettled(
      Array.from({ length: racers }, (_, i) => store.append(stream, [placed(i)], { expectedVersion: 'no_stream' })),
    );
    const won = outcomes.filter((o) => o.status === 'fulfilled');
    const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(won.length).toBe(1);
    expect(lost.length).toBe(racers - 1);
    for (const l of lost) {
      expect(isConcurrencyError(l.reason)).toBe(true);
      expect((l.reason as ConcurrencyError).actual).toBe(1);
    }
    expect((await store.readStream(stream)).length).toBe(1);
  });

  it('many writers on one stream: every version won once, nothing duplicated or lost', async () => {
    const { store } = ctx.harness();
    const stream = { tenantId: uniqueTenant('race'), streamId: 'contended' };
    const writers = 16;
    const perWriter = 8 * ctx.scale;
    let conflicts = 0;
    const mine = new Map<number, string[]>();
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        const ids: string[] = [];
        mine.set(w, ids);
        let version = 0;
        while (ids.length < perWriter) {
          const eventId = uuidv7();
          try {
            const r = await store.append(stream, [placed(w, { eventId, metadata: { writer: String(w) } })], { expectedVersion: version });
            ids.push(eventId);
            version = r.nextExpectedVersion;
          } catch (e) {
            if (!isConcurrencyError(e)) throw e;
            conflicts++;
            version = e.actual;
          }
        }
      }),
    );
    const events = await store.readStream(stream);
    const total = writers * perWriter;
    expect(events.map((e) => e.streamVersion)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    const stored = new Set(events.map((e) => e.eventId));
    expect(stored.size).toBe(total);
    for (const ids of mine.values()) for (const id of ids) expect(stored.has(id)).toBe(true);
    expect(conflicts).toBeGreaterThan(0);
    console.info(`[${ctx.options.name}] race: ${writers} writers, ${total} events, ${conflicts} conflicts retried`);
  });

  it('appends arriving together are independent: conflicts, duplicates and re-appends never fail the others', async () => {
    const { store } = ctx.harness();
    const tenantId = uniqueTenant('mixed');
    const existing = await store.append({ tenantId, streamId: 'existing' }, [placed(1), placed(2)]);
    const usedId = (existing.events[0] as RecordedEvent).eventId;
    for (let i = 0; i < 10; i++) await store.append({ tenantId, streamId: `pre-${i}` }, [placed(i)]);
    type Case = { kind: 'ok' | 'conflict' | 'duplicate' | 'idempotent'; run: () => Promise<AppendResult> };
    const cases: Case[] = [];
    for (let i = 0; i < 10; i++) {
      cases.push({ kind: 'ok', run: () => store.append({ tenantId, streamId: `pre-${i}` }, [placed(i), placed(i)], { expectedVersion: 1 }) });
      cases.push({ kind: 'conflict', run: () => store.append({ tenantId, streamId: `pre-${i}` }, [placed(i)], { expectedVersion: 5 }) });
      cases.push({ kind: 'ok', run: () => store.append({ tenantId, streamId: `new-${i}` }, [placed(i)], { expectedVersion: 'no_stream' }) });
    }
    for (let i = 0; i < 5; i++) {
      cases.push({ kind: 'duplicate', run: () => store.append({ tenantId, streamId: `dup-${i}` }, [placed(i), placed(i, { eventId: usedId })]) });
    }
    for (let i = 0; i < 2; i++) {
      cases.push({ kind: 'idempotent', run: () => store.append({ tenantId, streamId: 'existing' }, existing.events, { expectedVersion: 0 }) });
    }
    cases.push({ kind: 'conflict', run: () => store.append({ tenantId, streamId: 'existing' }, [placed(3)], { expectedVersion: 'no_stream' }) });
    // Same tick: a coalescing store takes them into shared transactions.
    const outcomes = await Promise.allSettled(cases.map((c) => c.run()));
    outcomes.forEach((o, i) => {
      const kind = (cases[i] as Case).kind;
      if (kind === 'ok') {
        expect(o.status, `case ${i} (${kind}): ${o.status === 'rejected' ? String(o.reason) : ''}`).toBe('fulfilled');
        expect((o as PromiseFulfilledResult<AppendResult>).value.written).toBe(true);
      } else if (kind === 'idempotent') {
        expect(o.status).toBe('fulfilled');
        expect((o as PromiseFulfilledResult<AppendResult>).value.written).toBe(false);
      } else {
        expect(o.status).toBe('rejected');
        const reason = (o as PromiseRejectedResult).reason;
        expect(kind === 'conflict' ? isConcurrencyError(reason) : isDuplicateEventError(reason), `case ${i}: ${String(reason)}`).toBe(true);
      }
    });
    for (let i = 0; i < 10; i++) {
      expect((await store.readStream({ tenantId, streamId: `pre-${i}` })).length).toBe(3);
      expect((await store.readStream({ tenantId, streamId: `new-${i}` })).length).toBe(1);
    }
    for (let i = 0; i < 5; i++) expect(await store.streamInfo({ tenantId, streamId: `dup-${i}` })).toBeNull();
    expect((await store.readStream({ tenantId, streamId: 'existing' })).length).toBe(2);
  });
}
