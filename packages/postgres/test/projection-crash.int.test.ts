import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { LogPosition } from '@causeway/core';
import { createProjectionRunner, type ProjectionRunner } from '@causeway/postgres';
import { describe, expect, it } from 'vitest';
import {
  added,
  countingProjection,
  counts,
  createCountingTables,
  logCounts,
  openPostgresEnv,
  PG_URL,
  seen,
  storedCheckpoint,
  until,
  type ProjectionEnv,
} from './fixtures/projection-fixtures.js';
import { postgresAvailable, skipBecauseNoServer } from './support.js';

/**
 * A runner in a child process, killed (SIGKILL) or paused (SIGSTOP) in the middle of a batch;
 * a runner in this process takes over. Server only: PGlite is one process's database.
 */
const CHILD = fileURLToPath(new URL('./fixtures/projection-child.ts', import.meta.url));

interface Child {
  readonly process: ChildProcess;
  readonly lines: string[];
  handled(): number;
  exited: Promise<number | null>;
}

function startChild(env: ProjectionEnv, name: string, options: { batchSize: number; ttlMs: number; eventDelayMs: number }): Child {
  const config = { url: PG_URL, schema: env.schema, name, table: name, ...options };
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let buffered = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    lines.push(...parts);
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  void exited.then((code) => {
    if (code !== null && code !== 0) console.error(`child exited ${code}: ${stderr}`);
  });
  return { process: child, lines, handled: () => lines.filter((l) => l.startsWith('handled ')).length, exited };
}

async function backlog(env: ProjectionEnv, events: number): Promise<LogPosition> {
  let head: LogPosition = { tx: 0n, seq: 0n };
  for (let i = 0; i < events; i += 20) {
    head = (await env.store.append({ tenantId: 'crash', streamId: `s-${(i / 20) % 4}` }, Array.from({ length: 20 }, (_, k) => added(i + k)))).position;
  }
  return head;
}

if (await postgresAvailable()) {
  describe('projection runner in a child process', () => {
    it('kill -9 mid-batch: the standby takes over at once and finishes with no double count', async () => {
      const env = await openPostgresEnv('pck');
      let runner: ProjectionRunner | null = null;
      let child: Child | null = null;
      try {
        await createCountingTables(env.db, env.schema, 'killed');
        const head = await backlog(env, 300);
        child = startChild(env, 'killed', { batchSize: 25, ttlMs: 10_000, eventDelayMs: 5 });
        // 30 handled: the first batch of 25 is committed, the second is open with 5 written.
        await until('the child to be inside its second batch', () => (child as Child).handled() >= 30, 30_000);
        child.process.kill('SIGKILL');
        await child.exited;
        const killedAt = Date.now();
        const before = await storedCheckpoint(env.db, env.schema, 'killed', 1);
        const handledByChild = child.handled();
        runner = await createProjectionRunner({
          db: env.db, store: env.store, schema: env.schema, projection: countingProjection(env.schema, 'killed', 1, 'killed'),
          batchSize: 25, lease: { retryMs: 25 },
        });
        await until('the standby to take over', () => (runner as ProjectionRunner).state === 'active');
        const takeoverMs = Date.now() - killedAt; // includes creating the runner (checkpoint load, lease attempt)
        await runner.waitFor(head, 30_000);
        const s = await seen(env.db, env.schema, 'killed');
        const after = await storedCheckpoint(env.db, env.schema, 'killed', 1);
        console.log(
          `[postgres] kill -9: child handled ${handledByChild} events, committed ${before.applied}; takeover ${takeoverMs} ms after the kill ` +
            `(lease ttl 10 s), ${Date.now() - killedAt} ms to finish; restarted runner applied ${runner.applied}; projected ${s.ids.size}, max times ${s.maxTimes}`,
        );
        expect(handledByChild).toBeGreaterThan(before.applied); // killed with a batch open
        expect(before.applied % 25).toBe(0); // only whole batches committed
        expect(before.applied).toBeGreaterThan(0);
        expect(takeoverMs).toBeLessThan(5_000); // well under the lease's 10 s: the advisory lock died with the process
        expect(runner.applied).toBe(300 - before.applied);
        expect(after.applied).toBe(300);
        expect(s.maxTimes).toBe(1);
        expect(s.ids.size).toBe(300);
        expect(await counts(env.db, env.schema, 'killed')).toEqual(await logCounts(env.db, env.schema));
      } finally {
        child?.process.kill('SIGKILL');
        await runner?.stop();
        await env.close();
      }
    });

    it('SIGSTOP mid-batch: a contender takes the lease; the paused holder resumes and cannot commit', async () => {
      const env = await openPostgresEnv('pcs');
      let runner: ProjectionRunner | null = null;
      let child: Child | null = null;
      try {
        await createCountingTables(env.db, env.schema, 'paused');
        const head = await backlog(env, 200);
        child = startChild(env, 'paused', { batchSize: 25, ttlMs: 1_000, eventDelayMs: 10 });
        await until('the child to be inside its second batch', () => (child as Child).handled() >= 30, 30_000);
        child.process.kill('SIGSTOP');
        const handledWhenPaused = child.handled();
        const committedWhenPaused = (await storedCheckpoint(env.db, env.schema, 'paused', 1)).applied;
        runner = await createProjectionRunner({
          db: env.db, store: env.store, schema: env.schema, projection: countingProjection(env.schema, 'paused', 1, 'paused'),
          batchSize: 25, lease: { retryMs: 25, ttlMs: 1_000 },
        });
        // The child's row expires after its 1 s ttl; the contender ends its lease session and takes over.
        const takeoverMs = await until('the contender to take the lease', () => (runner as ProjectionRunner).state === 'active', 15_000);
        expect((await storedCheckpoint(env.db, env.schema, 'paused', 1)).applied).toBe(committedWhenPaused);
        child.process.kill('SIGCONT');
        await runner.waitFor(head, 30_000);
        await until('the child to report the lost lease', () => (child as Child).lines.some((l) => l.includes('lost its lease')), 15_000);
        const s = await seen(env.db, env.schema, 'paused');
        console.log(
          `[postgres] SIGSTOP: child paused after ${handledWhenPaused} handled (${committedWhenPaused} committed); contender took over in ${takeoverMs} ms; ` +
            `contender applied ${runner.applied}; child said: ${child.lines.filter((l) => l.startsWith('warning') || l.startsWith('state')).join(' | ')}`,
        );
        expect(committedWhenPaused).toBeLessThan(handledWhenPaused); // paused with a batch open
        expect(runner.applied).toBe(200 - committedWhenPaused); // the paused batch was applied by the contender, not the child
        expect(s.maxTimes).toBe(1);
        expect(s.ids.size).toBe(200);
        expect((await storedCheckpoint(env.db, env.schema, 'paused', 1)).applied).toBe(200);
        expect(await counts(env.db, env.schema, 'paused')).toEqual(await logCounts(env.db, env.schema));
        child.process.kill('SIGTERM');
        expect(await child.exited).toBe(0);
      } finally {
        child?.process.kill('SIGKILL');
        await runner?.stop();
        await env.close();
      }
    });
  });
} else {
  skipBecauseNoServer('projection runner crash tests');
}
