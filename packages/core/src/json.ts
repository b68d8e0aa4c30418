import { hasLoneSurrogate } from './names.js';

/**
 * Events carry JSON. This check walks a value once and names the first path that JSON cannot
 * represent losslessly (undefined, functions, bigint, NaN, class instances, cycles ...).
 */
export const MAX_JSON_DEPTH = 64;

export function jsonProblem(value: unknown, path = 'data'): string | null {
  return walk(value, path, 0, new Set());
}

function walk(value: unknown, path: string, depth: number, seen: Set<object>): string | null {
  switch (typeof value) {
    case 'string': {
      const fault = textFault(value);
      return fault === null ? null : `${path} contains ${FAULT_TEXT[fault]}, which PostgreSQL JSON cannot store`;
    }
    case 'boolean':
      return null;
    case 'number':
      return Number.isFinite(value) ? null : `${path} is ${String(value)}, which is not JSON`;
    case 'object': {
      if (value === null) return null;
      if (depth >= MAX_JSON_DEPTH) return `${path} nests deeper than ${MAX_JSON_DEPTH} levels`;
      if (seen.has(value)) return `${path} is a circular reference`;
      const proto = Object.getPrototypeOf(value);
      if (Array.isArray(value)) {
        seen.add(value);
        for (let i = 0; i < value.length; i++) {
          const p = walk(value[i], `${path}[${i}]`, depth + 1, seen);
          if (p) return p;
        }
        seen.delete(value);
        return null;
      }
      if (proto !== Object.prototype && proto !== null) {
        return `${path} is a ${proto?.constructor?.name ?? 'class'} instance; only plain objects, arrays, strings, finite numbers, booleans and null are JSON`;
      }
      seen.add(value);
      for (const key of Object.keys(value)) {
        const fault = textFault(key);
        if (fault !== null) return `${path} has a key containing ${FAULT_TEXT[fault]}, which PostgreSQL JSON cannot store`;
        const p = walk((value as Record<string, unknown>)[key], `${path}.${key}`, depth + 1, seen);
        if (p) return p;
      }
      seen.delete(value);
      return null;
    }
    default:
      return `${path} is ${typeof value}, which is not JSON`;
  }
}

/**
 * Text PostgreSQL cannot hold: NUL (text and jsonb refuse it) and lone surrogates (they have no
 * UTF-8 form). The character class is one native scan with no backtracking, so the common clean
 * string costs a single pass; only a hit pays for the exact check.
 */
const SUSPECT = /[\u0000\ud800-\udfff]/;
type TextFault = 'nul' | 'surrogate';
const FAULT_TEXT: Readonly<Record<TextFault, string>> = {
  nul: 'the NUL character (U+0000)',
  surrogate: 'a lone surrogate (not well-formed Unicode)',
};

function textFault(s: string): TextFault | null {
  if (!SUSPECT.test(s)) return null;
  if (s.includes('\u0000')) return 'nul';
  return hasLoneSurrogate(s) ? 'surrogate' : null;
}

/** Names `field` and the rule when PostgreSQL text cannot store `s`; null when it can. */
export function textProblem(field: string, s: string): string | null {
  const fault = textFault(s);
  if (fault === 'nul') return `${field} must not contain the NUL character (U+0000), which PostgreSQL cannot store`;
  if (fault === 'surrogate') return `${field} must be well-formed Unicode (no lone surrogates), which PostgreSQL cannot store`;
  return null;
}

const encoder = new TextEncoder();
/** Size of a string in UTF-8 bytes, without allocating when it cannot matter. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}
export { encoder as utf8Encoder };
