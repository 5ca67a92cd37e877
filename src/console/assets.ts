import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

/** One built file, held in memory with its gzip (the whole console is a few hundred KB). */
export interface Asset {
  readonly body: Buffer;
  readonly gzip: Buffer | null;
  readonly type: string;
}

export interface ConsoleAssets {
  readonly dir: string;
  /** index.html: its `lang` and `{{session}}` are filled in per request. */
  readonly index: string;
  /** Hashed files under assets/, by file name. */
  readonly files: ReadonlyMap<string, Asset>;
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
  '.map': 'application/json',
};

/** dist/console, found from the bundle (dist/bundle/*.js) or from the sources (src/console/*.ts). */
export function defaultAssetsDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [resolve(here, '../console'), resolve(here, '../../dist/console')];
  return candidates.find((d) => existsSync(join(d, 'index.html'))) ?? (candidates[1] as string);
}

/** Reads the built console, or null when it is not built (the routes then answer 503 naming the fix). */
export function loadAssets(dir: string): ConsoleAssets | null {
  const indexFile = join(dir, 'index.html');
  if (!existsSync(indexFile)) return null;
  const files = new Map<string, Asset>();
  const assetsDir = join(dir, 'assets');
  if (existsSync(assetsDir))
    for (const name of readdirSync(assetsDir)) {
      const file = join(assetsDir, name);
      if (!statSync(file).isFile()) continue;
      const ext = extname(name);
      if (!TYPES[ext] || ext === '.map') continue; // source maps are not served
      const body = readFileSync(file);
      files.set(name, {
        body,
        gzip: body.length > 1024 ? gzipSync(body, { level: 9 }) : null,
        type: TYPES[ext],
      });
    }
  return { dir, index: readFileSync(indexFile, 'utf8'), files };
}
