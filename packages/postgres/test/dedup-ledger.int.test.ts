import { waitFor } from '@causeway/conformance';
import { deduplicate, InMemoryBroker, uuidv7, type DedupKey } from '@causeway/core';
import { PostgresDedupLedger, type SqlExecutor } from '@causeway/postgres';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { applyEffectSql, createEffects, onEveryEngine, readEffects, testMessage, type ConsumerEnv } from './consumer-env.js';
import { PG_URL } from './support.js';

/**
 * The inbox ledger: the key and the handler's writes commit in one transaction; a duplicate is
 * recognised by SQLSTATE 23505 (or, batched, by ON CONFLICT DO NOTHING) and the handler does not
 * run. Effects go to a table counting applications per event, so "exactly once" is checked on
 * what committed, not on what the handler was called with.
 */
const key = (eventId: string, consumer = 'billing', tenantId = 't1'): DedupKey => ({ consumer, tenantId, eventId });

async function ledgerRows(env: ConsumerEnv): Promise<string[]> {
  const { rows } = await env.db.query<{ k: string }>(`SELECT consumer || '/' || tenant_id || '/' || event_id::text AS k FROM ${env.s}.inbox ORDER BY 1`);
  return rows.map((r) => r.k);
}

const effect = (env: ConsumerEnv, id: string, n = 0) => (tx: SqlExecutor) => tx.query(applyEffectSql(env), [id, 'k', n]).then(() => undefined);

