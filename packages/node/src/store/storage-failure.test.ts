import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { toHttpError } from '../api/http-errors.ts';
import { isStorageFailure } from './storage-failure.ts';

/** What SQLite throws, for real: a database capped at a few pages fills up like a full disk. */
function thrown(run: (db: Database.Database) => void): unknown {
  const db = new Database(':memory:');
  try {
    db.exec('CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB)');
    run(db);
  } catch (e) {
    return e;
  } finally {
    db.close();
  }
  throw new Error('nothing was thrown');
}

describe('storage failures', () => {
  const full = (): unknown =>
    thrown((db) => {
      db.pragma('max_page_count = 4');
      const put = db.prepare('INSERT INTO t VALUES (?, ?)');
      for (let i = 0; i < 100; i++) put.run(String(i), Buffer.alloc(4096));
    });

  it('a full database is a storage failure, a constraint is not', () => {
    expect((full() as { code: string }).code).toBe('SQLITE_FULL');
    expect(isStorageFailure(full())).toBe(true);
    const duplicate = thrown(
      (db) =>
        db.prepare('INSERT INTO t VALUES (?, ?)').run('a', null).changes + db.prepare('INSERT INTO t VALUES (?, ?)').run('a', null).changes,
    );
    expect((duplicate as { code: string }).code).toMatch(/^SQLITE_CONSTRAINT/);
    expect(isStorageFailure(duplicate)).toBe(false);
    expect(isStorageFailure(Object.assign(new Error('no space'), { code: 'ENOSPC' }))).toBe(true);
    expect(isStorageFailure(null)).toBe(false);
  });

  it('answers 503 STORAGE_FAILED over HTTP, without the driver’s message', () => {
    const { status, body } = toHttpError(full());
    expect(status).toBe(503);
    expect(body.code).toBe('STORAGE_FAILED');
    expect(JSON.stringify(body)).not.toContain('SQLITE');
  });
});
