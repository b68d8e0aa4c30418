import { AdapterError, backoffDelay, ClosedError, TimeoutError } from '@causeway/core';
import { connect, type ChannelModel, type ConfirmChannel } from 'amqplib';
import { redactUrl, type ResolvedConnectionOptions } from './rabbitmq-options.js';

type State = 'connecting' | 'open' | 'waiting' | 'closed';

/** A socket that does not finish the AMQP handshake within this time is dropped and retried. */
const HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * One AMQP connection that comes back by itself: after a broker restart or a network drop it
 * reconnects with exponential backoff and full jitter, then calls every `onOpen` listener with
 * the new connection so its owner re-declares topology, re-opens channels and re-consumes.
 * Channels never outlive their connection; owners keep none across an `onOpen`.
 *
 * close() is graceful (AMQP connection.close, so the broker requeues unacked messages at once);
 * destroy() drops the socket as a killed process would, and nothing reconnects.
 */
export class RabbitMqConnection {
  readonly #options: ResolvedConnectionOptions;
  readonly #url: string;
  readonly #openListeners = new Set<(model: ChannelModel) => void>();
  #waiters = new Set<{ resolve: (model: ChannelModel) => void; reject: (error: unknown) => void }>();
  #state: State = 'connecting';
  #model: ChannelModel | undefined;
  #failures = 0;
  #lastError: unknown;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: ResolvedConnectionOptions) {
    this.#options = options;
    this.#url = withHeartbeat(options.url, options.heartbeatSeconds);
    void this.#connect();
  }

  /** The open connection, if there is one right now. */
  get current(): ChannelModel | undefined {
    return this.#state === 'open' ? this.#model : undefined;
  }

  get isClosed(): boolean {
    return this.#state === 'closed';
  }

  /** Calls `listener` with every connection opened from now on (not the current one). Returns an unsubscribe. */
  onOpen(listener: (model: ChannelModel) => void): () => void {
    this.#openListeners.add(listener);
    return () => this.#openListeners.delete(listener);
  }

  /** The open connection, waiting for the next one until `deadline` (epoch ms). */
  async ready(deadline: number): Promise<ChannelModel> {
    const model = this.current;
    if (model !== undefined) return model;
    if (this.#state === 'closed') throw new ClosedError('RabbitMQ connection');
    return new Promise<ChannelModel>((resolve, reject) => {
      const waiter = {
        resolve: (m: ChannelModel) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e: unknown) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        const cause = this.#lastError;
        const waited = new TimeoutError(`no connection to RabbitMQ at ${redactUrl(this.#options.url)} within the timeout`);
        reject(new AdapterError('rabbitmq', waited.message, { cause: cause ?? waited }));
      }, Math.max(0, deadline - Date.now()));
      this.#waiters.add(waiter);
    });
  }

  async #connect(): Promise<void> {
    this.#state = 'connecting';
    const stillWanted = (): boolean => (this.#state as State) !== 'closed';
    let model: ChannelModel;
    try {
      model = await connect(this.#url, {
        timeout: HANDSHAKE_TIMEOUT_MS,
        // Confirms, acks and small publishes are latency-bound: no Nagle delay on them.
        noDelay: true,
        clientProperties: { connection_name: this.#options.connectionName },
      });
    } catch (error) {
      if (!stillWanted()) return;
      this.#lastError = error;
      // Report the first failure of a run and then every tenth, not one line per retry.
      if (this.#failures % 10 === 0) this.#report(error, `cannot connect to ${redactUrl(this.#options.url)}; retrying`);
      this.#retryLater();
      return;
    }
    if (!stillWanted()) {
      await model.close().catch(() => undefined);
      return;
    }
    this.#failures = 0;
    this.#lastError = undefined;
    this.#model = model;
    this.#state = 'open';
    // amqplib follows every connection 'error' with 'close': one report there, with the error.
    let lastError: unknown;
    model.on('error', (error: unknown) => {
      lastError = error;
    });
    model.on('blocked', (reason: string) => this.#report(new Error(`broker blocked publishing: ${reason}`), 'connection blocked'));
    model.on('close', (error?: unknown) => {
      if (this.#model !== model) return;
      this.#model = undefined;
      if (this.#state === 'closed') return;
      this.#report(error ?? lastError ?? new Error('connection closed by the broker'), `connection to ${redactUrl(this.#options.url)} lost; reconnecting`);
      this.#state = 'waiting';
      this.#retryLater(0);
    });
    const waiters = this.#waiters;
    this.#waiters = new Set();
    for (const w of waiters) w.resolve(model);
    for (const listener of this.#openListeners) listener(model);
  }

  #retryLater(failures = ++this.#failures): void {
    this.#state = 'waiting';
    const wait = backoffDelay(failures, this.#options.reconnectBaseMs, this.#options.reconnectMaxMs);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#state !== 'closed') void this.#connect();
    }, wait);
  }

  #report(error: unknown, what: string): void {
    this.#options.onError(adapterTrouble(what, error), `rabbitmq ${this.#options.connectionName}`);
  }

  #shut(): ChannelModel | undefined {
    this.#state = 'closed';
    clearTimeout(this.#timer);
    const waiters = this.#waiters;
    this.#waiters = new Set();
    for (const w of waiters) w.reject(new ClosedError('RabbitMQ connection'));
    this.#openListeners.clear();
    const model = this.#model;
    this.#model = undefined;
    return model;
  }

  /** Closes the connection cleanly (unacked messages go back to their queues at once). Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const model = this.#shut();
      if (model !== undefined) await model.close().catch(() => undefined);
    })();
    return this.#closing;
  }

  /**
   * Drops the TCP connection without an AMQP goodbye and never reconnects: what the broker sees
   * when the process is killed. It requeues the unacked messages once it notices the socket gone.
   */
  destroy(): void {
    const model = this.#shut();
    this.#closing ??= Promise.resolve();
    const socket = (model as unknown as { connection?: { stream?: { destroy(): void } } } | undefined)?.connection?.stream;
    socket?.destroy();
  }
}

/** The URL with `heartbeat=<s>` added unless it already sets one (amqplib reads it from the query). */
function withHeartbeat(url: string, seconds: number): string {
  if (/[?&]heartbeat=/.test(url)) return url;
  return `${url}${url.includes('?') ? '&' : '?'}heartbeat=${seconds}`;
}

/** A confirm channel on one connection, with why the broker closed it (when it said). */
export interface ConfirmLane {
  readonly model: ChannelModel;
  readonly channel: Promise<ConfirmChannel>;
  /** The channel once `channel` resolved: publishing on an open lane needs no await. */
  ready: ConfirmChannel | undefined;
  /** Exchanges and queues asserted on this channel. */
  readonly declared: Set<string>;
  closeError: unknown;
  closed: boolean;
}

/** Keeps one confirm channel per connection, opening a new one after the old one closed. */
export class ConfirmLanes {
  #lane: ConfirmLane | undefined;

  get(model: ChannelModel): ConfirmLane {
    const current = this.#lane;
    if (current !== undefined && current.model === model && !current.closed) return current;
    const lane: ConfirmLane = { model, channel: model.createConfirmChannel(), ready: undefined, declared: new Set(), closeError: undefined, closed: false };
    lane.channel.then(
      (channel) => {
        lane.ready = channel;
        channel.on('error', (error: unknown) => {
          lane.closeError = error;
        });
        channel.on('close', () => {
          lane.closed = true;
        });
      },
      (error: unknown) => {
        lane.closed = true;
        lane.closeError = error;
      },
    );
    this.#lane = lane;
    return lane;
  }
}

/**
 * Whether trying again may succeed: yes after a lost channel or connection or a 404, no when the
 * broker refused (another 4xx reply code: access refused, a queue or exchange declared with other arguments),
 * nacked a message (it could not store it), or the client could not encode it.
 */
export function isRetryable(error: unknown, closeError?: unknown): boolean {
  if (error instanceof RangeError || error instanceof TimeoutError) return false;
  if (error instanceof Error && error.message === 'message nacked') return false;
  for (const e of [error, closeError]) {
    const code = (e as { code?: unknown } | undefined)?.code;
    // 404: an exchange or queue deleted under us; the next channel declares it again.
    if (typeof code === 'number' && code >= 400 && code < 500 && code !== 404) return false;
  }
  return true;
}

/** The AdapterError (cause TimeoutError) of a publish or a wait that ran out of time. */
export function confirmTimeout(what: string): AdapterError {
  const timeout = new TimeoutError(what);
  return new AdapterError('rabbitmq', timeout.message, { cause: timeout });
}

interface CorkableSocket {
  readonly destroyed: boolean;
  readonly writableNeedDrain: boolean;
  cork(): void;
  uncork(): void;
  prependOnceListener(event: 'drain', listener: () => void): unknown;
}

/** Sockets corked until amqplib's write turn is over (see coalesceWrites). */
const corked = new WeakSet<CorkableSocket>();

/**
 * Makes the frames amqplib writes for this turn leave in one writev instead of one write
 * syscall each (a 50-message publish: 1-2 syscalls instead of 50). amqplib's muxer writes
 * channel frames to the socket in a setImmediate scheduled from a nextTick ('readable'); the
 * socket is corked now and uncorked in a setImmediate scheduled after that one, so it always
 * runs right after the muxer's turn: call it right AFTER handing the frames to amqplib (called
 * before, its nextTick would queue ahead of amqplib's and uncork before the muxer writes). When the socket asked for a drain (over its high-water
 * mark), the muxer's next turn, run from 'drain', is corked the same way.
 */
export function coalesceWrites(model: ChannelModel): void {
  const socket = (model as unknown as { connection?: { stream?: CorkableSocket } }).connection?.stream;
  if (socket === undefined || typeof socket.cork !== 'function') return;
  corkTurn(socket, (release) => process.nextTick(() => setImmediate(release)));
}

function corkTurn(socket: CorkableSocket, schedule: (release: () => void) => void): void {
  if (socket.destroyed || corked.has(socket)) return;
  corked.add(socket);
  socket.cork();
  schedule(() => {
    corked.delete(socket);
    socket.uncork();
    // The muxer stopped at the high-water mark and goes on from 'drain': cork that turn too
    // (prepended, so it runs before the muxer's own listener writes).
    if (socket.writableNeedDrain && !socket.destroyed) socket.prependOnceListener('drain', () => corkTurn(socket, (release) => setImmediate(release)));
  });
}

/** `work`, or an AdapterError (cause TimeoutError) once `deadline` (epoch ms) has passed. */
export function beforeDeadline<T>(work: Promise<T>, deadline: number, what: () => string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const timeout = new TimeoutError(what());
      reject(new AdapterError('rabbitmq', timeout.message, { cause: timeout }));
    }, Math.max(0, deadline - Date.now()));
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/** An AdapterError for onError: what happened, then the driver's own words (never a URL from us). */
export function adapterTrouble(what: string, cause: unknown): AdapterError {
  const detail = cause instanceof Error ? cause.message : cause === undefined ? '' : String(cause);
  return new AdapterError('rabbitmq', detail === '' ? what : `${what} (${detail})`, { cause });
}
