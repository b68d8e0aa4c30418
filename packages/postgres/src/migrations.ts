import type { SchemaNames } from './schema.js';

export interface Migration {
  readonly version: number;
  readonly name: string;
  /** One statement per entry (drivers differ on multi-statement text). */
  statements(names: SchemaNames): string[];
}

/**
 * Versioned, append-only: never edit a migration that has shipped; add the next one.
 * Positions: `seq` is the global sequence; `tx` the writing transaction (xid8). Readers of the
 * global log order by (tx, seq) and stop below the oldest transaction still running.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'event store tables',
    statements: ({ schema: s }) => [
      `CREATE TABLE ${s}.streams (
  tenant_id   text        NOT NULL,
  stream_id   text        NOT NULL,
  stream_type text,
  version     bigint      NOT NULL,
  archived    boolean     NOT NULL DEFAULT false,
  deleted     boolean     NOT NULL DEFAULT false,
  created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (tenant_id, stream_id)
)`,
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
    ],
  },
];
