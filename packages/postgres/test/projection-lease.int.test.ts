import { type LogPosition } from '@causeway/core';
import { createProjectionRunner, readLease, type ProjectionRunner } from '@causeway/postgres';
import { describe, expect, it } from 'vitest';
import {
  added,
  countingProjection,
  counts,
  createCountingTables,
  gate,
  logCounts,
  projectionEngines,
  seen,
  storedCheckpoint,
  until,
  type ProjectionEnv,
} from './fixtures/projection-fixtures.js';
import { skipBecauseNoServer } from './support.js';

/**
 * One active runner per projection: the lease `projection:<name>:<version>[:<tenant>]`, a fence
 * check in every batch transaction, standby runners that take over, tenant partitions.
 */
const engines = await projectionEngines();

/**
 * Marks the lease expired while `holder` has it, as if that holder had stopped heartbeating
 * (paused, wedged). Only that holder's row: expiring the new holder's row would let the old one,
 * now a standby, end the new holder's session in turn.
 */
const expireLease = (env: ProjectionEnv, name: string, holder: string): Promise<unknown> =>
  env.db.query(`UPDATE "${env.schema}".leases SET expires_at = clock_timestamp() - interval '1 second' WHERE name = $1 AND holder = $2`, [name, holder]);

for (const [engine, open] of engines) {
  describe(`projection runner leases on ${engine}`, () => {
    it('two runners race: one applies, the other stands by, then takes over when the first stops', async () => {
      const env = await open('pla');
      const runners: ProjectionRunner[] = [];
      try {
        await createCountingTables(env.db, env.schema, 'race');
        const projection = countingProjection(env.schema, 'race', 1, 'race');
        const make = (holder: string) =>
          createProjectionRunner({ db: env.db, store: env.store, schema: env.schema, projection, batchSize: 8, lease: { holder, retryMs: 25 } });
        runners.push(...(await Promise.all([make('a'), make('b')])));
        const [a, b] = runners as [ProjectionRunner, ProjectionRunner];
        const active = a.state === 'active' ? a : b;
        const standby = active === a ? b : a;
        expect([a.state, b.state].sort()).toEqual(['active', 'standby']);
        expect((await readLease(env.db, { schema: env.schema, name: 'projection:race:1' }))?.holder).toBe(active === a ? 'a' : 'b');

        const first = await env.store.append({ tenantId: 'race', streamId: 's' }, Array.from({ length: 20 }, (_, i) => added(i)));
        await active.waitFor(first.position, 30_000);
        // The standby saw the stored checkpoint move (waitFor works there too) but applied nothing.
        await standby.waitFor(first.position, 30_000);
        expect(standby.applied).toBe(0);
        expect(standby.state).toBe('standby');

        await active.stop();
        const takeoverMs = await until('the standby to take over', () => standby.state === 'active');
        const second = await env.store.append({ tenantId: 'race', streamId: 's' }, Array.from({ length: 20 }, (_, i) => added(20 + i)));
        await standby.waitFor(second.position, 30_000);
        console.log(`[${engine}] race: active applied ${active.applied}, standby took over in ${takeoverMs} ms after stop and applied ${standby.applied}`);
        expect(active.applied).toBe(20);
        expect(standby.applied).toBe(20);
        expect(await counts(env.db, env.schema, 'race')).toEqual({ 'race/s': 40 });
        expect((await seen(env.db, env.schema, 'race')).maxTimes).toBe(1);
        expect((await readLease(env.db, { schema: env.schema, name: 'projection:race:1' }))?.fence).toBe('2');
      } finally {
        await Promise.all(runners.map((r) => r.stop()));
        await env.close();
      }
    });

    it('a holder whose lease was taken over (no heartbeat) cannot commit its next batch, and stands by', async () => {
      const env = await open('plb');
      const runners: ProjectionRunner[] = [];
      const warnings: string[] = [];
      try {
        await createCountingTables(env.db, env.schema, 'stale');
        const projection = countingProjection(env.schema, 'stale', 1, 'stale');
        const start = (holder: string) =>
          createProjectionRunner({
            db: env.db, store: env.store, schema: env.schema, projection, batchSize: 50,
            lease: { holder, retryMs: 25 }, onWarning: (m) => warnings.push(`${holder}: ${m}`),
          });
        const a = await start('a');
        runners.push(a);
        const first = await env.store.append({ tenantId: 'st', streamId: 's' }, [added(1), added(2)]);
        await a.waitFor(first.position, 30_000);
        // a stops heartbeating (simulated): its row expires and b takes the lease over. On the
        // server b first ends a's lease session, then takes the advisory lock on its next try.
        await expireLease(env, 'projection:stale:1', 'a');
        const b = await start('b');
        runners.push(b);
        await until('b to hold the lease', async () => {
          if (b.state !== 'active') await expireLease(env, 'projection:stale:1', 'a');
          return b.state === 'active';
        });
        const second = await env.store.append({ tenantId: 'st', streamId: 's' }, [added(3), added(4), added(5)]);
        await b.waitFor(second.position, 30_000);
        await until('a to notice and stand by', () => a.state === 'standby');
        console.log(`[${engine}] stale holder: a applied ${a.applied}, b applied ${b.applied}; ${warnings.join(' | ')}`);
        expect(a.applied).toBe(2);
        expect(b.applied).toBe(3);
        expect(warnings.some((w) => w.startsWith('a: projection "stale" v1 lost its lease'))).toBe(true);
        expect(await counts(env.db, env.schema, 'stale')).toEqual({ 'st/s': 5 });
        expect((await seen(env.db, env.schema, 'stale')).maxTimes).toBe(1);
      } finally {
        await Promise.all(runners.map((r) => r.stop()));
        await env.close();
      }
    });

    it('partitioned by tenant: one checkpoint, lease and lag per (projection, tenant)', async () => {
      const env = await open('plc');
      const runners: ProjectionRunner[] = [];
      try {
        await createCountingTables(env.db, env.schema, 'tp');
        const projection = countingProjection(env.schema, 'tp', 1, 'tp', { batch: true });
        const lags: Array<{ tenantId?: string; eventsBehind: number }> = [];
        const start = (tenantId: string) =>
          createProjectionRunner({
            db: env.db, store: env.store, schema: env.schema, projection, tenantId, batchSize: 16, lease: { retryMs: 25 },
            lagIntervalMs: 50, onLag: (l) => lags.push(l),
          });
        runners.push(await start('acme'), await start('globex'), await start('acme'));
        const [acme, globex, acme2] = runners as [ProjectionRunner, ProjectionRunner, ProjectionRunner];
        expect([acme.state, globex.state, acme2.state]).toEqual(['active', 'active', 'standby']);
        const heads: Record<string, LogPosition> = {};
        for (let i = 0; i < 12; i++) {
          for (const tenantId of ['acme', 'globex', 'initech']) {
            heads[tenantId] = (await env.store.append({ tenantId, streamId: `s-${i % 3}` }, [added(i), added(i + 1)])).position;
          }
        }
        await acme.waitFor(heads.acme as LogPosition, 30_000);
        await globex.waitFor(heads.globex as LogPosition, 30_000);
        const all = await counts(env.db, env.schema, 'tp');
        const only = (t: string) => Object.fromEntries(Object.entries(all).filter(([k]) => k.startsWith(`${t}/`)));
        expect(only('acme')).toEqual(await logCounts(env.db, env.schema, 'acme'));
        expect(only('globex')).toEqual(await logCounts(env.db, env.schema, 'globex'));
        expect(only('initech')).toEqual({}); // no runner for that partition
        expect(acme.applied).toBe(24);
        expect(globex.applied).toBe(24);
        expect(acme2.applied).toBe(0);
        expect(await storedCheckpoint(env.db, env.schema, 'tp', 1, 'acme')).toMatchObject({ applied: 24 });
        expect(await storedCheckpoint(env.db, env.schema, 'tp', 1, 'globex')).toMatchObject({ applied: 24 });
        expect(await storedCheckpoint(env.db, env.schema, 'tp', 1)).toEqual({ position: 'missing', applied: -1 });
        expect((await readLease(env.db, { schema: env.schema, name: 'projection:tp:1:acme' }))?.expired).toBe(false);
        expect((await readLease(env.db, { schema: env.schema, name: 'projection:tp:1:globex' }))?.expired).toBe(false);
        await until('a zero lag report from each partition', () =>
          ['acme', 'globex'].every((t) => lags.some((l) => l.tenantId === t && l.eventsBehind === 0)),
        );
        expect(new Set(lags.map((l) => l.tenantId))).toEqual(new Set(['acme', 'globex'])); // never from the standby
        expect((await seen(env.db, env.schema, 'tp')).maxTimes).toBe(1);
      } finally {
        await Promise.all(runners.map((r) => r.stop()));
        await env.close();
      }
    });

    if (engine === 'postgres') {
      it('a holder paused mid-batch while a contender steals the lease cannot commit that batch', async () => {
        const env = await open('pld');
        const runners: ProjectionRunner[] = [];
        const warnings: string[] = [];
        try {
          await createCountingTables(env.db, env.schema, 'pause');
          const hold = gate();
          // Same definition and tables for both; only a waits (once) inside its batch on event 7.
          const paused = countingProjection(env.schema, 'pause', 1, 'pause', {
            onEvent: async (e) => {
              if ((e.data as { i: number }).i === 7) await hold.wait();
            },
          });
          const plain = countingProjection(env.schema, 'pause', 1, 'pause');
          const start = (holder: string, projection: typeof plain) =>
            createProjectionRunner({
              db: env.db, store: env.store, schema: env.schema, projection, batchSize: 100,
              lease: { holder, retryMs: 25 }, onWarning: (m) => warnings.push(`${holder}: ${m}`),
            });
          const a = await start('a', paused);
          runners.push(a);
          const result = await env.store.append({ tenantId: 'pz', streamId: 's' }, Array.from({ length: 12 }, (_, i) => added(i)));
          await hold.reached; // a is inside its batch, events 0..7 written but not committed
          const b = await start('b', plain);
          runners.push(b);
          await until('b to steal the lease', async () => {
            if (b.state !== 'active') await expireLease(env, 'projection:pause:1', 'a');
            return b.state === 'active';
          });
          expect(a.applied).toBe(0);
          hold.open(); // a resumes: its fence check fails, its batch rolls back
          await b.waitFor(result.position, 30_000);
          await until('a to stand by', () => a.state === 'standby');
          console.log(`[postgres] paused holder: a applied ${a.applied}, b applied ${b.applied}; ${warnings.join(' | ')}`);
          expect(a.applied).toBe(0);
          expect(b.applied).toBe(12);
          expect(await counts(env.db, env.schema, 'pause')).toEqual({ 'pz/s': 12 });
          expect((await seen(env.db, env.schema, 'pause')).maxTimes).toBe(1);
          expect(warnings.some((w) => w.startsWith('a: projection "pause" v1 lost its lease'))).toBe(true);
        } finally {
          await Promise.all(runners.map((r) => r.stop()));
          await env.close();
        }
      });
    }
  });
}

if (!engines.some(([e]) => e === 'postgres')) skipBecauseNoServer('projection leases on PostgreSQL');
