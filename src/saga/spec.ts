import { createHash } from 'node:crypto';
import { z } from 'zod';
import { KapokError } from '../core/errors.js';
import { KIND_TIMEOUT_MS, type SagaConfig, type SagaTarget } from './config.js';

/**
 * A submitted transaction: its shape (zod), then the rules zod cannot say (URLs inside the
 * allow-list, compensation on every non-final saga step, the timeout order branch < coordinator <
 * global). The result is the list of operations the coordinator stores and drives.
 */

export const MODES = ['saga', 'tcc', 'msg', 'eos'] as const;
export type Mode = (typeof MODES)[number];
export type Phase = 'forward' | 'confirm' | 'backward' | 'query';

const id = z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/, 'letters, digits, _ . : - (1-128)');
const url = z.string().min(1).max(1024);
const ms = z.number().int().positive('must be above 0').max(86_400_000);

const branchSchema = z.strictObject({
  id,
  /** saga and msg. */
  action: url.optional(),
  compensate: url.optional(),
  /** tcc. */
  try: url.optional(),
  confirm: url.optional(),
  cancel: url.optional(),
  /** eos (mode eos, or kind eos inside tcc): the TM's base URL and the EOS-parsable steps. */
  kind: z.enum(['http', 'eos']).optional(),
  url: url.optional(),
  steps: z.array(z.unknown()).max(1000).optional(),
  /** JSON sent to every operation of this branch (EOS: {gid, steps} instead). */
  payload: z.unknown().optional(),
  /** This branch's call limit; default the target's. */
  timeoutMs: ms.optional(),
  /** When the branch's limit is at or over the coordinator's: what a confirm that may land late gets. */
  lateConfirm: z.enum(['retry', 'dead-letter']).optional(),
  /** TongWeb refuses anything but application/json. */
  contentType: z.string().max(128).optional(),
});
type BranchIn = z.infer<typeof branchSchema>;

export const txSchema = z.strictObject({
  gid: id,
  mode: z.enum(MODES),
  branches: z
    .array(z.union([branchSchema, z.array(branchSchema).min(1).max(100)]))
    .min(1)
    .max(100),
  /** Global limit of the forward phase; default saga.transactionTimeoutMs. */
  timeoutMs: ms.optional(),
  /** First retry interval of this transaction's calls (capped at saga.retry.maxMs). */
  retryIntervalMs: ms.optional(),
  /** Calls of one operation before giving up (capped at 1000). */
  maxAttempts: z.number().int().min(1).max(1000).optional(),
  /** msg: asked whether a prepared message that was never submitted should be (2xx) or not (409). */
  queryPrepared: url.optional(),
});
export type TxSpec = z.infer<typeof txSchema>;

export interface OpPlan {
  branch: string;
  op: string;
  phase: Phase;
  stage: number;
  target: SagaTarget;
  url: string;
  payload: unknown;
  timeoutMs: number;
  lateConfirm: string | null;
}

export interface TxPlan {
  spec: TxSpec;
  bodyHash: string;
  timeoutMs: number;
  ops: OpPlan[];
}

const invalid = (msg: string) => new KapokError('KAPOK_SAGA_INVALID', msg);

/** Parses and checks a transaction body; throws a 400 naming the field and what to send instead. */
export function planTransaction(body: unknown, cfg: SagaConfig): TxPlan {
  const parsed = txSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? issue.path.join('.') : 'body';
    throw invalid(`${where}: ${issue?.message ?? 'invalid'}`);
  }
  const spec = parsed.data;
  const timeoutMs = spec.timeoutMs ?? cfg.transactionTimeoutMs;
  if (timeoutMs <= cfg.coordinatorTimeoutMs)
    throw new KapokError(
      'KAPOK_SAGA_TIMEOUT_ORDER',
      `timeoutMs ${timeoutMs} must be above saga.coordinatorTimeoutMs (${cfg.coordinatorTimeoutMs}): branch < coordinator < global`,
    );
  if (spec.mode === 'msg' && !spec.queryPrepared)
    throw invalid('queryPrepared: mode msg needs the URL asked about a prepared message never submitted');
  if (spec.mode !== 'msg' && spec.queryPrepared) throw invalid('queryPrepared: only mode msg takes it');
  const stages = spec.branches.map((b) => (Array.isArray(b) ? b : [b]));
  const seen = new Set<string>();
  const ops: OpPlan[] = [];
  for (const [s, group] of stages.entries())
    for (const b of group) {
      if (seen.has(b.id)) throw invalid(`branch id ${b.id} appears twice: give each branch its own id`);
      seen.add(b.id);
      const last = s === stages.length - 1;
      ops.push(...branchOps(spec, b, s, last, cfg));
    }
  if (spec.queryPrepared) {
    const t = resolveUrl(spec.queryPrepared, 'queryPrepared', cfg);
    const tm = callTimeout(t, undefined, undefined, 'queryPrepared', cfg);
    ops.push({
      branch: '_msg',
      op: 'query',
      phase: 'query',
      stage: 0,
      target: t,
      url: spec.queryPrepared,
      payload: { gid: spec.gid },
      timeoutMs: tm,
      lateConfirm: null,
    });
  }
  return { spec, bodyHash: bodyHash(spec), timeoutMs, ops };
}

function need(b: BranchIn, keys: Array<keyof BranchIn>, mode: string, path: string): void {
  for (const k of keys) if (b[k] === undefined) throw invalid(`${path}.${k}: mode ${mode} needs it`);
}

function refuse(b: BranchIn, keys: Array<keyof BranchIn>, why: string, path: string): void {
  for (const k of keys) if (b[k] !== undefined) throw invalid(`${path}.${k}: ${why}`);
}

