import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { KapokError } from '../../core/errors.js';
import { errorHandler } from '../../core/http/errors.js';
import { passthroughMessagesStream } from '../ingress/messages/passthrough.js';
import {
  type MessagesRequest,
  messagesPromptText,
  messagesToChat,
  validateMessages,
} from '../ingress/messages/request.js';
import { chatToMessage, type MessagesStream, messageBodyUsage } from '../ingress/messages/response.js';
import { chatToMessagesStream } from '../ingress/messages/stream.js';
import { renameModel } from '../providers/model-name.js';
import type { ChatRequest, ClientResponse } from '../providers/types.js';
import { clientModel } from '../proxy/call.js';
import { streamWith } from '../proxy/stream.js';
import { unary } from '../proxy/unary.js';
import type { Route, Target } from '../routing/router.js';
import type { V1Deps, V1Helpers } from './v1.js';

const TYPE_BY_STATUS: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
};

/** Anthropic's error shape, `{"type":"error","error":{"type","message"}}`, with Kapok's code beside. */
function sendAnthropicError(reply: FastifyReply, e: KapokError): FastifyReply {
  const headers = e.details?.headers;
  if (headers && typeof headers === 'object') reply.headers(headers as Record<string, string>);
  const type = TYPE_BY_STATUS[e.status] ?? (e.status >= 500 ? 'api_error' : 'invalid_request_error');
  const param = typeof e.details?.param === 'string' ? { param: e.details.param } : {};
  return reply
    .code(e.status)
    .type('application/json; charset=utf-8')
    .send({ type: 'error', error: { type, message: e.message, code: e.code, ...param } });
}

/**
 * Anthropic's Messages API, `POST /v1/messages`, for Anthropic's SDKs and the tools built on them.
 * The key comes as `x-api-key` (Anthropic's header) or `Authorization: Bearer`. Anthropic targets
 * get the body as is; every other target gets it as chat completions, and the answer (stream
 * included) back in Anthropic's shape. Auth, quotas, routing, fallbacks, usage and the stream-cut
 * rule are those of chat completions.
 */
export async function messagesRoutes(app: FastifyInstance, d: V1Deps, h: V1Helpers): Promise<void> {
  app.setErrorHandler(errorHandler({ bodyLimitKey: 'gateway.bodyLimitBytes', send: sendAnthropicError }));
  const isNative = (t: Target) => t.upstream.adapter.type === 'anthropic';

  const authenticate = (req: FastifyRequest) => {
    const xKey = req.headers['x-api-key'];
    const authorization =
      req.headers.authorization ?? (typeof xKey === 'string' && xKey ? `Bearer ${xKey}` : undefined);
    return h.authenticate(req, authorization);
  };
  const estimate = (route: Route, body: MessagesRequest) =>
    route.tokens.text(messagesPromptText(body)) + 3 * body.messages.length + 3;

  // Kapok's own estimate (the model's tokenizer may count differently); coding tools call it often,
  // so it is neither sent upstream nor charged to the quota, but it takes a valid key.
  app.post('/messages/count_tokens', { bodyLimit: d.cfg.bodyLimitBytes }, async (req) => {
    const p = await authenticate(req);
    const body = validateMessages(req.body, { maxTokens: false });
    const route = d.router.resolve(body.model, req.headers[d.router.preferenceHeader], p);
    return { input_tokens: estimate(route, body) };
  });

  app.post('/messages', { bodyLimit: d.cfg.bodyLimitBytes }, async (req, reply) => {
    const p = await authenticate(req);
    const body = validateMessages(req.body);
    const route = d.router.resolve(body.model, req.headers[d.router.preferenceHeader], p);
    const stream = body.stream === true;
    const all = [...route.targets, ...route.fallbacks, ...(route.degrade ? [route.degrade.to] : [])];
    // Translated once, before quota is charged, so an untranslatable body is a 400 up front.
    const chat: ChatRequest | null = all.every(isNative) ? null : messagesToChat(body, stream);
    const promptTokens = estimate(route, body);
    const c = await h.admit(req, reply, p, route, promptTokens, promptTokens + body.max_tokens, 'messages');
    const rename = d.cfg.exposeUpstreamModel ? (s: string) => s : (s: string) => renameModel(s, route.name);

    const request = (t: Target) =>
      isNative(t)
        ? { path: '/v1/messages', body: JSON.stringify({ ...body, model: t.model }) }
        : t.upstream.adapter.chatRequest(chat as ChatRequest, t.model);

    if (!stream) {
      await unary(d, c, {
        request,
        response: (t, text): ClientResponse => {
          if (isNative(t)) return { body: rename(text), usage: messageBodyUsage(text) };
          const model = clientModel(d.cfg, c, t);
          return chatToMessage(t.upstream.adapter.chatResponse(text, model), model);
        },
      });
      return reply;
    }
    let current: MessagesStream | null = null;
    await streamWith(d, c, {
      request,
      translator: (t) => {
        const model = clientModel(d.cfg, c, t);
        current = isNative(t)
          ? passthroughMessagesStream(rename)
          : chatToMessagesStream(
              t.upstream.adapter.chatStream({ includeUsage: false, clientModel: model }),
              model,
              promptTokens,
            );
        return current;
      },
      frame: (o) => o,
      end: '',
      cut: (why) => (current as MessagesStream | null)?.cut(why) ?? '',
    });
    return reply;
  });
}
