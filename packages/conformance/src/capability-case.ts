import { it } from 'vitest';

/** A case that runs only when a capability allows it; otherwise a skipped test whose title says why. */
export function itWhen(runs: boolean, why: string, title: string, fn: () => Promise<void>, timeoutMs?: number): void {
  if (runs) it(title, fn, timeoutMs);
  else it.skip(`${title} (skipped: ${why})`, fn);
}
