import { KapokError } from '../../core/errors.js';
import type { SqlValue, Store } from '../../ports/store.js';

/** groupBy values → column (a whitelist: the value never reaches SQL text otherwise). */
const GROUPS = { model: 'model', key: 'subject', target: 'target', status: 'status', none: null } as const;
export type UsageGroup = keyof typeof GROUPS;

export interface UsageQuery {
  /** A key id (`key:<id>` subjects) or a full subject (`jwt:…`, `anon:…`). */
  key?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
  groupBy?: string | undefined;
}

export interface UsageRow {
  group: string | number | null;
  requests: number;
  errors: number;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export async function queryUsage(
  store: Store,
  q: UsageQuery,
  now = Date.now(),
): Promise<{ from: string; to: string; groupBy: UsageGroup; rows: UsageRow[] }> {
  const groupBy = (q.groupBy ?? 'model') as UsageGroup;
  if (!(groupBy in GROUPS)) {
    throw new KapokError(
      'KAPOK_HTTP_BAD_REQUEST',
      `groupBy must be one of: ${Object.keys(GROUPS).join(', ')}`,
    );
  }
  const to = q.to ? time(q.to, 'to') : now;
  const from = q.from ? time(q.from, 'from') : to - 24 * 3600_000;
  if (from >= to) throw new KapokError('KAPOK_HTTP_BAD_REQUEST', 'from must be before to');
  const col = GROUPS[groupBy];
  const where = ['ts >= ?', 'ts < ?'];
  const params: SqlValue[] = [from, to];
  if (q.key) {
    where.push('subject = ?');
    params.push(q.key.includes(':') ? q.key : `key:${q.key}`);
  }
  const sql = `SELECT ${col ?? 'NULL'} AS grp, COUNT(*) AS requests,
    SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END) AS errors,
    COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens, COALESCE(SUM(completion_tokens), 0) AS completion_tokens
    FROM gateway_usage WHERE ${where.join(' AND ')}${col ? ` GROUP BY ${col} ORDER BY ${col}` : ''}`;
  const rows = await store.query<Record<string, unknown>>(sql, params);
  return {
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    groupBy,
    rows: rows
      .filter((r) => Number(r.requests) > 0)
      .map((r) => {
        const prompt = Number(r.prompt_tokens);
        const completion = Number(r.completion_tokens);
        return {
          group: (r.grp ?? null) as string | number | null,
          requests: Number(r.requests),
          errors: Number(r.errors ?? 0),
          prompt_tokens: prompt,
          completion_tokens: completion,
          total_tokens: prompt + completion,
        };
      }),
  };
}

/** RFC 3339 / ISO 8601 or epoch milliseconds. */
function time(v: string, what: string): number {
  const n = /^[0-9]{1,15}$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(n)) {
    throw new KapokError(
      'KAPOK_HTTP_BAD_REQUEST',
      `${what}: an RFC 3339 time (2026-11-27T08:00:00Z) or epoch milliseconds`,
    );
  }
  return n;
}
