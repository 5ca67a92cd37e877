import { trace } from '@opentelemetry/api';
import { type DestinationStream, type Logger, pino } from 'pino';

export type { Logger };

/** Paths pino always censors: credentials in headers and in any object we might log. */
export const BUILTIN_REDACT = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  '*.password',
  '*.apiKey',
  '*.token',
  '*.secret',
  '*.url', // connection URLs carry passwords; adapters log host/port instead
];

export interface LoggerOptions {
  level: string;
  redact?: readonly string[];
  /** For tests: where lines go (default stdout, written synchronously so a crash loses nothing). */
  destination?: DestinationStream;
  base?: Record<string, unknown>;
}

/**
 * pino JSON logger. Every line written inside an active span carries trace_id and span_id (the
 * mixin reads OpenTelemetry's context), so logs and traces join without extra work at call sites.
 */
export function createLogger(opts: LoggerOptions): Logger {
  return pino(
    {
      level: opts.level,
      base: { service: 'kapok', ...opts.base },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: [...BUILTIN_REDACT, ...(opts.redact ?? [])], censor: '***' },
      mixin() {
        const span = trace.getActiveSpan();
        if (!span) return {};
        const ctx = span.spanContext();
        return { trace_id: ctx.traceId, span_id: ctx.spanId };
      },
    },
    opts.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
