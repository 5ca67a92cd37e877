import type { FastifyInstance } from 'fastify';
import type { Health } from '../health.js';
import type { Metrics } from '../metrics.js';

/** `2006-01-02T15:04:05Z`: UTC, whole seconds (the contract's format, same as Go's time.RFC3339 in UTC). */
export function utcTimestamp(d = new Date()): string {
  return `${d.toISOString().slice(0, 19)}Z`;
}

export interface ProbeDeps {
  region: string;
  health: Health;
  metrics: Metrics;
}

/** /healthz (liveness), /readyz (readiness of each component) and /metrics (Prometheus text). */
export async function probeRoutes(
  app: FastifyInstance,
  { region, health, metrics }: ProbeDeps,
): Promise<void> {
  app.get('/healthz', async (_req, reply) => {
    reply.header('cache-control', 'no-store');
    return { status: 'ok', timestamp: utcTimestamp(), region };
  });

  app.get('/readyz', async (_req, reply) => {
    const r = await health.readiness();
    reply.code(r.status === 'ready' ? 200 : 503).header('cache-control', 'no-store');
    return r;
  });

  app.get('/metrics', async (_req, reply) => {
    reply.type(metrics.contentType).header('cache-control', 'no-store');
    return metrics.render();
  });
}
