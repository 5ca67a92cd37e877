import type { FastifyReply } from 'fastify';
import type { KapokError } from '../../core/errors.js';

/**
 * Errors of the InfluxDB write API in InfluxDB's own shapes, which its clients parse:
 *   v1 (`/write`):        {"error":"..."}
 *   v2 (`/api/v2/write`): {"code":"invalid","message":"...","line":3}
 * Line-protocol errors read `unable to parse '<line>': <reason>`: Telegraf's v1 output drops a
 * batch with that message instead of retrying it forever, and both outputs drop on 400 and retry
 * on 429/503 (after Retry-After) and 5xx. The Kapok code travels in `x-kapok-error` and `kapokCode`.
 */

export type WriteApi = 'v1' | 'v2';

/** InfluxDB 2's error code names by HTTP status (its API's `code` enum). */
const V2_CODE: Record<number, string> = {
  400: 'invalid',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not found',
  413: 'request too large',
  415: 'unsupported media type',
  429: 'too many requests',
  503: 'unavailable',
};

export function sendWriteError(api: WriteApi, reply: FastifyReply, err: KapokError): FastifyReply {
  const line = typeof err.details?.line === 'number' ? err.details.line : undefined;
  reply.code(err.status).header('x-kapok-error', err.code).type('application/json; charset=utf-8');
  if (err.status === 503) reply.header('retry-after', '5');
  if (api === 'v1') {
    reply.header('x-influxdb-error', err.message.slice(0, 200).replace(/[^\x20-\x7e]/g, '?'));
    return reply.send({ error: err.message, kapokCode: err.code });
  }
  return reply.send({
    code: V2_CODE[err.status] ?? 'internal error',
    message: err.message,
    ...(line === undefined ? {} : { line }),
    kapokCode: err.code,
  });
}
