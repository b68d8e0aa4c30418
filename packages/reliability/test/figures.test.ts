import { describe, expect, it } from 'vitest';
import type { AppliedRow, SentMessage } from './fixtures/effects.js';
import { computeFigures } from './fixtures/figures.js';

/** The checker the fault tests trust: it must see every kind of failure they assert is absent. */
const sent: SentMessage[] = [
  { eventId: 'a1', key: 'a', version: 1 },
  { eventId: 'a2', key: 'a', version: 2 },
  { eventId: 'a3', key: 'a', version: 3 },
  { eventId: 'b1', key: 'b', version: 1 },
  { eventId: 'b2', key: 'b', version: 2 },
];

let id = 0;
const row = (m: SentMessage): AppliedRow => ({ id: String((id += 1)), key: m.key, version: m.version, eventId: m.eventId, appliedBy: 't' });
const at = (eventId: string): SentMessage => sent.find((m) => m.eventId === eventId) as SentMessage;
const figures = (applied: string[], extra: { notApplied?: string[]; outOfFlow?: string[] } = {}) =>
  computeFigures({
    sent,
    applied: applied.map((e) => row(at(e))),
    notApplied: new Set(extra.notApplied ?? []),
    outOfFlow: new Set(extra.outOfFlow ?? []),
    published: sent.length,
    delivered: applied.length,
    duplicatesDelivered: 0,
  });

describe('fault figures', () => {
  it('a clean run has nothing to report, keys interleaved', () => {
    const f = figures(['a1', 'b1', 'a2', 'b2', 'a3']);
    expect(f).toMatchObject({ committed: 5, duplicatesApplied: 0, lost: 0, orderViolations: 0, unexpected: 0 });
  });

  it('counts a message never applied as lost', () => {
    expect(figures(['a1', 'a2', 'b1', 'b2']).lost).toBe(1);
  });

  it('counts a second application as a duplicate applied, not as an order violation', () => {
    const f = figures(['a1', 'a2', 'a2', 'a3', 'b1', 'b2']);
    expect(f.duplicatesApplied).toBe(1);
    expect(f.orderViolations).toBe(0);
  });

  it('counts a swap within a key, and a skipped version, as order violations', () => {
    expect(figures(['a2', 'a1', 'a3', 'b1', 'b2']).orderViolations).toBe(2);
    // b2 before b1 is one violation, b1 arriving late is another.
    expect(figures(['a1', 'a2', 'a3', 'b2', 'b1']).orderViolations).toBe(2);
  });

  it('lets dead-lettered messages be absent, and replayed ones apply out of the flow', () => {
    const deadLettered = figures(['a1', 'a3', 'b1', 'b2'], { notApplied: ['a2'] });
    expect(deadLettered).toMatchObject({ lost: 0, orderViolations: 0 });
    const replayed = figures(['a1', 'a3', 'b1', 'b2', 'a2'], { outOfFlow: ['a2'] });
    expect(replayed).toMatchObject({ lost: 0, orderViolations: 0, duplicatesApplied: 0 });
    // Without saying so, a2 applied last is out of order.
    expect(figures(['a1', 'a3', 'b1', 'b2', 'a2']).orderViolations).toBeGreaterThan(0);
  });

  it('counts effect rows of unknown event ids as unexpected', () => {
    const f = computeFigures({
      sent,
      applied: [...sent.map(row), { id: '99', key: 'a', version: 4, eventId: 'zz', appliedBy: 't' }],
      published: 5,
      delivered: 6,
      duplicatesDelivered: 0,
    });
    expect(f.unexpected).toBe(1);
  });
});
