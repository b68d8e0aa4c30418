import { AdapterError } from '@causeway/core';
import { timeLimit, type RedisConnection } from './redis-connection.js';

interface Waiter {
  resolve(): void;
  reject(error: unknown): void;
}

/** Acks taken out of PendingAcks to go out as one XACK. */
export interface AckBatch {
  readonly ids: readonly string[];
  readonly waiters: readonly Waiter[];
}

/**
 * Acks waiting to go out together: one XACK with many ids instead of one command per message.
 * Each ack() still resolves only once Redis has replied to the XACK that carried it (the Delivery
 * contract: ack resolves once the broker has it), and rejects if that XACK failed.
 */
class PendingAcks {
  #ids: string[] = [];
  #waiters: Waiter[] = [];

  get size(): number {
    return this.#ids.length;
  }

  add(id: string): Promise<void> {
    this.#ids.push(id);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Everything waiting, or undefined when nothing is. */
  take(): AckBatch | undefined {
    if (this.#ids.length === 0) return undefined;
    const batch = { ids: this.#ids, waiters: this.#waiters };
    this.#ids = [];
    this.#waiters = [];
    return batch;
  }
}

/** Where a batch goes and how it is named in errors. */
export interface AckTarget {
  readonly stream: string;
  readonly group: string;
  readonly topic: string;
}

/**
 * Sends one XACK for the batch on `client` and settles its waiters. Synchronous up to the send,
 * so a caller that sends another command right after it (the next read on the same connection)
 * gets both written together, XACK first. `asap` puts it in front of commands queued on the
 * client and not written yet.
 */
export function sendAcks(batch: AckBatch, client: RedisConnection, target: AckTarget, timeoutMs: number, asap = false): Promise<void> {
  return client.sendCommand(['XACK', target.stream, target.group, ...batch.ids], { ...timeLimit(timeoutMs), asap }).then(
    () => {
      for (const w of batch.waiters) w.resolve();
    },
    (cause: unknown) => {
      const error = new AdapterError('redis', `XACK of ${batch.ids.length} message(s) of ${target.topic}/${target.group} failed; they will be redelivered`, { cause });
      for (const w of batch.waiters) w.reject(error);
    },
  );
}

/**
 * A subscription's acks. They go out in batches, one XACK for many ids, after this turn of the
 * event loop (handlers that return at once all get in), or with the subscription's next read if
 * that goes out first. If the read was queued and the client has not written it yet, the XACK
 * goes in front of it on the reader connection (`asap`), so both leave in one write; else on the
 * command connection. Each caller still waits for the XACK's reply.
 */
export class AckSender {
  readonly #pending = new PendingAcks();
  readonly #target: AckTarget;
  readonly #reader: RedisConnection;
  readonly #command: RedisConnection;
  readonly #timeoutMs: number;
  #scheduled = false;
  #readUnwritten = false;

  constructor(target: AckTarget, reader: RedisConnection, command: RedisConnection, timeoutMs: number) {
    this.#target = target;
    this.#reader = reader;
    this.#command = command;
    this.#timeoutMs = timeoutMs;
  }

  ack(id: string): Promise<void> {
    const done = this.#pending.add(id);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        const batch = this.#pending.take();
        if (batch === undefined) return;
        const onReader = this.#readUnwritten;
        void sendAcks(batch, onReader ? this.#reader : this.#command, this.#target, this.#timeoutMs, onReader);
      });
    }
    return done;
  }

  /** Call right before queueing a read on the reader connection: what waits goes in front of it. */
  beforeRead(): void {
    const batch = this.#pending.take();
    if (batch !== undefined) void sendAcks(batch, this.#reader, this.#target, this.#timeoutMs);
  }

  /**
   * Call right after queueing the read. The client writes what was queued at its next
   * setImmediate, registered by that send (or by the XACK just before it); an immediate
   * registered now runs after that write.
   */
  afterRead(): void {
    this.#readUnwritten = true;
    setImmediate(() => (this.#readUnwritten = false));
  }

  /** The process died: acks not sent yet never will be (their handlers are abandoned). */
  drop(): void {
    this.#pending.take();
  }
}
