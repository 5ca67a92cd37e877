import { KapokError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { KV } from '../../ports/kv.js';
import type { Principal } from '../auth/index.js';
import { type AdmitResult, admitScript, settleScript } from './scripts.js';

export const WINDOW_MS = 60_000;

export interface Admission {
  /** Null when the caller has no limits, or the KV was down and failOpen admitted it uncounted. */
  result: AdmitResult | null;
  /** Tokens reserved; settle() charges the difference to the real usage. */
  reserved: number;
  counted: boolean;
}

/**
 * Requests- and tokens-per-minute per caller on the KV port (memory, or Redis shared by every
 * Kapok process). Reserve before the upstream call, settle with the real usage after.
 */
export class QuotaService {
  /** KV keys per principal (principals of API keys are shared by their requests, see Authenticator). */
  readonly #keys = new WeakMap<Principal, { admit: string[]; settle: string[] }>();

  constructor(
    private readonly kv: KV,
    private readonly opts: { failOpen: boolean; logger: Logger; onFailOpen?: () => void },
  ) {}

  async admit(p: Principal, tokens: number): Promise<Admission> {
    if (p.rpm === null && p.tpm === null) return { result: null, reserved: 0, counted: false };
    const { admit: keys } = this.#keysOf(p);
    const args = [String(p.rpm ?? 0), String(p.tpm ?? 0), String(WINDOW_MS), String(tokens)];
    let result: AdmitResult;
    try {
      result = await this.kv.run(admitScript, keys, args);
    } catch (err) {
      if (this.opts.failOpen) {
        this.opts.onFailOpen?.();
        this.opts.logger.warn(
          { code: (err as KapokError).code },
          'quota backend down: admitting uncounted (gateway.limits.failOpen)',
        );
        return { result: null, reserved: 0, counted: false };
      }
      throw new KapokError('KAPOK_GATEWAY_QUOTA_UNAVAILABLE', 'quota backend unavailable; retry shortly', {
        cause: err,
      });
    }
    if (!result.allowed) throw limited(result, p, tokens);
    return { result, reserved: p.tpm === null ? 0 : tokens, counted: true };
  }

  /** Charges (or refunds) the difference between real and reserved tokens. Never throws. */
  async settle(p: Principal, a: Admission, actualTokens: number): Promise<void> {
    if (!a.counted || p.tpm === null) return;
    const delta = actualTokens - a.reserved;
    if (delta === 0) return;
    try {
      await this.kv.run(settleScript, this.#keysOf(p).settle, [String(delta), String(WINDOW_MS)]);
    } catch (err) {
      this.opts.logger.warn(
        { code: (err as KapokError).code, delta },
        'quota settle failed; the window keeps the reservation',
      );
    }
  }

  #keysOf(p: Principal): { admit: string[]; settle: string[] } {
    let k = this.#keys.get(p);
    if (!k) {
      const tokens = `gw:t:${p.subject}`;
      k = { admit: [`gw:r:${p.subject}`, tokens], settle: [tokens] };
      if (p.kind === 'key') this.#keys.set(p, k); // other principals are built per request
    }
    return k;
  }
}

function limited(r: AdmitResult, p: Principal, tokens: number): KapokError {
  const headers = rateLimitHeaders(r, p);
  if (r.reason === 'too_large') {
    return new KapokError(
      'KAPOK_GATEWAY_REQUEST_TOO_LARGE',
      `this request needs about ${tokens} tokens (prompt + max_tokens), more than the limit of ${p.tpm} tokens per minute: shorten the prompt or lower max_tokens`,
      { details: { headers, type: 'tokens' } },
    );
  }
  const retryMs = Math.max(r.reason === 'requests' ? r.requestsResetMs : r.tokensResetMs, 1);
  headers['retry-after'] = String(Math.ceil(retryMs / 1000));
  headers['retry-after-ms'] = String(retryMs);
  const what = r.reason === 'requests' ? `${p.rpm} requests per minute` : `${p.tpm} tokens per minute`;
  return new KapokError(
    'KAPOK_GATEWAY_RATE_LIMITED',
    `rate limit of ${what} reached; retry in ${fmtDuration(retryMs)}`,
    {
      details: { headers, type: r.reason },
    },
  );
}

/** OpenAI's x-ratelimit-* headers. */
export function rateLimitHeaders(r: AdmitResult | null, p: Principal): Record<string, string> {
  const h: Record<string, string> = {};
  if (!r) return h;
  if (p.rpm !== null) {
    h['x-ratelimit-limit-requests'] = String(p.rpm);
    h['x-ratelimit-remaining-requests'] = String(r.requestsRemaining);
    h['x-ratelimit-reset-requests'] = fmtDuration(r.requestsResetMs);
  }
  if (p.tpm !== null) {
    h['x-ratelimit-limit-tokens'] = String(p.tpm);
    h['x-ratelimit-remaining-tokens'] = String(r.tokensRemaining);
    h['x-ratelimit-reset-tokens'] = fmtDuration(r.tokensResetMs);
  }
  return h;
}

/** OpenAI's reset format: 20ms, 1.5s, 6m0s. */
export function fmtDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  if (ms < 60_000) return `${Math.round(ms / 100) / 10}s`;
  const m = Math.floor(ms / 60_000);
  return `${m}m${Math.round((ms - m * 60_000) / 1000)}s`;
}
