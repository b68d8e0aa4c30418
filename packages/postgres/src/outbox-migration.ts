import type { Migration } from './migrations.js';

/** Migration 6: outbox. Never edit once shipped. */
export const OUTBOX_MIGRATION: Migration = {
  version: 6,
  name: 'outbox',
  statements: () => [],
};
