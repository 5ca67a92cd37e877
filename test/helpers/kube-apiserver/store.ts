import { randomUUID } from 'node:crypto';
import { apiVersionOf, keyOf, type ResourceType } from './resources.js';

/**
 * The object store of the test API server, kept the way kube-apiserver keeps etcd's: one global
 * resourceVersion bumped by every write, an event log watches resume from, compaction that makes
 * older versions answer 410 Gone, generation bumped on spec changes only, finalizers holding a
 * deletion (deletionTimestamp set) until they are removed, and owner references collected.
 */

// biome-ignore lint/suspicious/noExplicitAny: Kubernetes objects are open-ended JSON.
export type Obj = Record<string, any>;
export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoredEvent {
  rv: number;
  res: string;
  type: EventType;
  object: Obj;
  /** The object before a MODIFIED (a watcher whose selector it left gets DELETED). */
  old?: Obj;
}

export interface Watcher {
  res: string;
  namespace: string | null;
  matches(o: Obj): boolean;
  send(type: string, object: Obj): void;
}

export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const specOf = (o: Obj) => {
  const { metadata: _m, status: _s, ...rest } = o;
  return JSON.stringify(rest);
};

export class ObjectStore {
  rv = 1;
  compactedRv = 0;
  readonly types = new Map<string, ResourceType>();
  private readonly objects = new Map<string, Map<string, Obj>>();
  private log: StoredEvent[] = [];
  readonly watchers = new Set<Watcher>();

  constructor(
    types: ResourceType[],
    private readonly maxLog = 50_000,
    private readonly onCrd?: (crd: Obj, deleted: boolean) => void,
  ) {
    for (const t of types) this.addType(t);
  }

  addType(t: ResourceType): void {
    const k = keyOf(t.group, t.version, t.plural);
    this.types.set(k, t);
    if (!this.objects.has(k)) this.objects.set(k, new Map());
  }

  private bucket(res: string): Map<string, Obj> {
    const b = this.objects.get(res);
    if (!b) throw new ApiError(404, 'NotFound', `the server could not find the requested resource (${res})`);
    return b;
  }

  /** Drops every event at or below the current version: a watch from an older one gets 410. */
  compact(): void {
    this.compactedRv = this.rv;
    this.log = [];
  }

  list(res: string, namespace: string | null, match: (o: Obj) => boolean = () => true): Obj[] {
    return [...this.bucket(res).values()]
      .filter((o) => (namespace === null || o.metadata.namespace === namespace) && match(o))
      .map((o) => structuredClone(o));
  }

  get(res: string, namespace: string | null, name: string): Obj {
    const o = this.bucket(res).get(`${namespace ?? ''}/${name}`);
    if (!o) throw new ApiError(404, 'NotFound', `${this.types.get(res)?.plural ?? res} "${name}" not found`);
    return structuredClone(o);
  }

  /** Events after `rv` for one resource (a watch's replay); throws 410 when compacted past it. */
  since(res: string, rv: number): StoredEvent[] {
    if (rv < this.compactedRv)
      throw new ApiError(410, 'Expired', `too old resource version: ${rv} (${this.compactedRv})`);
    return this.log.filter((e) => e.res === res && e.rv > rv);
  }

  private commit(res: string, type: EventType, object: Obj, old?: Obj): Obj {
    this.rv += 1;
    object.metadata.resourceVersion = String(this.rv);
    const b = this.bucket(res);
    const key = `${object.metadata.namespace ?? ''}/${object.metadata.name}`;
    if (type === 'DELETED') b.delete(key);
    else b.set(key, object);
    const ev: StoredEvent = {
      rv: this.rv,
      res,
      type,
      object: structuredClone(object),
      ...(old ? { old } : {}),
    };
    this.log.push(ev);
    if (this.log.length > this.maxLog) {
      const dropped = this.log.splice(0, this.log.length - this.maxLog);
      this.compactedRv = (dropped.at(-1) as StoredEvent).rv;
    }
    for (const w of this.watchers) {
      if (w.res !== res || (w.namespace !== null && w.namespace !== object.metadata.namespace)) continue;
      const now = w.matches(ev.object);
      const before = old ? w.matches(old) : false;
      if (type === 'MODIFIED' && !now && before) w.send('DELETED', ev.object);
      else if (type === 'MODIFIED' && now && !before) w.send('ADDED', ev.object);
      else if (now) w.send(type, ev.object);
    }
    if (res.startsWith('apiextensions.k8s.io/')) this.onCrd?.(object, type === 'DELETED');
    return structuredClone(object);
  }

