import { InvalidOptionsError } from '@causeway/core';

/**
 * SQL identifiers come only from options, never from data: checked against an allow-list pattern,
 * then quoted. Stream and tenant names are values and always travel as bound parameters.
 */
const IDENTIFIER = /^[a-z_][a-z0-9_]{0,39}$/;

export interface SchemaNames {
  /** Quoted schema name, e.g. `"causeway"`. */
  readonly schema: string;
  /** NOTIFY channel for appends in this schema. */
  readonly channel: string;
  readonly raw: string;
}

export function schemaNames(schema: string): SchemaNames {
  if (!IDENTIFIER.test(schema)) {
    throw new InvalidOptionsError(`schema must match ${IDENTIFIER.source} (lower-case letters, digits, "_"); got ${JSON.stringify(schema)}`);
  }
  return { schema: `"${schema}"`, channel: `${schema}_events`, raw: schema };
}
