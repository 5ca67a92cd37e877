import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * Starts one of the inference worker entries (`inference-worker`, `inference-decoder`). Under tsx
 * (tests, `npm run bench`) this file is .ts and so is the entry, which then needs tsx's loader
 * registered inside the worker (Node 20 does not apply it to a worker's entry); built, the entries
 * are .js files next to this one (dist/bundle keeps the same names, see scripts/bundle.mjs).
 */
export function spawnInferenceWorker(entry: string, opts: WorkerOptions): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL(`./${entry}.js`, import.meta.url), opts);
  const tsx = import.meta.resolve('tsx/esm/api');
  const url = new URL(`./${entry}.ts`, import.meta.url).href;
  return new Worker(
    `import(${JSON.stringify(tsx)}).then((m) => m.register()).then(() => import(${JSON.stringify(url)}))`,
    { ...opts, eval: true },
  );
}
