import { uuidv7 } from '@causeway/core';
import { EVENT_TYPE, TENANT, type ItemAdded } from './workload.js';

/**
 * The floor: the same columns and indexes as Causeway's events and snapshots tables
 * (packages/postgres/src/migrations.ts, version 1), but no streams table, no version check,
 * no function: one plain INSERT per append and one plain SELECT per read.
 */
export function rawSchemaStatements(schema: string): string[] {
  const s = `"${schema}"`;
  return [
    `CREATE SCHEMA ${s}`,
    `CREATE TABLE ${s}.events (
      seq            bigint      GENERATED ALWAYS AS IDENTITY,
      tx             xid8        NOT NULL DEFAULT pg_current_xact_id(),
      tenant_id      text        NOT NULL,
      stream_id      text        NOT NULL,
      stream_version bigint      NOT NULL,
      event_id       uuid        NOT NULL,
      event_type     text        NOT NULL,
      event_version  integer     NOT NULL,
      occurred_at    timestamptz NOT NULL,
      recorded_at    timestamptz NOT NULL,
      correlation_id text        NOT NULL,
      causation_id   text,
      producer       text        NOT NULL,
      data           jsonb       NOT NULL,
      metadata       jsonb       NOT NULL,
      PRIMARY KEY (tenant_id, stream_id, stream_version),
      CONSTRAINT events_event_id_key UNIQUE (tenant_id, event_id)
    )`,
    `CREATE INDEX events_log_order ON ${s}.events (tx, seq)`,
    `CREATE TABLE ${s}.snapshots (
      tenant_id  text        NOT NULL,
      stream_id  text        NOT NULL,
      name       text        NOT NULL,
      version    bigint      NOT NULL,
      state      jsonb       NOT NULL,
      created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
      PRIMARY KEY (tenant_id, stream_id, name)
    )`,
  ];
}

const COLUMNS = 'tenant_id, stream_id, stream_version, event_id, event_type, event_version, occurred_at, recorded_at, correlation_id, causation_id, producer, data, metadata';
const PARAMS_PER_ROW = 12;

/** One multi-row INSERT of `rows` events; recorded_at comes from the database clock, as in Causeway. */
export function insertSql(schema: string, rows: number): string {
  const tuples = Array.from({ length: rows }, (_, r) => {
    const p = (k: number): string => `$${r * PARAMS_PER_ROW + k}`;
    return `(${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}, ${p(5)}, ${p(6)}, ${p(7)}, clock_timestamp(), ${p(8)}, ${p(9)}, ${p(10)}, ${p(11)}, ${p(12)})`;
  });
  return `INSERT INTO "${schema}".events (${COLUMNS}) VALUES ${tuples.join(', ')}`;
}

/** Bound values for insertSql: the same envelope fields Causeway fills in for a bare event. */
export function insertParams(streamId: string, version: number, events: readonly ItemAdded[]): unknown[] {
  const occurredAt = new Date().toISOString();
  const params: unknown[] = [];
  events.forEach((data, i) => {
    const id = uuidv7();
    params.push(TENANT, streamId, version + i + 1, id, EVENT_TYPE, 1, occurredAt, id, null, 'bench', JSON.stringify(data), '{}');
  });
  return params;
}

const SELECT_EVENTS = `SELECT seq, tx, tenant_id, stream_id, stream_version, event_id, event_type, event_version,
  occurred_at, recorded_at, correlation_id, causation_id, producer, data, metadata`;

export const readStreamSql = (schema: string): string =>
  `${SELECT_EVENTS} FROM "${schema}".events WHERE tenant_id = $1 AND stream_id = $2 ORDER BY stream_version`;

export const readTailSql = (schema: string): string =>
  `${SELECT_EVENTS} FROM "${schema}".events WHERE tenant_id = $1 AND stream_id = $2 AND stream_version > $3 ORDER BY stream_version`;

export const loadSnapshotSql = (schema: string): string =>
  `SELECT version, state FROM "${schema}".snapshots WHERE tenant_id = $1 AND stream_id = $2 AND name = 'default'`;

export const saveSnapshotSql = (schema: string): string =>
  `INSERT INTO "${schema}".snapshots (tenant_id, stream_id, name, version, state) VALUES ($1, $2, 'default', $3, $4::jsonb)`;
