import {
  LOG_START,
  comparePositions,
  isClosedError,
  uuidv7,
  type LogPosition,
  type NewEvent,
  type Projection,
  type StreamRef,
} from '@causeway/core';
import { createProjectionRunner, type PostgresEventStore, type ProjectionRunner, type SqlDatabase, type SqlExecutor } from '@causeway/postgres';
import { describe, expect, it } from 'vitest';
import { openPgliteEnv, openPostgresEnv } from './fixtures/projection-fixtures.js';
import { postgresAvailable, skipBecauseNoServer } from './support.js';

/**
 * The async projection runner: handlers and checkpoint in one transaction per batch, fed from the
 * store's gap-safe log. Each test gets its own store (schema or PGlite instance), so every event
 * in the log is the test's own and the read model must match the log exactly.
 */
interface Env {
  readonly engine: string;
  readonly db: SqlDatabase;
  readonly schema: string;
  readonly store: PostgresEventStore;
  close(): Promise<void>;
}

const ADDED = 'test.item.added';
const NOTED = 'test.note.written'; // no handler: passed over, still moves the checkpoint

/** A read model: events per stream, plus how many times each event was applied (must be 1). */
async function createReadModel(env: Env, table: string): Promise<void> {
  const s = `"${env.schema}"`;
  await env.db.query(`CREATE TABLE ${s}.${table}_counts (tenant_id text, stream_id text, n integer NOT NULL, PRIMARY KEY (tenant_id, stream_id))`);
  await env.db.query(`CREATE TABLE ${s}.${table}_seen (event_id uuid PRIMARY KEY, times integer NOT NULL)`);
}

function countingProjection(env: Env, name: string, version: number, table: string, poison = false, onEvent?: () => void): Projection<SqlExecutor> {
  const s = `"${env.schema}"`;
  return {
    name,
    version,
    handlers: {
      async [ADDED](event, tx) {
        await tx.query(
          `INSERT INTO ${s}.${table}_counts AS c VALUES ($1, $2, 1) ON CONFLICT (tenant_id, stream_id) DO UPDATE SET n = c.n + 1`,
          [event.tenantId, event.streamId],
        );
        await tx.query(
          `INSERT INTO ${s}.${table}_seen AS x VALUES ($1, 1) ON CONFLICT (event_id) DO UPDATE SET times = x.times + 1`,
          [event.eventId],
        );
        if (poison && (event.data as { poison?: boolean }).poison === true) throw new Error('poisoned event');
        onEvent?.();
      },
    },
  };
}

async function counts(env: Env, table: string): Promise<Record<string, number>> {
  const { rows } = await env.db.query<{ k: string; n: number }>(`SELECT tenant_id || '/' || stream_id AS k, n FROM "${env.schema}".${table}_counts`);
  return Object.fromEntries(rows.map((r) => [r.k, r.n]));
}

/** The truth: the store's own events, counted per stream. */
async function logCounts(env: Env): Promise<Record<string, number>> {
  const { rows } = await env.db.query<{ k: string; n: string }>(
    `SELECT tenant_id || '/' || stream_id AS k, count(*)::text AS n FROM "${env.schema}".events WHERE event_type = $1 GROUP BY 1`,
    [ADDED],
  );
  return Object.fromEntries(rows.map((r) => [r.k, Number(r.n)]));
}

async function seen(env: Env, table: string): Promise<{ ids: Set<string>; maxTimes: number; total: number }> {
  const { rows } = await env.db.query<{ event_id: string; times: number }>(`SELECT event_id::text AS event_id, times FROM "${env.schema}".${table}_seen`);
  return { ids: new Set(rows.map((r) => r.event_id)), maxTimes: Math.max(0, ...rows.map((r) => r.times)), total: rows.reduce((a, r) => a + r.times, 0) };
}

async function storedCheckpoint(env: Env, name: string, version: number): Promise<{ position: string; applied: number }> {
  const { rows } = await env.db.query<{ position: string; applied: string }>(
    `SELECT position_tx::text || '/' || position_seq::text AS position, applied::text AS applied
     FROM "${env.schema}".projection_checkpoints WHERE name = $1 AND version = $2`,
    [name, version],
  );
  return { position: rows[0]?.position ?? 'missing', applied: Number(rows[0]?.applied ?? -1) };
}

const maxPosition = (ps: readonly LogPosition[]): LogPosition => ps.reduce((a, b) => (comparePositions(a, b) >= 0 ? a : b), LOG_START);
const added = (i: number, extra: Record<string, unknown> = {}): NewEvent => ({ eventType: ADDED, data: { i, ...extra }, eventId: uuidv7() });
const fmt = (p: LogPosition): string => `${p.tx}/${p.seq}`;

