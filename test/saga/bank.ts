import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Store } from '../../src/ports/store.js';
import {
  BARRIER_TABLE_SQL,
  barrier,
  barrierBody,
  barrierKey,
  barrierStatus,
} from '../../src/saga/barrier.js';

/**
 * A branch service for tests: a bank on a real Store (SQLite or PostgreSQL) whose operations run
 * through the barrier inside its own transactions, and that injects one fault per (branch, op) on
 * demand. Routes: POST /bank/<account>/<debit|credit|undo-debit|undo-credit|try|confirm|cancel>
 * with {amount}. Faults:
 *  - lose: commit, then cut the connection before answering (the response is lost);
 *  - fail: answer 500 the next `times` calls (without touching the database);
 *  - refuse: answer 409;
 *  - delay: wait `ms` before doing the work (a try arriving after its cancel);
 *  - chaos: either of fail and lose at random, with probability p each.
 */

export type Fault =
  | { kind: 'lose' | 'refuse' }
  | { kind: 'fail'; times: number }
  | { kind: 'delay'; ms: number }
  /** With probability p each: answer 503 without working, or work and lose the answer. */
  | { kind: 'chaos'; p: number };

export interface Call {
  at: number;
  branch: string;
  op: string;
  gid: string;
  path: string;
  headers: IncomingMessage['headers'];
  outcome?: string;
}

export interface Bank {
  url: string;
  calls: Call[];
  faults: Map<string, Fault>;
  /** Fault for every call whose branch id or op matches (key `branch/op`, `*\/op` or `branch/*`). */
  fault(key: string, f: Fault): void;
  total(): Promise<number>;
  balance(account: string): Promise<number>;
  close(): Promise<void>;
}

const DELTA: Record<string, number> = {
  debit: -1,
  credit: 1,
  'undo-debit': 1,
  'undo-credit': -1,
  try: -1,
  cancel: 1,
  confirm: 0,
};

export async function createBank(store: Store, accounts: Record<string, number>): Promise<Bank> {
  await store.execute(BARRIER_TABLE_SQL);
  await store.execute(
    'CREATE TABLE IF NOT EXISTS bank_accounts (id TEXT PRIMARY KEY, balance BIGINT NOT NULL)',
  );
  for (const [id, b] of Object.entries(accounts))
    await store.execute(
      'INSERT INTO bank_accounts (id, balance) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET balance = excluded.balance',
      [id, b],
    );
  const calls: Call[] = [];
  const faults = new Map<string, Fault>();
  const server: Server = createServer({ noDelay: true }, async (req, res) => {
    let raw = '';
    for await (const c of req) raw += c;
    const m = /^\/bank\/([a-z0-9_-]+)\/([a-z-]+)$/.exec(req.url ?? '');
    let key: ReturnType<typeof barrierKey>;
    try {
      key = barrierKey(req.headers);
    } catch (err) {
      res.writeHead(400).end(JSON.stringify({ error: (err as Error).message }));
      return;
    }
    const call: Call = {
      at: Date.now(),
      branch: key.branch,
      op: key.op,
      gid: key.gid,
      path: req.url ?? '',
      headers: req.headers,
    };
    calls.push(call);
    if (!m || !((m[2] as string) in DELTA)) {
      res.writeHead(404).end('{}');
      return;
    }
    const f =
      faults.get(`${key.branch}/${key.op}`) ?? faults.get(`*/${key.op}`) ?? faults.get(`${key.branch}/*`);
    if (f?.kind === 'refuse') {
      call.outcome = 'refused';
      res
        .writeHead(409, { 'content-type': 'application/json' })
        .end('{"result":"FAILURE","message":"insufficient funds"}');
      return;
    }
    const chaos = f?.kind === 'chaos' ? Math.random() : 1;
    if (f?.kind === 'chaos' && chaos < f.p) {
      call.outcome = 'failed';
      res.writeHead(503).end();
      return;
    }
    if (f?.kind === 'fail' && f.times > 0) {
      f.times--;
      call.outcome = 'failed';
      res
        .writeHead(500, { 'content-type': 'text/html' })
        .end('<html><title>500 Internal Error</title></html>');
      return;
    }
    if (f?.kind === 'delay') await new Promise((r) => setTimeout(r, f.ms));
    const amount = Number((JSON.parse(raw || '{}') as { amount?: number }).amount ?? 0);
    const delta = (DELTA[m[2] as string] as number) * amount;
    const out = await store.transaction((tx) =>
      barrier(tx, key, async () => {
        await tx.execute('UPDATE bank_accounts SET balance = balance + ? WHERE id = ?', [
          delta,
          m[1] as string,
        ]);
      }),
    );
    call.outcome = out.outcome;
    if (f?.kind === 'lose' || (f?.kind === 'chaos' && chaos < 2 * f.p)) {
      res.destroy();
      return;
    }
    res
      .writeHead(barrierStatus(out.outcome), { 'content-type': 'application/json' })
      .end(JSON.stringify(barrierBody(out.outcome, key)));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/bank/`;
  return {
    url,
    calls,
    faults,
    fault: (k, f) => faults.set(k, f),
    total: async () =>
      Number((await store.query<{ s: number }>('SELECT SUM(balance) AS s FROM bank_accounts'))[0]?.s),
    balance: async (a) =>
      Number(
        (await store.query<{ b: number }>('SELECT balance AS b FROM bank_accounts WHERE id = ?', [a]))[0]?.b,
      ),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
