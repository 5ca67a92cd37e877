import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { createSqliteStore } from '../src/adapters/sqlite/store.js';
import { CONSOLE_MIGRATIONS } from '../src/console/migrations.js';
import { createSessions } from '../src/console/sessions.js';
import { createAdminGuard, hashAdminTokens } from '../src/core/http/admin-auth.js';
import { tempDir } from './lib.js';

/**
 * CPU time of one console session lookup on the Store (SQLite, the default) against two same-run
 * baselines: the bearer-token check of the admin guard, and what the former in-memory sessions did
 * per request (SHA-256 of the id, one Map lookup). Rounds alternate in one process, so the ratios
 * hold on a busy machine; figures are process CPU time (process.cpuUsage), not wall time.
 * KAPOK_BENCH_SESSIONS (1,000) live sessions; KAPOK_BENCH_SESSION_CALLS (20,000) calls per round.
 * Run: npm run bench -- console-sessions, or node --import tsx bench/console-sessions.ts.
 */
export async function consoleSessionsBench() {
  const t = tempDir();
  const live = Number(process.env.KAPOK_BENCH_SESSIONS ?? 1000);
  const calls = Number(process.env.KAPOK_BENCH_SESSION_CALLS ?? 20_000);
  const store = await createSqliteStore({ file: join(t.dir, 'kapok.db') });
  await store.migrate(CONSOLE_MIGRATIONS);
  const token = 'bench-admin-token-0123456789';
  const tokens = hashAdminTokens([{ name: 'root', role: 'admin', token }]);
  const sessions = createSessions({
    store,
    tokens: () => tokens,
    idleMs: 30 * 60_000,
    maxAgeMs: 12 * 3600_000,
    maxSessions: live + 1,
    secure: false,
  });
  const guard = createAdminGuard({ token: null, tokens, gov: false, key: 'admin.tokens', what: 'bench' });
  const cookies: string[] = [];
  for (let i = 0; i < live; i++)
    cookies.push((await sessions.create({ name: 'root', role: 'admin' })).setCookie.split(';')[0] as string);
  const reqs = cookies.map(
    (cookie) => ({ headers: { cookie, host: 'kapok.local' } }) as unknown as IncomingMessage,
  );
  // The former in-memory store: a Map keyed by the id's SHA-256.
  const memory = new Map(
    cookies.map((c) => [createHash('sha256').update(c.slice(14)).digest('base64url'), { seen: 0 }]),
  );
  const peer = { remoteAddress: '10.0.0.1', forwarded: false };

  const cpu = async (fn: (i: number) => unknown) => {
    const start = process.cpuUsage();
    for (let i = 0; i < calls; i++) await fn(i);
    const d = process.cpuUsage(start);
    return (d.user + d.system) / calls; // µs per call
  };
  const rounds = { store: [] as number[], bearer: [] as number[], memory: [] as number[] };
  for (let r = 0; r < 5; r++) {
    rounds.store.push(await cpu((i) => sessions.resolve(reqs[i % live] as IncomingMessage, false)));
    rounds.bearer.push(await cpu(() => guard.check(`Bearer ${token}`, peer, 'viewer')));
    rounds.memory.push(
      await cpu((i) => {
        const id = (cookies[i % live] as string).slice(14);
        const s = memory.get(createHash('sha256').update(id).digest('base64url'));
        if (s) s.seen = i;
      }),
    );
  }
  sessions.close();
  await store.close();
  t.remove();
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  const us = (x: number) => Math.round(x * 100) / 100;
  const m = { store: median(rounds.store), bearer: median(rounds.bearer), memory: median(rounds.memory) };
  return {
    liveSessions: live,
    callsPerRound: calls,
    rounds: 5,
    cpuMicrosPerCall: {
      sqliteSession: us(m.store),
      bearerToken: us(m.bearer),
      formerInMemorySession: us(m.memory),
    },
    ratio: {
      sqliteSessionToBearer: Math.round((m.store / m.bearer) * 10) / 10,
      sqliteSessionToFormerMemory: Math.round((m.store / m.memory) * 10) / 10,
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`)
  console.log(JSON.stringify(await consoleSessionsBench(), null, 2));
