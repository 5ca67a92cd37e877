import { messageOf } from '../../core/errors.js';
import {
  byId,
  type InstanceInfo,
  parseInstance,
  type Registry,
  type RegistryStatus,
} from '../../ports/registry.js';
import type { EtcdClient, KeyValue, WatchHandle } from './client.js';

export interface EtcdRegistryOptions {
  client: EtcdClient;
  /** Key prefix of the instances, e.g. `/kapok-registry/`; one key per instance id below it. */
  prefix: string;
  /** Lease TTL: a killed instance's key disappears this long after its last keepalive. */
  ttlSeconds: number;
  /** Told when the lease or the watch is lost and being re-established (never a value). */
  onTrouble?: (what: string) => void;
}

const MAX_BACKOFF_MS = 5000;

/**
 * The etcd registry: this instance's record is a key under a lease kept alive every TTL/3; a process
 * that dies stops the keepalives and etcd deletes the key when the lease expires; a drain revokes the
 * lease (the key goes at once). The others are followed by list + watch, relisting whenever a watch
 * ends (compaction, etcd restart), as the config source does. A lost lease is granted anew.
 */
export function createEtcdRegistry(o: EtcdRegistryOptions): Registry {
  const { client, prefix } = o;
  if (!/^\/([^/]+\/)+$/.test(prefix))
    throw new Error(`registry prefix ${prefix}: expected like /kapok-registry/`);
  const view = new Map<string, InstanceInfo>();
  let self: InstanceInfo | null = null;
  let lease: string | null = null;
  let keep: { stop(): void } | null = null;
  let watch: WatchHandle | null = null;
  let watching = false;
  let closed = false;
  let leaseOk = false;
  let detail: string | undefined;
  const timers = new Set<NodeJS.Timeout>();

  const later = (ms: number, f: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      f();
    }, ms);
    t.unref();
    timers.add(t);
  };
  const trouble = (what: string) => {
    detail = what;
    o.onTrouble?.(what);
  };
  const apply = (kv: KeyValue, deleted: boolean) => {
    const id = kv.key.slice(prefix.length);
    if (deleted) {
      view.delete(id);
      return;
    }
    let parsed: InstanceInfo | null = null;
    try {
      parsed = parseInstance(JSON.parse(kv.value.toString('utf8')));
    } catch {
      parsed = null;
    }
    if (parsed && parsed.id === id) view.set(id, parsed);
    else view.delete(id);
  };

  const follow = async (backoff = 200): Promise<void> => {
    if (closed) return;
    try {
      const { kvs, revision } = await client.list(prefix);
      view.clear();
      for (const kv of kvs) apply(kv, false);
      watching = true;
      watch = client.watch(prefix, revision + 1, {
        onEvents: (events) => {
          for (const e of events) apply(e.kv, e.type === 'delete');
        },
        onEnd: (why) => {
          watching = false;
          if (closed) return;
          trouble(`registry watch ended (${why.error || `compacted at ${why.compactRevision}`}); relisting`);
          later(200, () => void follow());
        },
      });
    } catch (err) {
      watching = false;
      trouble(`registry list failed: ${messageOf(err)}`);
      later(backoff, () => void follow(Math.min(backoff * 2, MAX_BACKOFF_MS)));
    }
  };

  const announce = async (backoff = 200): Promise<void> => {
    if (closed || !self) return;
    const info = self;
    try {
      const granted = await client.leaseGrant(o.ttlSeconds);
      if (closed || self?.id !== info.id) {
        await client.leaseRevoke(granted.id).catch(() => {});
        return;
      }
      lease = granted.id;
      // The record as it is now (update() may have changed it meanwhile).
      await client.put(prefix + info.id, JSON.stringify(self ?? info), granted.id);
      leaseOk = true;
      detail = undefined;
      keep = client.keepAlive(granted.id, Math.max(500, (o.ttlSeconds * 1000) / 3), (why) => {
        leaseOk = false;
        if (closed || self?.id !== info.id) return;
        trouble(`registry lease lost (${why}); registering again`);
        later(200, () => void announce());
      });
    } catch (err) {
      leaseOk = false;
      if (backoff === 0) throw err;
      trouble(`registry register failed: ${messageOf(err)}`);
      later(backoff, () => void announce(Math.min(backoff * 2, MAX_BACKOFF_MS)));
    }
  };

  const withdraw = async () => {
    keep?.stop();
    keep = null;
    const id = self?.id;
    self = null;
    leaseOk = false;
    if (lease) {
      const l = lease;
      lease = null;
      // Revoking the lease deletes the key with it: the others see the instance go at once.
      await client.leaseRevoke(l).catch(() => (id ? client.delete(prefix + id) : 0));
    }
    if (id) view.delete(id);
  };

  return {
    async register(info) {
      if (closed) throw new Error('registry closed');
      if (self) await withdraw();
      self = structuredClone(info);
      view.set(info.id, self);
      await announce(0); // the first attempt's failure is the caller's (start fails, says why)
      if (!watch) await follow();
    },
    async update(info) {
      if (!self || self.id !== info.id) throw new Error('registry: update before register');
      self = structuredClone(info);
      view.set(info.id, self);
      // Same key, same lease; without a lease (etcd away) the next announce puts the new record.
      if (lease && leaseOk) await client.put(prefix + info.id, JSON.stringify(info), lease);
    },
    deregister: withdraw,
    list: () => [...view.values()].map((i) => structuredClone(i)).sort(byId),
    status: (): RegistryStatus => ({
      kind: 'etcd',
      connected: leaseOk && watching,
      ...(detail ? { detail } : {}),
    }),
    async close() {
      await withdraw();
      closed = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      watch?.cancel();
      watch = null;
    },
  };
}
