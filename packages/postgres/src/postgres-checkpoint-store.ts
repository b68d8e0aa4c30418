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

/**
 * Checkpoints in `<schema>.projection_checkpoints` (migration 4). `lock` takes the row lock
 * (SELECT ... FOR UPDATE), so two transactions of one projection serialise there, and the
 * second sees the first's move and refuses to apply the same events again.
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
    // Two statements, not one: a statement's snapshot would miss a row that a concurrent loader
    // inserted while this one waited on the conflict.
    await this.db.query(
      `INSERT INTO ${s}.projection_checkpoints (name, version) VALUES ($1, $2) ON CONFLICT (name, version) DO NOTHING`,
      [key.name, key.version],
    );
    const { rows } = await this.db.query<CheckpointRow>(
      `SELECT position_tx::text AS tx, position_seq::text AS seq FROM ${s}.projection_checkpoints WHERE name = $1 AND version = $2`,
      [key.name, key.version],
    );
    return toPosition(rows[0] as CheckpointRow);
  }

  async lock(tx: SqlExecutor, key: ProjectionKey, expected: LogPosition): Promise<void> {
    const { rows } = await tx.query<CheckpointRow>(
      `SELECT position_tx::text AS tx, position_seq::text AS seq FROM ${this.names.schema}.projection_checkpoints
       WHERE name = $1 AND version = $2 FOR UPDATE`,
      [key.name, key.version],
      `${this.names.raw}.cp-lock`,
    );
    const row = rows[0];
    const actual = row ? formatPosition(toPosition(row)) : 'missing';
    if (actual !== formatPosition(expected)) throw new CheckpointConflictError(key, formatPosition(expected), actual);
  }

  async advance(tx: SqlExecutor, key: ProjectionKey, to: LogPosition, applied: number): Promise<void> {
    await tx.query(
      `UPDATE ${this.names.schema}.projection_checkpoints
       SET position_tx = $3::text::xid8, position_seq = $4::bigint, applied = applied + $5, updated_at = clock_timestamp()
       WHERE name = $1 AND version = $2`,
      [key.name, key.version, to.tx.toString(), to.seq.toString(), applied],
      `${this.names.raw}.cp-advance`,
    );
  }
}
