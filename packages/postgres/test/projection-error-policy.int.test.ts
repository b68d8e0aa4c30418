import { isClosedError, type RecordedEvent } from '@causeway/core';
import { createProjectionRunner, readSkippedEvents, startProjectionRebuild, type ProjectionRunner } from '@causeway/postgres';
import { describe, expect, it } from 'vitest';
import {
  ADDED,
  added,
  countingProjection,
  counts,
  createCountingTables,
  logCounts,
  projectionEngines,
  seen,
  storedCheckpoint,
} from './fixtures/projection-fixtures.js';
import { skipBecauseNoServer } from './support.js';

/** The error policy: retry (batch, then per event), then stop or skip-and-record. Never skip silently. */
const engines = await projectionEngines();
const poisoned = (e: RecordedEvent): boolean => (e.data as { poison?: boolean }).poison === true;
const fmt = (p: { tx: bigint; seq: bigint }): string => `${p.tx}/${p.seq}`;

for (const [engine, open] of engines) {
  describe(`projection error policy on ${engine}`, () => {
    it('a transient failure is retried and applied once, without stopping', async () => {
      const env = await open('pea');
      const warnings: string[] = [];
      let runner: ProjectionRunner | null = null;
      try {
        await createCountingTables(env.db, env.schema, 'tr');
        let failures = 0;
        runner = await createProjectionRunner({
          db: env.db, store: env.store, schema: env.schema,
          projection: countingProjection(env.schema, 'transient', 1, 'tr', { fail: (e) => poisoned(e) && ++failures <= 2 }),
          errorPolicy: { retries: 3, baseDelayMs: 5, maxDelayMs: 20 }, onWarning: (m) => warnings.push(m),
        });
        const result = await env.store.append({ tenantId: 'tr', streamId: 's' }, [added(1), added(2, { poison: true }), added(3)]);
        await runner.waitFor(result.position, 10_000);
        expect(failures).toBe(3); // two failed attempts, the third passed the check
        expect(runner.state).toBe('active');
        expect(await counts(env.db, env.schema, 'tr')).toEqual({ 'tr/s': 3 });
        expect((await seen(env.db, env.schema, 'tr')).maxTimes).toBe(1);
        expect(warnings).toHaveLength(1);
        expect(warnings[0]).toMatch(/^projection "transient" v1: batch of 3 from \d+\/\d+ failed, retrying up to 3 times: .*refused/);
      } finally {
        await runner?.stop();
        await env.close();
      }
    });

    for (const batch of [false, true]) {
      it(`skip-and-record (${batch ? 'applyBatch' : 'handlers'}): the culprits are found, recorded with event and error, the rest applied`, async () => {
        const env = await open('peb');
        const warnings: string[] = [];
        let runner: ProjectionRunner | null = null;
        try {
          await createCountingTables(env.db, env.schema, 'sk');
          runner = await createProjectionRunner({
            db: env.db, store: env.store, schema: env.schema, batchSize: 50,
            projection: countingProjection(env.schema, 'skip', 1, 'sk', { batch, fail: poisoned }),
            errorPolicy: { retries: 1, baseDelayMs: 1, maxDelayMs: 5, onFailure: 'skip-and-record' }, onWarning: (m) => warnings.push(m),
          });
          const events = Array.from({ length: 10 }, (_, i) => added(i, i === 3 || i === 7 ? { poison: true } : {}));
          const result = await env.store.append({ tenantId: 'sk', streamId: 's' }, events);
          await runner.waitFor(result.position, 15_000);
          const skipped = await readSkippedEvents(env.db, { schema: env.schema, name: 'skip', version: 1 });
          console.log(`[${engine}] skip-and-record (${batch ? 'applyBatch' : 'handlers'}): ${skipped.length} recorded; ${warnings.filter((w) => w.includes('skipped')).join(' | ')}`);
          expect(skipped.map((s) => s.event.eventId)).toEqual([result.events[3]?.eventId, result.events[7]?.eventId]);
          expect(skipped[0]).toMatchObject({
            projection: 'skip', version: 1, errorCode: 'HANDLER_FAILED', attempts: 2,
            position: fmt(result.events[3]?.position as RecordedEvent['position']),
            event: { eventType: ADDED, streamId: 's', tenantId: 'sk', data: { i: 3, poison: true }, position: result.events[3]?.position },
          });
          expect(skipped[0]?.error).toContain(`<- Error: refused ${result.events[3]?.eventId}`);
          expect(skipped[0]).not.toHaveProperty('partition');
          expect(runner.skipped).toBe(2);
          expect(runner.applied).toBe(10);
          expect(runner.state).toBe('active');
          expect(await counts(env.db, env.schema, 'sk')).toEqual({ 'sk/s': 8 });
          expect((await seen(env.db, env.schema, 'sk')).maxTimes).toBe(1);
          expect(await storedCheckpoint(env.db, env.schema, 'skip', 1)).toEqual({ position: fmt(result.position), applied: 10 });
          expect(warnings.filter((w) => w.includes('skipped') && w.includes('recorded in projection_skipped_events'))).toHaveLength(2);
        } finally {
          await runner?.stop();
          await env.close();
        }
      });
    }

    it('stop with applyBatch: the culprit is isolated and named, the events before it are committed', async () => {
      const env = await open('pec');
      const reported: unknown[] = [];
      let runner: ProjectionRunner | null = null;
      try {
        await createCountingTables(env.db, env.schema, 'st');
        runner = await createProjectionRunner({
          db: env.db, store: env.store, schema: env.schema,
          projection: countingProjection(env.schema, 'stop', 1, 'st', { batch: true, fail: poisoned }),
          errorPolicy: { retries: 1, baseDelayMs: 1, maxDelayMs: 5 }, onWarning: () => undefined, onError: (e) => reported.push(e),
        });
        const result = await env.store.append({ tenantId: 'st', streamId: 's' }, Array.from({ length: 6 }, (_, i) => added(i, i === 4 ? { poison: true } : {})));
        const error = await runner.done.then(() => null, (e: unknown) => e);
        const culprit = result.events[4] as RecordedEvent;
        expect(error).toMatchObject({ code: 'HANDLER_FAILED', event: { eventId: culprit.eventId } });
        expect((error as Error).message).toContain(`applyBatch failed on ${ADDED} ${culprit.eventId}`);
        expect(reported).toEqual([error]);
        expect(runner.state).toBe('stopped');
        expect(await counts(env.db, env.schema, 'st')).toEqual({ 'st/s': 4 });
        expect(await storedCheckpoint(env.db, env.schema, 'stop', 1)).toEqual({ position: fmt((result.events[3] as RecordedEvent).position), applied: 4 });
        expect(await readSkippedEvents(env.db, { schema: env.schema, name: 'stop', version: 1 })).toEqual([]);
      } finally {
        await runner?.stop();
        await env.close();
      }
    });

    it('a rebuild always stops on a failing event (never skips), and its checkpoint holds for the fix', async () => {
      const env = await open('ped');
      try {
        await createCountingTables(env.db, env.schema, 'rbf');
        const result = await env.store.append({ tenantId: 'rbf', streamId: 's' }, Array.from({ length: 5 }, (_, i) => added(i, i === 2 ? { poison: true } : {})));
        const failing = await startProjectionRebuild({
          db: env.db, store: env.store, schema: env.schema, projection: countingProjection(env.schema, 'rbfail', 2, 'rbf', { fail: poisoned }),
          retries: 0, onProgress: () => undefined, onError: () => undefined, onWarning: () => undefined,
        });
        const error = await failing.caughtUp.catch((e: unknown) => e);
        expect(error).toMatchObject({ code: 'HANDLER_FAILED', event: { eventId: result.events[2]?.eventId } });
        expect(isClosedError(error)).toBe(false);
        expect(await readSkippedEvents(env.db, { schema: env.schema, name: 'rbfail', version: 2 })).toEqual([]);
        expect((await storedCheckpoint(env.db, env.schema, 'rbfail', 2)).applied).toBe(0);
        const fixed = await startProjectionRebuild({
          db: env.db, store: env.store, schema: env.schema, projection: countingProjection(env.schema, 'rbfail', 2, 'rbf'), onProgress: () => undefined,
        });
        await fixed.caughtUp;
        await fixed.runner.waitFor(result.position, 10_000);
        await fixed.stop();
        expect(await counts(env.db, env.schema, 'rbf')).toEqual(await logCounts(env.db, env.schema));
      } finally {
        await env.close();
      }
    });
  });
}

if (!engines.some(([e]) => e === 'postgres')) skipBecauseNoServer('projection error policy on PostgreSQL');
