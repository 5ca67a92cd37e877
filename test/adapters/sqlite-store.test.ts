import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createSqliteStore, type SqliteStoreOptions } from '../../src/adapters/sqlite/store.js';
import { isKapokError } from '../../src/core/errors.js';
import { storeConformance } from '../ports/store.conformance.js';

const conformanceDir = mkdtempSync(join(tmpdir(), 'kapok-sqlite-conf-'));
storeConformance(
  'sqlite',
  () => createSqliteStore({ file: join(conformanceDir, 'conformance.db') }),
  async () => rmSync(conformanceDir, { recursive: true, force: true }),
);

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const adapterUrl = pathToFileURL(join(repoRoot, 'src/adapters/sqlite/store.ts')).href;

/** Another process that opens the file, writes inside a transaction, holds it holdMs, then commits. */
function lockHolder(
  file: string,
  holdMs: number,
): { child: ChildProcess; locked: Promise<void>; done: Promise<string> } {
  const code = `
    const { createSqliteStore } = await import(${JSON.stringify(adapterUrl)});
    const s = await createSqliteStore({ file: ${JSON.stringify(file)} });
    await s.transaction(async (tx) => {
      await tx.execute('INSERT INTO t (v) VALUES (?)', ['child']);
      process.stdout.write('locked\\n');
      await new Promise((r) => setTimeout(r, ${holdMs}));
    });
    process.stdout.write('committed\\n');
    await s.close();
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr?.on('data', (d) => {
    err += d;
  });
  const locked = new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d) => {
      out += d;
      if (out.includes('locked')) resolve();
    });
    child.on('exit', (status) => reject(new Error(`lock holder exited (${status}) before locking: ${err}`)));
  });
  const done = new Promise<string>((resolve) => child.on('exit', () => resolve(out)));
  return { child, locked, done };
}

describe('sqlite store adapter', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kapok-sqlite-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('persists to its file across close and reopen', async () => {
    const file = join(dir, 'persist.db');
    const migrations = [{ id: 'test/0001', sql: 'CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)' }];
    const first = await createSqliteStore({ file });
    assert.deepEqual(await first.migrate(migrations), ['test/0001']);
    await first.execute('INSERT INTO notes (id, body) VALUES (?, ?)', [1, 'kept']);
    await first.close();
    const second = await createSqliteStore({ file });
    try {
      assert.deepEqual(await second.migrate(migrations), []);
      assert.deepEqual(await second.query('SELECT id, body FROM notes'), [{ id: 1, body: 'kept' }]);
    } finally {
      await second.close();
    }
  });

  it('opens files in WAL mode with foreign keys on', async () => {
    const s = await createSqliteStore({ file: join(dir, 'pragmas.db') });
    try {
      assert.deepEqual(await s.query('PRAGMA journal_mode'), [{ journal_mode: 'wal' }]);
      assert.deepEqual(await s.query('PRAGMA foreign_keys'), [{ foreign_keys: 1 }]);
      assert.deepEqual(await s.query('PRAGMA busy_timeout'), [{ timeout: 5000 }]);
    } finally {
      await s.close();
    }
  });

  it('works on :memory:', async () => {
    const s = await createSqliteStore({ file: ':memory:', busyTimeoutMs: 0 });
    try {
      await s.execute('CREATE TABLE t (v TEXT)');
      await s.execute('INSERT INTO t (v) VALUES (?)', ['x']);
      assert.deepEqual(await s.query('SELECT v FROM t'), [{ v: 'x' }]);
    } finally {
      await s.close();
    }
  });

  it('keeps answering past its statement cache size', async () => {
    const s = await createSqliteStore({ file: ':memory:', statementCacheSize: 8 });
    try {
      for (let i = 0; i < 40; i++) assert.deepEqual(await s.query(`SELECT ${i} AS v`), [{ v: i }]);
      assert.deepEqual(await s.query('SELECT 0 AS v'), [{ v: 0 }]);
    } finally {
      await s.close();
    }
  });

  it('rejects bad options with KAPOK_CONFIG_INVALID naming the option', async () => {
    const cases: Array<[unknown, string]> = [
      [{ file: '' }, 'file'],
      [{ file: 42 }, 'file'],
      [{ file: ':memory:', busyTimeoutMs: -1 }, 'busyTimeoutMs'],
      [{ file: ':memory:', busyTimeoutMs: 1.5 }, 'busyTimeoutMs'],
      [{ file: ':memory:', statementCacheSize: 0 }, 'statementCacheSize'],
      [{ file: ':memory:', checkpointIntervalMs: -1 }, 'checkpointIntervalMs'],
      [{ file: ':memory:', checkpointIntervalMs: 0.5 }, 'checkpointIntervalMs'],
      [{ file: ':memory:', autocheckpointPages: 0 }, 'autocheckpointPages'],
      [{ file: ':memory:', autocheckpointPages: 10.5 }, 'autocheckpointPages'],
      [{ file: ':memory:', onCheckpoint: 'log' }, 'onCheckpoint'],
      [null, 'options'],
    ];
    for (const [opts, option] of cases) {
      await assert.rejects(createSqliteStore(opts as SqliteStoreOptions), (err) => {
        assert.ok(isKapokError(err, 'KAPOK_CONFIG_INVALID'), String(err));
        assert.match(err.message, new RegExp(`option ${option}`));
        return true;
      });
    }
  });

  it('fails with KAPOK_STORE_UNAVAILABLE naming the file when it cannot open it', async () => {
    const missing = join(dir, 'no-such-dir', 'x.db');
    const garbage = join(dir, 'garbage.db');
    writeFileSync(garbage, 'this is not a sqlite database, just text '.repeat(100));
    for (const file of [missing, garbage]) {
      await assert.rejects(createSqliteStore({ file }), (err) => {
        assert.ok(isKapokError(err, 'KAPOK_STORE_UNAVAILABLE'), String(err));
        assert.ok(err.message.includes(file), err.message);
        assert.ok(err.cause !== undefined);
        return true;
      });
    }
  });

  it('waits for another process holding the write lock (busy timeout) instead of failing', async () => {
    const file = join(dir, 'shared.db');
    const patient = await createSqliteStore({ file, busyTimeoutMs: 5000 });
    const impatient = await createSqliteStore({ file, busyTimeoutMs: 50 });
    await patient.execute('CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT NOT NULL)');
    const holder = lockHolder(file, 1000);
    try {
      await holder.locked;
      // Locked for longer than its 50 ms busy timeout: a clear, retryable error.
      await assert.rejects(impatient.execute('INSERT INTO t (v) VALUES (?)', ['impatient']), (err) => {
        assert.ok(isKapokError(err, 'KAPOK_STORE_UNAVAILABLE'), String(err));
        assert.match(err.message, /busy timeout/);
        return true;
      });
      // Within its 5 s busy timeout: waits for the other process to commit, then writes.
      await patient.execute('INSERT INTO t (v) VALUES (?)', ['patient']);
      assert.deepEqual(await patient.query('SELECT v FROM t ORDER BY id'), [
        { v: 'child' },
        { v: 'patient' },
      ]);
      assert.match(await holder.done, /committed/);
    } finally {
      if (holder.child.exitCode === null) holder.child.kill();
      await Promise.all([patient.close(), impatient.close()]);
    }
  });

  it('checkpoints the WAL from a worker thread, off the event loop, and keeps it bounded', async () => {
    const file = join(dir, 'checkpoint.db');
    const modes = new Set<string>();
    let checkpoints = 0;
    const s = await createSqliteStore({
      file,
      checkpointIntervalMs: 50,
      onCheckpoint: (c) => {
        checkpoints++;
        modes.add(c.mode);
      },
    });
    const walBytes = () => (existsSync(`${file}-wal`) ? statSync(`${file}-wal`).size : 0);
    try {
      // The worker is up: SQLite's automatic checkpoint (on the committing thread) is off.
      const deadline = Date.now() + 10_000;
      while (
        (await s.query<{ wal_autocheckpoint: number }>('PRAGMA wal_autocheckpoint'))[0]?.wal_autocheckpoint
      ) {
        assert.ok(Date.now() < deadline, 'the checkpoint worker did not start within 10 s');
        await new Promise((r) => setTimeout(r, 20));
      }
      await s.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
      // ~80 MB of rows, twenty times what one automatic checkpoint lets the WAL reach (1,000 pages).
      const row = 'x'.repeat(1000);
      const values = Array.from({ length: 64 }, () => '(?)').join(', ');
      const params = Array.from({ length: 64 }, () => row);
      let walMax = 0;
      for (let i = 0; i < 1250; i++) {
        await s.execute(`INSERT INTO t (v) VALUES ${values}`, params);
        walMax = Math.max(walMax, walBytes());
        if (i % 8 === 7) await new Promise((r) => setTimeout(r, 2));
      }
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(checkpoints > 0, 'no checkpoint ran');
      assert.ok(modes.has('PASSIVE'), `checkpoint modes: ${[...modes]}`);
      // The rows reached the database file (only a checkpoint copies them there)...
      assert.ok(statSync(file).size > 20 * 2 ** 20, `database file ${statSync(file).size} bytes`);
      // ...and the WAL stayed at half of what was written at most: a RESTART checkpoint past 4,000
      // pages (16 MB) bounds it, plus what is written while the worker gets to it.
      assert.ok(walMax < 40 * 2 ** 20, `WAL reached ${walMax} bytes`);
      assert.deepEqual(await s.query('SELECT count(*) AS n FROM t'), [{ n: 80_000 }]);
    } finally {
      await s.close();
    }
    // The main connection closed last: it checkpointed and removed the WAL, as without the worker.
    assert.equal(existsSync(`${file}-wal`), false);
    const again = await createSqliteStore({ file, checkpointIntervalMs: 0 });
    try {
      assert.deepEqual(await again.query('SELECT count(*) AS n FROM t'), [{ n: 80_000 }]);
    } finally {
      await again.close();
    }
  });

  it('keeps SQLite automatic checkpoints by default (1,000 pages, as SQLite), with checkpointIntervalMs 0 and on :memory:', async () => {
    const cases: Array<[SqliteStoreOptions, number]> = [
      [{ file: join(dir, 'auto-default.db') }, 1000],
      [{ file: join(dir, 'auto.db'), checkpointIntervalMs: 0 }, 1000],
      [{ file: join(dir, 'auto-4000.db'), autocheckpointPages: 4000 }, 4000],
      // No WAL in memory: SQLite's own setting stays.
      [{ file: ':memory:', checkpointIntervalMs: 50 }, 1000],
    ];
    for (const [opts, pages] of cases) {
      const s = await createSqliteStore(opts);
      try {
        await new Promise((r) => setTimeout(r, 200));
        assert.deepEqual(
          await s.query('PRAGMA wal_autocheckpoint'),
          [{ wal_autocheckpoint: pages }],
          opts.file,
        );
      } finally {
        await s.close();
      }
    }
  });

  it('autocheckpointPages bounds the WAL: a commit past it checkpoints and the WAL is reused', async () => {
    const file = join(dir, 'bounded.db');
    const s = await createSqliteStore({ file, autocheckpointPages: 100 });
    try {
      await s.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
      const row = 'y'.repeat(1000);
      let walMax = 0;
      // ~4 MB in transactions of ~16 pages: 10 times what 100 pages of WAL hold.
      for (let i = 0; i < 64; i++) {
        await s.execute(`INSERT INTO t (v) VALUES ${Array(64).fill('(?)').join(', ')}`, Array(64).fill(row));
        const wal = statSync(`${file}-wal`).size;
        walMax = Math.max(walMax, wal);
      }
      // SQLite reuses the WAL file from its start after a checkpoint rather than truncating it, so
      // the file stops growing at ~100 pages plus one transaction; at the default (1,000 pages) it
      // would have grown to ~4 MB.
      assert.ok(walMax < 200 * 4096 + 64 * 1024, `WAL reached ${walMax} bytes`);
      assert.ok(
        statSync(file).size > 2 * 2 ** 20,
        `database file ${statSync(file).size} bytes: nothing checkpointed`,
      );
      assert.deepEqual(await s.query('SELECT count(*) AS n FROM t'), [{ n: 4096 }]);
    } finally {
      await s.close();
    }
  });
});
