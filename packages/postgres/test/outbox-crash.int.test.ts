import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { PostgresOutbox, outboxStats } from '@causeway/postgres';
import { describe, expect, it } from 'vitest';
import { describeFigures, figures, openRelayEnv, testMessage, waitUntil, type Published } from './fixtures/relay-support.js';
import { PG_URL, postgresAvailable, skipBecauseNoServer } from './support.js';

/**
 * kill -9 of the relay process while writers keep adding: two relay processes (one holding the
 * lease, one standing by), the holder killed at random moments after it took over, a fresh standby
 * started each time. Every committed message must reach the "broker" (a plain table the child
 * publishes to, without dedup, so duplicates are visible), in per-key order.
 */
const FIXTURE = fileURLToPath(new URL('./fixtures/relay-main.ts', import.meta.url));

interface Child {
  readonly process: ChildProcess;
  readonly active: Promise<void>;
  readonly exited: Promise<void>;
}

function startRelay(schema: string): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, schema, '40'], {
    env: { ...process.env, CAUSEWAY_PG_URL: PG_URL },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr?.resume();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const active = new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('active')) resolve();
    });
    void exited.then(() => reject(new Error('relay child exited before taking the lease')));
  });
  active.catch(() => undefined);
  return { process: child, active, exited };
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

if (await postgresAvailable()) {
  describe('outbox relay under kill -9', () => {
    it('every committed message is published at least once, in per-key order, across relay crashes', async () => {
      const env = await openRelayEnv('postgres', 'okill');
      const s = `"${env.schema}"`;
      await env.db.query(`CREATE TABLE ${s}.relay_received (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, topic text NOT NULL, key text NOT NULL, event_id uuid NOT NULL, n integer NOT NULL, pid integer NOT NULL)`);
      const outbox = new PostgresOutbox({ schema: env.schema });
      const children = new Set<Child>();
      const spawnOne = (): Child => {
        const c = startRelay(env.schema);
        children.add(c);
        void c.exited.then(() => children.delete(c));
        return c;
      };
      const committed = new Set<string>();
      let writing = true;
      let kills = 0;
      try {
        spawnOne();
        spawnOne();
        const WRITERS = 4;
        const KEYS_PER_WRITER = 50;
        const TRANSACTIONS = 150;
        const writers = Promise.all(
          Array.from({ length: WRITERS }, async (_, w) => {
            const next = new Map<string, number>();
            for (let t = 0; t < TRANSACTIONS; t++) {
              const messages = Array.from({ length: 1 + (t % 5) }, (_, i) => {
                const key = `w${w}-k${(t * 7 + i) % KEYS_PER_WRITER}`;
                const n = (next.get(key) ?? 0) + 1;
                next.set(key, n);
                return testMessage(key, n);
              });
              await env.db.transaction((tx) => outbox.add(tx, 'crash.test', messages));
              for (const m of messages) committed.add(m.event.eventId);
              await pause(15);
            }
          }),
        ).finally(() => {
          writing = false;
        });
        // Kill whichever child holds the lease, shortly after it took it, while the writers run.
        while (writing || kills < 6) {
          const holders = [...children];
          const holder = await Promise.any(holders.map((c) => c.active.then(() => c)));
          await pause(150 + Math.floor(Math.random() * 450));
          holder.process.kill('SIGKILL');
          kills++;
          await holder.exited;
          spawnOne();
        }
        await writers;
        await waitUntil(async () => (await outboxStats(env.db, { schema: env.schema })).pending === 0, 60_000, 'the surviving relay to drain the outbox');
        const { rows } = await env.db.query<{ topic: string; key: string; id: string; n: number }>(
          `SELECT topic, key, event_id::text AS id, n FROM ${s}.relay_received ORDER BY seq`,
        );
        const log: Published[] = rows;
        const f = figures(log, committed);
        const pids = new Set((await env.db.query<{ pid: number }>(`SELECT DISTINCT pid FROM ${s}.relay_received`)).rows.map((r) => r.pid));
        console.log(`[postgres] kill -9: ${kills} relay kills, ${pids.size} relay processes published; ${describeFigures(f)}`);
        expect(kills).toBeGreaterThanOrEqual(6);
        expect(pids.size).toBeGreaterThanOrEqual(2);
        expect(f.committed).toBe(WRITERS * TRANSACTIONS * 3);
        expect(f.lost).toBe(0);
        expect(f.ghosts).toBe(0);
        expect(f.orderViolations).toBe(0);
      } finally {
        for (const c of children) c.process.kill('SIGTERM');
        await Promise.all([...children].map((c) => c.exited));
        await env.close();
      }
    }, 180_000);
  });
} else {
  skipBecauseNoServer('outbox relay under kill -9');
}
