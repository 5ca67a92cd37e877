import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Stand-ins for the legacy middleware, written for the tests because neither product is available
 * here. Their limits: they speak only the part of each protocol the coordinator uses.
 * - EOS-style TM: POST <base>/prepare {gid, steps} → keeps the steps under X-EOS-Transaction-ID;
 *   /commit and /rollback {gid}. Steps must be objects {service, operation} (what we call
 *   "EOS-parsable"); otherwise it answers 200 {success:false, code:'EOS-4001', message} as EOS-style
 *   managers do. No XA, no persistence, no real EOS error catalogue.
 * - TongWeb-like gateway: refuses any content type but application/json (415, an HTML page), a
 *   missing or unknown X-TongWeb-Session (401 {errorCode, errorMessage}), and can be made slower
 *   than its budget (`delay`). No clustering, no real TongWeb session semantics.
 */

export interface Seen {
  path: string;
  headers: IncomingHttpHeaders;
  body: unknown;
}

export interface StandIn {
  url: string;
  seen: Seen[];
  state: Map<string, { steps: unknown[]; status: 'prepared' | 'committed' | 'rolledback' }>;
  /** How long to wait before answering a path (a gateway slower than its budget). */
  delay: (path: string) => number;
  close(): Promise<void>;
}

async function serve(
  handler: (path: string, headers: IncomingHttpHeaders, raw: string) => Promise<[number, string, string]>,
  base: string,
): Promise<StandIn & { server: Server }> {
  const seen: Seen[] = [];
  const s: StandIn & { server: Server } = {
    url: '',
    seen,
    state: new Map(),
    delay: () => 0,
    server: createServer(async (req, res) => {
      let raw = '';
      for await (const c of req) raw += c;
      let body: unknown = raw;
      try {
        body = JSON.parse(raw);
      } catch {}
      seen.push({ path: req.url ?? '', headers: req.headers, body });
      const wait = s.delay(req.url ?? '');
      if (wait) await new Promise((r) => setTimeout(r, wait));
      const [status, type, text] = await handler(req.url ?? '', req.headers, raw);
      if (!res.destroyed) res.writeHead(status, { 'content-type': type }).end(text);
    }),
    close: () =>
      new Promise<void>((r) => {
        s.server.closeAllConnections();
        s.server.close(() => r());
      }),
  };
  await new Promise<void>((r) => s.server.listen(0, '127.0.0.1', r));
  s.url = `http://127.0.0.1:${(s.server.address() as AddressInfo).port}${base}`;
  return s;
}

const json = (status: number, v: unknown): [number, string, string] => [
  status,
  'application/json',
  JSON.stringify(v),
];

export async function eosStandIn(): Promise<StandIn> {
  const s: StandIn = await serve(async (path, h, raw) => {
    const xid = h['x-eos-transaction-id'];
    if (typeof xid !== 'string')
      return json(400, { code: 'EOS-4000', message: 'X-EOS-Transaction-ID missing' });
    const body = JSON.parse(raw || '{}') as { gid?: string; steps?: unknown[] };
    if (path.endsWith('/prepare')) {
      const ok =
        Array.isArray(body.steps) &&
        body.steps.every((x) => x && typeof x === 'object' && 'service' in x && 'operation' in x);
      if (!ok) return json(200, { success: false, code: 'EOS-4001', message: 'step not parsable' });
      s.state.set(xid, { steps: body.steps as unknown[], status: 'prepared' });
      return json(200, { success: true, xid });
    }
    const t = s.state.get(xid);
    if (path.endsWith('/commit')) {
      if (!t || t.status === 'rolledback')
        return json(200, { status: 'FAIL', code: 'EOS-4004', message: 'nothing prepared' });
      t.status = 'committed';
      return json(200, { status: 'COMMITTED' });
    }
    if (path.endsWith('/rollback')) {
      if (t) t.status = 'rolledback';
      return json(200, { status: 'ROLLEDBACK_OK' });
    }
    return json(404, { code: 'EOS-4040', message: 'unknown' });
  }, '/eos');
  return s;
}

export async function tongWebStandIn(session: string): Promise<StandIn> {
  return serve(async (_path, h) => {
    if (!/^application\/json/.test(h['content-type'] ?? ''))
      return [
        415,
        'text/html',
        '<html><head><title>TongWeb 415 Unsupported Media Type</title></head></html>',
      ];
    if (h['x-tongweb-session'] !== session)
      return json(401, { errorCode: 'TW-401', errorMessage: 'session expired' });
    return json(200, { ok: true });
  }, '/tw');
}
