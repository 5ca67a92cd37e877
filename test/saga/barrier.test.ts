import Database from 'better-sqlite3';
import { createSqliteStore } from '../../src/adapters/sqlite/store.js';
import { sqliteExecutor } from '../../src/saga/barrier.js';
import { tmpDir } from '../helpers/tmp.js';
import { barrierSuite } from './barrier.suite.js';

// Folders made at the top level: tmpDir removes them when the file ends.
const dirs = [tmpDir('kapok-barrier-'), tmpDir('kapok-barrier-')];

// Through Kapok's Store port (what a Kapok-built service uses)...
barrierSuite('sqlite (Store port)', async () => {
  const store = await createSqliteStore({ file: `${dirs[0]}/svc.db` });
  return {
    close: () => store.close(),
    setup: async (sql) => void (await store.execute(sql)),
    run: (fn) => store.transaction((tx) => fn(tx)),
    applied: async (gid) =>
      Number((await store.query<{ n: number }>('SELECT COUNT(*) AS n FROM biz WHERE gid = ?', [gid]))[0]?.n),
  };
});

// ...and on a bare better-sqlite3 database, as any Node service would hold one.
barrierSuite('sqlite (better-sqlite3)', async () => {
  const db = new Database(`${dirs[1]}/svc.db`);
  const x = sqliteExecutor(db);
  let chain: Promise<unknown> = Promise.resolve();
  return {
    close: async () => void db.close(),
    setup: async (sql) => void db.exec(sql),
    // One connection: transactions one after another (better-sqlite3 is synchronous).
    run: (fn) => {
      const next = chain.then(async () => {
        db.exec('BEGIN IMMEDIATE');
        try {
          const out = await fn(x);
          db.exec('COMMIT');
          return out;
        } catch (err) {
          db.exec('ROLLBACK');
          throw err;
        }
      });
      chain = next.catch(() => {});
      return next;
    },
    applied: async (gid) =>
      (db.prepare('SELECT COUNT(*) AS n FROM biz WHERE gid = ?').get(gid) as { n: number }).n,
  };
});
