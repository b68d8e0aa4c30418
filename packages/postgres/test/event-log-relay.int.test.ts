import { InMemoryBroker, LOG_START, comparePositions, isLeaseLostError, uuidv7, type LogPosition, type NewEvent } from '@causeway/core';
import { createEventLogRelay, eventLogRelayStats, readLease, type Relay } from '@causeway/postgres';
import { describe, expect, it } from 'vitest';
import {
  RecordingPublisher,
  crashAfterFirstPublish,
  describeFigures,
  expireLease,
  figures,
  openRelayEnv,
  pauseAfterFirstPublish,
  waitUntil,
  type RelayEnv,
} from './fixtures/relay-support.js';
import { postgresAvailable, skipBecauseNoServer } from './support.js';

/**
 * The event-log relay: the store's gap-safe global log is the outbox. Each test has its own store
 * (schema or PGlite instance), so every event in the log is the test's own.
 */
const ADDED = 'test.item.added';
const INTERNAL = 'test.note.written';
const LEASE = 'relay:log:default';
const quiet = (): ((e: unknown) => void) => () => undefined;
const topicOf = (event: { eventType: string }): string | null => (event.eventType === ADDED ? 'items.added' : null);
const added = (n: number): NewEvent => ({ eventType: ADDED, data: { n }, eventId: uuidv7() });

async function checkpoint(env: RelayEnv, name = 'default'): Promise<{ position: string; fence: string; published: number }> {
  const { rows } = await env.db.query<{ position: string; fence: string; published: string }>(
    `SELECT position_tx::text || '/' || position_seq::text AS position, fence::text AS fence, published::text AS published
     FROM "${env.schema}".relay_checkpoints WHERE name = $1`,
    [`log:${name}`],
  );
  return { position: rows[0]?.position ?? 'missing', fence: rows[0]?.fence ?? 'missing', published: Number(rows[0]?.published ?? -1) };
}

const fmt = (p: LogPosition): string => `${p.tx}/${p.seq}`;
const maxPosition = (ps: readonly LogPosition[]): LogPosition => ps.reduce((a, b) => (comparePositions(a, b) >= 0 ? a : b), LOG_START);

/** Appends `rounds` of one event per stream; returns the committed ids and the last position. */
async function appendRounds(env: RelayEnv, streams: number, rounds: number, from = 1): Promise<{ ids: string[]; head: LogPosition }> {
  const ids: string[] = [];
  const positions: LogPosition[] = [];
  for (let r = from; r < from + rounds; r++) {
    for (let s = 0; s < streams; s++) {
      const e = added(r);
      positions.push((await env.store.append({ tenantId: 'acme', streamId: `s${s}` }, [e])).position);
      ids.push(e.eventId as string);
    }
  }
  return { ids, head: maxPosition(positions) };
}

