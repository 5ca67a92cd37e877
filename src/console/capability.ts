import type { IncomingMessage } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { WebSocket, WebSocketServer } from 'ws';
import { isKapokError, KapokError } from '../core/errors.js';
import { type Principal, peerOf } from '../core/http/admin-auth.js';
import { type Sessions, sameOrigin } from '../core/http/session.js';
import type { Capability, CapabilityFactory } from '../ports/capability.js';
import { type ConsoleAssets, defaultAssetsDir, loadAssets } from './assets.js';
import type { ConsoleConfig } from './config.js';
import { Pulse, type PulseFrame } from './pulse.js';

export interface ConsoleDeps {
  /** The browser sessions every admin guard accepts (built by the wiring point). */
  sessions: Sessions;
  /**
   * Whether admin.tokens lists any token now (hot reload may change it): without one, only loopback
   * browsers get in (as admin).
   */
  tokensConfigured: () => boolean;
}

/** Content-Security-Policy of every console answer: nothing but this origin, no inline script. */
export const CSP =
  "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
const SECURITY_HEADERS = {
  'content-security-policy': CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};
const LANGS = ['en', 'zh-CN'] as const;

/** zh-CN or en: the kapok_lang cookie (the console's switch), else Accept-Language, else en. */
export function pickLang(req: IncomingMessage): (typeof LANGS)[number] {
  const cookie = /(?:^|;\s*)kapok_lang=([^;]+)/.exec(req.headers.cookie ?? '')?.[1];
  if (cookie === 'zh-CN' || cookie === 'en') return cookie;
  const ranked = String(req.headers['accept-language'] ?? '')
    .split(',')
    .map((p, i) => {
      const [tag, ...params] = p.trim().split(';');
      const q = Number(/q=([0-9.]+)/.exec(params.join(';'))?.[1] ?? 1);
      return { tag: (tag ?? '').toLowerCase(), q: Number.isFinite(q) ? q : 0, i };
    })
    .filter((x) => x.tag && x.q > 0)
    .sort((a, b) => b.q - a.q || a.i - b.i);
  for (const { tag } of ranked) {
    if (tag.startsWith('zh')) return 'zh-CN';
    if (tag.startsWith('en')) return 'en';
  }
  return 'en';
}

