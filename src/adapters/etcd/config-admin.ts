import { randomBytes } from 'node:crypto';
import { isKapokError, KapokError } from '../../core/errors.js';
import { diffKeys, type KeyChange } from '../../ports/config-overlay.js';
import { type InstanceInfo, parseInstance } from '../../ports/registry.js';
import type { EtcdClient } from './client.js';

/**
 * The operator's side of the etcd config prefix (`kapok config push|diff|history|rollback|status`):
 * reads the keys, writes a change by compare-and-swap on the revision the operator's view was read
 * at, and keeps a snapshot of the whole prefix per change under `<prefix>.history/` (outside the
 * prefix, so instances never read it) so that a rollback writes old content as a new revision even
 * after etcd compacted its own history.
 */
export interface ConfigAdminOptions {
  client: EtcdClient;
  /** The config prefix, `/kapok/<region>/`. */
  prefix: string;
  /** The registry prefix: instances publish the configuration they run in their records. */
  registryPrefix: string;
  /** Snapshots kept (older ones are deleted after a change). */
  historyKeep?: number;
}

/** The prefix's keys (relative to the prefix) and the store revision they were read at. */
export interface PrefixState {
  revision: number;
  keys: Map<string, string>;
  /** The newest mod revision of a key held (0: none). */
  latest?: number;
}

export interface HistoryEntry {
  /** The etcd revision the change was written at (the same for every key of it). */
  revision: number;
  at: string;
  by: string;
  action: 'push' | 'rollback' | 'reencrypt';
  /** What the operator asked (a file, --set paths, a selector, the revision rolled back to): no values. */
  note: string;
  changes: KeyChange[];
}

interface StoredEntry extends Omit<HistoryEntry, 'revision'> {
  keys: Record<string, string>;
}

export interface ConfigAdmin {
  readonly prefix: string;
  read(): Promise<PrefixState>;
  /**
   * Writes `next` (the whole prefix as it should be) if nothing under the prefix changed after
   * `base.revision` and every key of `base` is still there; else KAPOK_CONTROL_CONFLICT and nothing
   * written. Returns the revision written and the keys changed (none: nothing written).
   */
  commit(
    base: PrefixState,
    next: Map<string, string>,
    what: Pick<HistoryEntry, 'by' | 'action' | 'note'>,
  ): Promise<{ revision: number; changes: KeyChange[] }>;
  /** The keys as etcd held them at `revision` (its MVCC history); null once compacted. */
  readAt(revision: number): Promise<Map<string, string> | null>;
  history(): Promise<HistoryEntry[]>;
  /** The prefix as it was at `revision`: from the snapshots, else etcd's MVCC history. */
  contentAt(revision: number): Promise<Map<string, string>>;
  /** The instances in the registry (every region's; the caller filters). */
  instances(): Promise<InstanceInfo[]>;
}

export function createEtcdConfigAdmin(o: ConfigAdminOptions): ConfigAdmin {
  const { client, prefix } = o;
  const historyPrefix = `${prefix.slice(0, -1)}.history/`;
  const keep = o.historyKeep ?? 100;

  const stored = async (): Promise<Array<{ key: string; revision: number; entry: StoredEntry }>> => {
    const { kvs } = await client.list(historyPrefix);
    const out = [];
    for (const kv of kvs) {
      try {
        out.push({ key: kv.key, revision: kv.modRevision, entry: JSON.parse(kv.value.toString('utf8')) });
      } catch {
        // Not ours: skipped.
      }
    }
    return out.sort((a, b) => a.revision - b.revision);
  };

  return {
    prefix,
    async read() {
      const { kvs, revision } = await client.list(prefix);
      return {
        revision,
        latest: kvs.reduce((m, kv) => Math.max(m, kv.modRevision), 0),
        keys: new Map(kvs.map((kv) => [kv.key.slice(prefix.length), kv.value.toString('utf8')])),
      };
    },
    async commit(base, next, what) {
      const changes = diffKeys(base.keys, next);
      if (changes.length === 0) return { revision: base.revision, changes };
      const entry: StoredEntry = {
        at: new Date().toISOString(),
        ...what,
        changes,
        keys: Object.fromEntries(next),
      };
      // Named by time so that snapshots list in order; the revision is the key's mod revision.
      const name = `${historyPrefix}${String(Date.now()).padStart(15, '0')}-${randomBytes(3).toString('hex')}`;
      const puts: Array<[string, string]> = changes
        .filter((c) => c.op === 'put')
        .map((c) => [prefix + c.key, next.get(c.key) as string]);
      puts.push([name, JSON.stringify(entry)]);
      const deletes = changes.filter((c) => c.op === 'delete').map((c) => prefix + c.key);
      const revision = await client.commitIfUnchanged(
        prefix,
        base.revision,
        puts,
        deletes,
        [...base.keys.keys()].map((k) => prefix + k),
      );
      if (revision === null)
        throw new KapokError(
          'KAPOK_CONTROL_CONFLICT',
          `${prefix} changed after revision ${base.revision} (another push or an etcdctl write): nothing was written; run \`kapok config diff\` to see the current content and push again`,
        );
      // Best effort: an extra old snapshot costs space, not correctness.
      const all = await stored().catch(() => []);
      for (const old of all.slice(0, Math.max(0, all.length - keep)))
        await client.delete(old.key).catch(() => 0);
      return { revision, changes };
    },
    async readAt(revision) {
      try {
        const { kvs } = await client.list(prefix, revision);
        return new Map(kvs.map((kv) => [kv.key.slice(prefix.length), kv.value.toString('utf8')]));
      } catch (err) {
        if (isKapokError(err, 'KAPOK_CONTROL_ETCD_FAILED')) return null;
        throw err;
      }
    },
    async history() {
      return (await stored()).map(({ revision, entry }) => ({
        revision,
        at: entry.at,
        by: entry.by,
        action: entry.action,
        note: entry.note,
        changes: entry.changes,
      }));
    },
    async contentAt(revision) {
      const snap = (await stored()).find((s) => s.revision === revision);
      if (snap) return new Map(Object.entries(snap.entry.keys ?? {}));
      try {
        const { kvs } = await client.list(prefix, revision);
        return new Map(kvs.map((kv) => [kv.key.slice(prefix.length), kv.value.toString('utf8')]));
      } catch (err) {
        if (!isKapokError(err, 'KAPOK_CONTROL_ETCD_FAILED')) throw err;
        throw new KapokError(
          'KAPOK_CONTROL_REVISION_UNKNOWN',
          `revision ${revision} of ${prefix} is not in the push history and etcd no longer holds it (${err.message.includes('compacted') ? 'compacted' : 'not a revision etcd has'}): pick one from \`kapok config history\``,
          { cause: err },
        );
      }
    },
    async instances() {
      const { kvs } = await client.list(o.registryPrefix);
      const out: InstanceInfo[] = [];
      for (const kv of kvs) {
        try {
          const i = parseInstance(JSON.parse(kv.value.toString('utf8')));
          if (i) out.push(i);
        } catch {}
      }
      return out;
    },
  };
}
