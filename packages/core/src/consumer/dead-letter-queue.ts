import { InvalidOptionsError } from '../errors.js';
import type { ReceivedEvent } from '../message.js';
import type { DeadLetter } from './dead-letter.js';

/**
 * Where a dead letter stands:
 * - `dead`: failed, waiting for an operator;
 * - `replay_requested`: an operator asked for a replay; the consumer's replay worker will take it;
 * - `replaying`: a replay worker has it (a worker that died loses it after its lease);
 * - `replayed`: went through the consumer path and was acked (applied, or found a duplicate);
 * - `skipped`: an operator gave up on it on purpose (kept for the record; in sequenced mode it
 *   releases the messages parked behind it).
 * Purged letters are deleted; their history stays.
 */
export type DeadLetterStatus = 'dead' | 'replay_requested' | 'replaying' | 'replayed' | 'skipped';

export const DEAD_LETTER_STATUSES: readonly DeadLetterStatus[] = ['dead', 'replay_requested', 'replaying', 'replayed', 'skipped'];

/** One stored dead letter, without its payload: what list() returns. JSON-safe throughout. */
export interface DeadLetterSummary {
  /** The DLQ's id for the letter (a decimal string). */
  readonly id: string;
  readonly consumer: string;
  readonly status: DeadLetterStatus;
  readonly topic: string;
  readonly group: string;
  readonly key: string;
  /** '' for an undecodable message (its tenant is unknown). */
  readonly tenantId: string;
  /** null for an undecodable message. */
  readonly eventId: string | null;
  readonly eventType: string | null;
  readonly reason: DeadLetter['reason'];
  readonly errorClass: string;
  readonly errorMessage: string;
  readonly fingerprint: string;
  /** Failed attempts seen so far: the broker's count, then +1 for each failure after that. */
  readonly attempts: number;
  /** ISO-8601 UTC, from the database clock. The first failure is kept when the letter fails again. */
  readonly firstFailedAt: string;
  readonly lastFailedAt: string;
}

/** Everything the DLQ keeps about one letter: inspect() returns it. */
export interface DeadLetterDetail extends DeadLetterSummary {
  readonly stack: string | null;
  /** The event, when the message could be decoded. */
  readonly event: ReceivedEvent | null;
  /** What arrived, when it could not: headers and the body in base64. */
  readonly raw: { readonly headers: Readonly<Record<string, string>>; readonly bodyBase64: string } | null;
  readonly history: readonly DeadLetterHistoryEntry[];
}

export type DeadLetterAction = 'dead_lettered' | 'replay_requested' | 'replayed' | 'replay_failed' | 'skipped' | 'purged';

/** One line of a letter's history: who did what, when, why, and how it went. */
export interface DeadLetterHistoryEntry {
  readonly letterId: string;
  readonly at: string;
  readonly action: DeadLetterAction;
  /** The operator (replay_requested, skipped, purged; replayed and replay_failed repeat the requester). */
  readonly by: string | null;
  readonly reason: string | null;
  /** The outcome or error: "duplicate", the new error of a failed replay, the attempt of a failure. */
  readonly detail: string | null;
}

/**
 * Selects letters. Every given field must match (AND); an empty filter selects every letter,
 * which list() and groups() allow and replay/skip/purge refuse.
 */
export interface DeadLetterFilter {
  readonly ids?: readonly string[];
  readonly consumer?: string;
  readonly status?: DeadLetterStatus | readonly DeadLetterStatus[];
  readonly fingerprint?: string;
  readonly eventType?: string;
  readonly tenantId?: string;
  /** Last failure at or after this time (ISO-8601). */
  readonly failedFrom?: string;
  /** Last failure before this time (ISO-8601). */
  readonly failedTo?: string;
}

export interface DeadLetterPageRequest {
  /** Letters per page, 1-1000. Default 50. */
  readonly limit?: number;
  /** The `next` cursor of the previous page. Default: the first page (newest letters first). */
  readonly after?: string;
}

export interface DeadLetterPage {
  readonly items: readonly DeadLetterSummary[];
  /** Pass as `after` for the next page; null on the last page. */
  readonly next: string | null;
}

/** Letters sharing a consumer and fingerprint: one cause, usually one fix. */
export interface DeadLetterGroup {
  readonly consumer: string;
  readonly fingerprint: string;
  readonly count: number;
  readonly firstFailedAt: string;
  readonly lastFailedAt: string;
  /** The newest letter of the group, as a sample of the failure. */
  readonly sampleId: string;
  readonly errorClass: string;
  readonly sampleMessage: string;
}

/** Who does an operation and why: kept in the history of every letter it touches. Both required. */
export interface OperatorNote {
  readonly by: string;
  readonly reason: string;
}

