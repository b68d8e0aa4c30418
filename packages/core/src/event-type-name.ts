/**
 * House rule for event type names: lower-case dot notation, at least two segments, the last one
 * a verb in the past tense, e.g. `shop.order.placed`, `payments.card-payment.refunded`.
 * An optional trailing `.v<N>` major-version segment is allowed (`shop.order.placed.v2`).
 * Usable from tests and CI: `checkEventTypeName(name).ok`.
 */
const SEGMENT = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;
const VERSION = /^v[1-9][0-9]*$/;

/** Irregular past participles that do not end in -ed. Extend with `extraPastTense`. */
const IRREGULAR_PAST = new Set([
  'paid', 'sent', 'built', 'made', 'held', 'sold', 'bought', 'won', 'lost', 'begun', 'done', 'given',
  'taken', 'written', 'chosen', 'drawn', 'driven', 'forgotten', 'frozen', 'hidden', 'known', 'put',
  'read', 'run', 'set', 'shut', 'split', 'spent', 'told', 'thrown', 'withdrawn', 'undone', 'found',
  'kept', 'left', 'met', 'quit', 'rebuilt', 'resent', 'reset', 'shown', 'struck', 'taught', 'upheld',
  'overridden', 'broken', 'spoken', 'stolen', 'worn', 'torn', 'shipped', 'rung', 'sunk', 'swept', 'woken', 'born',
]);

export interface EventTypeNameCheck {
  readonly ok: boolean;
  readonly problems: readonly string[];
}

export function checkEventTypeName(name: unknown, options: { extraPastTense?: Iterable<string> } = {}): EventTypeNameCheck {
  const problems: string[] = [];
  if (typeof name !== 'string' || name.length === 0) return { ok: false, problems: ['event type is missing'] };
  if (name.length > 200) problems.push(`event type must be at most 200 characters; got ${name.length}`);
  const segments = name.split('.');
  const last = segments[segments.length - 1];
  const nameSegments = last !== undefined && VERSION.test(last) ? segments.slice(0, -1) : segments;
  if (nameSegments.length < 2) {
    problems.push(`event type "${name}" must use dot notation with at least two segments, e.g. "shop.order.placed"`);
  }
  for (const seg of nameSegments) {
    if (!SEGMENT.test(seg)) {
      problems.push(`event type segment "${seg}" in "${name}" must be lower-case letters and digits, words joined by "-"`);
    }
  }
  const verbSegment = nameSegments[nameSegments.length - 1] ?? '';
  const verb = verbSegment.split('-').pop() ?? '';
  const extra = new Set(options.extraPastTense ?? []);
  if (SEGMENT.test(verbSegment) && !(verb.endsWith('ed') || IRREGULAR_PAST.has(verb) || extra.has(verb))) {
    problems.push(`event type "${name}" must end in a past-tense verb ("placed", "paid"); "${verb}" is not`);
  }
  return { ok: problems.length === 0, problems };
}
