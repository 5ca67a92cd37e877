import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import {
  HttpMethod,
  IsomorphicFetchHttpLibrary,
  KubeConfig,
  RequestContext,
  Watch,
} from '@kubernetes/client-node';
import { KapokError, messageOf } from '../../core/errors.js';
import type { KubeClient, KubeObject, ResourceRef } from '../../ports/kubernetes.js';
import { createInformer } from './informer.js';
import { createRateLimiter } from './rate-limit.js';

/**
 * The KubeClient port on @kubernetes/client-node: its KubeConfig (kubeconfig file, in-cluster
 * service account, exec plugins, TLS), its HTTP library and its Watch. Requests are plain JSON for
 * every resource (core and custom alike) and go through one client-side rate limiter (qps, burst),
 * the way client-go's is configured.
 */

export interface KubeClientOptions {
  /** A kubeconfig file; null: in-cluster when KUBERNETES_SERVICE_HOST is set, else the default (~/.kube/config). */
  kubeconfig: string | null;
  qps: number;
  burst: number;
  /** A watch silent (no event, no bookmark) this long is ended and resumed (kubernetes-client/javascript#364). */
  watchIdleMs: number;
  /** Backoff of watch and list retries after an error (exponential with jitter). */
  retryBaseMs: number;
  retryMaxMs: number;
  /** Per request. */
  timeoutMs: number;
}

export function basePath(r: ResourceRef): string {
  return r.group ? `/apis/${r.group}/${r.version}` : `/api/${r.version}`;
}

export function collectionPath(r: ResourceRef, namespace: string | null): string {
  const ns = r.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  return `${basePath(r)}${ns}/${r.plural}`;
}

function apiError(verb: string, path: string, status: number, message: string, reason = ''): KapokError {
  return new KapokError(
    'KAPOK_OPERATOR_API',
    `Kubernetes API ${verb} ${path}: ${status || 'unreachable'} ${message}`.trim(),
    {
      details: { status, reason },
    },
  );
}

export function createKubeClient(o: KubeClientOptions): KubeClient {
  for (const [k, v] of Object.entries({
    qps: o.qps,
    burst: o.burst,
    watchIdleMs: o.watchIdleMs,
    timeoutMs: o.timeoutMs,
  }))
    if (!(v > 0)) throw new KapokError('KAPOK_CONFIG_INVALID', `operator: ${k} must be above 0`);
  const kc = new KubeConfig();
  try {
    if (o.kubeconfig) kc.loadFromFile(o.kubeconfig);
    else kc.loadFromDefault();
  } catch (err) {
    throw new KapokError('KAPOK_OPERATOR_API', `cannot load the kubeconfig: ${messageOf(err)}`, {
      details: { status: 0 },
    });
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster)
    throw new KapokError(
      'KAPOK_OPERATOR_API',
      'no Kubernetes cluster configured: set operator.kubeconfig, or run in a Pod with a service account',
      { details: { status: 0 } },
    );
  const server = cluster.server.replace(/\/$/, '');
  const http = new IsomorphicFetchHttpLibrary();
  const limiter = createRateLimiter(o.qps, o.burst);
  const watcher = new Watch(kc);
  let requests = 0;
  let closed = false;
  // client-node makes a new Agent per request (a new connection each time); keep one keep-alive
  // agent with the same TLS options, rebuilt when they change (an exec plugin's rotated client cert).
  let shared: { agent: HttpAgent; from: unknown[] } | null = null;
  const reuse = (ctx: RequestContext) => {
    const a: unknown = ctx.getAgent();
    if (!a || cluster.proxyUrl || !(a instanceof HttpAgent || a instanceof HttpsAgent)) return;
    const o = (a as { options?: Record<string, unknown> }).options ?? {};
    const from = [o.ca, o.cert, o.key, o.pfx, o.rejectUnauthorized, o.servername];
    if (!shared || shared.from.some((v, i) => v !== from[i])) {
      shared?.agent.destroy();
      const opts = { ...o, keepAlive: true, maxSockets: 64 };
      shared = { agent: a instanceof HttpsAgent ? new HttpsAgent(opts) : new HttpAgent(opts), from };
    }
    ctx.setAgent(shared.agent);
  };

  async function call<T>(
    verb: HttpMethod,
    path: string,
    body?: unknown,
    contentType?: string,
    query?: Record<string, string>,
  ): Promise<T> {
    await limiter.take();
    requests++;
    const ctx = new RequestContext(server + path, verb);
    for (const [k, v] of Object.entries(query ?? {})) ctx.setQueryParam(k, v);
    ctx.setHeaderParam('Accept', 'application/json');
    if (body !== undefined) {
      ctx.setHeaderParam('Content-Type', contentType ?? 'application/json');
      ctx.setBody(JSON.stringify(body));
    }
    ctx.setSignal(AbortSignal.timeout(o.timeoutMs));
    let status = 0;
    let text = '';
    try {
      await kc.applySecurityAuthentication(ctx);
      reuse(ctx);
      const res = await http.send(ctx).toPromise();
      status = res.httpStatusCode;
      text = await res.body.text();
    } catch (err) {
      throw apiError(verb, path, 0, messageOf(err));
    }
    if (status >= 200 && status < 300) return (text ? JSON.parse(text) : {}) as T;
    let message = text.slice(0, 300);
    let reason = '';
    try {
      const s = JSON.parse(text) as { message?: string; reason?: string };
      message = s.message ?? message;
      reason = s.reason ?? '';
    } catch {
      // Not a Status object: keep the text.
    }
    throw apiError(verb, path, status, message, reason);
  }

  const item = (r: ResourceRef, ns: string | null, name: string, sub?: 'status') =>
    `${collectionPath(r, ns)}/${encodeURIComponent(name)}${sub ? `/${sub}` : ''}`;

  return {
    get requests() {
      return requests;
    },
    inform(r, opts, on) {
      return createInformer(r, opts, on, {
        list: (query) =>
          call(HttpMethod.GET, collectionPath(r, opts.namespace ?? null), undefined, undefined, query),
        watch: async (query, onEvent, done) => {
          await limiter.take();
          requests++;
          return watcher.watch(collectionPath(r, opts.namespace ?? null), query, onEvent, done);
        },
        watchIdleMs: o.watchIdleMs,
        retryBaseMs: o.retryBaseMs,
        retryMaxMs: o.retryMaxMs,
        closed: () => closed,
      });
    },
    async get<T extends KubeObject>(r: ResourceRef, ns: string | null, name: string) {
      try {
        return await call<T>(HttpMethod.GET, item(r, ns, name));
      } catch (err) {
        if (err instanceof KapokError && err.details?.status === 404) return null;
        throw err;
      }
    },
    create: (r, ns, obj) => call(HttpMethod.POST, collectionPath(r, ns), obj),
    replace: (r, ns, obj) => call(HttpMethod.PUT, item(r, ns, obj.metadata.name), obj),
    mergePatch: (r, ns, name, patch, sub) =>
      call(HttpMethod.PATCH, item(r, ns, name, sub), patch, 'application/merge-patch+json'),
    async delete(r, ns, name) {
      try {
        await call(HttpMethod.DELETE, item(r, ns, name), { propagationPolicy: 'Background' });
      } catch (err) {
        if (!(err instanceof KapokError && err.details?.status === 404)) throw err;
      }
    },
    async deleteCollection(r, ns, labelSelector) {
      await call(HttpMethod.DELETE, collectionPath(r, ns), { propagationPolicy: 'Background' }, undefined, {
        labelSelector,
      });
    },
    close() {
      closed = true;
      shared?.agent.destroy();
    },
  };
}
