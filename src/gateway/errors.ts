import type { FastifyReply } from 'fastify';
import { KapokError } from '../core/errors.js';

/**
 * OpenAI's error shape for /v1: `{"error":{"message","type","code","param"}}`, with Kapok's stable
 * code in `code`. SDKs pick the exception class from the HTTP status, so the status matters most.
 */
export interface OpenAIErrorBody {
  error: { message: string; type: string; code: string; param: string | null };
}

const TYPE_BY_STATUS: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'invalid_request_error',
  408: 'timeout_error',
  413: 'invalid_request_error',
  415: 'invalid_request_error',
  429: 'rate_limit_error',
};

export function openAIError(err: KapokError): OpenAIErrorBody {
  const param = typeof err.details?.param === 'string' ? err.details.param : null;
  const type =
    typeof err.details?.type === 'string'
      ? err.details.type
      : (TYPE_BY_STATUS[err.status] ?? (err.status >= 500 ? 'server_error' : 'invalid_request_error'));
  const code = typeof err.details?.upstreamCode === 'string' ? err.details.upstreamCode : err.code;
  return { error: { message: err.message, type, code, param } };
}

export function sendOpenAIError(reply: FastifyReply, err: KapokError): FastifyReply {
  return reply.code(err.status).type('application/json; charset=utf-8').send(openAIError(err));
}

/** A 400 naming the offending body parameter (shown in `error.param`). */
export function badParam(param: string, message: string): KapokError {
  return new KapokError('KAPOK_GATEWAY_BAD_REQUEST', message, { details: { param } });
}
