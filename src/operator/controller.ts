import { isDeepStrictEqual } from 'node:util';
import { Counter, Gauge, type Registry } from 'prom-client';
import { isKapokError, KapokError, messageOf } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { JobModel } from '../ports/job-model.js';
import type { Informer, KubeClient, KubeObject } from '../ports/kubernetes.js';
import type { OperatorConfig } from './config.js';
import { account, holding, type Need, roomsOf } from './nodes.js';
import { workerPod } from './pods.js';
import { WorkQueue } from './queue.js';
import { type AIJobSpec, plan } from './reconcile.js';
import { AIJOBS, FINALIZER, LABEL_JOB, LABEL_MANAGED, MANAGER, NODES, PODS } from './resources.js';
import { checkSpec } from './spec.js';

/**
 * The controller: informers on AIJobs, Pods and Nodes feed a work queue of AIJob keys; workers
 * reconcile one key at a time (while this replica leads). Pods just created are "assumed" until
 * the informer shows them, and the status just written is used until the informer catches up, so
 * a reconcile between the write and the watch event neither double-books a GPU nor re-decides a retry.
 */

export interface ControllerDeps {
  kube: KubeClient;
  model: JobModel;
  config: OperatorConfig;
  logger: Logger;
  registry: Registry;
}

const keyOf = (o: KubeObject) => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;
const rvOf = (o: KubeObject | undefined) => Number(o?.metadata.resourceVersion ?? 0) || 0;
const plain = <T>(v: T): T => JSON.parse(JSON.stringify(v ?? null));

export class Controller {
  private readonly queue: WorkQueue;
  private jobs!: Informer<KubeObject>;
  private pods!: Informer<KubeObject>;
  private nodes!: Informer<KubeObject>;
  private readonly assumed = new Map<string, { pod: KubeObject; at: number }>();
  private readonly written = new Map<string, KubeObject>();
  private readonly specs = new Map<string, { generation: number; spec: AIJobSpec | { invalid: string } }>();
  private readonly waiting = new Set<string>();
  /** The operator's Pods by AIJob uid, and what every Pod holds per node: kept per Pod event, so a reconcile costs O(its own Pods). */
  private readonly byJob = new Map<string, Map<string, KubeObject>>();
  private readonly holds = new Map<string, { node: string; need: Need }>();
  private readonly used = new Map<string, Need>();
  private active = false;
  private stopped = false;
  private resync: NodeJS.Timeout | undefined;
  private workers: Promise<void>[] = [];
  private readonly reconciles: Counter<'result'>;
  readonly leaderGauge: Gauge;

  constructor(private readonly d: ControllerDeps) {
    this.queue = new WorkQueue(d.config.retryBaseMs, d.config.retryMaxMs);
    this.reconciles = new Counter({
      name: 'kapok_operator_reconciles_total',
      help: 'AIJob reconciles by result (ok, error).',
      labelNames: ['result'] as const,
      registers: [d.registry],
    });
    this.leaderGauge = new Gauge({
      name: 'kapok_operator_leader',
      help: '1 while this replica holds the leader Lease and reconciles.',
      registers: [d.registry],
    });
  }

