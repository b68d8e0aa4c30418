import type { EventStore, ReadAllOptions, ReadAllResult, RecordedEvent } from '@causeway/core';

/** What a store implementation hands the suite. */
export interface StoreHarness<TTx = unknown> {
  readonly store: EventStore<TTx>;
  /**
   * A deliberately naive global reader: committed events with sequence > afterSeq, in sequence
   * order, for one tenant. The gap test runs it beside the real reader to show it misses events.
   */
  readonly naiveReadAll?: (tenantId: string, afterSeq: bigint, limit: number) => Promise<readonly RecordedEvent[]>;
  /** Releases what create() made. */
  close(): Promise<void>;
}

export interface StoreCapabilities {
  /**
   * Transactions really run at the same time. False for an engine with one connection (PGlite):
   * commits cannot overtake each other there, so no gap can appear for the naive reader to miss.
   */
  readonly concurrentTransactions: boolean;
}

export interface StoreSuiteOptions<TTx = unknown> {
  readonly name: string;
  readonly capabilities: StoreCapabilities;
  /** Called once per suite; tests isolate themselves by unique tenant ids. */
  readonly create: () => Promise<StoreHarness<TTx>>;
  /** Multiplies workload sizes; the stress run uses more. Default 1. */
  readonly scale?: number;
}

let counter = 0;
/** A tenant id no other test uses, so tests can share one store and run in parallel. */
export function uniqueTenant(label: string): string {
  counter++;
  return `${label}-${process.pid}-${Date.now().toString(36)}-${counter}`.slice(0, 64);
}

export async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * readAll once at least `count` events are readable. A gap-safe reader holds back while any
 * older transaction on the server is open (another test file may hold one), so one empty read
 * right after an append means "not yet", not "nothing there".
 */
export async function readAllVisible(store: EventStore, options: ReadAllOptions, count: number, timeoutMs = 15_000): Promise<ReadAllResult> {
  let result: ReadAllResult | undefined;
  await waitFor(async () => {
    result = await store.readAll(options);
    return result.events.length >= count;
  }, timeoutMs, `readAll to show ${count} event(s)`);
  return result as ReadAllResult;
}