  create(res: string, namespace: string | null, body: Obj): Obj {
    const t = this.types.get(res);
    if (!t) throw new ApiError(404, 'NotFound', `unknown resource ${res}`);
    const meta = { ...(body.metadata ?? {}) };
    if (!meta.name && meta.generateName) meta.name = `${meta.generateName}${randomUUID().slice(0, 5)}`;
    if (typeof meta.name !== 'string' || meta.name.length > 253 || !DNS_SUBDOMAIN.test(meta.name))
      throw new ApiError(
        422,
        'Invalid',
        `${t.kind} "${meta.name ?? ''}" is invalid: metadata.name: Invalid value: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'`,
      );
    const key = `${t.namespaced ? namespace : ''}/${meta.name}`;
    if (this.bucket(res).has(key))
      throw new ApiError(
        409,
        'AlreadyExists',
        `${t.plural}${t.group ? `.${t.group}` : ''} "${meta.name}" already exists`,
      );
    const obj: Obj = {
      ...structuredClone(body),
      apiVersion: apiVersionOf(t),
      kind: t.kind,
      metadata: {
        ...meta,
        ...(t.namespaced ? { namespace } : {}),
        uid: randomUUID(),
        creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        generation: 1,
      },
    };
    delete obj.metadata.resourceVersion;
    delete obj.metadata.deletionTimestamp;
    if (t.kind === 'Pod') obj.status = { phase: 'Pending' };
    else if (t.statusSubresource && t.group && t.kind !== 'CustomResourceDefinition') delete obj.status;
    return this.commit(res, 'ADDED', obj);
  }

  /**
   * An update of the main resource or of /status: 409 when body's resourceVersion is stale;
   * the main endpoint keeps status, /status keeps everything but status (spec changes written
   * there are ignored, as kube-apiserver does).
   */
  update(res: string, namespace: string | null, name: string, body: Obj, subresource: 'status' | null): Obj {
    const t = this.types.get(res) as ResourceType;
    const old = this.get(res, namespace, name);
    const rv = body.metadata?.resourceVersion;
    if (rv !== undefined && rv !== '' && rv !== old.metadata.resourceVersion)
      throw new ApiError(
        409,
        'Conflict',
        `Operation cannot be fulfilled on ${t.plural}${t.group ? `.${t.group}` : ''} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
      );
    let next: Obj;
    if (subresource === 'status') next = { ...old, status: structuredClone(body.status) };
    else {
      next = { ...structuredClone(body), apiVersion: old.apiVersion, kind: old.kind };
      if (t.statusSubresource) next.status = old.status;
      if (next.status === undefined) delete next.status;
      const m = next.metadata ?? {};
      next.metadata = {
        ...m,
        name: old.metadata.name,
        uid: old.metadata.uid,
        creationTimestamp: old.metadata.creationTimestamp,
        generation: old.metadata.generation,
        ...(old.metadata.namespace ? { namespace: old.metadata.namespace } : {}),
        ...(old.metadata.deletionTimestamp ? { deletionTimestamp: old.metadata.deletionTimestamp } : {}),
      };
      if (!old.metadata.deletionTimestamp) delete next.metadata.deletionTimestamp;
      if (specOf(next) !== specOf(old)) next.metadata.generation = old.metadata.generation + 1;
    }
    if (next.metadata.deletionTimestamp && !(next.metadata.finalizers ?? []).length) {
      this.remove(res, next);
      return structuredClone(next);
    }
    return this.commit(res, 'MODIFIED', next, old);
  }

  /** DELETE: with finalizers, marks deletionTimestamp and waits; without, removes and collects dependents. */
  delete(res: string, namespace: string | null, name: string): Obj {
    const old = this.get(res, namespace, name);
    if ((old.metadata.finalizers ?? []).length) {
      if (old.metadata.deletionTimestamp) return old;
      const next = structuredClone(old);
      next.metadata.deletionTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      next.metadata.deletionGracePeriodSeconds = 0;
      return this.commit(res, 'MODIFIED', next, old);
    }
    this.remove(res, old);
    return old;
  }

  private remove(res: string, obj: Obj): void {
    this.commit(res, 'DELETED', structuredClone(obj));
    const uid = obj.metadata.uid;
    // The garbage collector: background propagation, after the owner is gone.
    setImmediate(() => {
      for (const [r, b] of this.objects)
        for (const o of [...b.values()])
          if ((o.metadata.ownerReferences ?? []).some((ref: Obj) => ref.uid === uid))
            try {
              this.delete(r, o.metadata.namespace ?? null, o.metadata.name);
            } catch {
              // Already gone.
            }
    });
  }
}
