import { KapokError } from '../../core/errors.js';
import type { SqlValue, Store } from '../../ports/store.js';

/**
 * Usage over time for the console's gateway page, aggregated by the database over the whole range
 * (never from a page of rows), from per-minute sums for steps of a minute or more: requests, errors (status ≥ 400) and tokens per time bucket and group,
 * the busiest groups kept apart and the rest summed as `(other)`, and totals over the range.
 * Records are read a page at a time with a keyset cursor (id), so page 1,000 costs what page 1 does.
 */

const BY = { model: 'model', key: 'subject', status: 'status', target: 'target' } as const;
export type SeriesBy = keyof typeof BY;
export const OTHER = '(other)';

export interface SeriesQuery {
  from?: string | undefined;
  to?: string | undefined;
  by?: string | undefined;
  buckets?: string | undefined;
  top?: string | undefined;
}

export interface UsageSeries {
  from: string;
  to: string;
  by: SeriesBy;
  stepMs: number;
  /**
   * Where the sums came from: `minutes` (per-minute sums; from/to/stepMs snapped to whole minutes)
   * when the step is a minute or more, else `records` (raw rows, the exact range asked for).
   */
  source: 'minutes' | 'records';
  /** Bucket start times (epoch ms), oldest first. */
  times: number[];
  /** One per group: counts aligned with `times`. */
  series: Array<{ group: string; requests: number[]; errors: number[]; tokens: number[] }>;
  totals: { requests: number; errors: number; tokens: number; groups: number };
}

const MINUTE = 60_000;

export async function usageSeries(
  store: Store,
  q: SeriesQuery,
  now = Date.now(),
  opts: { rollup?: boolean } = {},
): Promise<UsageSeries> {
  const by = (q.by ?? 'model') as SeriesBy;
  if (!(by in BY))
    throw new KapokError('KAPOK_HTTP_BAD_REQUEST', `by must be one of: ${Object.keys(BY).join(', ')}`);
  let to = q.to ? time(q.to, 'to') : now;
  let from = q.from ? time(q.from, 'from') : to - 24 * 3600_000;
  if (from >= to) throw new KapokError('KAPOK_HTTP_BAD_REQUEST', 'from must be before to');
  const buckets = int(q.buckets, 'buckets', 60, 1, 1000);
  const top = int(q.top, 'top', 8, 1, 50);
  let stepMs = Math.max(1000, Math.ceil((to - from) / buckets));
  // Steps of a minute or more read the per-minute sums (gateway_usage_minutes): from snaps down and
  // to up to whole minutes, the step up to whole minutes, so every bucket is made of whole minutes.
  const rollup = stepMs >= MINUTE && opts.rollup !== false;
  if (rollup) {
    from = Math.floor(from / MINUTE) * MINUTE;
    to = Math.ceil(to / MINUTE) * MINUTE;
    stepMs = Math.ceil(stepMs / MINUTE) * MINUTE;
  }
  const n = Math.ceil((to - from) / stepMs);
  const col = BY[by];
  const params: SqlValue[] = [from, stepMs, from, to];
  const rows = await store.query<Record<string, unknown>>(
    rollup
      ? `SELECT (minute - ?) / ? AS b, ${col} AS grp, SUM(requests) AS requests, SUM(errors) AS errors,
       SUM(tokens) AS tokens FROM gateway_usage_minutes WHERE minute >= ? AND minute < ? GROUP BY 1, 2`
      : `SELECT (ts - ?) / ? AS b, ${col} AS grp, COUNT(*) AS requests,
       SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END) AS errors,
       SUM(prompt_tokens + completion_tokens) AS tokens
     FROM gateway_usage WHERE ts >= ? AND ts < ? GROUP BY 1, 2`,
    params,
  );
  // The busiest groups over the whole range; the rest are summed into one.
  const perGroup = new Map<string, number>();
  let requests = 0;
  let errors = 0;
  let tokens = 0;
  for (const r of rows) {
    const g = String(r.grp);
    const c = Number(r.requests);
    perGroup.set(g, (perGroup.get(g) ?? 0) + c);
    requests += c;
    errors += Number(r.errors ?? 0);
    tokens += Number(r.tokens ?? 0);
  }
  const kept = new Set(
    [...perGroup.entries()]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, top)
      .map(([g]) => g),
  );
  const series = new Map<string, UsageSeries['series'][number]>();
  const zeros = () => new Array<number>(n).fill(0);
  for (const r of rows) {
    const g = kept.has(String(r.grp)) ? String(r.grp) : OTHER;
    let s = series.get(g);
    if (!s) {
      s = { group: g, requests: zeros(), errors: zeros(), tokens: zeros() };
      series.set(g, s);
    }
    const b = Math.min(n - 1, Math.max(0, Math.floor(Number(r.b))));
    s.requests[b] = (s.requests[b] ?? 0) + Number(r.requests);
    s.errors[b] = (s.errors[b] ?? 0) + Number(r.errors ?? 0);
    s.tokens[b] = (s.tokens[b] ?? 0) + Number(r.tokens ?? 0);
  }
  return {
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    by,
    stepMs,
    source: rollup ? 'minutes' : 'records',
    times: Array.from({ length: n }, (_, i) => from + i * stepMs),
    // Ties by name: the order never depends on the order the database returned rows in.
    series: [...series.values()].sort(
      (a, b) => sum(b.requests) - sum(a.requests) || (a.group < b.group ? -1 : 1),
    ),
    totals: { requests, errors, tokens, groups: perGroup.size },
  };
}

