import pg from 'pg';

const identity = (value: string): string => value;

/**
 * pg's own parsers, fixed per pool. Emmett (through dumbo) replaces pg's process-wide parsers for
 * int8 and json/jsonb when its first pool is made; pinning them here keeps the raw baseline and
 * Causeway parsing rows exactly as they would in a process without Emmett, in every round.
 * Timestamps stay text, as Causeway's own driver keeps them.
 */
const PARSERS: Readonly<Record<number, (value: string) => unknown>> = {
  20: identity, // int8: text, pg's default
  114: JSON.parse, // json
  3802: JSON.parse, // jsonb
  1114: identity, // timestamp
  1184: identity, // timestamptz
};

const getTypeParser = ((oid: number, format?: 'text' | 'binary') =>
  PARSERS[oid] ?? pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser;

export function createPinnedPool(connectionString: string, max: number): pg.Pool {
  const pool = new pg.Pool({ connectionString, max, types: { getTypeParser } });
  pool.on('error', () => undefined);
  return pool;
}
