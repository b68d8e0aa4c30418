import type { DomainEvent, Projection, QueryBus, RecordedEvent, WaitForPosition } from '@causeway/core';
import { schemaNames, type SqlExecutor } from '@causeway/postgres';

/**
 * One of the shop's read models: an async projection that writes its own tables, the DDL of those
 * tables, and the queries it answers. Table names carry the projection's version (`_v1`), so a
 * version 2 can be built beside version 1 while version 1 keeps serving.
 */
export interface ShopReadModel {
  readonly projection: Projection<SqlExecutor>;
  /** Idempotent statements creating the tables and indexes. */
  readonly ddl: readonly string[];
  /** Registers this read model's queries; `waitFor` is its runner's read-your-writes wait. */
  registerQueries(bus: QueryBus, db: SqlExecutor, waitFor: WaitForPosition): void;
}

/** Quoted schema name, checked against the identifier allow-list (identifiers never come from data). */
export function quotedSchema(schema: string): string {
  return schemaNames(schema).schema;
}

/** SQL rendering a timestamptz as RFC 3339 UTC text with milliseconds, the same on pg and PGlite. */
export function isoText(column: string): string {
  return `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
}

/** numeric columns travel as text (drivers differ on numeric); amounts in the shop fit a double. */
export function amount(text: string | null): number {
  return text === null ? 0 : Number(text);
}

/** A handler met an event whose earlier events are missing from its tables: stop rather than skip. */
export function missingRow(model: string, what: string, event: { eventType: string; eventId: string }): Error {
  return new Error(`${model}: ${event.eventType} ${event.eventId} refers to ${what}, which this read model does not hold`);
}

/** The typed payload of an event a handler was registered for (the runner routes by event type). */
export function dataOf<E extends DomainEvent>(event: RecordedEvent): E['data'] {
  return event.data as E['data'];
}
