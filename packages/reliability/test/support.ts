import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createPgDatabase, migrate, type SqlDatabase } from '@causeway/postgres';
import { describe, it } from 'vitest';
import { brokerAvailable, newBrokerSetup, removeBrokerObjects, type BrokerKind, type BrokerSetup } from './fixtures/brokers.js';
import { createEffectsTable } from './fixtures/effects.js';

/** The PostgreSQL server the fault tests use. */
export const PG_URL = process.env.CAUSEWAY_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** In CI (CAUSEWAY_REQUIRE_SERVICES=1) a missing server fails the tests instead of skipping them. */
export const REQUIRE_SERVICES = process.env.CAUSEWAY_REQUIRE_SERVICES === '1';

/** `CAUSEWAY_FAULT_SCALE=full` runs the full sizes; the default is scaled to fit CI. */
export const FULL_SCALE = process.env.CAUSEWAY_FAULT_SCALE === 'full';

export const BROKERS: readonly BrokerKind[] = ['rabbitmq', 'nats'];

async function postgresAvailable(): Promise<boolean> {
  const db = createPgDatabase({ connectionString: PG_URL, maxConnections: 1 });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const tooLong = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('no answer within 3 s')), 3_000);
  });
  try {
    await Promise.race([db.query('SELECT 1'), tooLong]);
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    await db.close().catch(() => undefined);
  }
}

/** Why the servers a broker's fault tests need are missing, or null when they answer (always null under REQUIRE_SERVICES). */
async function missingServer(kind: BrokerKind): Promise<string | null> {
  if (REQUIRE_SERVICES) return null; // run and fail loudly
  if (!(await postgresAvailable())) return `PostgreSQL is not reachable at ${PG_URL}`;
  if (!(await brokerAvailable(kind))) return `${kind === 'nats' ? 'NATS JetStream' : 'RabbitMQ'} is not reachable`;
  return null;
}

/**
 * One describe per broker (await it at the top level of the test file). Without its servers the
 * block registers a single skipped test that says why; with CAUSEWAY_REQUIRE_SERVICES=1 it always
 * runs, so a missing server fails.
 */
export async function describePerBroker(title: string, body: (kind: BrokerKind) => void): Promise<void> {
  for (const kind of BROKERS) {
    const missing = await missingServer(kind);
    describe(`${title} [${kind}]`, () => {
      if (missing !== null) {
        it.skip(`skipped: ${missing} (set CAUSEWAY_REQUIRE_SERVICES=1 to fail instead)`, () => {});
        return;
      }
      body(kind);
    });
  }
}

export function uniqueSchema(label: string): string {
  return `f_${label}_${process.pid}_${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`.slice(0, 40).toLowerCase();
}

/** A migrated schema of its own on the server, with the effects table, and the way to drop it. */
export interface TestDatabase {
  readonly db: SqlDatabase;
  readonly schema: string;
  close(): Promise<void>;
}

export async function openTestDatabase(label: string, maxConnections = 10): Promise<TestDatabase> {
  const schema = uniqueSchema(label);
  const db = createPgDatabase({ connectionString: PG_URL, maxConnections });
  await migrate(db, { schema });
  await createEffectsTable(db, schema);
  return {
    db,
    schema,
    async close() {
      await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
      await db.close();
    },
  };
}

/** A broker scope of its own, and the groups it must delete afterwards. */
export interface TestBroker extends BrokerSetup {
  /** Records a (topic, group) pair to delete on cleanup. */
  track(topic: string, group: string): void;
  /** RabbitMQ delay queues (buckets, ms) the run may have made. */
  trackDelays(buckets: readonly number[]): void;
  cleanup(): Promise<void>;
}

export function openTestBroker(kind: BrokerKind, label: string): TestBroker {
  const setup = newBrokerSetup(kind, label);
  const groups = new Map<string, readonly [string, string]>();
  const delays = new Set<number>();
  return {
    ...setup,
    track(topic, group) {
      groups.set(`${topic}\u0000${group}`, [topic, group]);
    },
    trackDelays(buckets) {
      for (const b of buckets) delays.add(b);
    },
    cleanup: () => removeBrokerObjects(setup, [...groups.values()], [...delays]),
  };
}

/**
 * Polls `condition` until it holds, failing with `what` (and the last state `describe` gives)
 * after `timeoutMs`. Never a fixed sleep: it returns as soon as the condition holds.
 */
export async function waitFor(
  what: string,
  condition: () => boolean | Promise<boolean>,
  options: { readonly timeoutMs: number; readonly everyMs?: number; readonly state?: () => unknown },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) {
      const state = options.state === undefined ? '' : `; last state ${JSON.stringify(await options.state())}`;
      throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${what}${state}`);
    }
    await new Promise((r) => setTimeout(r, options.everyMs ?? 50));
  }
}

/** A fixture running in a child process (`node --import tsx`), talking in JSON lines on stdout. */
export interface Child {
  readonly pid: number;
  /** Every JSON line the child printed so far. */
  readonly lines: ReadonlyArray<Record<string, unknown>>;
  /** Resolves when the process has exited (code or signal) and its output is read. */
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>;
  readonly stderr: () => string;
  /** Waits for a line matching `match`; rejects if the child exits first or after `timeoutMs`. */
  waitForLine(match: (line: Record<string, unknown>) => boolean, timeoutMs: number): Promise<Record<string, unknown>>;
  kill(signal: NodeJS.Signals): void;
}

export function fixturePath(name: string): string {
  return fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
}

export function spawnFixture(name: string, env: Readonly<Record<string, string>>): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', fixturePath(name)], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (proc.pid === undefined) throw new Error(`could not start fixture ${name}`);
  const lines: Array<Record<string, unknown>> = [];
  const watchers = new Set<() => void>();
  let err = '';
  let done = false;
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (chunk: string) => {
    err = (err + chunk).slice(-8_000);
    if (process.env.CAUSEWAY_FAULT_DEBUG === '1') process.stderr.write(`[${name} ${proc.pid}] ${chunk}`);
  });
  const reader = createInterface({ input: proc.stdout });
  reader.on('line', (text) => {
    if (!text.startsWith('{')) return;
    try {
      lines.push(JSON.parse(text) as Record<string, unknown>);
    } catch {
      return;
    }
    for (const w of watchers) w();
  });
  const outputRead = new Promise<void>((r) => reader.on('close', r));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.on('exit', (code, signal) => {
      void outputRead.then(() => {
        done = true;
        for (const w of watchers) w();
        resolve({ code, signal });
      });
    });
  });
  return {
    pid: proc.pid,
    lines,
    exited,
    stderr: () => err,
    kill: (signal) => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    },
    waitForLine(match, timeoutMs) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => finish(new Error(`fixture ${name} (${proc.pid}) printed no matching line within ${timeoutMs} ms; stderr: ${err}`)), timeoutMs);
        const check = (): void => {
          const hit = lines.find(match);
          if (hit !== undefined) finish(null, hit);
          else if (done) finish(new Error(`fixture ${name} (${proc.pid}) exited before the expected line; stderr: ${err}`));
        };
        function finish(error: Error | null, line?: Record<string, unknown>): void {
          clearTimeout(timer);
          watchers.delete(check);
          if (error) reject(error);
          else resolve(line as Record<string, unknown>);
        }
        watchers.add(check);
        check();
      });
    },
  };
}

/** Prints one figures line on stdout (vitest shows it with the test). */
export function report(line: string): void {
  console.log(line);
}
