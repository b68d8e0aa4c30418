import type { Migration } from './migrations.js';

/** Migration 8: projection tenant partitions, skipped-event audit and live versions. Never edit once shipped. */
export const PROJECTION_EXTRAS_MIGRATION: Migration = {
  version: 8,
  name: 'projection leases, audit and rebuilds',
  statements: ({ schema: s }) => [
    // A projection partitioned by tenant keeps one checkpoint per tenant; '' is the partition of a
    // projection over every tenant ('' is never a valid tenant id, so the two cannot collide).
    `ALTER TABLE ${s}.projection_checkpoints ADD COLUMN tenant_id text NOT NULL DEFAULT ''`,
    `ALTER TABLE ${s}.projection_checkpoints DROP CONSTRAINT projection_checkpoints_pkey`,
    `ALTER TABLE ${s}.projection_checkpoints ADD PRIMARY KEY (name, version, tenant_id)`,
    // The skip-and-record error policy: an event a projection gave up on, with the event and the
    // error, written in the same transaction that moves the checkpoint past it. Never skip silently.
    `CREATE TABLE ${s}.projection_skipped_events (
id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
name           text        NOT NULL,
version        integer     NOT NULL,
partition_tenant text      NOT NULL,
position_tx    xid8        NOT NULL,
position_seq   bigint      NOT NULL,
event_id       uuid        NOT NULL,
event_type     text        NOT NULL,
tenant_id      text        NOT NULL,
stream_id      text        NOT NULL,
stream_version bigint      NOT NULL,
event          jsonb       NOT NULL,
error_code     text,
error          text        NOT NULL,
attempts       integer     NOT NULL,
skipped_at     timestamptz NOT NULL DEFAULT clock_timestamp()
)`,
    `CREATE INDEX projection_skipped_events_by_projection ON ${s}.projection_skipped_events (name, version, partition_tenant, id)`,
    // Blue/green: which version of each projection queries should read. A switch is one UPDATE.
    `CREATE TABLE ${s}.projection_live_versions (
name             text        PRIMARY KEY,
version          integer     NOT NULL,
previous_version integer,
switched_at      timestamptz NOT NULL DEFAULT clock_timestamp()
)`,
  ],
};
