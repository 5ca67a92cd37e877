#!/usr/bin/env node
// Builds the web console (web/console) into dist/console with esbuild: one entry, a chunk per page
// (loaded when first opened), content-hashed names (served immutable), index.html pointing at the
// entry. Writes dist/console/manifest.json with each output's gzipped size (npm run bench -- console).
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;

// An output folder may be given (the browser test builds into its own temp folder).
const out = resolve(root, process.argv[2] ?? 'dist/console');
rmSync(out, { recursive: true, force: true });
const result = await build({
  entryPoints: {
    main: `${root}web/console/main.tsx`,
    'telemetry-worker': `${root}web/console/telemetry-worker.ts`,
  },
  absWorkingDir: root,
  outdir: `${out}/assets`,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'browser',
  target: ['chrome110', 'firefox110', 'safari16'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  minify: true,
  sourcemap: 'linked',
  entryNames: '[name]-[hash]',
  chunkNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  metafile: true,
  legalComments: 'linked',
  define: { 'process.env.NODE_ENV': '"production"' },
  logLevel: 'warning',
});

const outputs = Object.entries(result.metafile.outputs).filter(([f]) => !f.endsWith('.map'));
const entryJs = outputs.find(([, o]) => o.entryPoint === 'web/console/main.tsx')?.[0];
const entryCss = outputs.find(([f]) => f.endsWith('.css'))?.[0];
const worker = outputs.find(([, o]) => o.entryPoint === 'web/console/telemetry-worker.ts')?.[0];
if (!worker) throw new Error('console build: no telemetry worker');
if (!entryJs) throw new Error('console build: no entry chunk');
const tags = [
  `<meta name="kapok-telemetry-worker" content="/console/assets/${basename(worker)}">`,
  entryCss ? `<link rel="stylesheet" href="/console/assets/${basename(entryCss)}">` : '',
  `<script type="module" src="/console/assets/${basename(entryJs)}"></script>`,
].join('\n');
const html = readFileSync(`${root}web/console/index.html`, 'utf8').replace('<!--assets-->', tags);
writeFileSync(`${out}/index.html`, html);

// Per output: bytes, gzipped bytes, what it imports statically (the first page's JS is the entry
// plus its static imports plus that page's chunk and its static imports).
const manifest = { entry: basename(entryJs), css: entryCss ? basename(entryCss) : null, files: {} };
for (const [f, o] of outputs) {
  const body = readFileSync(`${root}${f}`);
  manifest.files[basename(f)] = {
    bytes: body.length,
    gzip: gzipSync(body, { level: 9 }).length,
    imports: o.imports.filter((i) => i.kind === 'import-statement').map((i) => basename(i.path)),
    dynamic: o.imports.filter((i) => i.kind === 'dynamic-import').map((i) => basename(i.path)),
    entry: o.entryPoint ?? null,
  };
}
writeFileSync(`${out}/manifest.json`, `${JSON.stringify(manifest, null, 2)}\n`);
