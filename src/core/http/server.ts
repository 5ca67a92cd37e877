import { randomUUID } from 'node:crypto';
import { createServer, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import { Counter } from 'prom-client';
import type { PlatformConfig } from '../config/index.js';
import { type ErrorCode, KapokError } from '../errors.js';
import { type Logger, lazyChildLoggerFactory } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Tracing } from '../tracing.js';
import { type ConnectionGuard, guardConnections } from './connections.js';
import { registerCors } from './cors.js';
import { errorHandler, sendError } from './errors.js';
import { jsonTooDeep, MAX_JSON_DEPTH } from './json-depth.js';

export interface HttpServerDeps {
  config: Pick<PlatformConfig, 'http' | 'log'>;
  logger: Logger;
  metrics: Metrics;
  tracing: Tracing;
  /** True once shutdown began: new requests on open keep-alive connections get 503 and Connection: close. */
  isDraining?: () => boolean;
}

/** Routes that are polled constantly: no access log line, no span (they would drown real traffic). */
export const PROBE_ROUTES = new Set(['/healthz', '/readyz', '/metrics']);
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

declare module 'fastify' {
  interface FastifyRequest {
    kapokSpan?: import('@opentelemetry/api').Span;
  }
  interface FastifyInstance {
    /** Connection limits of this server (see connections.ts); the drain uses it. */
    connections: ConnectionGuard;
  }
}

/**
 * The one Fastify instance on http.port. Capabilities mount as encapsulated plugins under their
 * prefix (`/v1`, `/v2`, `/api/<capability>`) and inherit its error handler; a protocol with its own
 * wire shape (OpenAI's, OIP's) installs core's `errorHandler` with its own `send`. Everything else
 * answers in Kapok's `{"error":{"code","message"}}` shape.
 */
