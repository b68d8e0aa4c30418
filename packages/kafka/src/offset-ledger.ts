/**
 * Kafka keeps one number per partition for a group, the committed offset, and no delivery count.
 * Offsets are committed only up to the first unacked record, so records past it may already be
 * acked, and the record at it may have been delivered several times. The offset commit carries a
 * free-text `metadata` string, stored and returned by the broker with the offset; the ledger is
 * that string: for records at or after the committed offset, which are acked and how often each
 * unacked one was delivered. It is written before a record is handed to a handler, so a crash
 * loses no count, and read back by whichever consumer gets the partition next. That is where
 * `attempt` comes from, and why records acked past a stuck one are not delivered again.
 *
 * Format: `cw1;` then comma-separated items `<delta>:<count>` (delivered `count` times, not acked)
 * or `<delta>:a` (acked), delta = offset - committed offset, both in base 36. Anything else
 * (another tool's metadata, an empty string) reads as an empty ledger.
 */

export interface LedgerMark {
  /** Deliveries recorded for the record. */
  readonly delivered: number;
  readonly acked: boolean;
}

const PREFIX = 'cw1;';
/**
 * Longest ledger written. The broker refuses metadata over `offset.metadata.max.bytes` (4096 by
 * default); the ledger is ASCII, so characters are bytes.
 */
export const MAX_LEDGER_CHARS = 3_000;

export function encodeLedger(committed: bigint, marks: ReadonlyMap<bigint, LedgerMark>): string {
  const items: Array<{ readonly delta: bigint; readonly text: string; readonly acked: boolean }> = [];
  for (const [offset, mark] of marks) {
    const delta = offset - committed;
    if (delta < 0n || (!mark.acked && mark.delivered <= 0)) continue;
    const d = delta.toString(36);
    items.push({ delta, acked: mark.acked, text: mark.acked ? `${d}:a` : `${d}:${mark.delivered.toString(36)}` });
  }
  items.sort((a, b) => (a.delta < b.delta ? -1 : a.delta > b.delta ? 1 : 0));
  let length = PREFIX.length + items.reduce((n, i) => n + i.text.length + 1, 0);
  // Over the limit: forget acked marks first (costs a duplicate delivery after a takeover), then
  // the counts of the furthest records (their attempt would restart from 1). Never the nearest.
  for (const acked of [true, false]) {
    for (let i = items.length - 1; i >= 0 && length > MAX_LEDGER_CHARS; i--) {
      const item = items[i];
      if (item !== undefined && item.acked === acked) {
        length -= item.text.length + 1;
        items.splice(i, 1);
      }
    }
  }
  return PREFIX + items.map((i) => i.text).join(',');
}

export function decodeLedger(committed: bigint, metadata: string | null | undefined): Map<bigint, LedgerMark> {
  const marks = new Map<bigint, LedgerMark>();
  if (typeof metadata !== 'string' || !metadata.startsWith(PREFIX) || committed < 0n) return marks;
  const body = metadata.slice(PREFIX.length);
  if (body.length === 0) return marks;
  for (const item of body.split(',')) {
    const match = /^([0-9a-z]{1,10}):([0-9a-z]{1,6}|a)$/.exec(item);
    if (match === null) return new Map(); // not ours after all: trust none of it
    const [, d, c] = match as unknown as [string, string, string];
    const delta = BigInt(Number.parseInt(d, 36));
    if (c === 'a') marks.set(committed + delta, { delivered: 1, acked: true });
    else marks.set(committed + delta, { delivered: Number.parseInt(c, 36), acked: false });
  }
  return marks;
}
