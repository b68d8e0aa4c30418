import {
  backoffDelay,
  ClosedError,
  createDelivery,
  DEFAULT_CLOSE_TIMEOUT_MS,
  handleDelivery,
  HandlerPool,
  uuidv7,
  type BrokerSubscription,
  type CloseOptions,
  type DeliveryControl,
  type DeliveryHandler,
} from '@causeway/core';
import { adapterError, keepFailedAcks, retryTransient, within, type ClaimRow, type PendingAck } from './broker-sql.js';
import { decodeMessage } from './codec.js';
import type { Shared } from './postgres-subscriber.js';
import { sqlState } from './sql-executor.js';

interface Claimed {
  readonly row: ClaimRow;
  readonly token: string;
  /** When the claim returned (Date.now()): the lease runs from about then. */
  readonly at: number;
}

interface Held {
  readonly id: string;
  readonly token: string;
  readonly control: DeliveryControl;
}

/**
 * One subscribe() call. A loop of turns (one statement each: send the acks gathered since the
 * last turn, admit, lease heads) fills a small buffer; up to `concurrency` workers (a
 * HandlerPool) take from it. A worker goes on to the next message as soon as its handler
 * returns; the ack rides on the next turn, and the delivery's ack() resolves when that turn has
 * committed. At most twice the concurrency is in hand (buffered, running, or waiting for its
 * ack), so a turn fetches many rows at once; a buffered row that waited half its lease is handed
 * back rather than started late.
 */
export class PostgresSubscription implements BrokerSubscription {
  readonly topic: string;
  readonly group: string;
  readonly closed: Promise<void>;
  readonly #shared: Shared;
  readonly #startFrom: 'earliest' | 'latest';
  readonly #handler: DeliveryHandler;
  readonly #concurrency: number;
  readonly #pool: HandlerPool;
  readonly #buffer: Claimed[] = [];
  /** Started and not settled yet (handler running, or its ack or nack on the way). */
  readonly #held = new Map<string, Held>();
  /** Settles of handlers that returned, still on the way. */
  readonly #settling = new Set<Promise<void>>();
  #acks: PendingAck[] = [];
  #resolveClosed!: () => void;
  #loop: Promise<void> = Promise.resolve();
  #closing: Promise<void> | undefined;
  /** Stop claiming and starting (acks still go out). */
  #stopping = false;
  /** Closed or crashed: the loop ends, ack and nack retries stop. */
  #dead = false;
  #crashed = false;
  /** Something may have changed since the last turn began: turn again before sleeping. */
  #dirty = false;
  #wakeSleeper: (() => void) | undefined;

  constructor(shared: Shared, topic: string, group: string, startFrom: 'earliest' | 'latest', concurrency: number, handler: DeliveryHandler) {
    this.#shared = shared;
    this.topic = topic;
    this.group = group;
    this.#startFrom = startFrom;
    this.#handler = handler;
    this.#concurrency = concurrency;
    this.#pool = new HandlerPool(concurrency);
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
  }

  start(): void {
    this.#loop = this.#run().catch((error: unknown) => this.#shared.options.onError(error, `claim loop of ${this.topic}/${this.group}`));
  }

  wake(): void {
    this.#dirty = true;
    this.#wakeSleeper?.();
  }

