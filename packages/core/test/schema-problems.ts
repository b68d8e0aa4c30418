import { isSchemaError, SchemaError } from '@causeway/core';
import { expect } from 'vitest';

/** Runs `fn`, which must throw a SchemaError, and returns its problems. */
export function problemsOf(fn: () => unknown): readonly string[] {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown, 'expected a SchemaError to be thrown').toBeInstanceOf(SchemaError);
  expect(isSchemaError(thrown)).toBe(true);
  const error = thrown as SchemaError;
  expect(error.code).toBe('SCHEMA_INVALID');
  expect(error.problems.length).toBeGreaterThan(0);
  expect(error.message).toBe(error.problems.join('; '));
  return error.problems;
}
