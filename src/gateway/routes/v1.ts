import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { KapokError } from '../../core/errors.js';
import { errorHandler } from '../../core/http/errors.js';
import type { Authenticator, Principal } from '../auth/index.js';
import { openAIError, sendOpenAIError } from '../errors.js';
import { renameModel } from '../providers/model-name.js';
import type { Call, ProxyDeps } from '../proxy/call.js';
import { clientModel, clientSignal } from '../proxy/call.js';
import { stream } from '../proxy/stream.js';
import { unary } from '../proxy/unary.js';
import { validateChat, validateEmbeddings } from '../proxy/validate.js';
import { rateLimitHeaders } from '../quota/service.js';
import type { Route, Router } from '../routing/router.js';
import { completionsRoutes } from './completions.js';
import { messagesRoutes } from './messages.js';
import { responsesRoutes } from './responses.js';

/** What the routes of other wire protocols under /v1 share with chat completions. */
export interface V1Helpers {
  authenticate(req: FastifyRequest, authorization?: string): Promise<Principal>;
  admit(
    req: FastifyRequest,
    reply: FastifyReply,
    p: Principal,
    route: Route,
    promptTokens: number,
    reserve: number,
    endpoint: Call['endpoint'],
  ): Promise<Call>;
}

export interface V1Deps extends ProxyDeps {
  auth: Authenticator;
  router: Router;
  startedAtSec: number;
}

/**
 * The OpenAI-compatible surface: /v1/chat/completions, /v1/embeddings, /v1/models, with
 * /v1/completions, /v1/responses (routes/responses.ts) and Anthropic's /v1/messages beside them.
 */
export async function v1Routes(app: FastifyInstance, d: V1Deps): Promise<void> {
  app.setErrorHandler(
    errorHandler({
      bodyLimitKey: 'gateway.bodyLimitBytes',
      send: (reply, e) => {
        const headers = e.details?.headers;
        if (headers && typeof headers === 'object') reply.headers(headers as Record<string, string>);
        return sendOpenAIError(reply, e);
      },
    }),
  );
  app.setNotFoundHandler((req, reply) =>
    reply
      .code(404)
      .send(
        openAIError(
          new KapokError(
            'KAPOK_HTTP_NOT_FOUND',
            `no route for ${req.method} ${req.url.split('?')[0]?.slice(0, 200)}`,
          ),
        ),
      ),
  );

  const authenticate = (req: FastifyRequest, authorization = req.headers.authorization): Promise<Principal> =>
    d.auth.authenticate(authorization, req.ip);

  const admit = async (
    req: FastifyRequest,
    reply: FastifyReply,
    p: Principal,
    route: Route,
    promptTokens: number,
    reserve: number,
    endpoint: Call['endpoint'],
  ): Promise<Call> => {
    const plan = d.router.plan(route, promptTokens);
    const admission = await d.quota.admit(p, reserve);
    reply.headers(rateLimitHeaders(admission.result, p));
    return {
      endpoint,
      stream: (req.body as { stream?: unknown }).stream === true,
      principal: p,
      route,
      plan,
      admission,
      promptTokens,
      startedAt: req.kapokStart ?? performance.now(),
      signal: clientSignal(reply),
      req,
      reply,
      upstreamMs: 0,
    };
  };

  app.addHook('onRequest', (req, _reply, done) => {
    req.kapokStart = performance.now();
    done();
  });

  const limit = { bodyLimit: d.cfg.bodyLimitBytes };
  app.post('/chat/completions', limit, async (req, reply) => {
    const p = await authenticate(req);
    const body = validateChat(req.body);
    const route = d.router.resolve(body.model, req.headers[d.router.preferenceHeader], p);
    const promptTokens = route.tokens.chat(body);
    const completion = body.max_completion_tokens ?? body.max_tokens ?? d.cfg.limits.defaultCompletionReserve;
    const c = await admit(req, reply, p, route, promptTokens, promptTokens + completion, 'chat');
    if (body.stream === true) await stream(d, c, body);
    else
      await unary(d, c, {
        request: (t) => t.upstream.adapter.chatRequest(body, t.model),
        response: (t, text) => t.upstream.adapter.chatResponse(text, clientModel(d.cfg, c, t)),
      });
    return reply;
  });

  app.post('/embeddings', limit, async (req, reply) => {
    const p = await authenticate(req);
    const body = validateEmbeddings(req.body);
    const route = d.router.resolve(body.model, req.headers[d.router.preferenceHeader], p);
    const offered = [...route.targets, ...route.fallbacks].some((t) => t.upstream.adapter.embeddingsRequest);
    if (!offered) {
      throw new KapokError(
        'KAPOK_GATEWAY_UNSUPPORTED',
        `model ${route.name} has no upstream that offers embeddings`,
        {
          details: { param: 'model' },
        },
      );
    }
    const promptTokens = route.tokens.embeddings(body);
    const c = await admit(req, reply, p, route, promptTokens, promptTokens, 'embeddings');
    await unary(d, c, {
      request: (t) => t.upstream.adapter.embeddingsRequest?.(body, t.model) ?? null,
      response: (t, text) => {
        const parse = t.upstream.adapter.embeddingsResponse;
        if (!parse) throw new KapokError('KAPOK_GATEWAY_UNSUPPORTED', `${t.key} offers no embeddings`);
        const out = parse(text);
        return { body: renameModel(out.body, clientModel(d.cfg, c, t)), usage: out.usage };
      },
    });
    return reply;
  });

  const helpers: V1Helpers = { authenticate, admit };
  completionsRoutes(app, d, helpers);
  responsesRoutes(app, d, helpers);
  // Anthropic's error shape and x-api-key: its own scope (and error handler) under /v1.
  await app.register((scope) => messagesRoutes(scope, d, helpers));

  app.get('/models', async (req) => {
    const p = await authenticate(req);
    const data = [...d.router.routes.keys()]
      .filter((m) => !p.models || p.models.has(m))
      .map((id) => ({ id, object: 'model', created: d.startedAtSec, owned_by: 'kapok' }));
    return { object: 'list', data };
  });
}

declare module 'fastify' {
  interface FastifyRequest {
    kapokStart?: number;
  }
}
