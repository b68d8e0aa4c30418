import {
  checkRetention,
  createDelivery,
  createEvent,
  DEFAULT_DEDUP_RETENTION_MS,
  isParkingFullError,
  isReplayDelivery,
  ParkingFullError,
  PermanentError,
  pipeline,
  replayDeadLetters,
  retryHorizonMs,
  sequenced,
  validateDeadLetterFilter,
  validateOperatorNote,
  validatePageRequest,
  type DeadLetterReplaySource,
  type Delivery,
  type EventDelivery,
  type KeyParking,
  type ParkOutcome,
  type ReceivedEvent,
  type ReplayItem,
  type ReplayOutcome,
} from '@causeway/core';
import { describe, expect, it } from 'vitest';

const event = (n: number): ReceivedEvent => createEvent({ eventType: 'test.thing.happened', data: { n } }, { tenantId: 't1', producer: 'test' });

/** A live delivery and how it was settled. */
function live(key: string, kind: 'event' | 'undecodable' = 'event') {
  const settled: string[] = [];
  const info =
    kind === 'event'
      ? ({ topic: 'orders', group: 'g', key, attempt: 1, brokerId: '7', kind, event: event(1) } as const)
      : ({ topic: 'orders', group: 'g', key, attempt: 1, brokerId: '7', kind, error: new PermanentError('bad'), raw: { headers: {}, body: new Uint8Array() } } as const);
  const { delivery } = createDelivery(info, {
    ack: async () => void settled.push('ack'),
    nack: async (delayMs) => void settled.push(`nack ${delayMs}`),
  });
  return { delivery, settled };
}

/** A replay source in memory: items wait in `ready`; settle records outcomes. */
class ListSource implements DeadLetterReplaySource {
  ready: ReplayItem[] = [];
  readonly settled: Array<[string, ReplayOutcome]> = [];
  claimError: Error | null = null;
  async claim(_consumer: string, limit: number): Promise<readonly ReplayItem[]> {
    if (this.claimError !== null) {
      const e = this.claimError;
      this.claimError = null;
      throw e;
    }
    return this.ready.splice(0, limit);
  }
  async settle(item: ReplayItem, outcome: ReplayOutcome): Promise<void> {
    this.settled.push([item.id, outcome]);
  }
}

const item = (id: string, n: number, attempt = 4): ReplayItem => ({ kind: 'dead-letter', id, claim: 'c1', topic: 'orders', group: 'g', key: `k${n}`, attempt, event: event(n) });

describe('retryHorizonMs() and checkRetention()', () => {
  it('adds the largest backoff of every retried attempt', () => {
    expect(retryHorizonMs()).toBe(127_000); // 1+2+4+...+64 s after 3 immediate tries, 10 attempts
    expect(retryHorizonMs({ immediate: 1, maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 250 })).toBe(100 + 200 + 250);
    expect(retryHorizonMs({ immediate: 5, maxAttempts: 5 })).toBe(0);
    expect(retryHorizonMs({ baseDelayMs: 0 })).toBe(0);
    expect(retryHorizonMs({ immediate: 1, maxAttempts: 1_000_000_001, baseDelayMs: 1_000, maxDelayMs: 2_000 })).toBe(1_000 + 2_000 * 999_999_999);
    expect(() => retryHorizonMs({ maxAttempts: 0 })).toThrow(/maxAttempts must be an integer >= 1/);
  });

  it('refuses a dedup window shorter than the horizon, naming both figures', () => {
    expect(checkRetention(DEFAULT_DEDUP_RETENTION_MS)).toBe(7 * 24 * 3_600_000);
    expect(checkRetention(127_000)).toBe(127_000);
    expect(() => checkRetention(126_999)).toThrow(/window of 126999 ms is shorter than the retry horizon of 127000 ms/);
    expect(() => checkRetention(3_600_000, { maxAttempts: 30, maxDelayMs: 600_000 })).toThrow(/3600000 ms is shorter than the retry horizon of 11223000 ms/);
    expect(() => checkRetention(0)).toThrow(/integer number of milliseconds >= 1/);
  });
});

