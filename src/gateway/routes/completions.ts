import type { FastifyInstance } from 'fastify';
import { KapokError } from '../../core/errors.js';
import { badParam } from '../errors.js';
import { isObject } from '../ingress/shared.js';
import { clientModel } from '../proxy/call.js';
import { chatCut, DONE, dataFrame, streamWith } from '../proxy/stream.js';
import { unary } from '../proxy/unary.js';
import type { Target } from '../routing/router.js';
import type { V1Deps, V1Helpers } from './v1.js';

const MAX_PROMPTS = 4096;

/**
 * Legacy text completions (`POST /v1/completions`), passed through to OpenAI-compatible upstreams
 * (vLLM, llama.cpp and Ollama serve it; Anthropic has no equivalent), and `GET /v1/models/{id}`.
 */
export function completionsRoutes(app: FastifyInstance, d: V1Deps, h: V1Helpers): void {
  const offers = (t: Target) => t.upstream.adapter.type === 'openai';

  app.post('/completions', { bodyLimit: d.cfg.bodyLimitBytes }, async (req, reply) => {
    const p = await h.authenticate(req);
    const body = validateCompletions(req.body);
    const route = d.router.resolve(body.model, req.headers[d.router.preferenceHeader], p);
    if (![...route.targets, ...route.fallbacks].some(offers))
      throw new KapokError(
        'KAPOK_GATEWAY_UNSUPPORTED',
        `model ${route.name} has no upstream that offers /completions (only OpenAI-compatible ones do)`,
        { details: { param: 'model' } },
      );
    const prompt = body.prompt;
    const promptTokens = Array.isArray(prompt)
      ? prompt.reduce<number>(
          (n, x) => n + (typeof x === 'string' ? route.tokens.text(x) : Array.isArray(x) ? x.length : 1),
          0,
        )
      : route.tokens.text(prompt as string);
    const max = typeof body.max_tokens === 'number' ? body.max_tokens : d.cfg.limits.defaultCompletionReserve;
    const c = await h.admit(req, reply, p, route, promptTokens, promptTokens + max, 'completions');
    const request = (t: Target) => {
      if (!offers(t)) return null;
      const up: Record<string, unknown> = { ...body, model: t.model };
      // Always ask for the usage chunk so streamed usage is known (as for chat).
      if (c.stream)
        up.stream_options = {
          ...(isObject(body.stream_options) ? body.stream_options : {}),
          include_usage: true,
        };
      return { path: '/completions', body: JSON.stringify(up) };
    };
    if (c.stream) {
      const includeUsage = isObject(body.stream_options) && body.stream_options.include_usage === true;
      await streamWith(d, c, {
        request,
        // The chat chunk relay fits: it reads only usage, errors and [DONE], and renames the model.
        translator: (t) =>
          t.upstream.adapter.chatStream({ includeUsage, clientModel: clientModel(d.cfg, c, t) }),
        frame: dataFrame,
        end: DONE,
        cut: chatCut,
      });
    } else
      await unary(d, c, {
        request,
        response: (t, text) => t.upstream.adapter.chatResponse(text, clientModel(d.cfg, c, t)),
      });
    return reply;
  });

  app.get<{ Params: { id: string } }>('/models/:id', async (req) => {
    const p = await h.authenticate(req);
    const route = d.router.resolve(req.params.id, undefined, p);
    return { id: route.name, object: 'model', created: d.startedAtSec, owned_by: 'kapok' };
  });
}

function validateCompletions(body: unknown): Record<string, unknown> {
  if (!isObject(body)) throw badParam('body', 'the request body must be a JSON object');
  const p = body.prompt;
  const ok =
    (typeof p === 'string' && p.length > 0) ||
    (Array.isArray(p) &&
      p.length > 0 &&
      p.length <= MAX_PROMPTS &&
      (p.every((x) => typeof x === 'string') ||
        p.every((x) => Number.isInteger(x)) ||
        p.every((x) => Array.isArray(x) && x.every((y) => Number.isInteger(y)))));
  if (!ok)
    throw badParam(
      'prompt',
      `prompt: a non-empty string, or an array (at most ${MAX_PROMPTS}) of strings or token arrays`,
    );
  if (body.stream != null && typeof body.stream !== 'boolean')
    throw badParam('stream', 'stream must be true or false');
  const max = body.max_tokens;
  if (max != null && (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max > 10_000_000))
    throw badParam('max_tokens', 'max_tokens must be a whole number of at least 1');
  return body;
}
