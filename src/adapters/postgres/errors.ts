/** PostgreSQL and network errors turned into catalogue errors, for the postgres adapters. */
import { KapokError, messageOf } from '../../core/errors.js';
import { sqlExcerpt } from '../../ports/store.js';

export interface PgErrorContext {
  /** host:port/database, for messages. */
  target: string;
  /** The URL's password: replaced by *** wherever a message would show it. */
  password: string;
  statementTimeoutMs: number;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'ECONNABORTED',
]);

/** Turns a pg or network error into a catalogue error; messages never carry the password or parameters. */
export function mapPgError(
  err: unknown,
  ctx: PgErrorContext,
  sql: string,
  values: readonly unknown[],
): KapokError {
  if (err instanceof KapokError) return err;
  const e = (err ?? {}) as { code?: unknown; constraint?: unknown; message?: unknown };
  const code = pgCode(err);
  const msg = pgMessage(err, ctx.password, values);
  if (code.startsWith('23')) {
    const constraint = typeof e.constraint === 'string' ? e.constraint : undefined;
    return new KapokError(
      'KAPOK_STORE_CONFLICT',
      `${msg}: the write conflicts with existing data; use another value or update the existing row`,
      {
        cause: err,
        details: { constraint: constraintKind(code), ...(constraint ? { name: constraint } : {}) },
      },
    );
  }
  if (isPgConnectionError(err)) {
    return new KapokError(
      'KAPOK_STORE_UNAVAILABLE',
      `PostgreSQL at ${ctx.target} is not reachable: ${msg}. Check the store URL (host, port, database, ` +
        'user, password) and that the server accepts connections.',
      { cause: err, details: { target: ctx.target } },
    );
  }
  if (code === '57014') {
    return new KapokError(
      'KAPOK_STORE_QUERY',
      `the statement was cancelled (statement timeout ${ctx.statementTimeoutMs} ms): ` +
        `${sqlExcerpt(sql)}. Make it cheaper (an index?) or raise statementTimeoutMs.`,
      { cause: err },
    );
  }
  const retryable = code === '40001' || code === '40P01';
  const statement = sql ? ` (statement: ${sqlExcerpt(sql)})` : '';
  return new KapokError(
    'KAPOK_STORE_QUERY',
    `SQL statement failed (SQLSTATE ${code || 'none'}): ${msg}${statement}. ` +
      (retryable ? 'Retry the transaction.' : 'Fix the statement.'),
    { cause: err, details: { sqlstate: code || undefined, ...(retryable ? { retryable: true } : {}) } },
  );
}

/** The SQLSTATE (or Node network code) of a pg error; '' when it has none. */
export function pgCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

/** The error's message with the password and string parameter values taken out. */
export function pgMessage(err: unknown, password: string, values: readonly unknown[]): string {
  return scrub(password, redact(messageOf(err), values));
}

function scrub(password: string, message: string): string {
  return password.length >= 3 ? message.split(password).join('***') : message;
}

/** The server cannot be reached, refuses the login or is going away: retry later, nothing is wrong with the statement. */
export function isPgConnectionError(err: unknown): boolean {
  const code = pgCode(err);
  const message = messageOf(err);
  if (NETWORK_CODES.has(code)) return true;
  // 08 connection exception, 28 bad credentials, 3D000 no such database, 53300 too many connections,
  // 57P01-57P03 server shutting down or starting.
  if (code.startsWith('08') || code.startsWith('28') || code === '3D000' || code === '53300') return true;
  if (code === '57P01' || code === '57P02' || code === '57P03') return true;
  return /Connection terminated|timeout exceeded when trying to connect|not queryable|connect ETIMEDOUT/.test(
    message,
  );
}

function constraintKind(code: string): string {
  if (code === '23505') return 'unique';
  if (code === '23503') return 'foreign_key';
  if (code === '23502') return 'not_null';
  if (code === '23514') return 'check';
  return 'other';
}

/**
 * Removes parameter values from a server message (pg quotes bad input back: `invalid input syntax
 * for type integer: "..."`): string parameters are replaced by `<parameter N>` and a trailing
 * quoted value is dropped.
 */
function redact(message: string, values: readonly unknown[]): string {
  let out = message;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v === 'string' && v.length >= 3 && out.includes(v))
      out = out.split(v).join(`<parameter ${i + 1}>`);
  }
  return values.length > 0 ? out.replace(/: "(?:[^"]|"")*"$/, '') : out;
}