describe('replayDeadLetters()', () => {
  it('feeds claimed items to the handler as deliveries and settles each with the outcome', async () => {
    const source = new ListSource();
    const seen: Array<{ n: unknown; attempt: number; replay: boolean; brokerId: string }> = [];
    const handler = async (d: Delivery) => {
      const e = (d as EventDelivery).event;
      seen.push({ n: (e.data as { n: number }).n, attempt: d.attempt, replay: isReplayDelivery(d), brokerId: d.brokerId });
      const n = (e.data as { n: number }).n;
      if (n === 2) throw new PermanentError('still broken');
      if (n === 3) await d.nack({ delayMs: 250 });
    };
    const worker = replayDeadLetters(source, handler, { consumer: 'billing', pollMs: 60_000, batchSize: 2 });
    try {
      await worker.drain(); // the worker's first pass found nothing
      source.ready.push(item('1', 1), item('2', 2), item('3', 3), item('4', 4, 1));
      expect(await worker.drain()).toBe(4);
      expect(seen).toEqual([
        { n: 1, attempt: 4, replay: true, brokerId: 'dead-letter:1' },
        { n: 2, attempt: 4, replay: true, brokerId: 'dead-letter:2' },
        { n: 3, attempt: 4, replay: true, brokerId: 'dead-letter:3' },
        { n: 4, attempt: 1, replay: true, brokerId: 'dead-letter:4' },
      ]);
      const outcomes = Object.fromEntries(source.settled);
      expect(outcomes['1']).toEqual({ kind: 'acked' });
      expect(outcomes['2']).toMatchObject({ kind: 'nacked', delayMs: 0, error: { errorClass: 'PermanentError', errorMessage: 'still broken' } });
      expect((outcomes['2'] as { error: { fingerprint: string } }).error.fingerprint).toMatch(/^PermanentError:[0-9a-f]{8}$/);
      expect(outcomes['3']).toEqual({ kind: 'nacked', delayMs: 250 });
      expect(outcomes['4']).toEqual({ kind: 'acked' });
      expect(isReplayDelivery(live('k').delivery)).toBe(false);
    } finally {
      await worker.stop();
    }
  });

  it('reports a failed claim and keeps going; stops on abort; a pass of failures only does not loop', async () => {
    const source = new ListSource();
    const reported: string[] = [];
    const abort = new AbortController();
    let runs = 0;
    const worker = replayDeadLetters(
      source,
      async () => {
        runs++;
        throw new Error('nope');
      },
      { consumer: 'billing', pollMs: 60_000, signal: abort.signal, onError: (_e, context) => reported.push(context) },
    );
    await worker.drain();
    source.claimError = new Error('database down');
    expect(await worker.drain()).toBe(0);
    expect(reported).toEqual(['replay claim for consumer billing']);
    // A failing item goes back to the source; the drain stops after one pass instead of spinning.
    source.ready.push(item('9', 9));
    const again = { ...item('9', 9) };
    const original = source.settle.bind(source);
    source.settle = async (i, o) => {
      await original(i, o);
      if (source.settled.length < 50) source.ready.push(again);
    };
    expect(await worker.drain()).toBe(1);
    expect(runs).toBe(1);
    abort.abort();
    await worker.stopped;
    expect(() => replayDeadLetters(source, async () => undefined, { consumer: '' })).toThrow(/consumer name/);
    expect(() => replayDeadLetters(source, async () => undefined, { consumer: 'c', leaseMs: 0 })).toThrow(/leaseMs must be an integer >= 1/);
  });
});

/** Parking in memory: `blocked` keys park; `cap` parked messages at most. */
class FakeParking implements KeyParking {
  readonly parked: string[] = [];
  constructor(
    readonly blocked: Set<string>,
    readonly cap = 100,
  ) {}
  async park(_consumer: string, d: EventDelivery, maxParked: number): Promise<ParkOutcome> {
    if (!this.blocked.has(d.key)) return 'free';
    if (this.parked.length >= Math.min(this.cap, maxParked)) return 'full';
    this.parked.push(d.key);
    return 'parked';
  }
}

