import {
  CheckpointConflictError,
  formatPosition,
  type CheckpointStore,
  type LogPosition,
  type ProjectionKey,
} from '@causeway/core';
import { schemaNames, type SchemaNames } from './schema.js';
import type { SqlExecutor } from './sql-executor.js';

interface CheckpointRow {
  readonly tx: string;
  readonly seq: string;
}

const toPosition = (r: CheckpointRow): LogPosition => ({ tx: BigInt(r.tx), seq: BigInt(r.seq) });

/** The checkpoint table's partition column: the tenant of a partitioned projection, '' otherwise. */
export const partitionOf = (key: ProjectionKey): string => key.tenantId ?? '';

/**
 * Checkpoints in `<schema>.projection_checkpoints` (migrations 4 and 8), one row per (name,
 * version, tenant partition). `lock` takes the row lock (SELECT ... FOR UPDATE), so two
 * transactions of one projection serialise there, and the second sees the first's move and
 * refuses to apply the same events again.
 */
export class PostgresCheckpointStore implements CheckpointStore<SqlExecutor> {
  private readonly names: SchemaNames;

  constructor(
    private readonly db: SqlExecutor,
    schema = 'causeway',
  ) {
    this.names = schemaNames(schema);
  }

  async load(key: ProjectionKey): Promise<LogPosition> {
    const s = this.names.schema;
    const params = [key.name, key.version, partitionOf(key)];
    // Two statements, not one: a statement's snapshot would miss a row that a concurrent loader
    // inserted while this one waited on the conflict.
    await this.db.query(
      `INSERT INTO ${s}.projection_checkpoints (name, version, tenant_id) VALUES ($1, $2, $3) ON CONFLICT (name, version, tenant_id) DO NOTHING`,
      params,
    );
    return (await this.read(key)) as LogPosition;
  }

  /** The stored checkpoint without creating it; null when the projection never started. */
  async read(key: ProjectionKey): Promise<LogPosition | null> {
    const { rows } = await this.db.query<CheckpointRow>(
      `SELECT position_tx::text AS tx, position_seq::text AS seq FROM ${this.names.schema}.projection_checkpoints
       WHERE name = $1 AND version = $2 AND tenant_id = $3`,
      [key.name, key.version, partitionOf(key)],
    );
    return rows[0] ? toPosition(rows[0]) : null;
  }

  async lock(tx: SqlExecutor, key: ProjectionKey, expected: LogPosition): Promise<void> {
    const { rows } = await tx.query<CheckpointRow>(
      `SELECT position_tx::text AS tx, position_seq::text AS seq FROM ${this.names.schema}.projection_checkpoints
       WHERE name = $1 AND version = $2 AND tenant_id = $3 FOR UPDATE`,
      [key.name, key.version, partitionOf(key)],
      `${this.names.raw}.cp-lock`,
    );
    const row = rows[0];
    const actual = row ? formatPosition(toPosition(row)) : 'missing';
    if (actual !== formatPosition(expected)) throw new CheckpointConflictError(key, formatPosition(expected), actual);
  }

  async advance(tx: SqlExecutor, key: ProjectionKey, to: LogPosition, applied: number): Promise<void> {
    await tx.query(
      `UPDATE ${this.names.schema}.projection_checkpoints
       SET position_tx = $4::text::xid8, position_seq = $5::bigint, applied = applied + $6, updated_at = clock_timestamp()
       WHERE name = $1 AND version = $2 AND tenant_id = $3`,
      [key.name, key.version, partitionOf(key), to.tx.toString(), to.seq.toString(), applied],
      `${this.names.raw}.cp-advance`,
    );
  }
}
