import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createPostgresStore } from '../../src/adapters/postgres/store.js';
import { type RunningApp, startApp } from '../../src/app.js';
import { verifyStore } from '../../src/audit/reader.js';
import { loadKapokConfig } from '../../src/config.js';
import { offYaml } from '../helpers/config.js';
import { captureLogs } from '../helpers/logs.js';
import { pgAdmin, pgSchema, postgresGate } from '../helpers/probes.js';
import { tmpDir, tmpFile } from '../helpers/tmp.js';
import { openLog } from './setup.js';

/**
 * Several processes on one PostgreSQL append to one chain (docs/audit.md#several-processes): each
 * append locks the head row (SELECT ... FOR UPDATE) and reads the head inside its transaction. Each
 * writer here has its own connection pool, as a separate process would; the result must be one
 * chain, seqs 1..n without gaps or forks, that verifies.
 */

const { schema, url } = pgSchema('kapok_audit');
const { skip } = await postgresGate();
const KEK = '00112233445566778899aabbccddeeff';

describe('audit on PostgreSQL: concurrent writers, one chain', { skip }, () => {
  before(() => pgAdmin(`CREATE SCHEMA ${schema}`));
  after(() => pgAdmin(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));

  it('two writers with their own pools appending 1,500 entries each at once make one valid chain', async () => {
    const a = await createPostgresStore({ url, poolMax: 4 });
    const b = await createPostgresStore({ url, poolMax: 4 });
    try {
      // Both race to migrate and to create the signing key, as two first starts would.
      const [la, lb] = await Promise.all([openLog(a, 700, 100), openLog(b, 700, 100)]);
      const burst = (log: typeof la, who: string) =>
        Promise.all(
          Array.from({ length: 1500 }, (_, i) =>
            log.record({ actor: who, action: 'test.append', outcome: 'ok', target: String(i) }),
          ),
        );
      await Promise.all([burst(la, 'writer-a'), burst(lb, 'writer-b')]);
      await Promise.all([la.close(), lb.close()]);
      const [c] = await a.query<{ n: number; max: number; distinct_hashes: number }>(
        'SELECT COUNT(*) AS n, MAX(seq) AS max, COUNT(DISTINCT hash) AS distinct_hashes FROM audit_log',
      );
      assert.equal(Number(c?.n), 3000);
      assert.equal(Number(c?.max), 3000);
      assert.equal(Number(c?.distinct_hashes), 3000);
      const byWriter = await a.query<{ actor: string; n: number }>(
        'SELECT actor, COUNT(*) AS n FROM audit_log GROUP BY actor ORDER BY actor',
      );
      assert.deepEqual(
        byWriter.map((r) => [r.actor, Number(r.n)]),
        [
          ['writer-a', 1500],
          ['writer-b', 1500],
        ],
      );
      const v = await verifyStore(a);
      assert.equal(v.ok, true, JSON.stringify(v.problem));
      assert.equal(v.entries, 3000);
      assert.ok(v.checkpoints >= 2, `checkpoints: ${v.checkpoints}`);
      const keys = await a.query('SELECT id FROM audit_keys');
      assert.equal(keys.length, 1, 'one signing key, whoever created it');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('two Kapok instances on the same database record their acts into the same chain', async () => {
    const start = (): Promise<RunningApp> => {
      const yaml = [
        `dataDir: ${tmpDir('kapok-audit-pg-')}`,
        'http: { host: 127.0.0.1, port: 0 }',
        'log: { level: warn }',
        `store: { driver: postgres, url: "${url}" }`,
        `audit: { enabled: true, kek: "${KEK}", adminToken: "audit-admin-token-0001" }`,
        ...offYaml(),
      ].join('\n');
      return startApp(loadKapokConfig({ file: tmpFile('kapok.yaml', yaml), env: {}, cwd: tmpDir() }), {
        logDestination: captureLogs(),
      });
    };
    const [x, y] = await Promise.all([start(), start()]);
    try {
      // Refused reads are admin.auth.denied acts: 100 on each instance, all at once.
      await Promise.all(
        [x, y].flatMap((app) =>
          Array.from({ length: 100 }, () =>
            fetch(`http://127.0.0.1:${app.port}/api/audit`).then((r) => r.arrayBuffer()),
          ),
        ),
      );
    } finally {
      await Promise.all([x.stop(), y.stop()]);
    }
    const s = await createPostgresStore({ url, poolMax: 2 });
    try {
      const denied = await s.query<{ n: number }>(
        "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'admin.auth.denied'",
      );
      assert.equal(Number(denied[0]?.n), 200);
      const life = await s.query<{ action: string; n: number }>(
        "SELECT action, COUNT(*) AS n FROM audit_log WHERE action IN ('kapok.start', 'kapok.stop') GROUP BY action ORDER BY action",
      );
      assert.deepEqual(
        life.map((r) => [r.action, Number(r.n)]),
        [
          ['kapok.start', 2],
          ['kapok.stop', 2],
        ],
      );
      const v = await verifyStore(s);
      assert.equal(v.ok, true, JSON.stringify(v.problem));
      assert.equal(v.entries, 3000 + 204);
    } finally {
      await s.close();
    }
  });
});
