import type { LogPosition } from './envelope.js';
import { SchemaError } from './errors.js';

/** Before the first event of the log. */
export const LOG_START: LogPosition = Object.freeze({ tx: 0n, seq: 0n });

export function comparePositions(a: LogPosition, b: LogPosition): number {
  if (a.tx !== b.tx) return a.tx < b.tx ? -1 : 1;
  if (a.seq !== b.seq) return a.seq < b.seq ? -1 : 1;
  return 0;
}

/** `tx/seq`, e.g. `1042/7781`: stable text for checkpoints, logs and the CLI. */
export function formatPosition(p: LogPosition): string {
  return `${p.tx}/${p.seq}`;
}

export function parsePosition(text: string): LogPosition {
  const m = /^(\d{1,20})\/(\d{1,20})$/.exec(text);
  if (!m) throw new SchemaError([`log position must look like "<tx>/<seq>"; got ${JSON.stringify(text)}`]);
  return { tx: BigInt(m[1] as string), seq: BigInt(m[2] as string) };
}