function relayTests(engine: 'pglite' | 'postgres'): void {
  const open = (label: string) => openRelayEnv(engine, label);
  describe(`event-log relay on ${engine}`, () => {
    it('concurrent writers with slow and rolled-back commits: every committed event once, per stream in order', async () => {
      const env = await open('ela');
      const publisher = new RecordingPublisher();
      const relay = createEventLogRelay({ db: env.db, store: env.store, publisher, schema: env.schema, topic: topicOf, batchSize: 9, onError: quiet() });
      try {
        const committed = new Set<string>();
        const rolledBack = new Set<string>();
        const positions: LogPosition[] = [];
        let slow = 0;
        let internal = 0;
        await Promise.all(
          Array.from({ length: 6 }, async (_, w) => {
            for (let t = 0; t < 25; t++) {
              const events = Array.from({ length: 1 + ((w + t) % 3) }, (_, i) => added(t * 10 + i));
              if (t % 5 === 0) {
                events.push({ eventType: INTERNAL, data: {} });
                internal++;
              }
              const roll = Math.random();
              const rollback = roll < 0.1;
              const pause = !rollback && roll < 0.3;
              try {
                const result = await env.store.append({ tenantId: 'acme', streamId: `w${w}` }, events, {
                  async beforeCommit() {
                    if (pause) {
                      slow++;
                      await new Promise((resolve) => setTimeout(resolve, 20 + Math.floor(Math.random() * 100)));
                    }
                    if (rollback) throw new Error('roll back on purpose');
                  },
                });
                positions.push(result.position);
                for (const e of events) if (e.eventType === ADDED) committed.add(e.eventId as string);
              } catch (error) {
                if (!rollback) throw error;
                for (const e of events) if (e.eventId !== undefined) rolledBack.add(e.eventId);
              }
            }
          }),
        );
        const head = maxPosition(positions);
        await waitUntil(async () => (await checkpoint(env)).position === fmt(head), 60_000, `the checkpoint to reach ${fmt(head)}`);
        const f = figures(publisher.log, committed, rolledBack);
        console.log(`[${engine}] event log: ${positions.length} appends (${rolledBack.size} rolled-back events, ${slow} slow, ${internal} unpublished internal); ${describeFigures(f)}`);
        expect(rolledBack.size).toBeGreaterThan(0);
        expect(slow).toBeGreaterThan(0);
        expect(f.lost).toBe(0);
        expect(f.ghosts).toBe(0);
        expect(f.duplicates).toBe(0);
        expect(f.orderViolations).toBe(0);
        expect(publisher.log.every((p) => p.topic === 'items.added' && p.key.startsWith('w'))).toBe(true);
        expect((await checkpoint(env)).published).toBe(relay.marked);
        expect(await eventLogRelayStats(env.db, { schema: env.schema })).toEqual({ pending: 0, oldestPendingAgeMs: 0 });
      } finally {
        await relay.stop();
        await env.close();
      }
    });

    it('stats, a key function, a failing broker that comes back, and a crash before the checkpoint moves', async () => {
      const env = await open('elb');
      const publisher = new RecordingPublisher();
      const { ids: first, head } = await appendRounds(env, 3, 4);
      await new Promise((resolve) => setTimeout(resolve, 60));
      const stats = await eventLogRelayStats(env.db, { schema: env.schema });
      expect(stats.pending).toBe(12);
      expect(stats.oldestPendingAgeMs).toBeGreaterThanOrEqual(50);
      publisher.failWith = new Error('broker down');
      const crash = crashAfterFirstPublish();
      const relay = createEventLogRelay({
        db: env.db, store: env.store, publisher, schema: env.schema, topic: topicOf, key: (e) => `k-${e.streamId}`, batchSize: 5,
        retryBaseMs: 5, retryMaxMs: 30, leaseRetryMs: 20, onError: quiet(), afterPublish: crash.afterPublish,
      });
      try {
        await waitUntil(() => publisher.failures >= 4, 10_000, 'four failed publishes');
        expect((await checkpoint(env)).position).toBe('0/0');
        expect((await relay.stats()).pending).toBe(12);
        publisher.failWith = null;
        await waitUntil(async () => (await checkpoint(env)).position === fmt(head), 20_000, 'the checkpoint to reach the head');
        const more = await appendRounds(env, 3, 2, 5);
        await waitUntil(async () => (await checkpoint(env)).position === fmt(more.head), 20_000, 'the new events');
        const f = figures(publisher.log, new Set([...first, ...more.ids]));
        console.log(`[${engine}] event log failures: ${publisher.failures} failed publishes, crash batch ${crash.ids.length} republished; ${describeFigures(f)}`);
        expect(crash.ids).toHaveLength(5);
        expect(crash.ids.every((id) => publisher.counts().get(id) === 2)).toBe(true);
        expect(f.duplicates).toBe(5);
        expect(f.lost).toBe(0);
        expect(f.orderViolations).toBe(0);
        expect(new Set(publisher.log.map((p) => p.key))).toEqual(new Set(['k-s0', 'k-s1', 'k-s2']));
        expect(await relay.stats()).toEqual({ pending: 0, oldestPendingAgeMs: 0 });
      } finally {
        await relay.stop();
        await env.close();
      }
    });

    it('fencing: a paused holder that lost its lease cannot move the checkpoint', async () => {
      const env = await open('elc');
      const publisher = new RecordingPublisher();
      const { ids, head } = await appendRounds(env, 4, 5);
      const pause = pauseAfterFirstPublish();
      const aReports: unknown[] = [];
      const a = createEventLogRelay({
        db: env.db, store: env.store, publisher, schema: env.schema, topic: topicOf, batchSize: 6, leaseTtlMs: 60_000, holder: 'log-a',
        onError: (e) => aReports.push(e), afterPublish: pause.afterPublish,
      });
      let b: Relay | null = null;
      try {
        await pause.reached;
        await expireLease(env, LEASE);
        b = createEventLogRelay({ db: env.db, store: env.store, publisher, schema: env.schema, topic: topicOf, batchSize: 6, leaseRetryMs: 20, holder: 'log-b', onError: quiet() });
        await waitUntil(async () => (await checkpoint(env)).position === fmt(head), 20_000, 'B to move the checkpoint to the head');
        const bFence = (await readLease(env.db, { schema: env.schema, name: LEASE }))?.fence;
        pause.resume();
        await waitUntil(() => aReports.some(isLeaseLostError), 10_000, 'A to report its lost lease');
        const f = figures(publisher.log, new Set(ids));
        console.log(`[${engine}] event log fencing: A published ${pause.ids.length} then paused; B moved ${b.marked}; ${describeFigures(f)}`);
        expect(a.marked).toBe(0);
        expect(b.marked).toBe(ids.length);
        expect(await checkpoint(env)).toEqual({ position: fmt(head), fence: bFence, published: ids.length });
        // A's paused batch is published twice; A may publish at most one more batch (already read
        // ahead, its mark still in flight) before it learns it lost the lease. Never more.
        expect(f.duplicates).toBeGreaterThanOrEqual(pause.ids.length);
        expect(f.duplicates).toBeLessThanOrEqual(pause.ids.length + 6);
        expect(f.lost).toBe(0);
        expect(f.orderViolations).toBe(0);
      } finally {
        pause.resume();
        await Promise.all([a.stop(), b?.stop()]);
        await env.close();
      }
    });

    it('throughput figure (log only): a backlog of the log relayed to the in-memory broker', async () => {
      const env = await open('eld');
      const total = engine === 'pglite' ? 4_000 : 20_000;
      try {
        for (let b = 0; b < total / 100; b++) {
          await env.store.append({ tenantId: 'acme', streamId: `s${b % 50}` }, Array.from({ length: 100 }, (_, i) => added(b * 100 + i)));
        }
        const publisher = new InMemoryBroker().createPublisher();
        const started = Date.now();
        const relay = createEventLogRelay({ db: env.db, store: env.store, publisher, schema: env.schema, topic: topicOf, batchSize: 500, onError: quiet() });
        try {
          await waitUntil(() => relay.marked === total, 120_000, `${total} events relayed`);
        } finally {
          await relay.stop();
        }
        const ms = Date.now() - started;
        console.log(`[${engine}] event-log relay throughput: ${total} events in ${ms} ms = ${Math.round((total / ms) * 1000)} events/s`);
        expect((await eventLogRelayStats(env.db, { schema: env.schema })).pending).toBe(0);
      } finally {
        await env.close();
      }
    });
  });
}

relayTests('pglite');
if (await postgresAvailable()) relayTests('postgres');
else skipBecauseNoServer('event-log relay on PostgreSQL');
