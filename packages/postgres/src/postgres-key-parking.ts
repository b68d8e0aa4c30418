import {
  type DeadLetterReplaySource,
  type EventDelivery,
  type KeyParking,
  type ParkOutcome,
  type ReplayItem,
  type ReplayOutcome,
} from '@causeway/core';
import { claimRows, OPEN_STATUSES } from './dead-letter-rows.js';
import { schemaNames, type SchemaNames } from './schema.js';
import type { SqlDatabase } from './sql-executor.js';

/**
 * Sequenced mode's parking in PostgreSQL/PGlite (`<schema>.parked_messages`, migration 7), beside
 * the dead letters that block the keys (use the same schema as the PostgresDeadLetterQueue).
 *
 * - park(): one indexed read per message while its key is free. A blocked key's message is
 *   stored in a transaction holding the consumer's advisory lock, so the cap is exact.
 * - As a DeadLetterReplaySource: claims, per key, only the oldest parked message, and only once
 *   the key has no open dead letter; the next of that key waits until this one is settled acked
 *   (deleted). A claim is a lease: a worker that died loses it after `leaseMs`.
 */
export class PostgresKeyParking implements KeyParking, DeadLetterReplaySource {
  private readonly names: SchemaNames;

  /** `db` and `schema` (default 'causeway', migrated to version 7 or later): those of the consumer's PostgresDeadLetterQueue. */
  constructor(
    private readonly db: SqlDatabase,
    schema = 'causeway',
  ) {
    this.names = schemaNames(schema);
  }

  async park(consumer: string, delivery: EventDelivery, maxParked: number): Promise<ParkOutcome> {
    const s = this.names.schema;
    const e = delivery.event;
    // Its own dead letter does not block a message: the broker redelivered the head itself.
    const { rows } = await this.db.query<{ blocked: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM ${s}.dead_letters WHERE consumer = $1 AND key = $2 AND status IN ${OPEN_STATUSES} AND identity <> $3)
           OR EXISTS (SELECT 1 FROM ${s}.parked_messages WHERE consumer = $1 AND key = $2) AS blocked`,
      [consumer, delivery.key, `e:${e.tenantId}/${e.eventId}`],
      `${this.names.raw}.park-check`,
    );
    if (rows[0]?.blocked !== true) return 'free';
    return this.db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`causeway.park.${this.names.raw}.${consumer}`]);
      const { rows: out } = await tx.query<{ already: boolean; parked: boolean }>(
        `WITH already AS (SELECT 1 FROM ${s}.parked_messages WHERE consumer = $1 AND tenant_id = $5 AND event_id = $6::uuid),
         ins AS (
           INSERT INTO ${s}.parked_messages (consumer, key, topic, group_name, tenant_id, event_id, event)
           SELECT $1, $2, $3, $4, $5, $6::uuid, $7::json
           WHERE NOT EXISTS (SELECT 1 FROM already) AND (SELECT count(*) FROM ${s}.parked_messages WHERE consumer = $1) < $8
           RETURNING 1)
         SELECT EXISTS (SELECT 1 FROM already) AS already, EXISTS (SELECT 1 FROM ins) AS parked`,
        [consumer, delivery.key, delivery.topic, delivery.group, e.tenantId, e.eventId, JSON.stringify(e), maxParked],
      );
      const r = out[0];
      return r?.already === true || r?.parked === true ? 'parked' : 'full';
    });
  }

  /** Messages parked for `consumer` (all keys), or in the whole schema. */
  async count(consumer?: string): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>(
      `SELECT count(*)::integer AS n FROM ${this.names.schema}.parked_messages WHERE $1::text IS NULL OR consumer = $1`,
      [consumer ?? null],
    );
    return rows[0]?.n ?? 0;
  }

  claim(consumer: string, limit: number, leaseMs: number): Promise<readonly ReplayItem[]> {
    const s = this.names.schema;
    // Per key only the oldest parked message, and only once no open letter blocks the key.
    const pick = `SELECT q.id FROM ${s}.parked_messages q
      WHERE q.consumer = $1
        AND (q.not_before IS NULL OR q.not_before < clock_timestamp())
        AND NOT EXISTS (SELECT 1 FROM ${s}.parked_messages r WHERE r.consumer = q.consumer AND r.key = q.key AND r.id < q.id)
        AND NOT EXISTS (SELECT 1 FROM ${s}.dead_letters d WHERE d.consumer = q.consumer AND d.key = q.key AND d.status IN ${OPEN_STATUSES})
      ORDER BY q.id LIMIT $2 FOR UPDATE SKIP LOCKED`;
    return claimRows(this.db, 'parked', { table: `${s}.parked_messages`, pick, name: `${this.names.raw}.park-claim` }, consumer, limit, leaseMs);
  }

  async settle(item: ReplayItem, outcome: ReplayOutcome): Promise<void> {
    const s = this.names.schema;
    if (outcome.kind === 'acked') {
      // Applied, a duplicate, or dead-lettered (then its letter now blocks the key): either way it leaves parking.
      await this.db.query(`DELETE FROM ${s}.parked_messages WHERE id = $1::bigint AND claim = $2`, [item.id, item.claim]);
      return;
    }
    await this.db.query(
      `UPDATE ${s}.parked_messages SET claim = NULL, attempts = attempts + 1, not_before = clock_timestamp() + $3::bigint * interval '1 millisecond'
       WHERE id = $1::bigint AND claim = $2`,
      [item.id, item.claim, outcome.delayMs],
    );
  }
}
