import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { describePostgresUrl } from '../../src/adapters/postgres/store.js';
import { serviceAvailable } from './services.js';

/** Local services used by *.int.test.ts files, and the probes that gate them. */
export const PG_URL = process.env.KAPOK_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.KAPOK_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Runs one statement on PG_URL with a fresh connection. */
export async function pgAdmin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/** A schema name of its own for one test file, and PG_URL with search_path set to it. */
export function pgSchema(prefix: string): { schema: string; url: string } {
  const schema = `${prefix}_${randomBytes(5).toString('hex')}`;
  const url = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  return { schema, url };
}

export const postgresGate = () =>
  serviceAvailable('postgres', () => pgAdmin('SELECT 1'), { where: describePostgresUrl(PG_URL) });

export const redisGate = () =>
  serviceAvailable('redis', async () => {
    const r = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    try {
      await r.connect();
      await r.ping();
    } finally {
      r.disconnect();
    }
  });

/**
 * `promtool check metrics` on a Prometheus text page. Skips the test without promtool, unless
 * KAPOK_REQUIRE_SERVICES=1 (CI installs it), where a missing promtool fails.
 */
export async function promtoolCheck(
  t: TestContext,
  text: string,
): Promise<{ code: number; stderr: string } | null> {
  const has = await promisify(execFile)('promtool', ['--version']).then(
    () => true,
    () => false,
  );
  if (!has) {
    if (process.env.KAPOK_REQUIRE_SERVICES === '1')
      throw new Error('promtool missing: apt-get install prometheus');
    t.skip('promtool not installed (apt-get install prometheus)');
    return null;
  }
  return new Promise((resolve) => {
    const child = execFile('promtool', ['check', 'metrics'], (err, _stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
    );
    child.stdin?.end(text);
  });
}