  /** Starts the informers (every replica keeps them warm, for a fast failover) and the workers. */
  async start(): Promise<void> {
    const ns = this.d.config.namespace;
    this.jobs = this.d.kube.inform(AIJOBS, { namespace: ns }, (_t, o) => this.queue.add(keyOf(o)));
    this.pods = this.d.kube.inform(PODS, { namespace: null }, (type, p) => this.onPod(type, p));
    this.nodes = this.d.kube.inform(NODES, {}, () => this.wakeWaiting());
    // Like controller-runtime's cache sync timeout: an unreachable API server fails the start
    // with a reason instead of hanging it.
    const limit = this.d.config.requestTimeoutMs * 2;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, fail) => {
      timer = setTimeout(
        () =>
          fail(
            new KapokError(
              'KAPOK_OPERATOR_API',
              `the AIJob, Pod and Node lists did not load within ${limit} ms: check operator.kubeconfig, that the API server is reachable, that crd-aijob.yaml is applied and the RBAC of operator-rbac.yaml`,
              { details: { status: 0 } },
            ),
          ),
        limit,
      );
    });
    try {
      await Promise.race([Promise.all([this.jobs.synced, this.pods.synced, this.nodes.synced]), timeout]);
    } catch (err) {
      for (const i of [this.jobs, this.pods, this.nodes]) i.stop();
      throw err;
    } finally {
      clearTimeout(timer);
    }
    for (let i = 0; i < this.d.config.workers; i++) this.workers.push(this.work());
    this.resync = setInterval(() => this.enqueueAll(), this.d.config.resyncMs);
    this.resync.unref?.();
  }

  /** Leadership gained (true) or lost (false): only the leader reconciles. */
  setActive(on: boolean): void {
    this.active = on;
    this.leaderGauge.set(on ? 1 : 0);
    if (on) this.enqueueAll();
  }

  stats() {
    return {
      jobs: this.jobs.stats,
      pods: this.pods.stats,
      nodes: this.nodes.stats,
      requests: this.d.kube.requests,
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.resync);
    this.queue.close();
    await Promise.all(this.workers);
    for (const i of [this.jobs, this.pods, this.nodes]) i?.stop();
  }

  private enqueueAll(): void {
    for (const j of this.jobs.list()) this.queue.add(keyOf(j));
  }

  private wakeWaiting(): void {
    for (const k of this.waiting) this.queue.add(k);
  }

  private onPod(type: string, p: KubeObject): void {
    const k = keyOf(p);
    if (type !== 'DELETED') this.assumed.delete(k);
    account(this.used, this.holds.get(k) ?? null, -1);
    this.holds.delete(k);
    const h = type === 'DELETED' ? null : holding(p, this.d.config.gpuResource);
    if (h) this.holds.set(k, h);
    account(this.used, h, 1);
    const uid = p.metadata.labels?.[LABEL_JOB];
    if (uid) {
      const m = this.byJob.get(uid) ?? new Map<string, KubeObject>();
      if (type === 'DELETED') m.delete(k);
      else m.set(k, p);
      if (m.size) this.byJob.set(uid, m);
      else this.byJob.delete(uid);
    }
    const freed = type === 'DELETED' || p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed';
    if (p.metadata.labels?.[LABEL_MANAGED] === MANAGER) {
      const job = p.metadata.annotations?.['kapok.io/aijob-name'];
      if (job) this.queue.add(`${p.metadata.namespace}/${job}`);
    }
    if (freed) this.wakeWaiting();
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.next();
      if (key === null) return;
      try {
        if (this.active && !this.stopped) {
          await this.reconcile(key);
          this.reconciles.inc({ result: 'ok' });
        }
        this.queue.forget(key);
      } catch (err) {
        this.reconciles.inc({ result: 'error' });
        const conflict = isKapokError(err, 'KAPOK_OPERATOR_API') && err.details?.status === 409;
        if (!conflict)
          this.d.logger.warn({ aijob: key, reason: messageOf(err) }, 'operator: reconcile failed; retrying');
        this.queue.retry(key);
      } finally {
        this.queue.done(key);
      }
    }
  }

  /** The AIJob as last seen: the informer's, or the one our own write returned when that is newer. */
  private current(key: string): KubeObject | undefined {
    const [ns, name] = key.split('/') as [string, string];
    const seen = this.jobs.get(ns, name);
    const mine = this.written.get(key);
    if (!seen) {
      this.written.delete(key);
      return undefined;
    }
    if (mine && mine.metadata.uid === seen.metadata.uid && rvOf(mine) > rvOf(seen)) return mine;
    this.written.delete(key);
    return seen;
  }

  private podsOf(uid: string): KubeObject[] {
    const seen = [...(this.byJob.get(uid)?.values() ?? [])];
    const names = new Set(seen.map(keyOf));
    const now = Date.now();
    for (const [k, a] of this.assumed) {
      if (now - a.at > 60_000) this.assumed.delete(k);
      else if (a.pod.metadata.labels?.[LABEL_JOB] === uid && !names.has(k)) seen.push(a.pod);
    }
    return seen;
  }

  private async reconcile(key: string): Promise<void> {
    let job = this.current(key);
    if (!job) {
      this.waiting.delete(key);
      return;
    }
    const ns = job.metadata.namespace as string;
    const name = job.metadata.name;
    const uid = job.metadata.uid as string;
    const finalizers = job.metadata.finalizers ?? [];
    if (job.metadata.deletionTimestamp) {
      this.waiting.delete(key);
      if (!finalizers.includes(FINALIZER)) return;
      const pods = this.podsOf(uid);
      if (pods.some((p) => !p.metadata.deletionTimestamp))
        await this.d.kube.deleteCollection(PODS, ns, `${LABEL_JOB}=${uid}`);
      for (const p of pods) this.assumed.delete(keyOf(p));
      // The Pods' DELETED events bring us back; the finalizer goes once none is left.
      if (this.byJob.has(uid)) return;
      await this.d.kube.mergePatch(AIJOBS, ns, name, {
        metadata: {
          finalizers: finalizers.filter((f) => f !== FINALIZER),
          resourceVersion: job.metadata.resourceVersion,
        },
      });
      this.specs.delete(uid);
      return;
    }
    if (!finalizers.includes(FINALIZER)) {
      job = await this.d.kube.mergePatch<KubeObject>(AIJOBS, ns, name, {
        metadata: { finalizers: [...finalizers, FINALIZER], resourceVersion: job.metadata.resourceVersion },
      });
      this.written.set(key, job);
    }
    const generation = job.metadata.generation ?? 0;
    let cached = this.specs.get(uid);
    if (!cached || cached.generation !== generation) {
      cached = { generation, spec: checkSpec(job, this.d.model) };
      this.specs.set(uid, cached);
    }
    // Pods just created count against their node until the informer shows them.
    const used = new Map(this.used);
    for (const a of this.assumed.values()) account(used, holding(a.pod, this.d.config.gpuResource), 1);
    const rooms = roomsOf(this.nodes.list(), used, this.d.config);

    const p = plan({
      job,
      spec: cached.spec,
      pods: this.podsOf(uid),
      rooms,
      model: this.d.model,
      now: Date.now(),
      rand: Math.random,
    });
    const spec = cached.spec as AIJobSpec;
    for (const c of p.create) {
      const pod = workerPod(job, spec, c.task, c.attempt, c.node, this.d.config);
      const pk = keyOf(pod);
      this.assumed.set(pk, { pod: { ...pod, status: { phase: 'Pending' } }, at: Date.now() });
      try {
        await this.d.kube.create(PODS, ns, pod);
      } catch (err) {
        // AlreadyExists: a Pod of this attempt was made before (a restart, a lost status write): adopt it.
        if (isKapokError(err, 'KAPOK_OPERATOR_API') && err.details?.status === 409) continue;
        this.assumed.delete(pk);
        throw err;
      }
    }
    if (p.status.conditions.some((c) => c.type === 'Scheduled' && c.status === 'False'))
      this.waiting.add(key);
    else this.waiting.delete(key);
    if (!isDeepStrictEqual(plain(p.status), plain(job.status))) {
      const res = await this.d.kube.mergePatch<KubeObject>(AIJOBS, ns, name, { status: p.status }, 'status');
      this.written.set(key, res);
    }
    if (p.requeueAfterMs !== null) this.queue.addAfter(key, p.requeueAfterMs);
  }
}
