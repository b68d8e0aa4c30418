import { comparePositions, type AppendResult, type RecordedEvent } from '@causeway/core';
import { expect, it } from 'vitest';
import { placed } from './store-append-cases.js';
import { sleep, uniqueTenant, waitFor } from './store-harness.js';
import type { StoreSuiteContext } from './store-suite.js';

class RolledBack extends Error {}

/**
 * The sequence-gap test (platform-anchors §3): positions are taken before commit, so commits land
 * out of order and rolled-back writes leave holes. 8 writers; 20% of transactions sleep before
 * COMMIT, 10% roll back. The store's subscriber must see every committed event exactly once, in
 * store order, and never stall on a hole. A naive `seq > last` reader runs beside it and, where
 * transactions really overlap, must miss events: that proves the test can fail.
 */
export function gapCases(ctx: StoreSuiteContext): void {
  it('gap test: late commits and rollbacks never make the subscriber skip, repeat or stall', async () => {
    const { store, naiveReadAll } = ctx.harness();
    const tenantId = uniqueTenant('gap');
    const writers = 8;
    const perWriter = 30 * ctx.scale;
    const committed = new Map<string, RecordedEvent>();
    const rolledBack = new Set<string>();
    let sleptCount = 0;

    const delivered: RecordedEvent[] = [];
    const sub = store.subscribe({ tenantId, batchSize: 50, pollIntervalMs: 200 }, async (events) => {
      delivered.push(...events);
    });

    let writing = true;
    const naiveSeen = new Set<string>();
    const naive = (async () => {
      if (!naiveReadAll) return;
      let last = 0n;
      while (writing) {
        const events = await naiveReadAll(tenantId, last, 1000);
        for (const e of events) {
          naiveSeen.add(e.eventId);
          if (e.position.seq > last) last = e.position.seq;
        }
        await sleep(1);
      }
    })();

    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        for (let i = 0; i < perWriter; i++) {
          const roll = Math.random();
          const streamId = `w${w}-${i % 3}`;
          const event = placed(i, { metadata: { writer: String(w) } });
          try {
            let result: AppendResult;
            if (roll < 0.1) {
              result = await store.append({ tenantId, streamId }, [event], {
                beforeCommit: async (_tx, r) => {
                  for (const e of r.events) rolledBack.add(e.eventId);
                  await sleep(Math.random() * 10);
                  throw new RolledBack('rolled back on purpose');
                },
              });
            } else if (roll < 0.3) {
              sleptCount++;
              result = await store.append({ tenantId, streamId }, [event], {
                beforeCommit: () => sleep(5 + Math.random() * 35),
              });
            } else {
              result = await store.append({ tenantId, streamId }, [event]);
            }
            for (const e of result.events) committed.set(e.eventId, e);
          } catch (e) {
            if (!(e instanceof RolledBack) && !(e instanceof Error && e.cause instanceof RolledBack)) throw e;
          }
        }
      }),
    );
    writing = false;
    await naive;

    await waitFor(() => delivered.length >= committed.size, 20_000, `subscriber to receive ${committed.size} committed events`);
    await sleep(100); // anything extra (a duplicate, a rolled-back event) would arrive now
    await sub.stop();

    const ids = delivered.map((e) => e.eventId);
    const unique = new Set(ids);
    const duplicates = ids.length - unique.size;
    const lost = [...committed.keys()].filter((id) => !unique.has(id)).length;
    const phantom = ids.filter((id) => !committed.has(id)).length;
    let orderViolations = 0;
    for (let i = 1; i < delivered.length; i++) {
      if (comparePositions((delivered[i - 1] as RecordedEvent).position, (delivered[i] as RecordedEvent).position) >= 0) orderViolations++;
    }
    const naiveMissed = naiveReadAll ? [...committed.keys()].filter((id) => !naiveSeen.has(id)).length : null;
    console.info(
      `[${ctx.options.name}] gap test: committed=${committed.size} rolledBack=${rolledBack.size} sleptBeforeCommit=${sleptCount} ` +
        `delivered=${delivered.length} duplicates=${duplicates} lost=${lost} phantom=${phantom} orderViolations=${orderViolations} ` +
        `naiveReaderMissed=${naiveMissed ?? 'n/a'}`,
    );
    expect(rolledBack.size).toBeGreaterThan(0);
    expect(duplicates).toBe(0);
    expect(lost).toBe(0);
    expect(phantom).toBe(0);
    expect(orderViolations).toBe(0);
    expect([...rolledBack].some((id) => unique.has(id))).toBe(false);
    for (const e of delivered) expect(e).toEqual(committed.get(e.eventId));
    if (naiveReadAll && ctx.options.capabilities.concurrentTransactions) {
      expect(naiveMissed, 'the naive seq reader should miss late commits; if it does not, the test cannot tell a broken reader').toBeGreaterThan(0);
    } else {
      console.info(
        `[${ctx.options.name}] gap test: naive-reader check skipped: ${naiveReadAll ? 'transactions on this engine never overlap (one connection), so no gap can form' : 'no naive reader provided'}`,
      );
    }
  });
}
