import type { Migration } from './migrations.js';

/** Migration 7: inbox ledger and dead letters. Never edit once shipped. */
export const DEAD_LETTER_MIGRATION: Migration = {
  version: 7,
  name: 'inbox ledger and dead letters',
  statements: () => [],
};