await onEveryEngine('dedup ledger', (engine, open) => {
  describe(`PostgresDedupLedger on ${engine}`, () => {
    it('runs the work once; a second delivery, sequential or concurrent, is a duplicate', async () => {
      const env = await open('ddl1');
      try {
        await createEffects(env);
        const ledger = new PostgresDedupLedger({ db: env.db, schema: env.schema });
        const a = uuidv7();
        expect(await ledger.once(key(a), effect(env, a))).toEqual({ duplicate: false });
        expect(await ledger.once(key(a), effect(env, a))).toEqual({ duplicate: true });
        // Same event id, other consumer or other tenant: a different key.
        expect(await ledger.once(key(a, 'shipping'), async () => undefined)).toEqual({ duplicate: false });
        expect(await ledger.once(key(a, 'billing', 't2'), async () => undefined)).toEqual({ duplicate: false });

        const b = uuidv7();
        let ran = 0;
        const outcomes = await Promise.all(
          Array.from({ length: 12 }, () =>
            ledger.once(key(b), async (tx) => {
              ran++;
              await effect(env, b)(tx);
            }),
          ),
        );
        expect(outcomes.filter((o) => !o.duplicate)).toHaveLength(1);
        expect(ran).toBe(1);
        const effects = await readEffects(env);
        expect(effects.ids.sort()).toEqual([a, b].sort());
        expect(effects.maxTimes).toBe(1);
        expect(await ledgerRows(env)).toEqual([`billing/t1/${a}`, `billing/t1/${b}`, `billing/t2/${a}`, `shipping/t1/${a}`].sort());
      } finally {
        await env.close();
      }
    });

    it('work that throws rolls the key back with it: the error is the handler\'s own, and the next delivery runs', async () => {
      const env = await open('ddl2');
      try {
        await createEffects(env);
        const ledger = new PostgresDedupLedger({ db: env.db, schema: env.schema });
        const id = uuidv7();
        class ProductMissing extends Error {}
        const thrown = new ProductMissing('no such product');
        const failed = await ledger
          .once(key(id), async (tx) => {
            await effect(env, id)(tx);
            throw thrown;
          })
          .catch((e: unknown) => e);
        expect(failed).toBe(thrown);
        expect(await ledgerRows(env)).toEqual([]);
        expect((await readEffects(env)).ids).toEqual([]);
        // A unique violation inside the work is the work's failure, not a duplicate.
        await env.db.query(`INSERT INTO ${env.s}.effects (event_id, key, n) VALUES ($1, 'k', 0)`, [id]);
        const clash = await ledger.once(key(id), (tx) => tx.query(`INSERT INTO ${env.s}.effects (event_id, key, n) VALUES ($1, 'k', 1)`, [id]).then(() => undefined)).catch((e: unknown) => e);
        expect(clash).toMatchObject({ code: '23505' });
        expect(await ledgerRows(env)).toEqual([]);
        await env.db.query(`DELETE FROM ${env.s}.effects`);
        expect(await ledger.once(key(id), effect(env, id))).toEqual({ duplicate: false });
        expect((await readEffects(env)).ids).toEqual([id]);
        await expect(ledger.once(key('not-a-uuid'), async () => undefined)).rejects.toMatchObject({ code: 'SCHEMA_INVALID' });
      } finally {
        await env.close();
      }
    });

    it('batched: overlapping calls share transactions, a throwing item fails alone, every other effect commits once', async () => {
      const env = await open('ddl3');
      try {
        await createEffects(env);
        const ledger = new PostgresDedupLedger({ db: env.db, schema: env.schema, batchSize: 16, maxInFlight: 1 });
        const ids = Array.from({ length: 48 }, () => uuidv7());
        const poison = ids[20] as string;
        const calls: string[] = [...ids, ...ids.slice(0, 12)]; // 12 duplicates in the same burst
        const transactions = new Set<SqlExecutor>();
        let workRuns = 0;
        const results = await Promise.all(
          calls.map((id, i) =>
            ledger
              .once(key(id), async (tx) => {
                transactions.add(tx);
                workRuns++;
                await effect(env, id, i)(tx);
                if (id === poison) throw new Error('poisoned item');
              })
              .then((o) => ({ id, duplicate: o.duplicate }), (e: unknown) => ({ id, error: (e as Error).message })),
          ),
        );
        const failures = results.filter((r) => 'error' in r);
        const applied = results.filter((r) => 'duplicate' in r && !r.duplicate).map((r) => r.id);
        const duplicates = results.filter((r) => 'duplicate' in r && r.duplicate).length;
        console.info(
          `[${engine}] batched ledger: ${calls.length} calls, ${transactions.size} transactions, work ran ${workRuns} times, applied ${applied.length}, duplicates ${duplicates}, failed ${failures.length}`,
        );
        expect(failures).toEqual([{ id: poison, error: 'poisoned item' }]);
        expect(applied.sort()).toEqual(ids.filter((id) => id !== poison).sort());
        expect(duplicates).toBe(12);
        expect(transactions.size).toBeLessThan(calls.length); // batching happened
        expect(workRuns).toBeGreaterThan(applied.length + 1); // the poisoned batch ran and was rolled back
        const effects = await readEffects(env);
        expect(effects.ids.sort()).toEqual(ids.filter((id) => id !== poison).sort());
        expect(effects.maxTimes).toBe(1);
        expect((await ledgerRows(env)).length).toBe(ids.length - 1);
        // The poisoned event comes back fixed: applied once.
        expect(await ledger.once(key(poison), effect(env, poison))).toEqual({ duplicate: false });
        expect((await readEffects(env)).maxTimes).toBe(1);
      } finally {
        await env.close();
      }
    });

    it('onceInBatch: the fresh items of a transaction go to ONE work call; a throwing batch is retried item by item', async () => {
      const env = await open('ddl5');
      try {
        await createEffects(env);
        const ledger = new PostgresDedupLedger({ db: env.db, schema: env.schema, batchSize: 16, maxInFlight: 1 });
        const ids = Array.from({ length: 48 }, () => uuidv7());
        const poison = ids[30] as string;
        const calls = [...ids, ...ids.slice(0, 10)]; // 10 duplicates in the same burst
        const callSizes: number[] = [];
        // One statement per call, whatever the number of items: what the batch form is for.
        const work = async (tx: SqlExecutor, items: readonly string[]): Promise<void> => {
          callSizes.push(items.length);
          await tx.query(
            `INSERT INTO ${env.s}.effects AS x (event_id, key, n) SELECT e, 'k', 0 FROM unnest($1::uuid[]) AS e
             ON CONFLICT (event_id) DO UPDATE SET times = x.times + 1`,
            [items],
          );
          if (items.includes(poison)) throw new Error('poisoned item');
        };
        const results = await Promise.all(
          calls.map((id) =>
            ledger.onceInBatch(key(id), id, work).then((o) => ({ id, duplicate: o.duplicate }), (e: unknown) => ({ id, error: (e as Error).message })),
          ),
        );
        console.info(`[${engine}] onceInBatch: ${calls.length} calls, work calls of sizes ${callSizes.join(',')}`);
        expect(results.filter((r) => 'error' in r)).toEqual([{ id: poison, error: 'poisoned item' }]);
        expect(results.filter((r) => 'duplicate' in r && r.duplicate)).toHaveLength(10);
        expect(Math.max(...callSizes)).toBeGreaterThan(1); // items shared a call
        const effects = await readEffects(env);
        expect(effects.ids.sort()).toEqual(ids.filter((id) => id !== poison).sort());
        expect(effects.maxTimes).toBe(1);
        expect(await ledgerRows(env)).toHaveLength(ids.length - 1);
      } finally {
        await env.close();
      }
    });

    it('a consumer with the ledger on a broker: every event applied once under duplicates; events/s logged', async () => {
      const env = await open('ddl4');
      try {
        const rates: string[] = [];
        // Unbatched is the slow baseline (one commit per event): fewer events keep the test short.
        const runs: Array<[batchSize: number, events: number]> = engine === 'postgres' ? [[1, 2_000], [64, 10_000]] : [[1, 1_000], [64, 3_000]];
        for (const [batchSize, N] of runs) {
          const table = `effects_${batchSize}`;
          await createEffects(env, table);
          const ledger = new PostgresDedupLedger({ db: env.db, schema: env.schema, batchSize, maxInFlight: Math.min(4, env.db.maxConcurrency) });
          const broker = new InMemoryBroker({ ackTimeoutMs: 120_000 });
          const messages = Array.from({ length: N }, (_, i) => testMessage(i, `k${i % 200}`));
          const publisher = broker.createPublisher();
          for (let i = 0; i < N; i += 1_000) await publisher.publish('orders', messages.slice(i, i + 1_000));
          await publisher.publish('orders', messages.slice(0, N / 10)); // 10% duplicates
          let handled = 0;
          let duplicates = 0;
          const sql = applyEffectSql(env, table);
          const handler = deduplicate(ledger, { consumer: `c${batchSize}`, onDuplicate: () => duplicates++ }, async (d, tx) => {
            await tx.query(sql, [d.event.eventId, d.key, (d.event.data as { n: number }).n], `${env.schema}.${table}`);
            handled++;
          });
          const started = performance.now();
          const subscriber = broker.createSubscriber();
          await subscriber.subscribe('orders', { group: `g${batchSize}`, startFrom: 'earliest', concurrency: 256 }, handler);
          const deliveries = N + N / 10;
          await waitFor(() => handled + duplicates >= deliveries, 200_000, `${deliveries} deliveries handled`);
          const seconds = (performance.now() - started) / 1000;
          await subscriber.close();
          const rate = Math.round(deliveries / seconds);
          rates.push(`batchSize ${batchSize}, ${N} events: ${rate} deliveries/s (${Math.round(N / seconds)} applied/s)`);
          const effects = await readEffects(env, table);
          expect(effects.ids.length).toBe(N);
          expect(effects.maxTimes).toBe(1);
          expect(duplicates).toBe(N / 10);
        }
        console.info(`[${engine}] consumer with dedup ledger, +10% duplicates, concurrency 256, one INSERT per handler: ${rates.join('; ')}`);
      } finally {
        await env.close();
      }
    }, 240_000); // a throughput log on a shared machine: the time limit is generous, the assertions are on effects

    it('retention: refuses a window shorter than the retry horizon, naming both', async () => {
      const env = await open('ddl5');
      try {
        expect(() => new PostgresDedupLedger({ db: env.db, schema: env.schema, retentionMs: 60_000 })).toThrow(
          /retention window of 60000 ms is shorter than the retry horizon of 127000 ms/,
        );
        expect(() => new PostgresDedupLedger({ db: env.db, schema: env.schema, retentionMs: 60_000, retryPolicy: { maxAttempts: 6, baseDelayMs: 10_000 } })).toThrow(
          /retention window of 60000 ms is shorter than the retry horizon of 70000 ms/,
        );
        const ok = new PostgresDedupLedger({ db: env.db, schema: env.schema, retentionMs: 60_000, retryPolicy: { immediate: 3, maxAttempts: 5, baseDelayMs: 1_000 } });
        expect(ok.retentionMs).toBe(60_000);
        expect(new PostgresDedupLedger({ db: env.db, schema: env.schema }).retentionMs).toBe(7 * 24 * 3600 * 1000);
      } finally {
        await env.close();
      }
    });

    it('cleanup deletes only keys past their window, in small batches; an expired key no longer dedups', async () => {
      const env = await open('ddl6');
      try {
        const ledger = new PostgresDedupLedger({ db: env.db, schema: env.schema });
        const ids = Array.from({ length: 30 }, () => uuidv7());
        for (const id of ids) await ledger.once(key(id), async () => undefined);
        const old = ids.slice(0, 20);
        // Age 20 keys past their window (as if written 8 days ago).
        await env.db.query(`UPDATE ${env.s}.inbox SET expires_at = now() - interval '1 day' WHERE event_id = ANY ($1::uuid[])`, [old]);
        expect(await ledger.cleanup({ batchSize: 7, maxBatches: 2 })).toBe(14);
        expect(await ledger.cleanup({ batchSize: 7 })).toBe(6);
        expect(await ledger.cleanup({ batchSize: 7 })).toBe(0);
        expect(await ledgerRows(env)).toEqual(ids.slice(20).map((id) => `billing/t1/${id}`).sort());
        expect(await ledger.once(key(ids[25] as string), async () => undefined)).toEqual({ duplicate: true });
        expect(await ledger.once(key(ids[5] as string), async () => undefined)).toEqual({ duplicate: false });
      } finally {
        await env.close();
      }
    });

    if (engine === 'postgres') {
      it('cleanup never waits on a handler\'s locked row: it skips it and takes it on the next run', async () => {
        const env = await open('ddl7');
        const holder = new pg.Client({ connectionString: PG_URL });
        await holder.connect();
        try {
          const ledger = new PostgresDedupLedger({ db: env.db, schema: env.schema });
          const ids = Array.from({ length: 10 }, () => uuidv7());
          for (const id of ids) await ledger.once(key(id), async () => undefined);
          await env.db.query(`UPDATE ${env.s}.inbox SET expires_at = now() - interval '1 day'`);
          await holder.query('BEGIN');
          await holder.query(`SELECT 1 FROM ${env.s}.inbox WHERE event_id = $1 FOR UPDATE`, [ids[3]]);
          // If cleanup waited on the lock, this would hang until the test times out.
          expect(await ledger.cleanup({ batchSize: 4 })).toBe(9);
          await holder.query('ROLLBACK');
          expect(await ledger.cleanup()).toBe(1);
          expect(await ledgerRows(env)).toEqual([]);
        } finally {
          await holder.end();
          await env.close();
        }
      });
    }
  });
});
