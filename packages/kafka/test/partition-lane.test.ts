import { describe, expect, it } from 'vitest';
import { decodeLedger, encodeLedger, MAX_LEDGER_CHARS } from '../src/offset-ledger.js';
import { LEDGER_WINDOW, PartitionLane } from '../src/partition-lane.js';

/**
 * The per-partition bookkeeping that decides per-key order, what offset is committed and what
 * `attempt` a record carries, without a broker: records in, settlements in, decisions out.
 */

function lane(records: ReadonlyArray<readonly [number, string]>, committed = 0, ledger: string | null = null): PartitionLane<string> {
  const l = new PartitionLane<string>(0);
  l.load(BigInt(committed), ledger);
  for (const [offset, key] of records) l.receive(BigInt(offset), key, `r${offset}`);
  return l;
}

const offsets = (entries: ReadonlyArray<{ readonly offset: bigint }>): number[] => entries.map((e) => Number(e.offset));

describe('PartitionLane', () => {
  it('hands out one record per key, oldest first, and the next of a key only after the ack', () => {
    const l = lane([[0, 'a'], [1, 'a'], [2, 'b'], [3, 'c'], [4, 'b']]);
    const first = l.startable(0, 10);
    expect(offsets(first)).toEqual([0, 2, 3]);
    for (const e of first) expect(l.begin(e)).toBe(1);
    expect(l.startable(0, 10)).toEqual([]);
    l.ack(first[1]!); // b@2
    expect(offsets(l.startable(0, 10))).toEqual([4]);
    l.ack(first[0]!); // a@0
    expect(offsets(l.startable(0, 10))).toEqual([1, 4]);
    expect(offsets(l.startable(0, 1))).toEqual([1]);
  });

  it('commits only up to the first unacked record, and remembers acks past it in the ledger', () => {
    const l = lane([[10, 'a'], [11, 'b'], [12, 'c']], 10);
    const [a, b, c] = l.startable(0, 10);
    for (const e of [a!, b!, c!]) l.begin(e);
    expect(l.watermark()).toBe(10n);
    l.ack(c!);
    l.ack(b!);
    expect(l.watermark()).toBe(10n);
    expect(decodeLedger(10n, l.ledger())).toEqual(
      new Map([
        [10n, { delivered: 1, acked: false }],
        [11n, { delivered: 1, acked: true }],
        [12n, { delivered: 1, acked: true }],
      ]),
    );
    l.ack(a!);
    expect(l.watermark()).toBe(13n);
    expect(l.ledger()).toBe('cw1;');
  });

  it('keeps a nacked record at the head of its key until its delay has passed, counting attempts', () => {
    const l = lane([[0, 'a'], [1, 'a'], [2, 'b']]);
    const [a0] = l.startable(1_000, 10);
    l.begin(a0!);
    l.nack(a0!, 2_500);
    expect(offsets(l.startable(1_000, 10))).toEqual([2]);
    expect(l.nextWake(1_000)).toBe(2_500);
    expect(offsets(l.startable(2_500, 10))).toEqual([0, 2]);
    expect(l.begin(a0!)).toBe(2);
    l.release(a0!); // a lease ran out
    expect(l.begin(a0!)).toBe(3);
    l.ack(a0!);
    expect(offsets(l.startable(2_500, 10))).toEqual([1, 2]);
  });

  it('a new owner reading the ledger continues the attempt count and skips what was acked', () => {
    const before = lane([[5, 'a'], [6, 'b'], [7, 'c'], [8, 'a']], 5);
    const firsts = before.startable(0, 10);
    for (const e of firsts) before.begin(e);
    const [a5, b6, c7] = firsts;
    before.nack(a5!, 0);
    before.begin(a5!); // a@5 delivered twice, still out
    before.ack(b6!); // acked past the watermark
    // c@7 delivered once and out when the owner died; a@8 never delivered.
    expect(c7!.delivered).toBe(1);
    const committed = before.watermark()!;
    const ledger = before.ledger();
    expect(committed).toBe(5n);

    // Records fetched before the ledger arrives wait for it.
    const after = new PartitionLane<string>(0);
    for (const o of [4, 5, 6, 7, 8]) after.receive(BigInt(o), o === 6 ? 'b' : o === 7 ? 'c' : 'a', `r${o}`);
    expect(after.startable(0, 10)).toEqual([]);
    after.load(committed, ledger);
    const next = after.startable(0, 10);
    expect(offsets(next)).toEqual([5, 7]); // 4 is below the committed offset, 6 was acked, 8 waits for a@5
    expect(next.map((e) => after.begin(e))).toEqual([3, 2]);
  });

  it('ignores records fetched again after a rewind', () => {
    const l = lane([[0, 'a'], [1, 'b']]);
    expect(l.receive(1n, 'b', 'again')).toBe(false);
    expect(l.receive(0n, 'a', 'again')).toBe(false);
    expect(l.receive(2n, 'c', 'r2')).toBe(true);
    expect(l.queued).toBe(3);
  });

  it('starts no more new records than the ledger window holds while the head is stuck', () => {
    const records = Array.from({ length: LEDGER_WINDOW + 50 }, (_, i) => [i, `k${i}`] as const);
    const l = lane(records);
    const started = l.startable(0, 10_000);
    expect(started.length).toBe(LEDGER_WINDOW);
    for (const e of started) l.begin(e);
    for (const e of started.slice(1)) l.ack(e); // everything but the head (offset 0) is acked
    expect(l.watermark()).toBe(0n);
    expect(l.startable(0, 10_000)).toEqual([]);
    l.ack(started[0]!);
    expect(l.watermark()).toBe(BigInt(LEDGER_WINDOW));
    expect(l.startable(0, 10_000).length).toBe(50);
  });

  it('has nothing to commit until it knows where the group stands', () => {
    const l = new PartitionLane<string>(3);
    l.receive(9n, 'a', 'r9');
    expect(l.watermark()).toBeUndefined();
    l.load(-1n, null); // the group has no offset for this partition yet
    expect(l.watermark()).toBe(9n);
  });
});

describe('offset ledger', () => {
  it('round-trips marks relative to the committed offset', () => {
    const marks = new Map([
      [100n, { delivered: 3, acked: false }],
      [101n, { delivered: 1, acked: true }],
      [140n, { delivered: 40, acked: false }],
    ]);
    const text = encodeLedger(100n, marks);
    expect(text).toBe('cw1;0:3,1:a,14:14');
    expect(decodeLedger(100n, text)).toEqual(marks);
  });

  it('reads metadata that is not a ledger of ours as empty', () => {
    for (const foreign of [null, undefined, '', 'some-tool-state', 'cw1;0:3,oops', 'cw1;0:3,1:a:x']) {
      expect(decodeLedger(5n, foreign)).toEqual(new Map());
    }
  });

  it('stays under the metadata limit, dropping acked marks first and the nearest counts last', () => {
    const marks = new Map<bigint, { delivered: number; acked: boolean }>();
    for (let i = 0; i < 2_000; i++) marks.set(BigInt(i * 997), { delivered: 2, acked: i % 2 === 1 });
    const text = encodeLedger(0n, marks);
    expect(text.length).toBeLessThanOrEqual(MAX_LEDGER_CHARS);
    const back = decodeLedger(0n, text);
    expect([...back.values()].every((m) => !m.acked)).toBe(true);
    expect(back.get(0n)).toEqual({ delivered: 2, acked: false });
  });
});