describe('sequenced()', () => {
  it('runs free keys, acks parked ones, passes replays and undecodable messages straight through', async () => {
    const parking = new FakeParking(new Set(['A']));
    const ran: string[] = [];
    const handler = pipeline(async (d) => void ran.push(d.key), sequenced(parking, { consumer: 'view' }));
    const free = live('B');
    await handler(free.delivery);
    const blocked = live('A');
    await handler(blocked.delivery);
    const undecodable = live('A', 'undecodable');
    await handler(undecodable.delivery);
    expect(ran).toEqual(['B', 'A']);
    expect(blocked.settled).toEqual(['ack']);
    expect(parking.parked).toEqual(['A']);
    // The replay worker's own deliveries are what parking held back: never parked again.
    const source = new ListSource();
    source.ready.push({ ...item('5', 5), key: 'A' });
    const worker = replayDeadLetters(source, handler, { consumer: 'view', pollMs: 60_000 });
    await worker.drain();
    await worker.stop();
    expect(ran).toEqual(['B', 'A', 'A']);
    expect(parking.parked).toEqual(['A']);
  });

  it('at the cap: nacks (never acks) the message, aborts the subscription signal with ParkingFullError, refuses the rest', async () => {
    const parking = new FakeParking(new Set(['A']), 1);
    const stop = new AbortController();
    const stops: ParkingFullError[] = [];
    const ran: string[] = [];
    const handler = pipeline(async (d) => void ran.push(d.key), sequenced(parking, { consumer: 'view', maxParked: 5, stop, onStop: (e) => stops.push(e) }));
    await handler(live('A').delivery);
    const atCap = live('A');
    const error = await Promise.resolve(handler(atCap.delivery)).catch((e: unknown) => e);
    expect(isParkingFullError(error)).toBe(true);
    expect(atCap.settled).toEqual(['nack 1000']);
    expect(stop.signal.aborted).toBe(true);
    expect(stop.signal.reason).toBe(error);
    expect(error).toMatchObject({ consumer: 'view', key: 'A', maxParked: 5 });
    const later = live('B');
    await expect(Promise.resolve(handler(later.delivery))).rejects.toBe(error);
    expect(later.settled).toEqual(['nack 1000']);
    expect(ran).toEqual([]);
    expect(stops).toEqual([error]);
    expect(() => sequenced(parking, { consumer: 'view', maxParked: 0 })).toThrow(/maxParked must be an integer >= 1/);
  });
});

describe('DLQ operation guards', () => {
  it('checks filters, notes and pages the same way for every store', () => {
    expect(() => validateDeadLetterFilter({}, 'purge')).toThrow(/purge needs a filter/);
    expect(() => validateDeadLetterFilter({})).not.toThrow();
    expect(() => validateDeadLetterFilter({ ids: ['12', '0x1'] })).toThrow(/decimal strings/);
    expect(() => validateDeadLetterFilter({ status: ['dead', 'gone' as 'dead'] })).toThrow(/status must be one of/);
    expect(() => validateDeadLetterFilter({ failedTo: 'soon' })).toThrow(/failedTo must be an ISO-8601 time/);
    expect(() => validateDeadLetterFilter({ ids: [] }, 'replay')).not.toThrow();
    expect(() => validateOperatorNote({ by: 'ann', reason: '' }, 'skip')).toThrow(/skip needs a non-empty "reason"/);
    expect(() => validateOperatorNote({ by: 'x'.repeat(1001), reason: 'r' }, 'skip')).toThrow(/"by" of at most 1000/);
    expect(validatePageRequest({})).toBe(50);
    expect(() => validatePageRequest({ limit: 1001 })).toThrow(/1-1000/);
    expect(() => validatePageRequest({ after: 'abc' })).toThrow(/cursor/);
  });
});
