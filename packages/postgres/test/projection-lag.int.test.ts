import pg from 'pg';
import { LOG_START, type LogPosition, type ProjectionLag } from '@causeway/core';
import { checkProjectionHealth, createProjectionRunner, measureProjectionLag, type ProjectionRunner } from '@causeway/postgres';
import { describe, expect, it } from 'vitest';
import {
  added,
  countingProjection,
  counts,
  createCountingTables,
  logCounts,
  PG_URL,
  projectionEngines,
  until,
} from './fixtures/projection-fixtures.js';
import { skipBecauseNoServer } from './support.js';

/** Lag metric hook, health check (stuck runner, dead runner) and the held read horizon warning. */
const engines = await projectionEngines();

for (const [engine, open] of engines) {
  describe(`projection lag and health on ${engine}`, () => {
    it('at steady load, lag returns to 0 within 2 s of the last write (default 1 s measuring interval)', async () => {
      const env = await open('pla');
      let runner: ProjectionRunner | null = null;
      try {
        await createCountingTables(env.db, env.schema, 'lag');
        const reports: Array<ProjectionLag & { at: number }> = [];
        runner = await createProjectionRunner({
          db: env.db, store: env.store, schema: env.schema, projection: countingProjection(env.schema, 'lag', 1, 'lag', { batch: true }),
          onLag: (lag) => reports.push({ ...lag, at: Date.now() }),
        });
        // Steady load: about 150 events/s from 3 writers for 3 s.
        const endAt = Date.now() + 3000;
        let head: LogPosition = LOG_START;
        let written = 0;
        await Promise.all(
          [0, 1, 2].map(async (w) => {
            while (Date.now() < endAt) {
              head = (await env.store.append({ tenantId: 'lag', streamId: `s-${w}` }, [added(written)])).position;
              written++;
              await new Promise((r) => setTimeout(r, 20));
            }
          }),
        );
        const lastWriteAt = Date.now();
        const duringLoad = reports.length;
        await runner.waitFor(head, 10_000);
        const appliedAfterMs = Date.now() - lastWriteAt;
        await until('a lag report of 0 taken after the last write', () => reports.some((r) => r.measuredAt >= lastWriteAt && r.eventsBehind === 0), 5000);
        const zero = reports.find((r) => r.measuredAt >= lastWriteAt && r.eventsBehind === 0) as ProjectionLag & { at: number };
        const maxBehind = Math.max(...reports.map((r) => r.eventsBehind));
        console.log(
          `[${engine}] lag: ${written} events in 3 s, ${duringLoad} reports during load (max ${maxBehind} events behind); ` +
            `runner caught up ${appliedAfterMs} ms and lag reported 0 ${zero.at - lastWriteAt} ms after the last write`,
        );
        expect(zero.at - lastWriteAt).toBeLessThan(2000);
        expect(zero).toMatchObject({ projection: 'lag', version: 1, eventsBehind: 0, secondsBehind: 0 });
        expect(zero).not.toHaveProperty('tenantId');
        expect(duringLoad).toBeGreaterThanOrEqual(2);
        expect(await counts(env.db, env.schema, 'lag')).toEqual(await logCounts(env.db, env.schema));
      } finally {
        await runner?.stop();
        await env.close();
      }
    });

    it('health: healthy when caught up; stuck when the checkpoint stops moving while events wait; stuck when no runner holds the lease', async () => {
      const env = await open('plh');
      let runner: ProjectionRunner | null = null;
      try {
        await createCountingTables(env.db, env.schema, 'hc');
        const key = { schema: env.schema, name: 'hc', version: 1 };
        expect(await checkProjectionHealth(env.db, key)).toMatchObject({ status: 'healthy', checkpoint: null, eventsBehind: 0, head: null });
        // A runner that keeps retrying one event (the wedge): alive, holding its lease, not moving.
        runner = await createProjectionRunner({
          db: env.db, store: env.store, schema: env.schema,
          projection: countingProjection(env.schema, 'hc', 1, 'hc', { fail: (e) => (e.data as { wedge?: boolean }).wedge === true }),
          errorPolicy: { retries: 100, baseDelayMs: 100, maxDelayMs: 100 }, onWarning: () => undefined,
        });
        const first = await env.store.append({ tenantId: 'hc', streamId: 's' }, [added(1), added(2)]);
        await runner.waitFor(first.position, 10_000);
        const healthy = await checkProjectionHealth(env.db, key);
        expect(healthy).toMatchObject({ status: 'healthy', problems: [], eventsBehind: 0, secondsBehind: 0, checkpoint: `${first.position.tx}/${first.position.seq}` });
        expect(healthy.lease?.expired).toBe(false);

        await env.store.append({ tenantId: 'hc', streamId: 's' }, [added(3, { wedge: true }), added(4), added(5)]);
        const lagging = await checkProjectionHealth(env.db, key);
        expect(lagging.status).toBe('lagging'); // default stuckAfterMs is 30 s
        expect(lagging.eventsBehind).toBe(3);
        let stuck = lagging;
        await until('the health check to call the runner stuck', async () => (stuck = await checkProjectionHealth(env.db, { ...key, stuckAfterMs: 300 })).status === 'stuck');
        console.log(`[${engine}] health: ${stuck.problems.join(' | ')}`);
        expect(stuck.eventsBehind).toBe(3);
        expect(stuck.secondsBehind).toBeGreaterThanOrEqual(0.3);
        expect(stuck.problems).toHaveLength(1);
        expect(stuck.problems[0]).toMatch(/^projection "hc" v1: checkpoint \d+\/\d+ has not moved for \d+\.\d s while 3 events wait/);
        expect(stuck.lease?.expired).toBe(false); // alive and heartbeating, yet stuck

        await runner.stop();
        const dead = await checkProjectionHealth(env.db, key);
        expect(dead.status).toBe('stuck');
        expect(dead.problems.some((p) => /lease held by .* expired at .*; no runner is active/.test(p))).toBe(true);
        const direct = await measureProjectionLag(env.db, env.schema, { name: 'hc', version: 1 });
        expect(direct).toMatchObject({ eventsBehind: 3, applied: 2, blocked: false });
      } finally {
        await runner?.stop();
        await env.close();
      }
    });

    if (engine === 'postgres') {
      it('a long transaction holding the read horizon is named in a warning (pid, application_name, start times)', async () => {
        const env = await open('plw');
        const holder = new pg.Client({ connectionString: PG_URL, application_name: 'causeway-horizon-test' });
        let runner: ProjectionRunner | null = null;
        let holding = false;
        try {
          await createCountingTables(env.db, env.schema, 'hz');
          await env.db.query(`CREATE TABLE "${env.schema}".scratch (n integer)`);
          await holder.connect();
          const { rows } = await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
          const pid = rows[0]?.pid as number;
          await holder.query('BEGIN');
          await holder.query(`INSERT INTO "${env.schema}".scratch VALUES (1)`); // now it has a transaction id
          holding = true;
          const warnings: string[] = [];
          runner = await createProjectionRunner({
            db: env.db, store: env.store, schema: env.schema, projection: countingProjection(env.schema, 'hz', 1, 'hz'),
            lagIntervalMs: 50, horizonWarnAfterMs: 300, onWarning: (m) => warnings.push(m),
          });
          const result = await env.store.append({ tenantId: 'hz', streamId: 's' }, [added(1), added(2)]);
          await until('a warning naming the holder', () => warnings.some((w) => w.includes(`pid ${pid} `)), 15_000);
          const warning = warnings.find((w) => w.includes(`pid ${pid} `)) as string;
          console.log(`[postgres] horizon warning: ${warning}`);
          expect(warning).toMatch(/^projection "hz" v1: events have waited \d+\.\d s behind an open transaction: pid \d+ \(application_name "causeway-horizon-test"/);
          expect(warning).toMatch(/has had a transaction open for \d+\.\d s since \d{4}-\d\d-\d\dT[\d:.]+Z; query started \d{4}-/);
          expect(runner.applied).toBe(0);
          const health = await checkProjectionHealth(env.db, { schema: env.schema, name: 'hz', version: 1, stuckAfterMs: 0 });
          expect(health.blocked).toBe(true);
          expect(health.horizonHolder?.pid).toBe(pid);
          expect(health.problems[0]).toContain('the read horizon is held: pid');
          await holder.query('ROLLBACK');
          holding = false;
          await runner.waitFor(result.position, 10_000);
          expect(await counts(env.db, env.schema, 'hz')).toEqual({ 'hz/s': 2 });
        } finally {
          if (holding) await holder.query('ROLLBACK').catch(() => undefined);
          await holder.end().catch(() => undefined);
          await runner?.stop();
          await env.close();
        }
      });
    }
  });
}

if (!engines.some(([e]) => e === 'postgres')) skipBecauseNoServer('projection lag on PostgreSQL');
