import { AdapterError, backoffDelay, ClosedError, type ErrorReporter } from '@causeway/core';
import { JetStreamApiError } from '@nats-io/jetstream';
import { connect, errors, type NatsConnection } from '@nats-io/transport-node';
import type { ResolvedNatsOptions } from './nats-options.js';

/**
 * One NATS connection, opened on first use and kept for the life of its owner (a publisher or a
 * subscriber). The client reconnects by itself, forever; this class tracks whether it is
 * connected right now, because the client drops what is written while it is away (its outbound
 * buffer is reset on reconnect), so callers wait for the connection instead of writing into the void.
 */
export class NatsLink {
  readonly #options: ResolvedNatsOptions;
  readonly #name: string;
  readonly #report: ErrorReporter;
  #opening: Promise<NatsConnection> | undefined;
  #nc: NatsConnection | undefined;
  #connected = false;
  #closed = false;
  #waiters = new Set<() => void>();
  readonly #reconnectListeners = new Set<() => void>();

  constructor(options: ResolvedNatsOptions, name: string) {
    this.#options = options;
    this.#name = name;
    this.#report = options.onError;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get connected(): boolean {
    return this.#connected;
  }

  /** The connection while it is connected and the link open: callers skip the await of connection(). */
  get current(): NatsConnection | undefined {
    return this.#connected && !this.#closed ? this.#nc : undefined;
  }

  /** The connection, once connected; rejects with AdapterError when the deadline (epoch ms) passes first. */
  async connection(deadline: number): Promise<NatsConnection> {
    if (this.#closed) throw new ClosedError(`nats ${this.#name}`);
    if (this.#nc !== undefined && this.#connected) return this.#nc;
    if (this.#opening === undefined) {
      this.#opening = this.#open();
      // Callers race it against their deadlines; a late rejection must not go unhandled.
      this.#opening.catch(() => undefined);
    }
    const nc = await untilDeadline(this.#opening, deadline, () => new AdapterError('nats', `${this.#name}: no connection to the server within the timeout`));
    await this.whenConnected(deadline);
    return nc;
  }

  /** Calls `listener` after each reconnect (the server may have restarted and forgotten pull requests). Returns the remover. */
  onReconnect(listener: () => void): () => void {
    this.#reconnectListeners.add(listener);
    return () => this.#reconnectListeners.delete(listener);
  }

  /** Resolves while connected; waits for the reconnect otherwise, up to the deadline. */
  async whenConnected(deadline: number): Promise<void> {
    while (!this.#connected) {
      if (this.#closed) throw new ClosedError(`nats ${this.#name}`);
      let wake!: () => void;
      const woken = new Promise<void>((resolve) => {
        wake = resolve;
      });
      this.#waiters.add(wake);
      try {
        await untilDeadline(woken, deadline, () => new AdapterError('nats', `${this.#name}: not reconnected to the server within the timeout`));
      } finally {
        this.#waiters.delete(wake);
      }
    }
  }

  /**
   * Retries the first connect itself (rather than the client's waitOnFirstConnect) so that
   * close() can stop it: a process must be able to exit while the server was never reached.
   * Once connected, the client's own reconnect (forever) takes over.
   */
  async #open(): Promise<NatsConnection> {
    for (let attempt = 0; ; attempt++) {
      if (this.#closed) throw new ClosedError(`nats ${this.#name}`);
      let nc: NatsConnection;
      try {
        nc = await connect({
          // Defaults the options may override: retry a lost server every second, and notice a
          // dead connection in about 20 s rather than the client's 4 minutes.
          reconnectTimeWait: 1_000,
          pingInterval: 10_000,
          maxPingOut: 2,
          // The client otherwise builds an Error (a stack trace) for every request, acks included.
          noAsyncTraces: true,
          ...this.#options.connection,
          name: this.#options.connection.name ?? `causeway-${this.#name}`,
          servers: this.#options.servers,
          reconnect: true,
          maxReconnectAttempts: -1,
          waitOnFirstConnect: false,
        });
      } catch (error) {
        if (!isTransient(error)) {
          // Bad credentials or options: no use retrying; a later call tries again from scratch.
          this.#opening = undefined;
          const wrapped = wrap(error, `${this.#name}: cannot connect`);
          this.#report(wrapped, `nats ${this.#name}`);
          throw wrapped;
        }
        await this.#pause(backoffDelay(attempt, 100, 2_000));
        continue;
      }
      if (this.#closed) {
        await nc.close().catch(() => undefined);
        throw new ClosedError(`nats ${this.#name}`);
      }
      this.#nc = nc;
      this.#setConnected(true);
      void this.#watch(nc);
      return nc;
    }
  }

  async #pause(ms: number): Promise<void> {
    let wake!: () => void;
    const woken = new Promise<void>((resolve) => {
      wake = resolve;
    });
    this.#waiters.add(wake);
    const timer = setTimeout(wake, ms);
    await woken;
    clearTimeout(timer);
    this.#waiters.delete(wake);
  }

  async #watch(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect') {
        this.#setConnected(false);
        if (!this.#closed) this.#report(new AdapterError('nats', `${this.#name}: connection lost; reconnecting`), `nats ${this.#name}`);
      } else if (status.type === 'reconnect') {
        this.#setConnected(true);
        for (const listener of [...this.#reconnectListeners]) listener();
      }
    }
  }

  #setConnected(connected: boolean): void {
    this.#connected = connected;
    if (!connected) return;
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const wake of waiters) wake();
  }

  /** Flushes what was written (briefly, if connected), then closes. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#wakeAll();
    const nc = this.#nc;
    if (nc === undefined || nc.isClosed()) return;
    if (this.#connected) await untilDeadline(nc.flush(), Date.now() + 1_000, () => new Error('flush timed out')).catch(() => undefined);
    await nc.close().catch(() => undefined);
  }

  /** Drops the connection as a killed process would: nothing flushed, nothing settled. */
  async crash(): Promise<void> {
    this.#closed = true;
    this.#wakeAll();
    await this.#nc?.close().catch(() => undefined);
  }

  #wakeAll(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const wake of waiters) wake();
  }
}

/** Resolves or rejects with `work`, or rejects with `onTimeout()` at the deadline (epoch ms). */
export function untilDeadline<T>(work: Promise<T>, deadline: number, onTimeout: () => Error): Promise<T> {
  const left = deadline - Date.now();
  if (left <= 0) return Promise.reject(onTimeout());
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), left);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/** Wraps a driver error in AdapterError, with any `user:password@` in its message masked. */
export function wrap(error: unknown, what: string): AdapterError {
  const detail = error instanceof Error ? error.message : String(error);
  return new AdapterError('nats', `${what}: ${redact(detail)}`, { cause: error });
}

export function redact(text: string): string {
  return text.replace(/\/\/[^/@\s]*@/g, '//***@');
}

/**
 * Worth trying again (with the same message id, so nothing doubles): no answer in time, no
 * connection, JetStream not answering yet (a restarting server), the server asking to retry
 * later, or the stream not (yet) there.
 */
export function isTransient(error: unknown): boolean {
  // The client reports "no responders" (no JetStream yet) as an error whose cause is the RequestError.
  for (let e = error, depth = 0; e instanceof Error && depth < 3; e = e.cause, depth++) {
    if (e instanceof errors.TimeoutError || e instanceof errors.RequestError || e instanceof errors.ConnectionError) return true;
    if (e instanceof errors.NoRespondersError) return true;
    if (e instanceof JetStreamApiError) return e.status === 503 || e.code === 10059;
  }
  return false;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