export interface RecordsQuery {
  before?: string | undefined;
  limit?: string | undefined;
  model?: string | undefined;
  key?: string | undefined;
}

/** Usage records newest first, a page at a time: `before` is the previous page's `next` (an id). */
export async function usageRecords(store: Store, q: RecordsQuery) {
  const limit = int(q.limit, 'limit', 50, 1, 500);
  const where: string[] = [];
  const params: SqlValue[] = [];
  if (q.before !== undefined) {
    where.push('id < ?');
    params.push(int(q.before, 'before', 0, 1, Number.MAX_SAFE_INTEGER));
  }
  if (q.model) {
    where.push('model = ?');
    params.push(q.model);
  }
  if (q.key) {
    where.push('subject = ?');
    params.push(q.key.includes(':') ? q.key : `key:${q.key}`);
  }
  params.push(limit + 1);
  const rows = await store.query<Record<string, unknown>>(
    `SELECT id, ts, subject, model, target, prompt_tokens, completion_tokens, latency_ms, status
     FROM gateway_usage ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`,
    params,
  );
  const page = rows.slice(0, limit).map((r) => ({
    id: Number(r.id),
    ts: new Date(Number(r.ts)).toISOString(),
    subject: String(r.subject),
    model: String(r.model),
    target: String(r.target),
    promptTokens: Number(r.prompt_tokens),
    completionTokens: Number(r.completion_tokens),
    latencyMs: Number(r.latency_ms),
    status: Number(r.status),
  }));
  return { records: page, next: rows.length > limit ? (page.at(-1)?.id ?? null) : null };
}

const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);

function int(v: string | undefined, what: string, dflt: number, min: number, max: number): number {
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new KapokError('KAPOK_HTTP_BAD_REQUEST', `${what}: an integer from ${min} to ${max}`);
  return n;
}

/** RFC 3339 / ISO 8601 or epoch milliseconds. */
function time(v: string, what: string): number {
  const n = /^[0-9]{1,15}$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(n))
    throw new KapokError(
      'KAPOK_HTTP_BAD_REQUEST',
      `${what}: an RFC 3339 time (2026-11-27T08:00:00Z) or epoch milliseconds`,
    );
  return n;
}
