import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * Starts a worker thread on the module `name` (a file name without extension) that sits next to the
 * caller, whose `import.meta.url` is `base`. Three layouts run the same call:
 * - under tsx (tests, `npm run bench`) the caller and the entry are .ts, and the entry needs tsx's
 *   loader registered inside the worker (Node 20 does not apply it to a worker's entry);
 * - tsc output keeps src/'s folders, so the .js entry is still the caller's sibling;
 * - dist/bundle is flat: every chunk and entry lies in one folder, so the entry must be listed in
 *   scripts/bundle.mjs under this same name, and names must be unique across the project.
 */
export function startWorker(base: string | URL, name: string, options: WorkerOptions = {}): Worker {
  if (!/^[A-Za-z0-9_-]+$/.test(name))
    throw new Error(`worker entry '${name}': expected a sibling module's file name without extension`);
  const from = String(base);
  if (!from.endsWith('.ts')) return new Worker(new URL(`./${name}.js`, from), options);
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL(`./${name}.ts`, from).href;
  return new Worker(
    `import(${JSON.stringify(tsx)}).then((m) => m.register()).then(() => import(${JSON.stringify(entry)}))`,
    { ...options, eval: true },
  );
}