function runnerTests(engine: string, open: (label: string) => Promise<Env>): void {
  describe(`projection runner on ${engine}`, () => {
    it('(a) counts per stream from concurrent writers equal a fresh replay', async () => {
      const env = await open('pra');
      const runners: ProjectionRunner[] = [];
      try {
        await createReadModel(env, 'live');
        await createReadModel(env, 'replay');
        runners.push(await createProjectionRunner({ db: env.db, store: env.store, schema: env.schema, projection: countingProjection(env, 'counts', 1, 'live'), batchSize: 16 }));
        const positions: LogPosition[] = [];
        await Promise.all(
          Array.from({ length: 6 }, async (_, w) => {
            for (let t = 0; t < 30; t++) {
              const stream: StreamRef = { tenantId: `tenant-${t % 2}`, streamId: `s-${(w + t) % 5}` };
              const events = Array.from({ length: 1 + ((w + t) % 3) }, (_, i) => added(i));
              if (t % 7 === 0) events.push({ eventType: NOTED, data: {} });
              positions.push((await env.store.append(stream, events)).position);
            }
          }),
        );
        const head = maxPosition(positions);
        await (runners[0] as ProjectionRunner).waitFor(head, 30_000);
        // A fresh replay: version 2 starts from the log's beginning with its own checkpoint and tables.
        runners.push(await createProjectionRunner({ db: env.db, store: env.store, schema: env.schema, projection: countingProjection(env, 'counts', 2, 'replay'), batchSize: 500 }));
        await (runners[1] as ProjectionRunner).waitFor(head, 30_000);
        const truth = await logCounts(env);
        const live = await counts(env, 'live');
        const total = Object.values(truth).reduce((a, b) => a + b, 0);
        console.log(`[${engine}] (a) ${positions.length} appends, ${total} counted events in ${Object.keys(truth).length} streams; live checkpoint ${fmt((runners[0] as ProjectionRunner).position)}`);
        expect(total).toBeGreaterThan(300);
        expect(live).toEqual(truth);
        expect(await counts(env, 'replay')).toEqual(truth);
        expect((await seen(env, 'live')).maxTimes).toBe(1);
        expect((await storedCheckpoint(env, 'counts', 1)).position).toBe(fmt((runners[0] as ProjectionRunner).position));
      } finally {
        await Promise.all(runners.map((r) => r.stop()));
        await env.close();
      }
    });

    it('(b) gap test: late and rolled-back commits, each committed event projected exactly once', async () => {
      const env = await open('prb');
      await createReadModel(env, 'gap');
      const runner = await createProjectionRunner({ db: env.db, store: env.store, schema: env.schema, projection: countingProjection(env, 'gap', 1, 'gap'), batchSize: 7 });
      try {
        const committed: string[] = [];
        const rolledBack: string[] = [];
        const positions: LogPosition[] = [];
        let slow = 0;
        const WRITERS = 8;
        const TRANSACTIONS = 25;
        await Promise.all(
          Array.from({ length: WRITERS }, async (_, w) => {
            for (let t = 0; t < TRANSACTIONS; t++) {
              const events = Array.from({ length: 1 + ((w + t) % 3) }, (_, i) => added(i));
              const ids = events.map((e) => e.eventId as string);
              const roll = Math.random();
              const rollback = roll < 0.1;
              const pause = !rollback && roll < 0.3;
              try {
                const result = await env.store.append({ tenantId: 'gap', streamId: `w-${w}` }, events, {
                  // An explicit transaction: the rows (and their xid) exist, the COMMIT comes late or never.
                  async beforeCommit() {
                    if (pause) {
                      slow++;
                      await new Promise((r) => setTimeout(r, 20 + Math.floor(Math.random() * 120)));
                    }
                    if (rollback) throw new Error('roll back on purpose');
                  },
                });
                committed.push(...ids);
                positions.push(result.position);
              } catch (error) {
                if (!rollback) throw error;
                rolledBack.push(...ids);
              }
            }
          }),
        );
        await runner.waitFor(maxPosition(positions), 60_000);
        await runner.stop();
        const s = await seen(env, 'gap');
        const missing = committed.filter((id) => !s.ids.has(id)).length;
        const ghosts = rolledBack.filter((id) => s.ids.has(id)).length;
        const duplicates = s.total - s.ids.size;
        const checkpoint = await storedCheckpoint(env, 'gap', 1);
        console.log(
          `[${engine}] (b) writers ${WRITERS}x${TRANSACTIONS}: committed ${committed.length} events, rolled back ${rolledBack.length}, ` +
            `slow commits ${slow}; projected ${s.ids.size}, duplicates ${duplicates}, missing ${missing}, rolled-back projected ${ghosts}; checkpoint applied ${checkpoint.applied}`,
        );
        expect(rolledBack.length).toBeGreaterThan(0);
        expect(slow).toBeGreaterThan(0);
        expect(missing).toBe(0);
        expect(ghosts).toBe(0);
        expect(duplicates).toBe(0);
        expect(s.ids.size).toBe(committed.length);
        expect(checkpoint.applied).toBe(committed.length);
        expect(await counts(env, 'gap')).toEqual(await logCounts(env));
      } finally {
        await runner.stop();
        await env.close();
      }
    });

    it('(c) stop and restart mid-stream: nothing counted twice, nothing missed', async () => {
      const env = await open('prc');
      await createReadModel(env, 'rs');
      // Each runner is stopped from outside while it is inside a batch (its 12th handled event):
      // on PGlite a runner can drain the whole log between two timer ticks, so a timed poll of
      // its progress would only ever stop it at the end.
      let handledThisRun = 0;
      let inBatch: () => void = () => undefined;
      const projection = countingProjection(env, 'restart', 1, 'rs', false, () => {
        if (++handledThisRun === 12) inBatch();
      });
      const start = () => createProjectionRunner({ db: env.db, store: env.store, schema: env.schema, projection, batchSize: 5 });
      const positions: LogPosition[] = [];
      const write = (w: number, from: number, to: number) => async () => {
        for (let t = from; t < to; t++) {
          positions.push((await env.store.append({ tenantId: 'rs', streamId: `s-${(w * 3 + t) % 7}` }, [added(t), added(t + 1)])).position);
        }
      };
      // Half the events are a backlog before the first runner starts, so every stop below lands
      // mid-stream; the other half is written while the runners stop and start.
      await Promise.all([0, 1, 2, 3].map((w) => write(w, 0, 30)()));
      const nextRun = () => {
        handledThisRun = 0;
        return new Promise<void>((resolve) => {
          inBatch = resolve;
        });
      };
      let reached = nextRun();
      let runner = await start();
      try {
        const writers = Promise.all([0, 1, 2, 3].map((w) => write(w, 30, 60)()));
        let restarts = 0;
        const stoppedAt: string[] = [];
        const stoppedApplied: number[] = [];
        while (restarts < 4) {
          const r = runner;
          await reached;
          await r.stop();
          // stop() came while the 12th event's batch was open: that batch was finished, not dropped.
          expect(r.applied).toBeGreaterThanOrEqual(12);
          stoppedAt.push(fmt(r.position));
          stoppedApplied.push((await storedCheckpoint(env, 'restart', 1)).applied);
          // The stored checkpoint is exactly where the stopped runner's last committed batch left it.
          expect((await storedCheckpoint(env, 'restart', 1)).position).toBe(fmt(r.position));
          reached = nextRun();
          runner = await start();
          expect(fmt(runner.position)).toBe(fmt(r.position));
          restarts++;
        }
        await writers;
        await runner.waitFor(maxPosition(positions), 30_000);
        const s = await seen(env, 'rs');
        const checkpoint = await storedCheckpoint(env, 'restart', 1);
        console.log(`[${engine}] (c) ${positions.length * 2} events, ${restarts} restarts at ${stoppedAt.join(', ')} (events applied: ${stoppedApplied.join(', ')}); projected ${s.ids.size}, applied total ${s.total}`);
        expect(stoppedApplied.every((n) => n < positions.length * 2)).toBe(true); // every stop was mid-stream
        expect(s.maxTimes).toBe(1);
        expect(s.ids.size).toBe(positions.length * 2);
        expect(checkpoint.applied).toBe(positions.length * 2);
        expect(await counts(env, 'rs')).toEqual(await logCounts(env));
      } finally {
        await runner.stop();
        await env.close();
      }
    });

    it('(d) a throwing handler rolls its batch back, keeps the checkpoint, and stops the runner', async () => {
      const env = await open('prd');
      await createReadModel(env, 'pz');
      const reported: unknown[] = [];
      const start = (poison: boolean) =>
        createProjectionRunner({
          db: env.db, store: env.store, schema: env.schema, projection: countingProjection(env, 'poison', 1, 'pz', poison),
          onError: (e) => reported.push(e),
        });
      let runner = await start(true);
      try {
        const stream = { tenantId: 'pz', streamId: 'one' };
        const first = await env.store.append(stream, [added(1), added(2), added(3)]);
        await runner.waitFor(first.position, 30_000);
        const second = await env.store.append(stream, [added(4), added(5, { poison: true }), added(6)]);
        const waiting = runner.waitFor(second.position, 30_000);
        const error = await runner.done.then(() => null, (e: unknown) => e);
        expect(error).toMatchObject({ code: 'HANDLER_FAILED', cause: { message: 'poisoned event' } });
        expect((error as Error).message).toContain(second.events[1]?.eventId);
        await expect(waiting).rejects.toBe(error);
        expect(reported).toEqual([error]);
        // Nothing of the failed batch stayed: not the event before the poison, not the poison's own writes.
        expect(await counts(env, 'pz')).toEqual({ 'pz/one': 3 });
        expect((await seen(env, 'pz')).total).toBe(3);
        expect(await storedCheckpoint(env, 'poison', 1)).toEqual({ position: fmt(first.position), applied: 3 });
        expect(fmt(runner.position)).toBe(fmt(first.position));
        // A fixed handler resumes from the unmoved checkpoint.
        runner = await start(false);
        await runner.waitFor(second.position, 30_000);
        expect(await counts(env, 'pz')).toEqual({ 'pz/one': 6 });
        expect((await seen(env, 'pz')).maxTimes).toBe(1);
        console.log(`[${engine}] (d) failed batch rolled back; checkpoint held at ${fmt(first.position)}; restart reached ${fmt(runner.position)}`);
      } finally {
        await runner.stop();
        await env.close();
      }
    });

    it('two runners of one projection without a lease: one conflicts and stops, nothing is applied twice', async () => {
      const env = await open('pre');
      await createReadModel(env, 'duo');
      const projection = countingProjection(env, 'duo', 1, 'duo');
      const errors: unknown[] = [];
      // lease: false, so both run at once and the checkpoint lock alone keeps them apart
      // (with the default lease one stands by instead: projection-lease.int.test.ts).
      const make = () => createProjectionRunner({ db: env.db, store: env.store, schema: env.schema, projection, batchSize: 4, lease: false, onError: (e) => errors.push(e) });
      const [a, b] = await Promise.all([make(), make()]);
      try {
        const result = await env.store.append({ tenantId: 'duo', streamId: 's' }, Array.from({ length: 20 }, (_, i) => added(i)));
        const outcomes = await Promise.all([a, b].map((r) => r.waitFor(result.position, 30_000).then(() => 'reached', (e: unknown) => e)));
        const losers = outcomes.filter((o) => o !== 'reached');
        expect(losers).toHaveLength(1);
        expect(losers[0]).toMatchObject({ code: 'CHECKPOINT_CONFLICT' });
        expect(errors).toEqual(losers);
        expect(await counts(env, 'duo')).toEqual({ 'duo/s': 20 });
        expect((await seen(env, 'duo')).maxTimes).toBe(1);
      } finally {
        await Promise.all([a.stop(), b.stop()]);
        await env.close();
      }
    });

    it('waitFor by stream and version: resolves once that event is in the read model; an unknown version is named', async () => {
      const env = await open('prv');
      await createReadModel(env, 'sv');
      const runner = await createProjectionRunner({ db: env.db, store: env.store, schema: env.schema, projection: countingProjection(env, 'sv', 1, 'sv') });
      try {
        const stream = { tenantId: 'sv', streamId: 'one' };
        const r = await env.store.append(stream, [added(1), added(2)]);
        await runner.waitFor({ ...stream, version: r.nextExpectedVersion }, 30_000);
        expect(await counts(env, 'sv')).toEqual({ 'sv/one': 2 });
        await expect(runner.waitFor({ ...stream, version: 99 }, 1_000)).rejects.toThrow(/no committed event at version 99 of stream "one"/);
      } finally {
        await runner.stop();
        await env.close();
      }
    });

    it('waitFor times out, and rejects with ClosedError once stopped', async () => {
      const env = await open('prf');
      await createReadModel(env, 'wf');
      const runner = await createProjectionRunner({ db: env.db, store: env.store, schema: env.schema, projection: countingProjection(env, 'wf', 1, 'wf') });
      try {
        const far = { tx: 2n ** 62n, seq: 1n };
        await expect(runner.waitFor(far, 50)).rejects.toMatchObject({ code: 'TIMEOUT' });
        const pending = runner.waitFor(far, 30_000);
        await runner.stop();
        expect(isClosedError(await pending.catch((e: unknown) => e))).toBe(true);
        await expect(runner.done).resolves.toBeUndefined();
      } finally {
        await runner.stop();
        await env.close();
      }
    });
  });
}

runnerTests('pglite', () => openPgliteEnv());

if (await postgresAvailable()) {
  runnerTests('postgres', (label) => openPostgresEnv(label, 16));
} else {
  skipBecauseNoServer('projection runner on PostgreSQL');
}
