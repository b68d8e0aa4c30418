import { invalidInput, type FieldProblem } from './http-error.js';

const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
export const ID_RULE = 'must be 1 to 64 letters, digits, "_", "-" or ".", starting with a letter or digit';

export interface TextRule {
  /** Most characters allowed. */
  readonly max: number;
}

export interface NumberRule {
  readonly min: number;
  readonly max: number;
  readonly integer?: boolean;
}

/**
 * Reads untrusted input field by field and collects every problem, so a single 400 names all
 * the fields that are wrong (`lines[1].quantity`, not just "bad request"). Each getter returns a
 * placeholder for a bad field; `done()` throws before any placeholder can be used.
 */
export class InputReader {
  private readonly problems: FieldProblem[] = [];

  problem(field: string, message: string): void {
    this.problems.push({ field, message });
  }

  /** The request body: a JSON object with only the `allowed` keys. Anything else is refused at once. */
  body(value: unknown, allowed: readonly string[]): Record<string, unknown> {
    const o = this.object(value, 'body', allowed);
    if (o === null) this.done();
    return o ?? {};
  }

  /**
   * A JSON object with only the `allowed` keys (an unknown key is most often a typo). Null when it
   * is not an object at all: its fields are then not worth reporting one by one.
   */
  object(value: unknown, field: string, allowed: readonly string[]): Record<string, unknown> | null {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.problem(field, `must be a JSON object; got ${describe(value)}`);
      return null;
    }
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key)) this.problem(path(field, key), `is not a known field (known: ${allowed.join(', ')})`);
    }
    return value as Record<string, unknown>;
  }

  id(value: unknown, field: string): string {
    if (typeof value !== 'string' || !ID.test(value)) {
      this.problem(field, `${ID_RULE}; got ${describe(value)}`);
      return '';
    }
    return value;
  }

  text(value: unknown, field: string, rule: TextRule): string {
    if (typeof value !== 'string' || value.trim() === '') {
      this.problem(field, `must be a non-empty string; got ${describe(value)}`);
      return '';
    }
    if (value.length > rule.max) {
      this.problem(field, `must be at most ${rule.max} characters; got ${value.length}`);
      return '';
    }
    return value;
  }

  number(value: unknown, field: string, rule: NumberRule): number {
    const kind = rule.integer ? 'an integer' : 'a number';
    if (typeof value !== 'number' || !Number.isFinite(value) || (rule.integer && !Number.isInteger(value))) {
      this.problem(field, `must be ${kind}; got ${describe(value)}`);
      return 0;
    }
    if (value < rule.min || value > rule.max) {
      this.problem(field, `must be ${kind} from ${rule.min} to ${rule.max}; got ${value}`);
      return 0;
    }
    return value;
  }

  /** An array of `min` to `max` items, each read by `item`. */
  list<T>(value: unknown, field: string, min: number, max: number, item: (value: unknown, field: string) => T): T[] {
    if (!Array.isArray(value)) {
      this.problem(field, `must be an array; got ${describe(value)}`);
      return [];
    }
    if (value.length < min || value.length > max) {
      this.problem(field, `must hold ${min} to ${max} items; got ${value.length}`);
      return [];
    }
    return value.map((v, i) => item(v, `${field}[${i}]`));
  }

  /** Throws a 400 naming every problem found so far. */
  done(): void {
    if (this.problems.length > 0) throw invalidInput(this.problems);
  }
}

function path(parent: string, key: string): string {
  return parent === 'body' ? key : `${parent}.${key}`;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}
