#!/usr/bin/env node
// The bundle's entry (dist/bundle/main.js). A release artefact ships a V8 code cache of the bundle in
// dist/compile-cache, made at release time by the artefact's own Node.js (scripts/release/
// compile-cache.ts): with it Node 24 skips parsing and compiling ~30 MB of JavaScript, most of an
// emulated start. Static imports are compiled before this module runs, so the CLI is imported
// dynamically after the cache is on. Node 20 (the checkout) has no compile cache: nothing changes.
import { existsSync } from 'node:fs';
import module from 'node:module';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('../compile-cache/', import.meta.url));
const enable = (module as { enableCompileCache?: (o: { directory: string; portable: boolean }) => unknown })
  .enableCompileCache;
if (enable && existsSync(dir) && !process.env.NODE_DISABLE_COMPILE_CACHE) {
  // Portable: entries are keyed by paths relative to the cache, so the unpacked tarball and
  // /opt/kapok both match. Through the environment the worker threads (SM9 pool, ONNX sessions) use it too.
  process.env.NODE_COMPILE_CACHE ??= dir;
  process.env.NODE_COMPILE_CACHE_PORTABLE ??= '1';
  enable({ directory: process.env.NODE_COMPILE_CACHE, portable: true });
}
await import('./main.js');