export interface DeadLetterActionResult {
  /** The letters the operation changed, in id order. */
  readonly ids: readonly string[];
}

export interface DeadLetterReplayResult extends DeadLetterActionResult {
  /**
   * Selected letters left as they are because they hold no event (undecodable messages: the
   * decoder refuses them before any handler runs, so a replay would fail the same way). Skip or purge them.
   */
  readonly notReplayable: readonly string[];
}

/**
 * The operations port of a dead-letter queue: what the CLI and the console call. Plain data in
 * and out (strings, numbers, plain objects), so it crosses HTTP and JSON unchanged.
 *
 * replay/skip/purge act on the letters the filter selects in a state that allows the action:
 * replay takes `dead` and `skipped` letters (a `replayed` one is not replayed twice), skip takes
 * `dead` and `replay_requested`, purge anything not `replaying`. A replay only marks letters:
 * the consumer's own process (replayDeadLetters) feeds them through its normal handler path,
 * so dedup, tenancy checks and retries apply as for a live message. Each action is one
 * statement: it applies to every selected letter or to none.
 */
export interface DeadLetterQueue {
  list(filter?: DeadLetterFilter, page?: DeadLetterPageRequest): Promise<DeadLetterPage>;
  /** Groups by (consumer, fingerprint), largest first. */
  groups(filter?: DeadLetterFilter): Promise<readonly DeadLetterGroup[]>;
  /** null when there is no such letter (never was, or purged: its history() remains). */
  inspect(id: string): Promise<DeadLetterDetail | null>;
  /** A letter's history, oldest first; kept after the letter is purged. */
  history(id: string): Promise<readonly DeadLetterHistoryEntry[]>;
  replay(filter: DeadLetterFilter, note: OperatorNote): Promise<DeadLetterReplayResult>;
  skip(filter: DeadLetterFilter, note: OperatorNote): Promise<DeadLetterActionResult>;
  purge(filter: DeadLetterFilter, note: OperatorNote): Promise<DeadLetterActionResult>;
}

const ID = /^[1-9][0-9]{0,18}$/;
const FILTER_FIELDS = ['ids', 'consumer', 'status', 'fingerprint', 'eventType', 'tenantId', 'failedFrom', 'failedTo'] as const;

/**
 * Checks a filter as any DeadLetterQueue implementation must. `action` names a replay, skip or
 * purge, which refuse an empty filter (one call must not touch every letter by accident).
 */
export function validateDeadLetterFilter(filter: DeadLetterFilter, action?: string): void {
  for (const id of filter.ids ?? []) {
    if (typeof id !== 'string' || !ID.test(id)) throw new InvalidOptionsError(`dead letter ids are decimal strings; got ${JSON.stringify(id)}`);
  }
  const statuses = filter.status === undefined ? [] : typeof filter.status === 'string' ? [filter.status] : filter.status;
  for (const s of statuses) {
    if (!DEAD_LETTER_STATUSES.includes(s)) throw new InvalidOptionsError(`dead letter status must be one of ${DEAD_LETTER_STATUSES.join(', ')}; got ${JSON.stringify(s)}`);
  }
  for (const bound of ['failedFrom', 'failedTo'] as const) {
    const v = filter[bound];
    if (v !== undefined && Number.isNaN(Date.parse(v))) throw new InvalidOptionsError(`${bound} must be an ISO-8601 time; got ${JSON.stringify(v)}`);
  }
  if (action !== undefined && FILTER_FIELDS.every((f) => filter[f] === undefined)) {
    throw new InvalidOptionsError(`${action} needs a filter (ids, consumer, fingerprint, ...); an empty one would select every dead letter`);
  }
}

/** Checks who and why for an action; both are kept in the letters' history. */
export function validateOperatorNote(note: OperatorNote, action: string): void {
  for (const field of ['by', 'reason'] as const) {
    const v = note[field];
    if (typeof v !== 'string' || v.trim() === '' || v.length > 1000) {
      throw new InvalidOptionsError(`${action} needs a non-empty "${field}" of at most 1000 characters (it is kept in the history); got ${JSON.stringify(v)}`);
    }
  }
}

/** The page size of a list request (1-1000, default 50), and its cursor checked. */
export function validatePageRequest(page: DeadLetterPageRequest): number {
  const limit = page.limit ?? 50;
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new InvalidOptionsError(`page limit must be an integer 1-1000; got ${String(page.limit)}`);
  if (page.after !== undefined && !ID.test(page.after)) throw new InvalidOptionsError(`page cursor must be the "next" of a previous page; got ${JSON.stringify(page.after)}`);
  return limit;
}
