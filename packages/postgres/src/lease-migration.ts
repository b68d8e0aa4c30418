import type { Migration } from './migrations.js';

/** Migration 5: leases (one active relay or projection runner per name). Never edit once shipped. */
export const LEASE_MIGRATION: Migration = {
  version: 5,
  name: 'leases',
  statements: ({ schema: s }) => [
    // One row per lease name. `fence` grows with every acquisition: a writer checks its fence under
    // FOR SHARE in its own transaction, and a takeover's UPDATE waits for those transactions, so a
    // holder that lost the lease cannot commit afterwards. `backend_pid` is the holder's session
    // (server only) so a contender can end a holder that stopped heartbeating but kept its lock.
    `CREATE TABLE ${s}.leases (
name         text        PRIMARY KEY,
holder       text        NOT NULL,
fence        bigint      NOT NULL,
backend_pid  integer,
acquired_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
heartbeat_at timestamptz NOT NULL DEFAULT clock_timestamp(),
expires_at   timestamptz NOT NULL
)`,
  ],
};
