import fastifyCors from '@fastify/cors';
import type { FastifyInstance, FastifyRequest } from 'fastify';

export interface CorsConfig {
  /** Exact origins (`https://app.example.com`) or `*`; empty = CORS off. */
  origins: readonly string[];
  /** Send Access-Control-Allow-Credentials (cookies, Authorization from browsers); never with `*`. */
  credentials: boolean;
  maxAgeSeconds: number;
}

/** Only the protocol APIs browsers call directly; admin APIs (/api/*) and probes stay same-origin. */
const CORS_PATH = /^\/v[12](?:[/?]|$)/;

/** Response headers a browser script may read (request id for support, OIP's binary header, retry). */
const EXPOSED = ['x-request-id', 'retry-after', 'inference-header-content-length'];

/**
 * CORS for /v1 and /v2 with @fastify/cors. Its hook runs at onRequest on the root, before any
 * scope's auth hook, so a preflight (which carries no credentials) is answered 204 and never
 * reaches gateway auth. Other paths are untouched: an OPTIONS to them is still a 404.
 */
export function registerCors(app: FastifyInstance, cfg: CorsConfig): void {
  if (cfg.origins.length === 0) return;
  const any = cfg.origins.includes('*');
  const on = {
    // A list is matched exactly and the caller's origin reflected (with Vary: Origin).
    origin: any ? '*' : [...cfg.origins],
    credentials: cfg.credentials,
    methods: ['GET', 'HEAD', 'POST'],
    exposedHeaders: EXPOSED,
    maxAge: cfg.maxAgeSeconds,
    // An OPTIONS with Origin but no Access-Control-Request-Method still gets the CORS answer, not
    // the plugin's text/plain 400 (outside our error shape); it carries no credentials either way.
    strictPreflight: false,
  };
  const off = { origin: false as const };
  // Loaded with the other plugins at app.ready(); its hook lands on the root.
  app.register(fastifyCors, {
    hideOptionsRoute: true,
    delegator: (req: FastifyRequest, cb: (err: Error | null, o: typeof on | typeof off) => void) =>
      cb(null, CORS_PATH.test(req.url) ? on : off),
  });
}
