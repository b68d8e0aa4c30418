import { afterAll, beforeAll, describe } from 'vitest';
import { appendCases } from './store-append-cases.js';
import { concurrencyCases } from './store-concurrency-cases.js';
import { gapCases } from './store-gap-cases.js';
import type { StoreHarness, StoreSuiteOptions } from './store-harness.js';
import { lifecycleCases } from './store-lifecycle-cases.js';
import { readCases } from './store-read-cases.js';

export interface StoreSuiteContext {
  harness(): StoreHarness<unknown>;
  readonly options: StoreSuiteOptions<unknown>;
  readonly scale: number;
}

/**
 * The EventStore contract, run by every store implementation from its own test file:
 * `storeSuite({ name, capabilities, create })`. Cases skip only what the capabilities exclude,
 * and say why.
 */
export function storeSuite<TTx>(options: StoreSuiteOptions<TTx>): void {
  const opts = options as unknown as StoreSuiteOptions<unknown>;
  let harness: StoreHarness<unknown> | null = null;
  const ctx: StoreSuiteContext = {
    harness() {
      if (!harness) throw new Error('store harness not created');
      return harness;
    },
    options: opts,
    scale: options.scale ?? 1,
  };
  describe(`storeSuite: ${options.name}`, () => {
    beforeAll(async () => {
      harness = await opts.create();
    });
    afterAll(async () => {
      await harness?.close();
    });
    appendCases(ctx);
    readCases(ctx);
    concurrencyCases(ctx);
    gapCases(ctx);
    lifecycleCases(ctx);
  });
}
