import { uuidv7 } from '@causeway/core';

/** The event every system writes: a cart line, ~200 bytes of JSON. A type alias so it fits Emmett's record type. */
export type ItemAdded = {
  readonly orderId: string;
  readonly sku: string;
  readonly qty: number;
  readonly price: number;
  readonly currency: string;
  readonly note: string;
};

export const EVENT_TYPE = 'bench.item.added';
export const TENANT = 'bench';

export type CartState = { readonly items: number; readonly qty: number; readonly totalCents: number };

export const initialCart = (): CartState => ({ items: 0, qty: 0, totalCents: 0 });

/** The fold used by every system's load case, so the work after the read is identical. */
export function evolveCart(state: CartState, event: { readonly data: ItemAdded }): CartState {
  const d = event.data;
  return { items: state.items + 1, qty: state.qty + d.qty, totalCents: state.totalCents + d.qty * Math.round(d.price * 100) };
}

export function itemAdded(n: number): ItemAdded {
  return {
    orderId: `ord-${uuidv7()}`,
    sku: `SKU-${String(n % 50_000).padStart(5, '0')}`,
    qty: 1 + (n % 5),
    price: 4.99 + (n % 90),
    currency: 'EUR',
    note: 'gift wrap requested; leave at the side door after 5pm; call ahead',
  };
}

export function itemsAdded(count: number, from = 0): ItemAdded[] {
  return Array.from({ length: count }, (_, i) => itemAdded(from + i));
}

/** How much each case does. `--quick` is a smoke run: same shapes, fewer calls. */
export interface Workload {
  readonly appendSeqCalls: number;
  readonly appendSeqStreams: number;
  readonly appendC16PerWorker: number;
  readonly appendC16StreamsPerWorker: number;
  readonly append10Calls: number;
  readonly append10Streams: number;
  readonly reads: number;
  readonly loads: number;
  /** Upper bound on one measured case, so a slow system cannot blow the run time. */
  readonly budgetMs: number;
}

export const CONCURRENCY = 16;
export const READ_STREAM_EVENTS = 1_000;
export const AGGREGATE_EVENTS = 10_000;
export const SNAPSHOT_AT = 9_990;
export const SEED_BATCH = 1_000;

export const FULL_WORKLOAD: Workload = {
  appendSeqCalls: 2_000,
  appendSeqStreams: 200,
  appendC16PerWorker: 500,
  appendC16StreamsPerWorker: 10,
  append10Calls: 500,
  append10Streams: 50,
  reads: 200,
  loads: 200,
  budgetMs: 12_000,
};

export const QUICK_WORKLOAD: Workload = {
  appendSeqCalls: 200,
  appendSeqStreams: 20,
  appendC16PerWorker: 50,
  appendC16StreamsPerWorker: 2,
  append10Calls: 50,
  append10Streams: 10,
  reads: 20,
  loads: 10,
  budgetMs: 3_000,
};