/** A value for an HTML attribute in double quotes: nothing in it can end the attribute. */
const attr = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export const createConsole: CapabilityFactory<ConsoleConfig, ConsoleDeps> = async (ctx, deps) => {
  const cfg = ctx.config;
  if (!deps?.sessions) throw new TypeError('createConsole: deps.sessions is required');
  if (typeof deps.tokensConfigured !== 'function')
    throw new TypeError('createConsole: deps.tokensConfigured must be a function');
  const log = ctx.logger.child({ capability: 'console' });
  const dir = cfg.assetsDir ?? defaultAssetsDir();
  const assets: ConsoleAssets | null = loadAssets(dir);
  if (!assets) log.warn({ dir }, 'console not built: /console answers 503 until npm run build');
  if (!deps.tokensConfigured() && ctx.shared.profile === 'gov')
    log.warn('console: profile gov and no admin.tokens: no one can log in (list a token in admin.tokens)');
  const { sessions } = deps;
  // Login takes the platform's role tokens only (admin.tokens): a capability's own token opens that
  // capability's API, not a console over all of them.
  const guard = ctx.adminGuard({ token: null, key: 'admin.tokens', what: 'the console' });
  const pulse = new Pulse(ctx.metrics, ctx.health, cfg.pulseMs);
  const wss = new WebSocketServer({ noServer: true, maxPayload: 1024 });
  let timer: NodeJS.Timeout | undefined;

  const notBuilt = () =>
    new KapokError(
      'KAPOK_CONSOLE_NOT_BUILT',
      `the console is not built (${dir} has no index.html): run npm run build`,
    );

  const tick = async () => {
    const sample = await pulse.sample();
    if (wss.clients.size === 0) return;
    const readiness = await pulse.readiness();
    const frame = JSON.stringify({ type: 'pulse', sample, readiness } satisfies PulseFrame);
    // A client that cannot keep up misses frames rather than growing our memory.
    for (const ws of wss.clients)
      if (ws.readyState === WebSocket.OPEN && ws.bufferedAmount < 1 << 20) ws.send(frame);
  };

  const index = async (req: FastifyRequest, reply: FastifyReply) => {
    if (!assets) throw notBuilt();
    // A foreign Origin on a page load shows the login (the session is not handed to another site).
    const live = sameOrigin(req.raw) ? await sessions.current(req.raw) : null;
    const who = live?.principal ?? null;
    const session = {
      authenticated: who !== null,
      // Under gov there is no loopback exception: without admin.tokens the login page stays, closed.
      loginRequired: deps.tokensConfigured() || ctx.shared.profile === 'gov',
      name: who?.name ?? null,
      role: who?.role ?? null,
      csrf: live?.csrf ?? null,
      region: ctx.shared.region,
      profile: ctx.shared.profile,
    };
    const lang = pickLang(req.raw);
    const html = assets.index
      .replace('<html lang="en">', `<html lang="${lang}">`)
      .replace('{{session}}', attr(JSON.stringify(session)));
    return reply
      .headers({ ...SECURITY_HEADERS, 'cache-control': 'no-store', vary: 'Cookie, Accept-Language' })
      .type('text/html; charset=utf-8')
      .send(html);
  };

  return {
    name: 'console',
    prefix: '/console',
    async routes(app) {
      app.get('/', index);
      app.get<{ Params: { file: string } }>('/assets/:file', async (req, reply) => {
        if (!assets) throw notBuilt();
        const a = assets.files.get(req.params.file);
        if (!a)
          throw new KapokError('KAPOK_HTTP_NOT_FOUND', `no console asset ${req.params.file.slice(0, 100)}`);
        reply.headers({
          ...SECURITY_HEADERS,
          // Names carry content hashes: a new build has new names, so a file never changes.
          'cache-control': 'public, max-age=31536000, immutable',
          vary: 'Accept-Encoding',
        });
        reply.type(a.type);
        if (a.gzip && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? '')))
          return reply.header('content-encoding', 'gzip').send(a.gzip);
        return reply.send(a.body);
      });

      app.post('/api/login', { bodyLimit: 4096 }, async (req, reply) => {
        // Login CSRF: another site must not log a browser into a session of its choosing.
        if (!sameOrigin(req.raw))
          throw new KapokError(
            'KAPOK_HTTP_CSRF',
            'log in from the console page itself (Origin differs from Host)',
          );
        const token = (req.body as { token?: unknown } | null)?.token;
        if (typeof token !== 'string' || token.length === 0 || token.length > 1024)
          throw new KapokError(
            'KAPOK_HTTP_BAD_REQUEST',
            'body: a JSON object {"token": "<a token of admin.tokens>"}',
          );
        let who: Principal;
        try {
          who = guard.check(`Bearer ${token}`, peerOf(req.raw), 'viewer');
        } catch (err) {
          await ctx.ports.audit
            ?.record({
              actor: 'unknown',
              action: 'console.login',
              outcome: 'denied',
              ip: req.ip,
              requestId: String(req.id),
            })
            .catch(() => undefined);
          if (isKapokError(err, 'KAPOK_HTTP_UNAUTHORIZED'))
            throw new KapokError(
              'KAPOK_CONSOLE_LOGIN_FAILED',
              'login refused: use a token listed in admin.tokens',
            );
          throw err;
        }
        const s = await sessions.create(who);
        await ctx.ports.audit?.record({
          actor: who.name,
          action: 'console.login',
          outcome: 'ok',
          ip: req.ip,
          requestId: String(req.id),
        });
        log.info({ admin: who.name, role: who.role }, 'console login');
        return reply.header('set-cookie', s.setCookie).header('cache-control', 'no-store').send({
          name: who.name,
          role: who.role,
          csrf: s.csrf,
        });
      });

      app.post('/api/logout', async (req, reply) => {
        return reply.header('set-cookie', await sessions.destroy(req.raw)).send({ loggedOut: true });
      });

      // Upgraded sockets are outside the HTTP drain.
      app.addHook('preClose', async () => {
        for (const ws of wss.clients) ws.terminate();
      });
      ctx.upgrades.register('/ws/console', async (req, socket, head) => {
        if (!(await guard.upgrade(req, socket, 'viewer'))) return;
        wss.handleUpgrade(req, socket, head, (ws) => {
          ws.on('error', () => ws.terminate());
          void pulse.readiness().then((readiness) => {
            if (ws.readyState === WebSocket.OPEN)
              ws.send(JSON.stringify({ type: 'history', samples: pulse.history, readiness }));
          });
        });
      });
    },
    async start() {
      await pulse.sample();
      timer = setInterval(() => {
        tick().catch((err) => log.warn({ reason: (err as Error).message }, 'console pulse failed'));
      }, cfg.pulseMs);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
      for (const ws of wss.clients) ws.terminate();
      wss.close();
    },
  } satisfies Capability;
};
