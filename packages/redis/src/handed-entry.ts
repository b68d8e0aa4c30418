import { performance } from 'node:perf_hooks';
import type { DeliveryControl, SettleOps } from '@causeway/core';

/** Most entries the adaptive prefetch keeps ahead of free handler slots. */
const MAX_PREFETCH = 256;
/**
 * Adaptive prefetch: fetch ahead only as many entries as the handlers are expected to start
 * within this share of ackTimeoutMs (judged by how long handlers have been taking), so that an
 * entry waiting in hand does not run into its ack timeout and get claimed by another consumer.
 */
const PREFETCH_WAIT_SHARE = 0.1;

/**
 * How much a subscription may fetch: handlers running plus entries waiting stay within
 * concurrency + prefetch, and settles unanswered within the same capacity.
 */
export class FetchBudget {
  /** Handlers running (not returned yet). */
  running = 0;
  /** Acks and nacks sent (or about to be) and not answered yet. */
  settling = 0;
  readonly #concurrency: number;
  readonly #prefetch: number | undefined;
  readonly #ackTimeoutMs: number;
  /** Smoothed time a handler takes, ms; undefined until one has returned. */
  #handlerMs: number | undefined;

  constructor(concurrency: number, prefetch: number | undefined, ackTimeoutMs: number) {
    this.#concurrency = concurrency;
    this.#prefetch = prefetch;
    this.#ackTimeoutMs = ackTimeoutMs;
  }

  /**
   * Entries fetched ahead of free handler slots. The `prefetch` option when given; else adaptive:
   * from the concurrency (until handlers have shown their speed) up to MAX_PREFETCH, as many as
   * the handlers start within PREFETCH_WAIT_SHARE of the ack timeout at their recent pace.
   */
  prefetch(): number {
    if (this.#prefetch !== undefined) return this.#prefetch;
    if (this.#handlerMs === undefined) return this.#concurrency;
    const fits = Math.floor((this.#concurrency * this.#ackTimeoutMs * PREFETCH_WAIT_SHARE) / Math.max(this.#handlerMs, 0.01));
    return Math.max(this.#concurrency, Math.min(MAX_PREFETCH, fits));
  }

  capacity(): number {
    return this.#concurrency + this.prefetch();
  }

  /** Room to fetch, with `waiting` entries fetched and not started. */
  room(waiting: number): number {
    return this.capacity() - this.running - waiting;
  }

  /**
   * Fetch once half the capacity is free (or nothing is running or waiting), so reads come in
   * batches rather than one per finished handler, and while less than a capacity's worth of
   * settles is unanswered.
   */
  mayFetch(waiting: number): boolean {
    const capacity = this.capacity();
    const full = this.room(waiting) < Math.max(1, Math.floor(capacity / 2)) && this.running + waiting > 0;
    return !full && this.settling < capacity;
  }

  /** A handler returned after `ms`. */
  returned(ms: number): void {
    this.running--;
    this.#handlerMs = this.#handlerMs === undefined ? ms : this.#handlerMs + (ms - this.#handlerMs) * 0.2;
  }
}

export interface HandedOwner {
  ack(id: string): Promise<void>;
  nack(id: string, delayMs: number): Promise<void>;
  /** A handler returned after `ms`: its slot is free. */
  returned(ms: number): void;
}

/**
 * One entry handed to a handler: its settle operations (createDelivery calls them as methods, so
 * no closures per message) and its handler slot, freed once.
 */
export class Handed implements SettleOps {
  control: DeliveryControl | undefined;
  readonly id: string;
  readonly #owner: HandedOwner;
  readonly #started = performance.now();
  #returned = false;

  constructor(id: string, owner: HandedOwner) {
    this.id = id;
    this.#owner = owner;
  }

  ack(): Promise<void> {
    return this.#owner.ack(this.id);
  }

  nack(delayMs: number): Promise<void> {
    return this.#owner.nack(this.id, delayMs);
  }

  returned(): void {
    if (this.#returned) return;
    this.#returned = true;
    this.#owner.returned(performance.now() - this.#started);
  }
}
