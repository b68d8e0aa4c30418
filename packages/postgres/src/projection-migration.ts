import type { Migration } from './migrations.js';

/** Migration 4: projection checkpoints. Never edit once shipped. */
export const PROJECTION_MIGRATION: Migration = {
  version: 4,
  name: 'projection checkpoints',
  statements: ({ schema: s }) => [
    // One row per (projection, version): the log position of the last event whose effect on the
    // read model is committed. Moved in the same transaction as the read model's writes.
    // `applied` counts events moved past (handled or not), for progress and tests.
    `CREATE TABLE ${s}.projection_checkpoints (
name         text        NOT NULL,
version      integer     NOT NULL,
position_tx  xid8        NOT NULL DEFAULT '0',
position_seq bigint      NOT NULL DEFAULT 0,
applied      bigint      NOT NULL DEFAULT 0,
created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
updated_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
PRIMARY KEY (name, version)
)`,
  ],
};
