import type { Publisher, Subscriber } from '@causeway/core';
import { afterAll, afterEach, beforeAll } from 'vitest';
import type { BrokerCapabilities, BrokerHarness, BrokerSettings, BrokerSuiteOptions } from './broker-harness.js';

/** What each case file gets: the harness of its describe block, and publishers/subscribers closed after each case. */
export interface CaseContext {
  readonly name: string;
  readonly capabilities: BrokerCapabilities;
  readonly settings: BrokerSettings;
  harness(): BrokerHarness;
  publisher(): Publisher;
  subscriber(): Subscriber;
}

/** Registers the hooks of one describe block and returns its context. */
export function caseContext(options: BrokerSuiteOptions, settings: BrokerSettings): CaseContext {
  let harness: BrokerHarness | undefined;
  const open: Array<Publisher | Subscriber> = [];
  beforeAll(async () => {
    harness = await options.create(settings);
  });
  afterEach(async () => {
    const all = open.splice(0);
    await Promise.all(all.map((x) => x.close({ timeoutMs: 1_000 }).catch(() => undefined)));
  });
  afterAll(async () => {
    await harness?.close();
  });
  const h = (): BrokerHarness => {
    if (harness === undefined) throw new Error('broker harness not created');
    return harness;
  };
  return {
    name: options.name,
    capabilities: options.capabilities,
    settings,
    harness: h,
    publisher() {
      const p = h().publisher();
      open.push(p);
      return p;
    },
    subscriber() {
      const s = h().subscriber();
      open.push(s);
      return s;
    },
  };
}
