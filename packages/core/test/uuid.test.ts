import { describe, expect, it } from 'vitest';
import { isUuid, uuidv7 } from '@causeway/core';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The 48-bit Unix-millisecond prefix of a UUIDv7. */
function timestampOf(id: string): number {
  return Number.parseInt(id.replace(/-/g, '').slice(0, 12), 16);
}

describe('uuidv7', () => {
  it('puts Date.now() milliseconds in the 48-bit prefix', () => {
    const before = Date.now();
    const id = uuidv7();
    const after = Date.now();
    const ms = timestampOf(id);
    expect(ms).toBeGreaterThanOrEqual(before);
    expect(ms).toBeLessThanOrEqual(after);
  });

  it('is canonical lower-case text with version nibble 7 and variant 10xx', () => {
    for (let i = 0; i < 1000; i++) {
      const id = uuidv7();
      expect(id).toMatch(UUID_V7);
      expect(isUuid(id)).toBe(true);
      const hex = id.replace(/-/g, '');
      expect(hex.length).toBe(32);
      expect(Number.parseInt(hex[12] as string, 16)).toBe(7);
      expect(Number.parseInt(hex[16] as string, 16) >> 2).toBe(0b10);
    }
  });

  it('sorts 10,000 ids made in a tight loop in creation order, with no duplicates', () => {
    const ids: string[] = [];
    for (let i = 0; i < 10_000; i++) ids.push(uuidv7());
    const sorted = [...ids].sort();
    let outOfOrder = 0;
    for (let i = 0; i < ids.length; i++) if (sorted[i] !== ids[i]) outOfOrder++;
    expect(outOfOrder).toBe(0);
    expect(new Set(ids).size).toBe(10_000);
    expect(ids.filter((id) => !UUID_V7.test(id))).toEqual([]);
  });

  // The generator keeps its last timestamp in module state, so the tests below that pass a clock
  // value run last and in increasing order, far ahead of Date.now().
  const FUTURE = 0x192a01020304; // touches each of the six timestamp bytes

  it('encodes an explicit timestamp exactly, high bytes included', () => {
    const id = uuidv7(FUTURE);
    expect(timestampOf(id)).toBe(FUTURE);
    expect(id.slice(0, 13)).toBe('192a0102-0304');
  });

  it('stays monotonic when the clock goes backwards', () => {
    const now = FUTURE + 1_000_000;
    const a = uuidv7(now);
    const b = uuidv7(now - 5000);
    const c = uuidv7(now - 5000);
    expect(a < b).toBe(true);
    expect(b < c).toBe(true);
    expect(timestampOf(b)).toBe(now);
  });

  it('keeps order across a counter overflow within one millisecond', () => {
    const now = FUTURE + 2_000_000;
    const ids: string[] = [];
    for (let i = 0; i < 5000; i++) ids.push(uuidv7(now));
    const descents = ids.filter((id, i) => i > 0 && (ids[i - 1] as string) >= id);
    expect(descents).toEqual([]);
    expect(new Set(ids).size).toBe(5000);
    // 5000 ids cannot fit one millisecond's 12-bit counter: the timestamp advances instead of wrapping.
    expect(timestampOf(ids[ids.length - 1] as string)).toBeGreaterThan(now);
  });

  it('isUuid rejects upper case, missing dashes and non-strings', () => {
    const id = uuidv7();
    expect(isUuid(id.toUpperCase())).toBe(false);
    expect(isUuid(id.replace(/-/g, ''))).toBe(false);
    expect(isUuid(`${id} `)).toBe(false);
    expect(isUuid(42)).toBe(false);
    expect(isUuid(undefined)).toBe(false);
  });
});
