import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { createSqliteSpoolStore, type SqliteSpoolOptions } from '../../src/adapters/sqlite/spool.js';
import { isKapokError } from '../../src/core/errors.js';
import { tmpDir } from '../helpers/tmp.js';
import { spoolConformance } from '../ports/spool.conformance.js';

const dir = mkdtempSync(join(tmpdir(), 'kapok-sqlite-spool-'));
spoolConformance('sqlite', {
  make: (key) => createSqliteSpoolStore({ file: join(dir, `${key}.db`) }),
  cleanup: async () => rmSync(dir, { recursive: true, force: true }),
});

describe('sqlite spool adapter', () => {
  it('opens the file in WAL mode (a reader never blocks the intake)', () => {
    for (const fsync of ['normal', 'full'] as const) {
      const file = join(tmpDir(), `${fsync}.db`);
      createSqliteSpoolStore({ file, fsync }).close();
      const db = new Database(file);
      try {
        assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
      } finally {
        db.close();
      }
    }
  });

  it('fails with KAPOK_EDGE_SPOOL naming the file when it cannot open it', () => {
    const missing = join(tmpDir(), 'no-such-dir', 'spool.db');
    const garbage = join(tmpDir(), 'garbage.db');
    writeFileSync(garbage, 'not a database '.repeat(200));
    for (const file of [missing, garbage])
      assert.throws(
        () => createSqliteSpoolStore({ file }),
        (err) =>
          isKapokError(err, 'KAPOK_EDGE_SPOOL') && err.message.includes(file) && /dataDir/.test(err.message),
      );
  });

  it('rejects bad options with KAPOK_CONFIG_INVALID naming the option', () => {
    const cases: Array<[unknown, string]> = [
      [null, 'options'],
      [{ file: '' }, 'file'],
      [{ file: 'x.db', fsync: 'sometimes' }, 'fsync'],
      [{ file: 'x.db', busyTimeoutMs: -1 }, 'busyTimeoutMs'],
    ];
    for (const [opts, option] of cases)
      assert.throws(
        () => createSqliteSpoolStore(opts as SqliteSpoolOptions),
        (err) => isKapokError(err, 'KAPOK_CONFIG_INVALID') && err.message.includes(`option ${option} `),
      );
  });
});
