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

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
type Bindings = Record<string, unknown>;

/**
 * A request's logger that becomes a pino child only when it first writes a line at an enabled level
 * (or is asked for a child). Fastify makes a child per request (request_id) and the HTTP server binds
 * the trace ids to it; with redaction configured, each pino child serialises its bindings through the
 * redactor: ~2.5% of the gateway's CPU per request in a profile, for lines that at the default level
 * are almost never written. Our own code, as no library offers a deferred child.
 */
export class LazyChildLogger {
  #real: Logger | null = null;
  #bindings: Bindings;
  /** Bindings set before the child exists, kept apart (merging on every request cost 0.7% of CPU). */
  #extra: Bindings | null = null;
  constructor(
    private readonly parent: Logger,
    bindings: Bindings,
  ) {
    this.#bindings = bindings;
  }

  #child(): Logger {
    this.#real ??= this.parent.child(this.#extra ? { ...this.#bindings, ...this.#extra } : this.#bindings);
    return this.#real;
  }

  #write(level: Level, args: unknown[]): void {
    const target = this.#real ?? this.parent;
    if (!target.isLevelEnabled(level)) return;
    (this.#child()[level] as (...a: unknown[]) => void)(...args);
  }

  fatal(...args: unknown[]): void {
    this.#write('fatal', args);
  }
  error(...args: unknown[]): void {
    this.#write('error', args);
  }
  warn(...args: unknown[]): void {
    this.#write('warn', args);
  }
  info(...args: unknown[]): void {
    this.#write('info', args);
  }
  debug(...args: unknown[]): void {
    this.#write('debug', args);
  }
  trace(...args: unknown[]): void {
    this.#write('trace', args);
  }
  silent(): void {}

  child(bindings: Bindings, opts?: Record<string, unknown>): Logger {
    return this.#child().child(bindings, opts);
  }

  setBindings(bindings: Bindings): void {
    if (this.#real) this.#real.setBindings(bindings);
    else this.#extra = this.#extra ? { ...this.#extra, ...bindings } : bindings;
  }

  bindings(): Bindings {
    return this.#real
      ? this.#real.bindings()
      : { ...this.parent.bindings(), ...this.#bindings, ...this.#extra };
  }

  isLevelEnabled(level: string): boolean {
    return (this.#real ?? this.parent).isLevelEnabled(level);
  }

  get level(): string {
    return (this.#real ?? this.parent).level;
  }

  set level(level: string) {
    this.#child().level = level;
  }
}

/**
 * Fastify's childLoggerFactory: a LazyChildLogger, or a pino child at once when the route sets its
 * own level or serializers.
 */
export function lazyChildLoggerFactory(
  logger: Logger,
  bindings: Bindings,
  opts: Record<string, unknown>,
): Logger | LazyChildLogger {
  if (opts.level !== undefined || opts.serializers !== undefined) return logger.child(bindings, opts);
  return new LazyChildLogger(logger, bindings);
}
