import { keyedMessages, uniqueTopic, waitFor } from '@causeway/conformance';
import { createPgDatabase, migrate, PostgresPublisher, PostgresSubscriber, type SqlDatabase } from '@causeway/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropSchema, PG_URL, postgresAvailable, skipBecauseNoServer, uniqueSchema } from './support.js';

/**
 * The gap test (anchors §2.3 item 17): publishers commit out of id order, some only after a
 * pause, some roll back. A reader taking "id > last seen" would skip every late commit; the
 * group's gap-safe admission must deliver each committed message exactly once and nothing that
 * was rolled back.
 */
const PUBLISHERS = 8;
const TRANSACTIONS_EACH = 40;

if (await postgresAvailable()) {
  describe('broker gap safety on the server', () => {
    const schema = uniqueSchema('bgap');
    let db: SqlDatabase;
    beforeAll(async () => {
      db = createPgDatabase({ connectionString: PG_URL, maxConnections: 14 });
      await migrate(db, { schema });
    });
    afterAll(async () => {
      await db.close();
      await dropSchema(schema);
    });

    it('delivers every committed message exactly once and no rolled-back one, under late and aborted commits', async () => {
      const topic = uniqueTopic('gap');
      const subscriber = new PostgresSubscriber({ db, schema });
      const seen = new Map<string, number>();
      const arrival: number[] = [];
      await subscriber.subscribe(topic, { group: 'gap', concurrency: 16 }, (d) => {
        const id = d.kind === 'event' ? d.event.eventId : `undecodable:${d.brokerId}`;
        seen.set(id, (seen.get(id) ?? 0) + 1);
        arrival.push(Number(d.brokerId));
      });
      const publisher = new PostgresPublisher({ db, schema });
      const committed: string[] = [];
      const rolledBack: string[] = [];
      let slow = 0;
      const run = async (p: number): Promise<void> => {
        for (let t = 0; t < TRANSACTIONS_EACH; t++) {
          const batch = keyedMessages(1 + ((p + t) % 3), 4, `p${p}-`);
          const ids = batch.map((m) => m.event.eventId);
          const roll = Math.random();
          const rollback = roll < 0.1;
          const pause = !rollback && roll < 0.3;
          try {
            await db.transaction(async (tx) => {
              await publisher.publishInTransaction(tx, topic, batch);
              // The late committer: its rows hold ids below those of commits made meanwhile.
              if (pause) {
                slow++;
                await new Promise((r) => setTimeout(r, 20 + Math.floor(Math.random() * 120)));
              }
              if (rollback) throw new Error('roll back on purpose');
            });
            committed.push(...ids);
          } catch (error) {
            if (!rollback) throw error;
            rolledBack.push(...ids);
          }
        }
      };
      const started = Date.now();
      await Promise.all(Array.from({ length: PUBLISHERS }, (_, p) => run(p)));
      await waitFor(() => committed.every((id) => seen.has(id)), 60_000, `all ${committed.length} committed messages`);
      // Let anything that should not come (a duplicate, a rolled-back row) show up.
      await new Promise((r) => setTimeout(r, 500));
      await subscriber.close();
      await publisher.close();
      // The group's bookkeeping agrees: every committed row admitted once, nothing left queued or
      // leased (a key whose head was lost to an admission/ack race would leave rows behind).
      const { rows: group } = await db.query<{ admitted: string; queued: string }>(
        `SELECT g.admitted::text AS admitted, ((SELECT count(*) FROM "${schema}".broker_deliveries d WHERE d.group_id = g.id)
           + (SELECT count(*) FROM "${schema}".broker_leases l WHERE l.group_id = g.id))::text AS queued
         FROM "${schema}".broker_groups g WHERE g.topic = $1 AND g.group_name = 'gap'`,
        [topic],
      );

      const committedSet = new Set(committed);
      const duplicates = [...seen.values()].reduce((n, c) => n + c - 1, 0);
      const lost = committed.filter((id) => !seen.has(id)).length;
      const ghosts = rolledBack.filter((id) => seen.has(id)).length;
      const unexpected = [...seen.keys()].filter((id) => !committedSet.has(id)).length;
      let maxId = 0;
      let overtaken = 0; // rows delivered after a higher id: an "id > last seen" reader could have skipped them
      for (const id of arrival) {
        if (id < maxId) overtaken++;
        maxId = Math.max(maxId, id);
      }
      console.info(
        `[postgres gap] publishers=${PUBLISHERS} transactions=${PUBLISHERS * TRANSACTIONS_EACH} slow commits=${slow} ` +
          `committed=${committed.length} rolled back=${rolledBack.length} delivered=${arrival.length} ` +
          `delivered after a higher id=${overtaken} duplicates=${duplicates} lost=${lost} ` +
          `rolled back delivered=${ghosts} unexpected=${unexpected} admitted=${group[0]?.admitted} left queued=${group[0]?.queued} in ${Date.now() - started} ms`,
      );
      expect(Number(group[0]?.admitted)).toBe(committed.length);
      expect(Number(group[0]?.queued)).toBe(0);
      expect(lost).toBe(0);
      expect(duplicates).toBe(0);
      expect(ghosts).toBe(0);
      expect(unexpected).toBe(0);
      expect(rolledBack.length).toBeGreaterThan(0);
      expect(overtaken, 'the workload produced out-of-order commits').toBeGreaterThan(0);
    }, 120_000);

    it('under contention (8 topics x 2 groups x 2 consumers) no message comes back without a nack', async () => {
      // The lease is long, so an extra delivery could only come from a failed ack (a deadlock
      // between an ack batch and an admission was one) or a claim handing out a row twice.
      const subscribers: PostgresSubscriber[] = [];
      const publisher = new PostgresPublisher({ db, schema });
      const extras: string[] = [];
      let received = 0;
      await Promise.all(Array.from({ length: 8 }, async (_, f) => {
        const topic = uniqueTopic(`contend${f}`);
        const messages = keyedMessages(400, 40, `t${f}-`);
        const index = new Map(messages.map((m, i) => [m.event.eventId, i]));
        const seen = new Map<string, number[]>();
        const acked = [new Set<string>(), new Set<string>()];
        for (const g of [0, 1]) {
          for (let c = 0; c < 2; c++) {
            const sub = new PostgresSubscriber({ db, schema, ackTimeoutMs: 60_000 });
            subscribers.push(sub);
            await sub.subscribe(topic, { group: `g${g}`, concurrency: 8 }, async (d) => {
              if (d.kind !== 'event') return;
              received++;
              const k = `${g}:${d.event.eventId}`;
              seen.set(k, [...(seen.get(k) ?? []), d.attempt]);
              if (d.attempt === 1 && (index.get(d.event.eventId) ?? 0) % 20 === 7) return d.nack();
              await d.ack();
              acked[g]?.add(d.event.eventId);
            });
          }
        }
        for (let i = 0; i < messages.length; i += 25) await publisher.publish(topic, messages.slice(i, i + 25));
        await waitFor(() => acked.every((a) => a.size === messages.length), 60_000, `both groups of ${topic} to ack 400`);
        for (const [k, attempts] of seen) {
          const nacked = (index.get(k.slice(2)) ?? 0) % 20 === 7;
          if (attempts.join() !== (nacked ? '1,2' : '1')) extras.push(`${topic} ${k}: attempts ${attempts.join(',')}`);
        }
      }));
      await Promise.all(subscribers.map((s) => s.close()));
      await publisher.close();
      console.info(`[postgres contention] topics=8 groups=2 consumers/group=2 received=${received} expected=${8 * 2 * 420} unexpected redeliveries=${extras.length}`);
      expect(extras.slice(0, 5)).toEqual([]);
      expect(received).toBe(8 * 2 * 420);
    }, 120_000);
  });
} else {
  skipBecauseNoServer('the broker gap test on PostgreSQL');
}
