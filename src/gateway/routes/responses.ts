import type { FastifyInstance } from 'fastify';
import type { ResponsesStream } from '../ingress/responses/events.js';
import { passthroughResponsesStream, responsesBodyUsage } from '../ingress/responses/passthrough.js';
import { promptText, toChatRequest, validateResponses } from '../ingress/responses/request.js';
import { fromChatCompletion } from '../ingress/responses/response.js';
import { chatToResponsesStream } from '../ingress/responses/stream.js';
import { renameModel } from '../providers/model-name.js';
import type { ChatRequest, ClientResponse } from '../providers/types.js';
import { clientModel } from '../proxy/call.js';
import { streamWith } from '../proxy/stream.js';
import { unary } from '../proxy/unary.js';
import type { Target } from '../routing/router.js';
import type { V1Deps, V1Helpers } from './v1.js';

/**
 * OpenAI's Responses API, `POST /v1/responses`, with the auth, quotas, routing, fallbacks, usage
 * and stream-cut rule of chat completions. Passed through to providers marked `responsesApi: true`;
 * translated to and from chat completions for every other target (Anthropic's through its chat
 * transforms), so one model may mix both kinds of upstream across targets and fallbacks.
 */
export function responsesRoutes(app: FastifyInstance, d: V1Deps, h: V1Helpers): void {
  const native = new Set(
    d.cfg.providers.filter((p) => p.responsesApi && p.type === 'openai').map((p) => p.name),
  );
  const isNative = (t: Target) => native.has(t.upstream.name);

  app.post('/responses', { bodyLimit: d.cfg.bodyLimitBytes }, async (req, reply) => {
    const p = await h.authenticate(req);
    const body = validateResponses(req.body);
    const route = d.router.resolve(body.model, req.headers[d.router.preferenceHeader], p);
    const stream = body.stream === true;
    const all = [...route.targets, ...route.fallbacks, ...(route.degrade ? [route.degrade.to] : [])];
    // Translated once, before quota is charged, so an untranslatable body is a 400 up front.
    const chat: ChatRequest | null = all.every(isNative) ? null : toChatRequest(body, stream);
    const items = Array.isArray(body.input) ? body.input.length : 1;
    const promptTokens = route.tokens.text(promptText(body)) + 3 * items + 3;
    const reserve = promptTokens + (body.max_output_tokens ?? d.cfg.limits.defaultCompletionReserve);
    const c = await h.admit(req, reply, p, route, promptTokens, reserve, 'responses');
    const rename = d.cfg.exposeUpstreamModel ? (s: string) => s : (s: string) => renameModel(s, route.name);

    const request = (t: Target) =>
      isNative(t)
        ? { path: '/responses', body: JSON.stringify({ ...body, model: t.model }) }
        : t.upstream.adapter.chatRequest(chat as ChatRequest, t.model);

    if (!stream) {
      await unary(d, c, {
        request,
        response: (t, text): ClientResponse => {
          if (isNative(t)) return { body: rename(text), usage: responsesBodyUsage(text) };
          const model = clientModel(d.cfg, c, t);
          return fromChatCompletion(t.upstream.adapter.chatResponse(text, model), body, model);
        },
      });
      return reply;
    }
    let current: ResponsesStream | null = null;
    await streamWith(d, c, {
      request,
      translator: (t) => {
        const model = clientModel(d.cfg, c, t);
        current = isNative(t)
          ? passthroughResponsesStream(rename)
          : chatToResponsesStream(
              t.upstream.adapter.chatStream({ includeUsage: false, clientModel: model }),
              body,
              model,
            );
        return current;
      },
      frame: (o) => o,
      end: '',
      cut: (why) => (current as ResponsesStream | null)?.cut(why) ?? '',
    });
    return reply;
  });
}