  async #run(): Promise<void> {
    const { db, names, admitBatch, ackTimeoutMs, maxMessageBytes, pollIntervalMs, onError } = this.#shared.options;
    const capacity = this.#concurrency === 1 ? 1 : 2 * this.#concurrency;
    let failures = 0;
    let horizonWaits = 0;
    while (!this.#dead) {
      // Let handlers that are about to return do so first: their acks go in this turn rather
      // than one turn each.
      await new Promise<void>((resolve) => setImmediate(resolve));
      const acks = this.#acks;
      // Rows acked in this turn are deleted before it claims: they leave room.
      const inHand = this.#held.size - acks.length + this.#buffer.length;
      const room = this.#stopping ? 0 : Math.max(0, capacity - inHand);
      if (acks.length === 0 && (room <= 0 || (inHand > 0 && room < Math.ceil(this.#concurrency / 2)))) {
        // Nothing to send and enough in hand: wait for a worker to finish one (it wakes us).
        this.#dirty = false;
        await this.#sleep(pollIntervalMs);
        continue;
      }
      this.#acks = [];
      this.#dirty = false;
      let waitMs = pollIntervalMs;
      try {
        const token = uuidv7();
        const { rows } = await db.query<ClaimRow>(
          this.#shared.sql.turn,
          [this.topic, this.group, acks.map((a) => a.id), acks.map((a) => a.token), room, admitBatch, ackTimeoutMs, token, this.#shared.owner, maxMessageBytes],
          `${names.raw}.bturn`,
        );
        failures = 0;
        for (const a of acks) a.resolve();
        const claimed = rows.filter((r) => r.id !== null);
        if (this.#stopping) {
          // Claimed after close() began: hand them back unstarted (a crash leaves them leased).
          if (!this.#crashed) await this.#release(claimed.map((r) => ({ id: r.id as string, token })), true);
          continue;
        }
        const at = Date.now();
        for (const row of claimed) this.#buffer.push({ row, token, at });
        this.#spawnWorkers();
        const meta = rows[rows.length - 1];
        if (room === 0 || claimed.length >= room || meta?.backlog === 'full') continue;
        // Committed rows wait behind an older running transaction: look again soon, backing off.
        horizonWaits = meta?.backlog === 'waiting' ? horizonWaits + 1 : 0;
        if (horizonWaits > 0) waitMs = Math.min(pollIntervalMs, 5 * 2 ** horizonWaits);
        if (meta?.wake_ms !== null && meta?.wake_ms !== undefined) waitMs = Math.min(waitMs, Math.max(1, Math.ceil(meta.wake_ms) + 2));
      } catch (error) {
        this.#acks = [...keepFailedAcks(acks, error, !this.#dead, `${this.topic}/${this.group}`), ...this.#acks];
        if (this.#dead) break;
        onError(adapterError(error, 'turn'), `postgres subscriber: claim from ${this.topic}/${this.group} (retrying)`);
        if (sqlState(error) === 'P0002') await this.#recreateGroup();
        waitMs = Math.max(50, backoffDelay(failures++, 100, 2_000));
      }
      await this.#sleep(waitMs);
    }
    const left = this.#acks;
    this.#acks = [];
    for (const a of left) a.reject(new ClosedError(`postgres subscription ${this.topic}/${this.group}`));
  }

  #ack(id: string, token: string): Promise<void> {
    if (this.#dead) return Promise.reject(new ClosedError(`postgres subscription ${this.topic}/${this.group}`));
    return new Promise<void>((resolve, reject) => {
      const done = (): void => {
        // Out of hand at once, so the loop's next turn counts the room it left.
        if (this.#held.get(id)?.token === token) this.#held.delete(id);
        resolve();
      };
      this.#acks.push({ id, token, deadline: Date.now() + this.#shared.options.settleTimeoutMs, resolve: done, reject });
      this.wake();
    });
  }

  #spawnWorkers(): void {
    while (this.#pool.free > 0 && this.#buffer.length > 0 && !this.#stopping) this.#pool.run(() => this.#work());
  }

  /** A pool slot: handles buffered messages one after another until none is left. */
  async #work(): Promise<void> {
    for (let next = this.#take(); next !== undefined; next = this.#take()) {
      await this.#handle(next);
    }
  }

  #take(): Claimed | undefined {
    const stale: Claimed[] = [];
    let next: Claimed | undefined;
    while (next === undefined && !this.#stopping && this.#buffer.length > 0) {
      const c = this.#buffer.shift() as Claimed;
      if (Date.now() - c.at > this.#shared.options.ackTimeoutMs / 2) stale.push(c);
      else next = c;
    }
    if (stale.length > 0) void this.#release(stale.map((c) => ({ id: c.row.id as string, token: c.token })), true);
    return next;
  }

  /** Runs the handler and returns when it has; its ack or nack goes on (tracked in #settling). */
  async #handle({ row, token }: Claimed): Promise<void> {
    const { db, names, onError, maxMessageBytes } = this.#shared.options;
    const { sql } = this.#shared;
    const id = row.id as string;
    const info = decodeMessage(
      { id, key: row.key ?? '', attempt: row.attempt ?? 1, body: row.body, bytes: row.bytes ?? 0 },
      this.topic,
      this.group,
      { maxMessageBytes },
    );
    const control = createDelivery(info, {
      ack: () => this.#ack(id, token),
      nack: (delayMs) => this.#settle(`nack of ${id}`, () => db.query(sql.nack, [this.topic, this.group, id, token, delayMs], `${names.raw}.bnack`)),
    });
    this.#held.set(id, { id, token, control });
    const handler = this.#handler;
    let returned!: () => void;
    const handlerReturned = new Promise<void>((resolve) => {
      returned = resolve;
    });
    await Promise.resolve(); // the handler never runs inside the claim loop's turn
    const settled: Promise<void> = handleDelivery(async (delivery) => {
      try {
        await handler(delivery);
      } finally {
        returned();
      }
    }, control.delivery, onError).finally(() => {
      if (this.#held.get(id)?.control === control) this.#held.delete(id);
      this.#settling.delete(settled);
      this.wake();
    });
    this.#settling.add(settled);
    await Promise.race([handlerReturned, settled]);
  }

  /** Runs a nack, retrying while the database is unreachable. */
  async #settle(what: string, op: () => Promise<unknown>): Promise<void> {
    const deadline = Date.now() + this.#shared.options.settleTimeoutMs;
    await retryTransient(op, deadline, `${what} on ${this.topic}/${this.group}`, () => this.#dead);
  }

  async #release(rows: ReadonlyArray<{ readonly id: string; readonly token: string }>, unstarted: boolean): Promise<void> {
    if (rows.length === 0) return;
    const { db, onError } = this.#shared.options;
    try {
      await within(
        db.query(this.#shared.sql.release, [this.topic, this.group, rows.map((r) => r.id), rows.map((r) => r.token), unstarted ? 1 : 0]),
        2_000,
      );
    } catch (error) {
      // The leases run out on their own; the messages come back then.
      onError(adapterError(error, 'hand back'), `postgres subscriber: hand back ${rows.length} message(s) of ${this.topic}/${this.group}`);
    } finally {
      this.wake();
    }
  }

  async #recreateGroup(): Promise<void> {
    try {
      await this.#shared.options.db.query(this.#shared.sql.ensureGroup, [this.topic, this.group, this.#startFrom]);
    } catch {
      // Reported by the turn that failed; the next turn tries again.
    }
  }

  #sleep(ms: number): Promise<void> {
    if (this.#dirty || this.#dead) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#wakeSleeper = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wakeSleeper = done;
    });
  }

  /** See PostgresSubscriber.simulateCrashForTests. */
  crash(): void {
    if (this.#closing !== undefined) return;
    this.#crashed = true;
    this.#dead = true;
    this.#stopping = true;
    this.wake();
    this.#buffer.length = 0;
    for (const held of this.#held.values()) held.control.abandon();
    this.#held.clear();
    this.#closing = Promise.resolve();
    this.#resolveClosed();
  }

  close(options?: CloseOptions): Promise<void> {
    this.#closing ??= (async () => {
      const deadline = Date.now() + (options?.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS);
      const left = (): number => Math.max(0, deadline - Date.now());
      this.#stopping = true;
      this.wake();
      // Fetched but not started: back to the group at once. A turn in flight does the same with
      // what it gets (see #run). The loop keeps sending acks of handlers that finish meanwhile.
      await this.#release(this.#buffer.splice(0).map((c) => ({ id: c.row.id as string, token: c.token })), true);
      await this.#pool.drain(left());
      if (this.#settling.size > 0) await within(Promise.allSettled([...this.#settling]), left()).catch(() => undefined);
      // Handlers still running are abandoned: their late ack/nack is ignored, and their messages
      // go back to the group now rather than at lease expiry.
      const abandoned = [...this.#held.values()];
      this.#held.clear();
      for (const held of abandoned) held.control.abandon();
      this.#dead = true;
      this.wake();
      await this.#release(abandoned, false);
      await within(this.#loop, left()).catch(() => undefined);
      this.#resolveClosed();
    })();
    return this.#closing;
  }
}
