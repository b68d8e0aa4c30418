import type { Migration } from './migrations.js';

/** Migration 7: inbox ledger and dead letters. Never edit once shipped. */
export const DEAD_LETTER_MIGRATION: Migration = {
  version: 7,
  name: 'inbox ledger and dead letters',
  statements: ({ schema: s }) => [
    // The inbox (dedup) ledger: one row per event a consumer applied, written in the handler's
    // own transaction. `expires_at` carries the window of the ledger that wrote it, so ledgers
    // with different windows can share the table and one cleanup honours each.
    `CREATE TABLE ${s}.inbox (
consumer    text        NOT NULL,
tenant_id   text        NOT NULL,
event_id    uuid        NOT NULL,
recorded_at timestamptz NOT NULL DEFAULT now(),
expires_at  timestamptz NOT NULL,
PRIMARY KEY (consumer, tenant_id, event_id)
)`,
    `CREATE INDEX inbox_expires_at ON ${s}.inbox (expires_at)`,
    // Dead letters: one row per failed message and consumer. `identity` is what makes a second
    // put of the same message (crash between put and ack, a failed replay) update the row:
    // 'e:<tenant>/<event id>' for an event, 'u:<topic>/<sha-256 of the body>' for undecodable bytes.
    // `claim` and `not_before` are a replay worker's claim and its lease. Events are json, not
    // jsonb: a replay hands the handler the event as it arrived (key order included).
    `CREATE TABLE ${s}.dead_letters (
id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
consumer        text        NOT NULL,
identity        text        NOT NULL,
status          text        NOT NULL DEFAULT 'dead'
                CHECK (status IN ('dead', 'replay_requested', 'replaying', 'replayed', 'skipped')),
topic           text        NOT NULL,
group_name      text        NOT NULL,
key             text        NOT NULL,
broker_id       text        NOT NULL,
tenant_id       text        NOT NULL,
event_id        uuid,
event_type      text,
event           json,
raw_headers     jsonb,
raw_body        bytea,
reason          text        NOT NULL,
error_class     text        NOT NULL,
error_message   text        NOT NULL,
stack           text,
fingerprint     text        NOT NULL,
attempts        integer     NOT NULL,
first_failed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
last_failed_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
replay_by       text,
replay_reason   text,
claim           text,
not_before      timestamptz,
CONSTRAINT dead_letters_identity UNIQUE (consumer, identity)
)`,
    // Sequenced mode asks "does this key have an open letter?" for every message it lets through.
    `CREATE INDEX dead_letters_open_keys ON ${s}.dead_letters (consumer, key) WHERE status IN ('dead', 'replay_requested', 'replaying')`,
    `CREATE INDEX dead_letters_replays ON ${s}.dead_letters (consumer, id) WHERE status IN ('replay_requested', 'replaying')`,
    `CREATE INDEX dead_letters_fingerprints ON ${s}.dead_letters (consumer, fingerprint)`,
    // Who did what to which letter; not tied to the letter row, so it outlives a purge.
    `CREATE TABLE ${s}.dead_letter_history (
id        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
letter_id bigint      NOT NULL,
consumer  text        NOT NULL,
event_id  uuid,
action    text        NOT NULL,
actor     text,
reason    text,
detail    text,
at        timestamptz NOT NULL DEFAULT clock_timestamp()
)`,
    `CREATE INDEX dead_letter_history_letters ON ${s}.dead_letter_history (letter_id, id)`,
    // Sequenced mode: messages held behind their key's dead letter, in arrival order (id).
    `CREATE TABLE ${s}.parked_messages (
id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
consumer   text        NOT NULL,
key        text        NOT NULL,
topic      text        NOT NULL,
group_name text        NOT NULL,
tenant_id  text        NOT NULL,
event_id   uuid        NOT NULL,
event      json        NOT NULL,
attempts   integer     NOT NULL DEFAULT 0,
claim      text,
not_before timestamptz,
parked_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
CONSTRAINT parked_messages_event UNIQUE (consumer, tenant_id, event_id)
)`,
    `CREATE INDEX parked_messages_keys ON ${s}.parked_messages (consumer, key, id)`,
  ],
};