function branchOps(spec: TxSpec, b: BranchIn, stage: number, last: boolean, cfg: SagaConfig): OpPlan[] {
  const path = `branch ${b.id}`;
  const eos = spec.mode === 'eos' || b.kind === 'eos';
  let defs: Array<[string, Phase, string]>;
  let payload: (op: string) => unknown = () => b.payload ?? {};
  if (eos) {
    if (spec.mode !== 'eos' && spec.mode !== 'tcc')
      throw invalid(`${path}.kind: eos branches belong to mode eos or tcc`);
    need(b, ['url', 'steps'], 'eos', path);
    refuse(
      b,
      ['action', 'compensate', 'try', 'confirm', 'cancel', 'payload'],
      'an eos branch has url and steps only',
      path,
    );
    const base = (b.url as string).replace(/\/+$/, '');
    defs = [
      ['prepare', 'forward', `${base}/prepare`],
      ['commit', 'confirm', `${base}/commit`],
      ['rollback', 'backward', `${base}/rollback`],
    ];
    payload = (op) => (op === 'prepare' ? { gid: spec.gid, steps: b.steps } : { gid: spec.gid });
  } else if (spec.mode === 'tcc') {
    need(b, ['try', 'confirm', 'cancel'], 'tcc', path);
    refuse(b, ['action', 'compensate', 'url', 'steps'], 'mode tcc takes try, confirm and cancel', path);
    defs = [
      ['try', 'forward', b.try as string],
      ['confirm', 'confirm', b.confirm as string],
      ['cancel', 'backward', b.cancel as string],
    ];
  } else {
    need(b, ['action'], spec.mode, path);
    refuse(
      b,
      ['try', 'confirm', 'cancel', 'url', 'steps'],
      `mode ${spec.mode} takes action${spec.mode === 'saga' ? ' and compensate' : ''}`,
      path,
    );
    if (spec.mode === 'msg')
      refuse(b, ['compensate'], 'a msg branch is never compensated (it must succeed)', path);
    if (spec.mode === 'saga' && !b.compensate && !last)
      throw invalid(`${path}.compensate: every saga step but those of the last stage needs a compensation`);
    defs = [['action', 'forward', b.action as string]];
    if (b.compensate) defs.push(['compensate', 'backward', b.compensate]);
  }
  return defs.map(([op, phase, u]) => {
    const t = resolveUrl(u, `${path}.${op}`, cfg);
    if (t.kind === 'tongweb' && b.contentType && !/^application\/json(;|$)/i.test(b.contentType))
      throw invalid(`${path}.contentType: target ${t.name} is TongWeb, which takes application/json only`);
    if (b.contentType && !/^application\/([a-z.+-]*\+)?json(;|$)/i.test(b.contentType))
      throw invalid(`${path}.contentType: branches carry JSON (application/json or application/*+json)`);
    return {
      branch: b.id,
      op,
      phase,
      stage,
      target: t,
      url: u,
      payload: payload(op),
      timeoutMs: callTimeout(t, b.timeoutMs, b.lateConfirm, `${path}.${op}`, cfg),
      lateConfirm: b.lateConfirm ?? null,
    };
  });
}

/** The target a URL falls under (scheme http(s) or nats, inside a configured target), else 400. */
export function resolveUrl(u: string, where: string, cfg: SagaConfig): SagaTarget {
  if (!/^(https?|nats):\/\//i.test(u))
    throw new KapokError(
      'KAPOK_SAGA_URL_REFUSED',
      `${where}: ${JSON.stringify(u.slice(0, 80))} is not http(s):// or nats://`,
    );
  if (
    u.startsWith('nats://')
      ? !/^nats:\/\/[A-Za-z0-9_.-]+$/.test(u)
      : /[\s"<>\\^`{|}]/.test(u) || /^https?:\/\/[^/]*@/i.test(u)
  )
    throw new KapokError(
      'KAPOK_SAGA_URL_REFUSED',
      `${where}: malformed URL (no spaces, credentials or wildcards)`,
    );
  const t = cfg.targets.find(
    (x) =>
      u.startsWith(x.url) &&
      (x.url.endsWith('/') ||
        x.url.endsWith('.') ||
        u.length === x.url.length ||
        '/?.'.includes(u[x.url.length] as string)),
  );
  if (!t)
    throw new KapokError(
      'KAPOK_SAGA_URL_REFUSED',
      `${where}: ${u.slice(0, 80)} is outside saga.targets: add a target whose url it starts with`,
    );
  return t;
}

/** One call's limit: the branch's, else the target's, else its kind's; checked against the coordinator's. */
function callTimeout(
  t: SagaTarget,
  own: number | undefined,
  late: string | undefined,
  where: string,
  cfg: SagaConfig,
): number {
  const ms = own ?? t.timeoutMs ?? KIND_TIMEOUT_MS[t.kind];
  if (ms < cfg.coordinatorTimeoutMs) return ms;
  if (!late)
    throw new KapokError(
      'KAPOK_SAGA_TIMEOUT_ORDER',
      `${where}: target ${t.name} may take ${ms} ms, not below saga.coordinatorTimeoutMs (${cfg.coordinatorTimeoutMs}): lower timeoutMs, or declare lateConfirm (retry | dead-letter) for a confirm that lands after the coordinator gave up`,
    );
  // The coordinator waits no longer than its own limit; lateConfirm says what follows.
  return cfg.coordinatorTimeoutMs;
}

/** SHA-256 of the body with keys sorted: the same transaction sent twice hashes alike. */
export function bodyHash(v: unknown): string {
  return createHash('sha256').update(canonical(v)).digest('hex');
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object')
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v) ?? 'null';
}
