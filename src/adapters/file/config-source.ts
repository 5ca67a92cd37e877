import { createHash } from 'node:crypto';
import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import { readConfigFile } from '../../core/config/index.js';
import { isKapokError, KapokError, messageOf } from '../../core/errors.js';
import type {
  ConfigLayer,
  ConfigSource,
  ConfigSourceListener,
  ConfigSourceStatus,
} from '../../ports/config-source.js';

export interface FileConfigSourceOptions {
  /** The YAML file (`--config`, ./kapok.yaml), or null when Kapok runs on defaults. */
  file: string | null;
  /** Quiet time after a change event before reading (editors write in several steps). */
  debounceMs?: number;
}

/**
 * The YAML file as a config source (the default). Watches the file's folder, not the file: editors
 * and `kubectl` ConfigMap updates replace the file by rename, which a watch on the old inode never
 * sees. `refresh()` is what SIGHUP calls. The revision counts content changes (a hash of the parsed tree decides).
 */
export function createFileConfigSource(opts: FileConfigSourceOptions): ConfigSource {
  const { file } = opts;
  const debounceMs = opts.debounceMs ?? 100;
  let revision = 0;
  let hash: string | null = null;
  let resyncs = 0;
  let connected = true;
  let detail: string | undefined;
  let listener: ConfigSourceListener | undefined;
  let watcher: FSWatcher | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  /** Reads the file; bumps the revision when its bytes changed. */
  function readNow(): { layer: ConfigLayer; changed: boolean } {
    if (!file) return { layer: { tree: {}, revision }, changed: false };
    const tree = readConfigFile(file);
    // The parsed content decides: a comment or whitespace edit is no change.
    const h = createHash('sha256').update(JSON.stringify(tree)).digest('hex');
    const changed = h !== hash;
    if (changed) {
      hash = h;
      revision++;
    }
    connected = true;
    detail = undefined;
    return { layer: { tree, revision }, changed };
  }

  async function refresh(): Promise<void> {
    if (closed || !file) return;
    try {
      const { layer, changed } = readNow();
      if (changed) listener?.onChange(layer);
    } catch (err) {
      connected = !isKapokError(err, 'KAPOK_CONFIG_FILE');
      detail = messageOf(err);
      listener?.onProblem(
        isKapokError(err) ? err : new KapokError('KAPOK_CONFIG_FILE', messageOf(err), { cause: err }),
      );
    }
  }

  return {
    kind: 'file',
    where: file ?? '(defaults)',
    async read() {
      return readNow().layer;
    },
    watch(l) {
      listener = l;
      if (!file || watcher) return;
      const name = basename(file);
      watcher = watch(dirname(file), { persistent: false }, (_event, changed) => {
        if (changed !== null && changed !== name) return;
        clearTimeout(timer);
        timer = setTimeout(() => void refresh(), debounceMs);
      });
      watcher.on('error', (err) => {
        detail = messageOf(err);
      });
    },
    refresh,
    status(): ConfigSourceStatus {
      return { connected, revision, resyncs, ...(detail ? { detail } : {}) };
    },
    async close() {
      closed = true;
      clearTimeout(timer);
      watcher?.close();
      resyncs = 0;
    },
  };
}
