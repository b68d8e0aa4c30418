import { comparePositions, isClosedError, LOG_START, type LogPosition } from '@causeway/core';
import {
  createProjectionRunner,
  readLiveProjectionVersion,
  retireProjectionVersion,
  setLiveProjectionVersion,
  startProjectionRebuild,
  type ProjectionRunner,
  type RebuildProgress,
} from '@causeway/postgres';
import { describe, expect, it } from 'vitest';
import {
  added,
  countingProjection,
  counts,
  createCountingTables,
  logCounts,
  projectionEngines,
  seen,
  storedCheckpoint,
  type ProjectionEnv,
} from './fixtures/projection-fixtures.js';
import { skipBecauseNoServer } from './support.js';

/** Blue/green rebuilds by version: catch-up beside the live version, progress, resume, switch, retire. */
const engines = await projectionEngines();

const later = (a: LogPosition, b: LogPosition): LogPosition => (comparePositions(a, b) >= 0 ? a : b);

async function writeBacklog(env: ProjectionEnv, events: number): Promise<LogPosition> {
  let head = LOG_START;
  for (let i = 0; i < events; i += 25) {
    head = (await env.store.append({ tenantId: 'rb', streamId: `s-${(i / 25) % 6}` }, Array.from({ length: 25 }, (_, k) => added(i + k)))).position;
  }
  return head;
}

