import {
  ConcurrencyError,
  isConcurrencyError,
  isDuplicateEventError,
  isStreamClosedError,
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

  it('single-event appends arriving together get each their own outcome, whatever the others do', async () => {
    const { store } = ctx.harness();
    const tenantId = uniqueTenant('singles');
    const ref = (streamId: string) => ({ tenantId, streamId });
    for (let i = 0; i < 4; i++) await store.append(ref(`at1-${i}`), [placed(i)]);
    await store.append(ref('closed'), [placed(0)]);
    await store.archiveStream(ref('closed'));
    const taken = await store.append(ref('taken'), [placed(0)]);
    type Kind = 'ok' | 'conflict' | 'closed' | 'duplicate';
    const cases: { kind: Kind; stream: string; run: () => Promise<AppendResult> }[] = [];
    const add = (kind: Kind, stream: string, run: () => Promise<AppendResult>): void => void cases.push({ kind, stream, run });
    for (let i = 0; i < 4; i++) {
      add('ok', `at1-${i}`, () => store.append(ref(`at1-${i}`), [placed(i)], { expectedVersion: 1, streamType: 'order' }));
      add('ok', `fresh-${i}`, () => store.append(ref(`fresh-${i}`), [placed(i)], { expectedVersion: 'no_stream', streamType: 'order' }));
      add('ok', `any-${i}`, () => store.append(ref(`any-${i}`), [placed(i)]));
      add('conflict', `wrong-${i}`, () => store.append(ref(`wrong-${i}`), [placed(i)], { expectedVersion: 3 }));
    }
    add('conflict', 'missing', () => store.append(ref('missing'), [placed(0)], { expectedVersion: 'exists' }));
    add('closed', 'closed', () => store.append(ref('closed'), [placed(1)]));
    // Same tick, one event each: a coalescing store writes them as one batch of single appends.
    // (A duplicate id fails a whole batch, which is then retried append by append; it goes in a
    // second round so this one checks the batch's own outcomes.)
    const outcomes = await Promise.allSettled(cases.map((c) => c.run()));
    const firstRound = cases.length;
    add('duplicate', 'dup', () => store.append(ref('dup'), [placed(0, { eventId: (taken.events[0] as RecordedEvent).eventId })]));
    for (let i = 0; i < 3; i++) add('ok', `after-${i}`, () => store.append(ref(`after-${i}`), [placed(i)], { expectedVersion: 'no_stream' }));
    outcomes.push(...(await Promise.allSettled(cases.slice(firstRound).map((c) => c.run()))));
    outcomes.forEach((o, i) => {
      const c = cases[i] as (typeof cases)[number];
      if (c.kind === 'ok') {
        expect(o.status, `${c.stream}: ${o.status === 'rejected' ? String(o.reason) : ''}`).toBe('fulfilled');
        const r = (o as PromiseFulfilledResult<AppendResult>).value;
        expect(r.written).toBe(true);
        expect(r.events.map((e) => e.streamId)).toEqual([c.stream]);
      } else {
        expect(o.status, c.stream).toBe('rejected');
        const reason = (o as PromiseRejectedResult).reason;
        const check = c.kind === 'conflict' ? isConcurrencyError : c.kind === 'closed' ? isStreamClosedError : isDuplicateEventError;
        expect(check(reason), `${c.stream}: ${String(reason)}`).toBe(true);
      }
    });
    for (let i = 0; i < 4; i++) {
      const at1 = await store.readStream(ref(`at1-${i}`));
      expect(at1.map((e) => e.streamVersion)).toEqual([1, 2]);
      expect(await store.streamInfo(ref(`at1-${i}`))).toMatchObject({ version: 2 });
      expect(await store.streamInfo(ref(`fresh-${i}`))).toMatchObject({ version: 1, streamType: 'order' });
      expect((await store.readStream(ref(`any-${i}`))).length).toBe(1);
      expect(await store.streamInfo(ref(`wrong-${i}`))).toBeNull();
    }
    expect(await store.streamInfo(ref('missing'))).toBeNull();
    expect(await store.streamInfo(ref('dup'))).toBeNull();
    expect(await store.streamInfo(ref('closed'))).toMatchObject({ version: 1, archived: true });
    const fresh = await store.readStream(ref('fresh-0'));
    expect(Number.isNaN(Date.parse((fresh[0] as RecordedEvent).recordedAt))).toBe(false);
  });
}
