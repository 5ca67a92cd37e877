import { isKapokError, KapokError, messageOf } from '../../core/errors.js';
import {
  type ConfigLayer,
  type ConfigSource,
  type ConfigSourceListener,
  type ConfigTree,
  MAX_CONFIG_VALUE_BYTES,
} from '../../ports/config-source.js';
import type { EtcdClient, KeyValue, WatchHandle } from './client.js';
import { buildLayer, parseValue } from './layer.js';

export interface EtcdConfigSourceOptions {
  client: EtcdClient;
  /** Keys under this prefix are config paths joined with "/" (`/kapok/guangzhou/gateway/limits`). */
  prefix: string;
  /** Every so often the whole prefix is read again and compared (catches anything a watch missed). */
  probeIntervalMs?: number;
  /** Wait before retrying after etcd failed to answer (doubles up to 5 s). */
  retryMs?: number;
  /** This instance's control.labels: overlays (`@zone=a/...`) whose selector matches apply over the fleet's keys. */
  labels?: Readonly<Record<string, string>>;
}

/**
 * Config keys in etcd as a config source. One key per top-level section (`gateway`) or finer
 * (`gateway/limits`); a value is YAML (JSON is YAML). The layer is rebuilt from the keys held, so an
 * event only has to be put into the map: a lost event can never leave a half-applied delta.
 *
 * The watch never goes silent: whatever ends it (compaction, etcd's cancel, a broken stream, an
 * etcd restart) leads to a relist at the current revision and a new watch from revision + 1; the
 * periodic probe compares the whole prefix with what was delivered and counts a difference as a
 * resync. Each relist is counted in status().resyncs.
 */
export function createEtcdConfigSource(opts: EtcdConfigSourceOptions): ConfigSource {
  const { client, prefix } = opts;
  if (!prefix.startsWith('/') || !prefix.endsWith('/'))
    throw new KapokError(
      'KAPOK_CONFIG_INVALID',
      `control.etcd.prefix: expected a key prefix starting and ending with "/", found ${JSON.stringify(prefix)}`,
    );
  const probeIntervalMs = opts.probeIntervalMs ?? 60_000;
  const retryMs = opts.retryMs ?? 200;
  const labels = opts.labels ?? {};
  const held = new Map<string, string>();
  let revision = 0;
  let delivered = '';
  let resyncs = 0;
  let connected = false;
  let detail: string | undefined;
  let listener: ConfigSourceListener | undefined;
  let handle: WatchHandle | undefined;
  let probe: NodeJS.Timeout | undefined;
  let retry: NodeJS.Timeout | undefined;
  let closed = false;
  let resyncing: Promise<void> | undefined;

  function textOf(kv: KeyValue): string {
    if (kv.value.length > MAX_CONFIG_VALUE_BYTES)
      throw new KapokError(
        'KAPOK_CONTROL_VALUE_TOO_LARGE',
        `config key ${JSON.stringify(kv.key)} holds ${kv.value.length} bytes, over the ${MAX_CONFIG_VALUE_BYTES}-byte limit: split it into finer keys`,
      );
    return kv.value.toString('utf8');
  }

  // Parsed values by key and text: a change re-parses its own key, not the whole prefix.
  const parsed = new Map<string, { text: string; value: unknown }>();
  const parse = (key: string, text: string): unknown => {
    let hit = parsed.get(key);
    if (hit?.text !== text) {
      hit = { text, value: parseValue(key, text) };
      parsed.set(key, hit);
    }
    // The tree is built by merging into values: each build gets its own copy.
    return structuredClone(hit.value);
  };
  const build = (): ConfigTree => {
    for (const k of parsed.keys()) if (!held.has(k)) parsed.delete(k);
    return buildLayer(prefix, held, labels, parse);
  };
  // Watch responses queued together make one layer: a burst of puts costs one build, not one each.
  let pending = false;
  const deliverSoon = () => {
    if (pending) return;
    pending = true;
    setImmediate(() => {
      pending = false;
      if (!closed) deliver();
    });
  };

  const fingerprint = () => JSON.stringify([...held.entries()].sort());

  async function relist(): Promise<ConfigLayer> {
    const { kvs, revision: rev } = await client.list(prefix);
    held.clear();
    for (const kv of kvs) held.set(kv.key, textOf(kv));
    revision = rev;
    connected = true;
    detail = undefined;
    return { tree: build(), revision };
  }

  function deliver(): void {
    const fp = fingerprint();
    if (fp === delivered) return;
    let tree: ConfigTree;
    try {
      tree = build();
    } catch (err) {
      listener?.onProblem(err as KapokError);
      return;
    }
    delivered = fp;
    listener?.onChange({ tree, revision });
  }

  function startWatch(): void {
    if (closed) return;
    handle = client.watch(prefix, revision + 1, {
      onEvents(events, rev) {
        try {
          for (const e of events) {
            if (e.type === 'delete') held.delete(e.kv.key);
            else held.set(e.kv.key, textOf(e.kv));
          }
        } catch (err) {
          // An oversized value: not held, reported; the keys before it in the batch stay applied.
          listener?.onProblem(err as KapokError);
        }
        revision = Math.max(revision, rev);
        deliverSoon();
      },
      onEnd({ compactRevision, error }) {
        handle = undefined;
        if (closed) return;
        detail = compactRevision ? `watch compacted at revision ${compactRevision}; relisting` : error;
        void resync(retryMs);
      },
    });
  }

  /** Relist (retrying until etcd answers), deliver any difference, watch from the new revision. */
  function resync(waitMs: number): Promise<void> {
    resyncing ??= (async () => {
      let wait = waitMs;
      while (!closed) {
        try {
          await relist();
          resyncs++;
          break;
        } catch (err) {
          connected = false;
          detail = messageOf(err);
          if (
            !isKapokError(err, 'KAPOK_CONTROL_ETCD_UNAVAILABLE') &&
            !isKapokError(err, 'KAPOK_CONTROL_ETCD_FAILED')
          ) {
            // Content trouble (a bad key): the keys are held as they are; report and watch on.
            listener?.onProblem(err as KapokError);
            break;
          }
          await new Promise<void>((r) => {
            retry = setTimeout(r, wait);
          });
          wait = Math.min(wait * 2, 5000);
        }
      }
      resyncing = undefined;
      if (closed) return;
      deliver();
      startWatch();
    })();
    return resyncing;
  }

  return {
    kind: 'etcd',
    where: prefix,
    async read() {
      const layer = await relist();
      delivered = fingerprint();
      return layer;
    },
    watch(l) {
      listener = l;
      // Never read (the start ran on a cached layer while etcd was down): relist until etcd answers,
      // then deliver what it holds, rather than replay history from revision 1.
      if (revision === 0) void resync(retryMs);
      else startWatch();
      probe = setInterval(() => void this.refresh(), probeIntervalMs);
      probe.unref();
    },
    async refresh() {
      if (closed || resyncing) return;
      let kvs: KeyValue[];
      try {
        ({ kvs } = await client.list(prefix));
      } catch (err) {
        connected = false;
        detail = messageOf(err);
        return;
      }
      connected = true;
      const seen = JSON.stringify(kvs.map((kv) => [kv.key, kv.value.toString('utf8')]).sort());
      if (seen === fingerprint()) return;
      // The watch missed something (or lags): start over from a fresh list.
      handle?.cancel();
    },
    status() {
      return { connected, revision, resyncs, ...(detail ? { detail } : {}) };
    },
    async close() {
      closed = true;
      clearInterval(probe);
      clearTimeout(retry);
      handle?.cancel();
    },
  };
}
