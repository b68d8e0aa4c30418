import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DirectoryLockedError, MIGRATIONS, createPGliteDatabase, migrate, openEmbeddedEventStore } from '@causeway/postgres';

const root = mkdtempSync(join(tmpdir(), 'causeway-embedded-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('embedded store (PGlite in a directory)', () => {
  it('keeps events across close and reopen', async () => {
    const dataDir = join(root, 'persist');
    const first = await openEmbeddedEventStore({ dataDir });
    await first.append({ tenantId: 'acme', streamId: 'order-1' }, [{ eventType: 'shop.order.placed', data: { total: 5 } }]);
    await first.close();
    const second = await openEmbeddedEventStore({ dataDir });
    const events = await second.readStream({ tenantId: 'acme', streamId: 'order-1' });
    await second.close();
    expect(events.map((e) => e.data)).toEqual([{ total: 5 }]);
  });

  it('refuses a second opener of the same directory while the first holds it', async () => {
    const dataDir = join(root, 'locked');
    const store = await openEmbeddedEventStore({ dataDir });
    try {
      const error = await openEmbeddedEventStore({ dataDir }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DirectoryLockedError);
      expect((error as DirectoryLockedError).ownerPid).toBe(process.pid);
      // another process is refused too
      const child = spawnSync(process.execPath, ['--import', 'tsx', '-e', `
        const { openEmbeddedEventStore } = await import('@causeway/postgres');
        try { await openEmbeddedEventStore({ dataDir: ${JSON.stringify(dataDir)} }); console.log('opened'); }
        catch (e) { console.log(e.code); }`], { encoding: 'utf8', cwd: process.cwd() });
      expect(child.stdout.trim()).toBe('DIRECTORY_LOCKED');
    } finally {
      await store.close();
    }
    const again = await openEmbeddedEventStore({ dataDir });
    await again.close();
  });

  it('takes over a lock left by a process that died', async () => {
    const dataDir = join(root, 'stale');
    const dead = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
    writeFileSync(`${dataDir}.lock`, dead.stdout.trim());
    const store = await openEmbeddedEventStore({ dataDir });
    await store.close();
  });

  it('migrate is idempotent', async () => {
    const db = await createPGliteDatabase();
    try {
      const first = await migrate(db, { schema: 'mig' });
      const second = await migrate(db, { schema: 'mig' });
      expect(first.applied).toEqual(MIGRATIONS.map((m) => m.version));
      expect(second.applied).toEqual([]);
      expect(second.current).toBe(Math.max(...MIGRATIONS.map((m) => m.version)));
      await expect(migrate(db, { schema: 'Bad-Name"; drop' })).rejects.toThrow(/schema must match/);
    } finally {
      await db.close();
    }
  });
});
