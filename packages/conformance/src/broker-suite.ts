import { describe, expect, it } from 'vitest';
import { caseContext } from './broker-context.js';
import { failureCases } from './broker-failure-cases.js';
import { groupCases } from './broker-group-cases.js';
import { SUITE_SETTINGS, type BrokerSuiteOptions } from './broker-harness.js';
import { formatFigures, runFlow, type FlowFigures } from './broker-stress.js';
import { wireCases } from './broker-wire-cases.js';

/**
 * The contract every broker adapter proves (../shared/research/platform-anchors.md §2.3), from
 * its own test file in one call. Cases that a declared capability excludes are registered as
 * skipped, so the report says what was not checked. The broker-restart cases are in
 * brokerRestartSuite (they run after every other test file).
 */
export function brokerSuite(options: BrokerSuiteOptions): void {
  describe(`brokerSuite: ${options.name}`, () => {
    const ctx = caseContext(options, SUITE_SETTINGS);
    describe('wire', () => wireCases(ctx));
    describe('groups', () => groupCases(ctx));
    describe('failures', () => failureCases(ctx));
    describe('stress', () => {
      const runs = options.stress ?? Number(process.env.CAUSEWAY_BROKER_STRESS ?? 3);
      it(`${runs} busy topics in parallel lose nothing${options.capabilities.ordering === 'per-key' ? ' and keep per-key order' : ''}`, async () => {
        const figures = await Promise.all(
          Array.from({ length: runs }, (_, i) => runFlow(ctx, `stress${i}`, { messages: 400, keys: 40 })),
        );
        const total = sum(figures);
        console.info(`[${options.name}] stress x${runs}: ${formatFigures(total)}`);
        expect(total.lost).toBe(0);
        expect(total.orderViolations).toBe(0);
      }, 240_000);
    });
  });
}

export function sum(figures: readonly FlowFigures[]): FlowFigures {
  return figures.reduce((a, f) => ({
    published: a.published + f.published,
    delivered: a.delivered + f.delivered,
    duplicates: a.duplicates + f.duplicates,
    lost: a.lost + f.lost,
    orderViolations: a.orderViolations + f.orderViolations,
    publishRetries: a.publishRetries + f.publishRetries,
  }));
}
