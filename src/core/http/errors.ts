import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_CATALOGUE, type ErrorCode, KapokError } from '../errors.js';

/**
 * The one HTTP error path. Every scope answers its errors through `errorHandler`: the root scope in
 * Kapok's `{"error":{"code","message"}}` shape, a protocol with a wire shape of its own (OpenAI's
 * for /v1, OIP's for /v2) with its own `send`. Mapping and logging are the same everywhere, so a
 * client told KAPOK_INTERNAL ("see the server log") always finds a log line with the cause.
 */

export function sendError(reply: FastifyReply, err: KapokError): FastifyReply {
  return reply.code(err.status).type('application/json; charset=utf-8').send(err.toJSON());
}

export interface ErrorHandlerOptions {
  /** Writes the error in the scope's wire shape; default Kapok's. */
  send?: (reply: FastifyReply, err: KapokError) => unknown;
  /** Config key that sets this scope's body limit, named in 413 messages; default http.bodyLimitBytes. */
  bodyLimitKey?: string;
}

export function errorHandler(o: ErrorHandlerOptions = {}) {
  const send = o.send ?? sendError;
  const limitKey = o.bodyLimitKey ?? 'http.bodyLimitBytes';
  return (err: FastifyError | KapokError, req: FastifyRequest, reply: FastifyReply) => {
    // The route's own limit (a scope may raise or lower the server's), as Fastify enforced it.
    const mapped = toKapokError(err, { bytes: req.routeOptions.bodyLimit, key: limitKey });
    if (mapped.status >= 500) {
      // Unexpected errors carry their stack; our own 5xx (upstream down, engine unavailable) their message.
      if (err instanceof KapokError)
        req.log.warn({ code: mapped.code, reason: mapped.message }, 'request failed');
      else req.log.error({ err }, 'request failed');
    } else req.log.debug({ code: mapped.code, reason: mapped.message }, 'request rejected');
    return send(reply, mapped);
  };
}

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'KAPOK_HTTP_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'KAPOK_HTTP_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'KAPOK_HTTP_BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'KAPOK_HTTP_BAD_REQUEST',
  FST_ERR_CTP_INVALID_JSON_BODY: 'KAPOK_HTTP_BAD_REQUEST',
};

/** Fastify's own errors (body limit, bad JSON, schema validation) become catalogue errors. */
export function toKapokError(err: unknown, limit?: { bytes: number | undefined; key: string }): KapokError {
  if (err instanceof KapokError) return err;
  const e = err as Partial<FastifyError> & { message?: string };
  const mapped = e.code ? FASTIFY_CODES[e.code] : undefined;
  if (mapped === 'KAPOK_HTTP_BODY_TOO_LARGE') {
    const bytes = limit?.bytes === undefined ? 'the configured limit' : `${limit.bytes} bytes`;
    return new KapokError(
      mapped,
      `request body exceeds ${bytes} (${limit?.key ?? 'http.bodyLimitBytes'}): send less or raise that limit`,
      { cause: err },
    );
  }
  if (mapped) return new KapokError(mapped, e.message ?? ERROR_CATALOGUE[mapped].summary, { cause: err });
  if (e.validation)
    return new KapokError('KAPOK_HTTP_BAD_REQUEST', e.message ?? 'invalid request', { cause: err });
  if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
    return new KapokError('KAPOK_HTTP_BAD_REQUEST', e.message ?? 'bad request', {
      status: e.statusCode,
      cause: err,
    });
  }
  return new KapokError('KAPOK_INTERNAL', 'internal error; see the server log for this request id', {
    cause: err,
  });
}