for (const [engine, open] of engines) {
  describe(`projection rebuild on ${engine}`, () => {
    it('v2 rebuilds while v1 keeps running and writes continue; after the switch it equals a fresh replay', async () => {
      const env = await open('pra');
      const runners: ProjectionRunner[] = [];
      try {
        for (const t of ['v1', 'v2', 'v3']) await createCountingTables(env.db, env.schema, t);
        let head = await writeBacklog(env, 600);
        const v1 = await createProjectionRunner({ db: env.db, store: env.store, schema: env.schema, projection: countingProjection(env.schema, 'orders', 1, 'v1', { batch: true }) });
        runners.push(v1);
        await v1.waitFor(head, 30_000);
        expect(await setLiveProjectionVersion(env.db, { schema: env.schema, name: 'orders', version: 1 })).toBeNull();

        let writing = true;
        let written = 0;
        const writers = Promise.all(
          [0, 1, 2].map(async (w) => {
            for (let t = 0; writing; t++) {
              const r = await env.store.append({ tenantId: 'rb', streamId: `w-${w}-${t % 4}` }, [added(t), added(t + 1)]);
              head = later(head, r.position);
              written += 2;
              await new Promise((resolve) => setTimeout(resolve, 2));
            }
          }),
        );
        const v1Before = v1.applied;
        const progress: RebuildProgress[] = [];
        const lines: string[] = [];
        const rebuild = await startProjectionRebuild({
          db: env.db, store: env.store, schema: env.schema, projection: countingProjection(env.schema, 'orders', 2, 'v2', { batch: true }),
          batchSize: 40, progressIntervalMs: 20,
          onProgress: (p, line) => {
            progress.push(p);
            lines.push(line);
          },
        });
        runners.push(rebuild.runner);
        const done = await rebuild.caughtUp;
        expect(await readLiveProjectionVersion(env.db, { schema: env.schema, name: 'orders' })).toBe(1); // v1 served all along
        expect(await rebuild.switchLive()).toBe(1);
        expect(await readLiveProjectionVersion(env.db, { schema: env.schema, name: 'orders' })).toBe(2);
        const writtenDuringRebuild = written;
        writing = false;
        await writers;
        await v1.waitFor(head, 30_000);
        await rebuild.runner.waitFor(head, 30_000);
        // A fresh replay of the same definition, from the log's start, after the writes ended.
        const v3 = await createProjectionRunner({ db: env.db, store: env.store, schema: env.schema, projection: countingProjection(env.schema, 'orders', 3, 'v3', { batch: true }), batchSize: 500 });
        runners.push(v3);
        await v3.waitFor(head, 30_000);
        const truth = await logCounts(env.db, env.schema);
        const total = Object.values(truth).reduce((a, b) => a + b, 0);
        console.log(
          `[${engine}] rebuild: ${total} events (${writtenDuringRebuild} written while rebuilding); v1 applied ${v1.applied - v1Before} meanwhile; ` +
            `${progress.length} progress lines, e.g. "${lines[Math.floor(lines.length / 2)]}"; last "${lines[lines.length - 1]}"`,
        );
        expect(writtenDuringRebuild).toBeGreaterThan(0);
        expect(v1.applied).toBeGreaterThan(v1Before); // v1's runner kept running
        expect(done.caughtUp).toBe(true);
        expect(done.eventsBehind).toBeLessThanOrEqual(40);
        expect(lines[lines.length - 1]).toContain('rebuild projection "orders" v2: caught up at');
        // Every line before the last shows position against the high-water mark, events/s and ETA.
        for (const line of lines.slice(0, -1)) expect(line).toMatch(/: \d+\/\d+ events \(\d+\.\d%\), at \d+\/\d+ of \d+\/\d+, \d+ events\/s, ETA /);
        if (engine === 'postgres') expect(lines.length).toBeGreaterThan(1);
        expect(await counts(env.db, env.schema, 'v2')).toEqual(truth);
        expect(await counts(env.db, env.schema, 'v3')).toEqual(truth);
        expect(await counts(env.db, env.schema, 'v1')).toEqual(truth);
        expect((await seen(env.db, env.schema, 'v2')).maxTimes).toBe(1);
        expect((await storedCheckpoint(env.db, env.schema, 'orders', 2)).applied).toBe(total);
      } finally {
        await Promise.all(runners.map((r) => r.stop()));
        await env.close();
      }
    });

    it('a rebuild stopped part-way resumes from its checkpoint and ends equal to the log (a crash leaves the same checkpoint: see the kill -9 test)', async () => {
      const env = await open('prr');
      try {
        await createCountingTables(env.db, env.schema, 'rr');
        const head = await writeBacklog(env, 500);
        let handled = 0;
        let midway: () => void = () => undefined;
        const reached = new Promise<void>((resolve) => (midway = resolve));
        const projection = countingProjection(env.schema, 'resumed', 2, 'rr', {
          onEvent: () => {
            if (++handled === 120) midway();
          },
        });
        const first = await startProjectionRebuild({ db: env.db, store: env.store, schema: env.schema, projection, batchSize: 30, progressIntervalMs: 1000, onProgress: () => undefined });
        await reached;
        await first.stop();
        expect(isClosedError(await first.caughtUp.catch((e: unknown) => e))).toBe(true);
        const stoppedAt = await storedCheckpoint(env.db, env.schema, 'resumed', 2);
        expect(stoppedAt.applied).toBeGreaterThanOrEqual(120);
        expect(stoppedAt.applied).toBeLessThan(500);

        const second = await startProjectionRebuild({ db: env.db, store: env.store, schema: env.schema, projection, batchSize: 30, progressIntervalMs: 1000, onProgress: () => undefined });
        try {
          expect(`${second.runner.position.tx}/${second.runner.position.seq}`).toBe(stoppedAt.position);
          await second.caughtUp;
          await second.runner.waitFor(head, 30_000);
          console.log(`[${engine}] resumed rebuild: first run stopped at ${stoppedAt.position} after ${stoppedAt.applied} events; second run applied ${second.runner.applied}`);
          expect(second.runner.applied).toBe(500 - stoppedAt.applied);
          expect(await counts(env.db, env.schema, 'rr')).toEqual(await logCounts(env.db, env.schema));
          expect((await seen(env.db, env.schema, 'rr')).maxTimes).toBe(1);
        } finally {
          await second.stop();
        }
      } finally {
        await env.close();
      }
    });

    it('retiring: refused for the live version and while a runner holds the lease; then checkpoints and tables go', async () => {
      const env = await open('prt');
      const runners: ProjectionRunner[] = [];
      try {
        for (const t of ['r1', 'r2']) await createCountingTables(env.db, env.schema, t);
        const head = await writeBacklog(env, 50);
        const v1 = await createProjectionRunner({ db: env.db, store: env.store, schema: env.schema, projection: countingProjection(env.schema, 'ret', 1, 'r1') });
        runners.push(v1);
        await v1.waitFor(head, 30_000);
        await setLiveProjectionVersion(env.db, { schema: env.schema, name: 'ret', version: 1 });
        const rebuild = await startProjectionRebuild({ db: env.db, store: env.store, schema: env.schema, projection: countingProjection(env.schema, 'ret', 2, 'r2'), onProgress: () => undefined });
        runners.push(rebuild.runner);
        expect(await rebuild.switchLive()).toBe(1);
        expect(await rebuild.switchLive()).toBe(2); // already live: nothing changes
        const retire = (version: number) =>
          retireProjectionVersion(env.db, { schema: env.schema, name: 'ret', version, cleanup: (tx) => tx.query(`DROP TABLE "${env.schema}".r${version}_counts, "${env.schema}".r${version}_seen`).then(() => undefined) });
        await expect(retire(2)).rejects.toMatchObject({ code: 'PROJECTION_VERSION_IN_USE', message: expect.stringContaining('is the live version') });
        await expect(retire(1)).rejects.toMatchObject({ code: 'PROJECTION_VERSION_IN_USE', message: expect.stringContaining('lease projection:ret:1 is held') });
        await v1.stop();
        await retire(1);
        expect(await storedCheckpoint(env.db, env.schema, 'ret', 1)).toEqual({ position: 'missing', applied: -1 });
        const { rows } = await env.db.query<{ n: string }>(`SELECT count(*)::text AS n FROM information_schema.tables WHERE table_schema = $1 AND table_name LIKE 'r1_%'`, [env.schema]);
        expect(rows[0]?.n).toBe('0');
        expect((await storedCheckpoint(env.db, env.schema, 'ret', 2)).applied).toBe(50);
      } finally {
        await Promise.all(runners.map((r) => r.stop()));
        await env.close();
      }
    });
  });
}

if (!engines.some(([e]) => e === 'postgres')) skipBecauseNoServer('projection rebuild on PostgreSQL');
