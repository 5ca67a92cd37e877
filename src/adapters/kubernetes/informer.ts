import type {
  Informer,
  InformerHandler,
  InformerOptions,
  InformerStats,
  KubeObject,
  ResourceRef,
  WatchEventType,
} from '../../ports/kubernetes.js';

/**
 * An informer: list, then watch from the list's resourceVersion, keeping a cache. Written here
 * rather than client-node's makeInformer to control how it recovers, after the failures users
 * report (kubernetes-client/javascript): a watch that ends or is reset (#1496, ECONNRESET) resumes
 * from the last resourceVersion seen (bookmarks keep it fresh) with a jittered backoff on errors,
 * never a relist storm (#1933); only 410 Gone (compacted) relists, and the relist's diff is handed
 * on so no transition is lost; a watch silent past watchIdleMs is ended and resumed (#364).
 */

interface Transport<T> {
  list(query: Record<string, string>): Promise<{ metadata?: { resourceVersion?: string }; items?: T[] }>;
  watch(
    query: Record<string, string | boolean>,
    onEvent: (type: string, obj: T) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController>;
  watchIdleMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  closed(): boolean;
}

const keyOf = (o: KubeObject) => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;
const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms).unref?.());

export function createInformer<T extends KubeObject>(
  r: ResourceRef,
  opts: InformerOptions,
  on: InformerHandler<T>,
  t: Transport<T>,
): Informer<T> {
  const cache = new Map<string, T>();
  const stats: InformerStats = { lists: 0, watches: 0, watchErrors: 0 };
  let stopped = false;
  let abort: AbortController | null = null;
  let markSynced!: () => void;
  const synced = new Promise<void>((ok) => {
    markSynced = ok;
  });
  const selector: Record<string, string> = opts.labelSelector ? { labelSelector: opts.labelSelector } : {};
  const live = () => !stopped && !t.closed();
  const emit = (type: WatchEventType, o: T) => {
    try {
      on(type, o);
    } catch {
      // A handler's failure must not stop the informer; handlers log their own.
    }
  };

  const backoff = (n: number) => {
    const d = Math.min(t.retryMaxMs, t.retryBaseMs * 2 ** Math.min(n, 20));
    return d / 2 + Math.random() * (d / 2);
  };

  /** A full list; the cache takes its diff (what changed while no watch ran is handed on). */
  async function relist(): Promise<string> {
    for (let n = 0; ; n++) {
      try {
        stats.lists++;
        const res = await t.list(selector);
        const seen = new Set<string>();
        for (const o of res.items ?? []) {
          const k = keyOf(o);
          seen.add(k);
          const old = cache.get(k);
          cache.set(k, o);
          if (!old) emit('ADDED', o);
          else if (old.metadata.resourceVersion !== o.metadata.resourceVersion) emit('MODIFIED', o);
        }
        for (const [k, o] of cache)
          if (!seen.has(k)) {
            cache.delete(k);
            emit('DELETED', o);
          }
        return res.metadata?.resourceVersion ?? '';
      } catch {
        if (!live()) return '';
        await sleep(backoff(n));
      }
    }
  }

  /** One watch from rv until it ends: the next rv, or null when a relist is needed (410 Gone). */
  function watchOnce(rv: string): Promise<{ rv: string | null; error: boolean }> {
    return new Promise((resolve) => {
      let last = rv;
      let gone = false;
      let idle: NodeJS.Timeout | undefined;
      let settled = false;
      const finish = (error: boolean) => {
        if (settled) return;
        settled = true;
        clearTimeout(idle);
        resolve({ rv: gone ? null : last, error });
      };
      const touch = () => {
        clearTimeout(idle);
        idle = setTimeout(() => {
          stats.watchErrors++;
          abort?.abort();
          finish(true);
        }, t.watchIdleMs);
        idle.unref?.();
      };
      touch();
      stats.watches++;
      t.watch(
        { ...selector, resourceVersion: rv, allowWatchBookmarks: true },
        (type, o) => {
          touch();
          if (type === 'ERROR') {
            const code = (o as unknown as { code?: number }).code;
            if (code === 410) gone = true;
            return;
          }
          const next = o?.metadata?.resourceVersion;
          if (next) last = next;
          if (type === 'BOOKMARK') return;
          const k = keyOf(o);
          if (type === 'DELETED') {
            cache.delete(k);
            emit('DELETED', o);
          } else if (type === 'ADDED' || type === 'MODIFIED') {
            const old = cache.get(k);
            cache.set(k, o);
            emit(old ? 'MODIFIED' : 'ADDED', o);
          }
        },
        (err) => {
          if (err) stats.watchErrors++;
          finish(Boolean(err));
        },
      ).then(
        (a) => {
          abort = a;
          if (settled || stopped) a.abort();
        },
        () => finish(true),
      );
    });
  }

  void (async () => {
    let rv = await relist();
    markSynced();
    let errors = 0;
    while (live()) {
      const res = await watchOnce(rv);
      if (!live()) break;
      if (res.rv === null) {
        rv = await relist();
        errors = 0;
        continue;
      }
      rv = res.rv;
      if (res.error) await sleep(backoff(errors++));
      else errors = 0;
    }
  })();

  return {
    synced,
    stats,
    list: () => [...cache.values()],
    get: (ns, name) => cache.get(`${r.namespaced ? (ns ?? '') : ''}/${name}`),
    stop() {
      stopped = true;
      abort?.abort();
    },
  };
}
