import { createHash } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { AdapterError, backoffDelay, type ErrorReporter } from '@causeway/core';
import { createClient, ErrorReply, RESP_TYPES } from 'redis';

/**
 * Connections and small helpers shared by the publisher and the subscriber. Every command goes
 * through sendCommand with its own timeout, because node-redis queues commands while it
 * reconnects and would otherwise let a caller wait forever on a Redis that stays away.
 */
export type RedisConnection = ReturnType<typeof newClient>;

/** Blob strings as Buffers: entry fields keep their exact bytes (size checked on bytes, UTF-8 checked strictly). */
export const BUFFERS = { [RESP_TYPES.BLOB_STRING]: Buffer } as const;

function newClient(url: string) {
  return createClient({
    url,
    // Reconnect forever with capped, jittered backoff: the adapter recovers from a restart by itself.
    socket: { reconnectStrategy: (retries: number) => 100 + backoffDelay(retries, 100, 2_000), connectTimeout: 5_000 },
    // RESP2: plain arrays for stream replies, the same shape the Lua scripts return.
    RESP: 2,
    maintNotifications: 'disabled',
  });
}

export function createConnection(url: string, what: string, onError: ErrorReporter): RedisConnection {
  const client = newClient(url);
  let down = false;
  client.on('error', (error: unknown) => {
    // One report per outage, not one per reconnect attempt. The URL is never part of it.
    if (down) return;
    down = true;
    onError(new AdapterError('redis', `lost the connection (${(error as Error)?.message ?? String(error)}); reconnecting`, { cause: error }), what);
  });
  client.on('ready', () => {
    down = false;
  });
  return client;
}

/** Starts connecting once; commands sent meanwhile wait in the client's queue. */
export function open(client: RedisConnection): void {
  if (client.isOpen) return;
  client.connect().catch(() => undefined); // failures surface as 'error' events and command timeouts
}

const readiness = new WeakMap<RedisConnection, Promise<void>>();

/** Resolves once the connection is ready, or rejects after timeoutMs. Callers share one 'ready' listener. */
export function waitReady(client: RedisConnection, timeoutMs: number): Promise<void> {
  open(client);
  if (client.isReady) return Promise.resolve();
  let ready = readiness.get(client);
  if (ready === undefined) {
    ready = new Promise<void>((resolve) => client.once('ready', () => resolve())).finally(() => readiness.delete(client));
    readiness.set(client, ready);
  }
  return within(ready, timeoutMs, 'connecting to Redis');
}

/** The error code Redis puts first in an error reply (NOGROUP, BUSYGROUP, NOSCRIPT...): the protocol's code, like SQLSTATE. */
export function replyCode(error: unknown): string | undefined {
  if (!(error instanceof ErrorReply)) return undefined;
  const first = error.message.split(' ', 1)[0] ?? '';
  return /^[A-Z]+$/.test(first) ? first : undefined;
}

/** A Lua script run by EVALSHA, loaded with EVAL when the server does not have it (first use, after a restart). */
export class Script {
  readonly #source: string;
  readonly #sha: string;

  constructor(source: string) {
    this.#source = source;
    this.#sha = createHash('sha1').update(source).digest('hex');
  }

  async run<T>(client: RedisConnection, keys: readonly string[], args: readonly string[], timeoutMs: number): Promise<T> {
    const tail = [String(keys.length), ...keys, ...args];
    const options = { typeMapping: BUFFERS, timeout: timeoutMs };
    try {
      return await client.sendCommand<T>(['EVALSHA', this.#sha, ...tail], options);
    } catch (error) {
      if (replyCode(error) !== 'NOSCRIPT') throw error;
      return client.sendCommand<T>(['EVAL', this.#source, ...tail], options);
    }
  }
}

/**
 * A command's time limit without a timer per command. node-redis's `timeout` option makes an
 * AbortSignal.timeout for every command, a large share of the CPU a message costs; here commands
 * whose limits end in the same slice of time share one signal. A limit ends up to 1/64 of itself
 * (at least 5 ms) later than asked, never sooner. Aborting does what `timeout` does: a command
 * not written yet is dropped from the queue (never sent), and the caller's promise rejects.
 * `timeout: 0` turns off the client's default per-command timeout.
 */
export function timeLimit(ms: number): { readonly timeout: 0; readonly abortSignal: AbortSignal } {
  const now = Date.now();
  const grain = Math.max(5, Math.ceil(ms / 64));
  const end = Math.ceil((now + ms) / grain) * grain;
  let signal = sharedLimits.get(end);
  if (signal === undefined) {
    if (sharedLimits.size >= 64) for (const [at] of sharedLimits) if (at <= now) sharedLimits.delete(at);
    signal = AbortSignal.timeout(end - now);
    setMaxListeners(0, signal); // many commands listen to one signal by design: no leak warning
    sharedLimits.set(end, signal);
  }
  return { timeout: 0, abortSignal: signal };
}

const sharedLimits = new Map<number, AbortSignal>();

/** Settles a promise within a time limit; the limit's failure names what took too long. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
