import { brokerRestartSuite, restartLocalBroker } from '@causeway/conformance';
import { createPgDatabase, migrate, PostgresPublisher, PostgresSubscriber, type SqlDatabase } from '@causeway/postgres';
import { dropSchema, PG_URL, postgresAvailable, skipBecauseNoServer, uniqueSchema } from './support.js';

// Restarts the local PostgreSQL server: runs in the vitest `restart` project, after every other file.
if (await postgresAvailable()) {
  brokerRestartSuite({
    name: 'postgres',
    capabilities: { ordering: 'per-key', persistence: true, replay: true, nativeDelay: true, brokerDedup: true },
    restart: () => restartLocalBroker('postgresql'),
    async create(settings) {
      const schema = uniqueSchema('brestart');
      const db: SqlDatabase = createPgDatabase({ connectionString: PG_URL, maxConnections: 16 });
      await migrate(db, { schema });
      return {
        publisher: () => new PostgresPublisher({ db, schema, maxMessageBytes: settings.maxMessageBytes }),
        subscriber: () => new PostgresSubscriber({ db, schema, ackTimeoutMs: settings.ackTimeoutMs, maxMessageBytes: settings.maxMessageBytes }),
        crash: (subscriber) => (subscriber as PostgresSubscriber).simulateCrashForTests(),
        async publishRaw(topic, body) {
          await db.query(`INSERT INTO "${schema}".broker_messages (topic, key, body) VALUES ($1, '', $2)`, [
            topic,
            new TextDecoder().decode(body).replaceAll('\u0000', ''),
          ]);
        },
        async close() {
          await db.close();
          await dropSchema(schema);
        },
      };
    },
  });
} else {
  skipBecauseNoServer('brokerRestartSuite on PostgreSQL');
}
