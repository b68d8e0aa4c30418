import type { Migration } from './migrations.js';

/** Migration 6: outbox and event-log relay checkpoints. Never edit once shipped. */
export const OUTBOX_MIGRATION: Migration = {
  version: 6,
  name: 'outbox',
  statements: ({ schema: s }) => [
    // One row per message added in a business transaction. `tx` is the writing transaction, so the
    // relay reads in (tx, id) order below the oldest running transaction (as the event log does):
    // a transaction that commits late is never passed by the relay's checkpoint, and nothing can
    // appear behind it later. So "sent" is simply "at or below the relay's checkpoint"
    // (relay_checkpoints 'outbox:<name>'): marking a batch sent updates one row, not the batch.
    // `outbox` names one logical outbox (one relay lease each) when services share a schema.
    `CREATE TABLE ${s}.outbox (
id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
tx            xid8        NOT NULL DEFAULT pg_current_xact_id(),
outbox        text        NOT NULL,
topic         text        NOT NULL,
partition_key text        NOT NULL,
message_id    uuid        NOT NULL,
tenant_id     text        NOT NULL,
event_type    text        NOT NULL,
envelope      jsonb       NOT NULL,
traceparent   text,
tracestate    text,
created_at    timestamptz NOT NULL DEFAULT clock_timestamp()
)`,
    `CREATE INDEX outbox_log_order ON ${s}.outbox (outbox, tx, id)`,
    // Where a relay has published up to ('outbox:<name>' or 'log:<name>'): a position in (tx, id)
    // or (tx, seq) order, moved only by the lease holder, in a transaction that checked the lease
    // (its fence is recorded). `published` counts messages moved past.
    `CREATE TABLE ${s}.relay_checkpoints (
name         text        PRIMARY KEY,
position_tx  xid8        NOT NULL DEFAULT '0',
position_seq bigint      NOT NULL DEFAULT 0,
fence        bigint      NOT NULL DEFAULT 0,
published    bigint      NOT NULL DEFAULT 0,
updated_at   timestamptz NOT NULL DEFAULT clock_timestamp()
)`,
  ],
};
