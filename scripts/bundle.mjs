#!/usr/bin/env node
// Bundles the CLI into dist/bundle with esbuild. Start-up is dominated by resolving and compiling
// hundreds of small files in node_modules (zod, OpenTelemetry, Fastify): one bundle starts Kapok in
// ~60% of the time and ~15 MB less RSS than the tsc output (npm run bench -- startup). Native and
// optional modules stay external; adapters stay lazy chunks so a default start never loads pg/ioredis.
import { copyFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

// `--outdir DIR`: scripts/test.mjs bundles the checkout's sources into dist/test-bundle-<pid>, so the
// tests' `kapok` processes run what ships without touching a dist/bundle that `npm start` uses.
const at = process.argv.indexOf('--outdir');
const outdir = at > 0 && process.argv[at + 1] ? process.argv[at + 1] : 'dist/bundle';

// Chunk names carry content hashes: clear old ones so stale chunks do not pile up.
rmSync(outdir, { recursive: true, force: true });

await build({
  // Worker entries (the SM9 verification pool's, the inference sessions' and body decoder's, the V2X
  // simulator's OBU, the SQLite store's WAL checkpointer) are started by core/worker.ts next to the chunks, under their file names in src/.
  entryPoints: {
    main: 'src/cli/start.ts',
    // The saga barrier for branch services (package export kapok/saga-barrier; imports nothing).
    'saga-barrier': 'src/saga/barrier.ts',
    'pool-worker': 'src/crypto/sm9/pool-worker.ts',
    'obu-worker': 'src/v2x/sim/obu-worker.ts',
    'session-worker': 'src/inference/execution/session-worker.ts',
    'body-decoder-worker': 'src/inference/protocol/body-decoder-worker.ts',
    'sqlite-checkpoint-worker': 'src/adapters/sqlite/sqlite-checkpoint-worker.ts',
  },
  outdir,
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  minifySyntax: true,
  minifyWhitespace: true,
  // onnxruntime-node loads its native binding by a computed path; grpc-health-check and
  // @grpc/reflection read their .proto files from next to their own code: they stay packages.
  external: ['better-sqlite3', 'pg-native', 'onnxruntime-node', 'grpc-health-check', '@grpc/reflection'],
  // CommonJS dependencies call require(); give the ESM bundle one.
  banner: {
    js: "import { createRequire as __kapokRequire } from 'node:module'; const require = __kapokRequire(import.meta.url);",
  },
  logLevel: 'warning',
});

// The OIP gRPC definition is read at run time (proto-loader) from next to the chunks.
copyFileSync('src/inference/protocol/grpc_predict_v2.proto', join(outdir, 'grpc_predict_v2.proto'));
// The etcd adapter's subset of etcd's v3 API, likewise.
copyFileSync('src/adapters/etcd/etcd.proto', join(outdir, 'etcd.proto'));
