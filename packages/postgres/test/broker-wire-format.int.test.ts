import { createEvent, fromCloudEvent } from '@causeway/core';
import { createPgDatabase, migrate, PostgresPublisher } from '@causeway/postgres';
import { CloudEvent, HTTP } from 'cloudevents';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropSchema, PG_URL, postgresAvailable, skipBecauseNoServer, uniqueSchema } from './support.js';

// The wire-format proof for the PostgreSQL broker: a plain `pg` client reading the log table
// finds a standard CloudEvent (structured JSON) in each row, which the official SDK accepts.
if (await postgresAvailable()) {
  describe('postgres broker wire format, read with a raw pg client', () => {
    const schema = uniqueSchema('bwire');
    const db = createPgDatabase({ connectionString: PG_URL, maxConnections: 2 });
    beforeAll(() => migrate(db, { schema }).then(() => undefined));
    afterAll(async () => {
      await db.close();
      await dropSchema(schema);
    });

    it('each row holds a CloudEvent the cloudevents SDK parses, with key and trace context', async () => {
      const event = {
        ...createEvent(
          { eventType: 'shop.order.placed', data: { orderId: 'o-1', total: 12.5 }, metadata: { region: 'eu' } },
          { tenantId: 'acme', producer: 'shop.orders' },
        ),
        streamId: 'order-o-1',
        streamVersion: 1,
      };
      const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
      const publisher = new PostgresPublisher({ db, schema });
      await publisher.publish('shop.orders', [{ event, traceparent }]);
      await publisher.close();

      const raw = new pg.Client({ connectionString: PG_URL });
      await raw.connect();
      try {
        const { rows } = await raw.query<{ key: string; event_id: string; body: string }>(
          `SELECT key, event_id, body FROM "${schema}".broker_messages WHERE topic = $1`,
          ['shop.orders'],
        );
        expect(rows).toHaveLength(1);
        const row = rows[0] as { key: string; event_id: string; body: string };
        expect(row.key).toBe('order-o-1');
        expect(row.event_id).toBe(event.eventId);
        const ce = HTTP.toEvent({ headers: { 'content-type': 'application/cloudevents+json' }, body: row.body }) as CloudEvent<unknown>;
        expect(ce.specversion).toBe('1.0');
        expect(ce.id).toBe(event.eventId);
        expect(ce.type).toBe('shop.order.placed');
        expect(ce.source).toBe('shop.orders');
        expect(ce.subject).toBe('order-o-1');
        expect(ce.data).toEqual({ orderId: 'o-1', total: 12.5 });
        expect(ce.tenantid).toBe('acme');
        expect(ce.partitionkey).toBe('order-o-1');
        expect(ce.traceparent).toBe(traceparent);
        const { partitionkey: _k, traceparent: _t, ...attributes } = ce.toJSON();
        expect(fromCloudEvent(attributes).envelope).toEqual(createEventWithoutStream(event));
      } finally {
        await raw.end();
      }
    });
  });
} else {
  skipBecauseNoServer('postgres broker wire format');
}

function createEventWithoutStream<T extends { streamId?: string; streamVersion?: number }>(e: T): Omit<T, 'streamId' | 'streamVersion'> {
  const { streamId: _s, streamVersion: _v, ...rest } = e;
  return rest;
}
