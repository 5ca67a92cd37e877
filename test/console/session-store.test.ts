import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createSqliteStore } from '../../src/adapters/sqlite/store.js';
import { CONSOLE_MIGRATIONS } from '../../src/console/migrations.js';
import { createSessions } from '../../src/console/sessions.js';
import { type HashedToken, hashAdminTokens } from '../../src/core/http/admin-auth.js';
import type { Sessions } from '../../src/core/http/session.js';
import type { Store } from '../../src/ports/store.js';
import { tmpDir } from '../helpers/tmp.js';

/**
 * The console's sessions on the Store (a real SQLite file): what a row holds (no secret), idle and
 * absolute expiry on read, throttled last-used writes, the purge, the least-recently-used cap, and
 * the token in force deciding whether a session lives and with which role. A fake clock moves time.
 */

const ROOT = 'session-store-admin-token-01';
const DASH = 'session-store-viewer-token-01';
const MIN = 60_000;

describe('console sessions in the Store', () => {
  let store: Store;
  let sessions: Sessions;
  let t = 1_000_000;
  let tokens: readonly HashedToken[];
  const reqOf = (setCookie: string, headers: Record<string, string> = {}) =>
    ({
      headers: { cookie: setCookie.split(';')[0], host: 'kapok.local:8080', ...headers },
    }) as unknown as IncomingMessage;
  const rows = () =>
    store.query<Record<string, unknown>>('SELECT * FROM console_sessions ORDER BY created_ms, id_hash');

  before(async () => {
    store = await createSqliteStore({ file: join(tmpDir('kapok-session-store-'), 'kapok.db') });
    await store.migrate(CONSOLE_MIGRATIONS);
  });
  after(() => store?.close());
  beforeEach(async () => {
    sessions?.close();
    await store.execute('DELETE FROM console_sessions');
    tokens = hashAdminTokens([
      { name: 'root', role: 'admin', token: ROOT },
      { name: 'dash', role: 'viewer', token: DASH },
    ]);
    sessions = createSessions({
      store,
      tokens: () => tokens,
      idleMs: 30 * MIN,
      maxAgeMs: 12 * 60 * MIN,
      maxSessions: 3,
      secure: false,
      touchMs: MIN,
      now: () => t,
    });
  });
  after(() => sessions?.close());

  it('keeps only the id’s hash, the CSRF token, role, token identity and times: no secret in a row', async () => {
    const s = await sessions.create({ name: 'root', role: 'admin' });
    const id = /^kapok_session=([^;]+)/.exec(s.setCookie)?.[1] as string;
    const [row] = await rows();
    assert.ok(row);
    assert.deepEqual(Object.keys(row).sort(), [
      'created_ms',
      'csrf',
      'id_hash',
      'name',
      'role',
      'seen_ms',
      'token_id',
    ]);
    const text = JSON.stringify(row);
    assert.ok(!text.includes(id), 'the cookie value is not stored');
    assert.ok(!text.includes(ROOT), 'the token is not stored');
    const digest = tokens[0]?.digest.toString('base64url') as string;
    assert.ok(!text.includes(digest), 'nor the digest the guard compares');
    assert.equal(row.csrf, s.csrf);
    assert.equal(row.role, 'admin');
    assert.deepEqual(await sessions.resolve(reqOf(s.setCookie), false), { name: 'root', role: 'admin' });
  });

  it('ends a session unused for idleMs, and one older than maxAgeMs however used; the purge deletes them', async () => {
    const idle = await sessions.create({ name: 'root', role: 'admin' });
    const busy = await sessions.create({ name: 'dash', role: 'viewer' });
    for (let i = 0; i < 24; i++) {
      t += 29 * MIN;
      assert.ok(await sessions.resolve(reqOf(busy.setCookie), false), `busy session alive at step ${i}`);
      if (i === 1) assert.equal(await sessions.resolve(reqOf(idle.setCookie), false), null);
    }
    t += 29 * MIN; // past 12 h since login
    assert.equal(await sessions.resolve(reqOf(busy.setCookie), false), null);
    const kept = await sessions.create({ name: 'root', role: 'admin' });
    await store.execute('UPDATE console_sessions SET seen_ms = ?', [t - 31 * MIN]);
    assert.equal(await sessions.purge(), 1);
    assert.equal((await rows()).length, 0);
    assert.equal(await sessions.resolve(reqOf(kept.setCookie), false), null);
  });

  it('writes the last-used time at most once per touchMs, not once per request', async () => {
    const s = await sessions.create({ name: 'root', role: 'admin' });
    const seen = async () => Number((await rows())[0]?.seen_ms);
    const start = t;
    for (let i = 0; i < 10; i++) {
      t += 5_000;
      await sessions.resolve(reqOf(s.setCookie), false);
    }
    assert.equal(await seen(), start, 'no write within the first minute');
    t += 10_000; // 60 s after the last write
    await sessions.resolve(reqOf(s.setCookie), false);
    assert.equal(await seen(), t);
  });

  it('keeps at most maxSessions, ending the least recently used', async () => {
    const a = await sessions.create({ name: 'root', role: 'admin' });
    t += MIN;
    const b = await sessions.create({ name: 'root', role: 'admin' });
    t += MIN;
    const c = await sessions.create({ name: 'root', role: 'admin' });
    t += MIN;
    await sessions.resolve(reqOf(a.setCookie), false); // a is now the most recently used
    t += MIN;
    await sessions.create({ name: 'root', role: 'admin' });
    assert.equal((await rows()).length, 3);
    assert.equal(await sessions.resolve(reqOf(b.setCookie), false), null, 'b was least recently used');
    assert.ok(await sessions.resolve(reqOf(a.setCookie), false));
    assert.ok(await sessions.resolve(reqOf(c.setCookie), false));
  });

  it('follows admin.tokens in force: a removed token ends its sessions, a changed role applies at once', async () => {
    const root = await sessions.create({ name: 'root', role: 'admin' });
    const dash = await sessions.create({ name: 'dash', role: 'viewer' });
    tokens = hashAdminTokens([{ name: 'root', role: 'viewer', token: ROOT }]);
    assert.deepEqual(await sessions.resolve(reqOf(root.setCookie), false), { name: 'root', role: 'viewer' });
    assert.equal(await sessions.prune(), 1, 'the removed token’s session is deleted');
    assert.equal(await sessions.resolve(reqOf(dash.setCookie), false), null);
    // The same name with another secret is another token: its sessions end too.
    tokens = hashAdminTokens([{ name: 'root', role: 'admin', token: 'another-secret-for-root-01' }]);
    assert.equal(await sessions.resolve(reqOf(root.setCookie), false), null);
    assert.equal((await rows()).length, 0);
  });

  it('keeps a loopback session (no admin.tokens) only while no token is configured', async () => {
    tokens = [];
    const s = await sessions.create({ name: 'loopback', role: 'admin' });
    assert.equal((await rows())[0]?.token_id, null);
    assert.deepEqual(await sessions.resolve(reqOf(s.setCookie), false), { name: 'loopback', role: 'admin' });
    tokens = hashAdminTokens([{ name: 'root', role: 'admin', token: ROOT }]);
    assert.equal(await sessions.resolve(reqOf(s.setCookie), false), null);
  });

  it('refuses another origin and a change without the CSRF token (KAPOK_HTTP_CSRF); current() gives the token', async () => {
    const s = await sessions.create({ name: 'root', role: 'admin' });
    await assert.rejects(sessions.resolve(reqOf(s.setCookie, { origin: 'https://evil.example' }), false), {
      code: 'KAPOK_HTTP_CSRF',
    });
    await assert.rejects(sessions.resolve(reqOf(s.setCookie), true), { code: 'KAPOK_HTTP_CSRF' });
    assert.ok(await sessions.resolve(reqOf(s.setCookie, { 'x-kapok-csrf': s.csrf }), true));
    assert.equal((await sessions.current(reqOf(s.setCookie)))?.csrf, s.csrf);
    assert.match(await sessions.destroy(reqOf(s.setCookie)), /Max-Age=0/);
    assert.equal(await sessions.current(reqOf(s.setCookie)), null);
  });

  it('purges expired rows on its own, periodically', async () => {
    const own = createSessions({
      store,
      tokens: () => tokens,
      idleMs: MIN,
      maxAgeMs: 60 * MIN,
      maxSessions: 10,
      secure: false,
      purgeMs: 10,
      now: () => t,
    });
    try {
      await own.create({ name: 'root', role: 'admin' });
      assert.equal((await rows()).length, 1);
      t += 2 * MIN;
      // No call on the sessions: the timer deletes the row (polled, no time asserted).
      const end = Date.now() + 10_000;
      while ((await rows()).length > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
      assert.equal((await rows()).length, 0);
    } finally {
      own.close();
    }
  });

  it('validates its options', () => {
    assert.throws(
      () =>
        createSessions({ store, tokens: () => [], idleMs: 0, maxAgeMs: 1, maxSessions: 1, secure: false }),
      /idleMs must be a positive integer/,
    );
  });
});
