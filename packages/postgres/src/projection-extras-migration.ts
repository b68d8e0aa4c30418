import type { Migration } from './migrations.js';

/** Migration 8: projection leases, audit and rebuilds. Never edit once shipped. */
export const PROJECTION_EXTRAS_MIGRATION: Migration = {
  version: 8,
  name: 'projection leases, audit and rebuilds',
  statements: () => [],
};