export function createHttpServer({
  config,
  logger,
  metrics,
  tracing,
  isDraining,
}: HttpServerDeps): FastifyInstance {
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    // Fastify's own request lines are off: ours (onResponse) carries the route template and skips probes.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'request_id' }),
    // Each request's logger becomes a pino child only when it writes (see LazyChildLogger).
    childLoggerFactory: lazyChildLoggerFactory as never, // the pino logger methods Fastify calls, typed loosely
    bodyLimit: config.http.bodyLimitBytes,
    // Our own node server: Node checks request timeouts only every connectionsCheckingInterval
    // (30 s by default), which would let a slow client hold a socket far past requestTimeoutMs.
    serverFactory: (handler) =>
      createServer(
        {
          requestTimeout: config.http.requestTimeoutMs,
          headersTimeout: config.http.requestTimeoutMs,
          keepAliveTimeout: config.http.keepAliveTimeoutMs,
          connectionsCheckingInterval: Math.min(1000, config.http.requestTimeoutMs),
        },
        handler,
      ),
    clientErrorHandler: answerClientError,
    trustProxy: config.http.trustProxy,
    forceCloseConnections: 'idle',
    return503OnClosing: false, // we answer 503 ourselves, in our error shape (onRequest below)
    requestIdHeader: false,
    // Reuse a caller's X-Request-Id when it is a sane token, so one id follows a call across hops.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    routerOptions: { maxParamLength: 256 },
  });
  // Our guard, not Node's maxConnections: Node refuses at the limit even when silent sockets hold it.
  const refused = new Counter({
    name: 'kapok_http_connections_refused_total',
    help: 'New HTTP connections refused at http.maxConnections or http.maxConnectionsPerIp with none idle to close.',
    labelNames: ['reason'] as const,
    registers: [metrics.registry],
  });
  let lastWarn = 0;
  const guard = guardConnections(app.server, config.http, (reason) => {
    refused.inc({ reason });
    // One line a minute at most: a flood of refusals must not become a flood of log lines.
    if (Date.now() - lastWarn < 60_000) return;
    lastWarn = Date.now();
    logger.warn(
      { reason },
      'HTTP connections refused: every open connection is busy (see kapok_http_connections_refused_total)',
    );
  });
  app.decorate('connections', guard);

  app.addHook('onRequest', (req, reply, done) => {
    reply.header('x-request-id', req.id);
    if (isDraining?.()) {
      reply.header('connection', 'close');
      sendError(
        reply,
        new KapokError('KAPOK_HTTP_SHUTTING_DOWN', 'Kapok is shutting down; retry on another instance'),
      );
      return;
    }
    // No route takes a list in its query string: a repeated parameter would reach handlers as an
    // array where they expect a string (edge's queries sent it to SQL and answered 502).
    const repeated = repeatedParam(req.query);
    if (repeated !== undefined)
      return done(
        new KapokError(
          'KAPOK_HTTP_BAD_REQUEST',
          `query parameter ${truncate(repeated, 40)} is given more than once: give it once`,
        ),
      );
    const route = req.routeOptions.url;
    if (route !== undefined && PROBE_ROUTES.has(route)) return done();
    const { ctx, valid } = tracing.extract(req.headers);
    if (!valid)
      req.log.debug(
        { traceparent: String(req.headers.traceparent).slice(0, 100) },
        'malformed traceparent ignored',
      );
    const span = tracing.tracer.startSpan(
      `${req.method} ${route ?? 'unmatched'}`,
      {
        kind: SpanKind.SERVER,
        attributes: {
          'http.request.method': req.method,
          'http.route': route ?? 'unmatched',
          'url.path': req.url.split('?')[0],
        },
      },
      ctx,
    );
    req.kapokSpan = span;
    if (!tracing.asyncContext) {
      // No context manager: the log mixin cannot find the span, so the request's logger carries it.
      // Fastify's logger is already this request's own (lazy) child: bind in place rather than making a
      // second child per request (about 5% of the gateway's CPU in a closed-loop profile).
      const sc = span.spanContext();
      (req.log as unknown as { setBindings(b: Record<string, string>): void }).setBindings({
        trace_id: sc.traceId,
        span_id: sc.spanId,
      });
    }
    // Everything after this hook (parsing, handler, reply) runs inside the span's context, where a
    // context manager carries it (without one, context.with would only call done).
    if (tracing.asyncContext) context.with(trace.setSpan(ctx, span), done);
    else done();
  });

  // Responses written during a drain close their connection, so kept-alive sockets do not hold it open.
  app.addHook('onSend', (_req, reply, payload, done) => {
    if (isDraining?.()) reply.header('connection', 'close');
    done(null, payload);
  });

  app.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions.url ?? 'unmatched';
    const status = reply.statusCode;
    metrics.httpDuration.observe(
      { route, method: req.method, status_code: String(status) },
      reply.elapsedTime / 1000,
    );
    const span = req.kapokSpan;
    if (span) {
      span.setAttribute('http.response.status_code', status);
      if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    }
    if (config.log.requests && !PROBE_ROUTES.has(route)) {
      req.log.info(
        { method: req.method, route, status, ms: Math.round(reply.elapsedTime * 100) / 100, ip: req.ip },
        'request',
      );
    }
    done();
  });

  // Fastify's JSON parser (prototype-poisoning checks kept), plus a bound on nesting depth.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) =>
    parseJson(req, body as string, (err: Error | null, value?: unknown) => {
      if (!err && jsonTooDeep(body as string, value))
        return done(
          new KapokError(
            'KAPOK_HTTP_BAD_REQUEST',
            `JSON body nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels`,
          ),
          undefined,
        );
      done(err, value);
    }),
  );

  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0] ?? '';
    // An Upgrade no WebSocket path took (none registered): answer and close, never keep it alive.
    if (req.headers.upgrade) reply.header('connection', 'close');
    sendError(
      reply,
      new KapokError('KAPOK_HTTP_NOT_FOUND', `no route for ${req.method} ${truncate(path, 200)}`),
    );
  });

  app.setErrorHandler(errorHandler());
  registerCors(app, config.http.cors);

  return app;
}

/**
 * Errors Node's HTTP parser raises before Fastify sees a request (unparseable request line, headers
 * too large, request timeout) answered in our JSON shape instead of Node's bare text.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const [status, code, message]: [number, ErrorCode, string] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'KAPOK_HTTP_TIMEOUT', 'request not received in full within http.requestTimeoutMs']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'KAPOK_HTTP_HEADERS_TOO_LARGE', 'request headers are larger than 16 KiB']
        : [400, 'KAPOK_HTTP_BAD_REQUEST', 'malformed HTTP request'];
  const body = JSON.stringify({ error: { code, message } });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

function repeatedParam(query: unknown): string | undefined {
  if (typeof query !== 'object' || query === null) return undefined;
  for (const k in query) if (Array.isArray((query as Record<string, unknown>)[k])) return k;
  return undefined;
}

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

export type { FastifyInstance, FastifyReply, FastifyRequest };
