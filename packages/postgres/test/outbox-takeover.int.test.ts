import { isLeaseLostError } from '@causeway/core';
import { PostgresOutbox, createOutboxRelay, readLease, type Relay } from '@causeway/postgres';
import { describe, expect, it } from 'vitest';
import {
  RecordingPublisher,
  crashAfterFirstPublish,
  describeFigures,
  expireLease,
  figures,
  pauseAfterFirstPublish,
  openRelayEnv,
  outboxCounts,
  testMessage,
  waitUntil,
  type RelayEnv,
} from './fixtures/relay-support.js';
import { postgresAvailable, skipBecauseNoServer } from './support.js';

/**
 * One active relay per outbox: crash between publish and mark (republished with the same ids),
 * fencing of a paused holder that lost its lease, and a standby taking over from a stopped holder.
 */
const LEASE = 'relay:outbox:default';

async function addBatches(env: RelayEnv, outbox: PostgresOutbox, committed: Set<string>, keys: number, rounds: number, from = 1): Promise<void> {
  for (let r = from; r < from + rounds; r++) {
    const messages = Array.from({ length: keys }, (_, k) => testMessage(`k${k}`, r));
    await env.db.transaction((tx) => outbox.add(tx, 'takeover.test', messages));
    for (const m of messages) committed.add(m.event.eventId);
  }
}

function takeoverTests(engine: 'pglite' | 'postgres'): void {
  describe(`outbox relay takeover on ${engine}`, () => {
    it('a crash between publish and mark: the same rows are published again with the same ids', async () => {
      const env = await openRelayEnv(engine, 'otc');
      const publisher = new RecordingPublisher();
      const outbox = new PostgresOutbox({ schema: env.schema });
      const committed = new Set<string>();
      await addBatches(env, outbox, committed, 5, 4);
      const reports: unknown[] = [];
      const crash = crashAfterFirstPublish();
      const relay = createOutboxRelay({
        db: env.db, publisher, schema: env.schema, batchSize: 8, leaseRetryMs: 20, retryBaseMs: 5, onError: (e) => reports.push(e), afterPublish: crash.afterPublish,
      });
      try {
        await waitUntil(async () => (await outboxCounts(env)).pending === 0, 20_000, 'every row sent after the crash');
        const f = figures(publisher.log, committed);
        const counts = publisher.counts();
        console.log(`[${engine}] crash before mark: batch of ${crash.ids.length} republished; ${describeFigures(f)}`);
        expect(crash.ids).toHaveLength(8);
        expect(crash.ids.every((id) => counts.get(id) === 2)).toBe(true);
        expect(f.duplicates).toBe(8);
        expect(f.lost).toBe(0);
        expect(f.orderViolations).toBe(0);
        expect(relay.marked).toBe(committed.size);
        expect(reports).toContainEqual(expect.objectContaining({ message: 'crash after publish' }));
      } finally {
        await relay.stop();
        await env.close();
      }
    });

    it('fencing: a paused holder that lost its lease cannot mark; the new holder publishes everything', async () => {
      const env = await openRelayEnv(engine, 'otf');
      const publisher = new RecordingPublisher();
      const outbox = new PostgresOutbox({ schema: env.schema });
      const committed = new Set<string>();
      await addBatches(env, outbox, committed, 4, 5);
      const pause = pauseAfterFirstPublish();
      const aReports: unknown[] = [];
      // A: a long ttl, so its heartbeat cannot renew the row we expire below.
      const a = createOutboxRelay({
        db: env.db, publisher, schema: env.schema, batchSize: 6, leaseTtlMs: 60_000, holder: 'relay-a', onError: (e) => aReports.push(e),
        afterPublish: pause.afterPublish,
      });
      let b: Relay | null = null;
      try {
        await pause.reached;
        const aFence = (await readLease(env.db, { schema: env.schema, name: LEASE }))?.fence;
        await expireLease(env, LEASE);
        b = createOutboxRelay({ db: env.db, publisher, schema: env.schema, batchSize: 6, leaseRetryMs: 20, holder: 'relay-b', onError: () => undefined });
        const relayB = b;
        await waitUntil(async () => (await outboxCounts(env)).pending === 0, 20_000, 'B to relay everything while A is paused');
        const held = await readLease(env.db, { schema: env.schema, name: LEASE });
        expect(held?.holder).toBe('relay-b');
        expect(BigInt(held?.fence ?? 0)).toBeGreaterThan(BigInt(aFence ?? 0));
        pause.resume();
        await waitUntil(() => aReports.some(isLeaseLostError), 10_000, 'A to report its lost lease');
        const f = figures(publisher.log, committed);
        const counts = publisher.counts();
        console.log(`[${engine}] fencing: A published ${pause.ids.length} then paused; B marked ${relayB.marked}, A marked ${a.marked}; ${describeFigures(f)}`);
        expect(a.marked).toBe(0);
        expect(relayB.marked).toBe(committed.size);
        expect(a.published).toBe(pause.ids.length);
        expect(pause.ids.every((id) => counts.get(id) === 2)).toBe(true);
        expect(f.duplicates).toBe(pause.ids.length);
        expect(f.lost).toBe(0);
        expect(f.orderViolations).toBe(0);
        expect(await outboxCounts(env)).toEqual({ pending: 0, sent: committed.size });
        expect(a.active).toBe(false);
      } finally {
        pause.resume();
        await Promise.all([a.stop(), b?.stop()]);
        await env.close();
      }
    });

    it('a standby takes over when the holder stops, with no message twice', async () => {
      const env = await openRelayEnv(engine, 'ots');
      const publisher = new RecordingPublisher();
      const outbox = new PostgresOutbox({ schema: env.schema });
      const committed = new Set<string>();
      const relays = [0, 1].map((i) =>
        createOutboxRelay({ db: env.db, publisher, schema: env.schema, batchSize: 5, leaseRetryMs: 20, holder: `relay-${i}`, onError: () => undefined }),
      );
      try {
        await waitUntil(() => relays.some((r) => r.active), 10_000, 'one relay to take the lease');
        const first = relays.find((r) => r.active) as Relay;
        const standby = relays.find((r) => r !== first) as Relay;
        expect(standby.active).toBe(false);
        await addBatches(env, outbox, committed, 3, 4);
        await waitUntil(() => first.marked === 12, 10_000, 'the holder to relay the first rows');
        await first.stop();
        await waitUntil(() => standby.active, 10_000, 'the standby to take over');
        await addBatches(env, outbox, committed, 3, 4, 5);
        await waitUntil(() => standby.marked === 12, 10_000, 'the standby to relay the rest');
        const f = figures(publisher.log, committed);
        console.log(`[${engine}] standby takeover: first marked ${first.marked}, standby ${standby.marked}; ${describeFigures(f)}`);
        expect(f.lost).toBe(0);
        expect(f.duplicates).toBe(0);
        expect(f.orderViolations).toBe(0);
        expect((await readLease(env.db, { schema: env.schema, name: LEASE }))?.holder).toBe(standby === relays[0] ? 'relay-0' : 'relay-1');
      } finally {
        await Promise.all(relays.map((r) => r.stop()));
        await env.close();
      }
    });
  });
}

takeoverTests('pglite');
if (await postgresAvailable()) takeoverTests('postgres');
else skipBecauseNoServer('outbox relay takeover on PostgreSQL');
