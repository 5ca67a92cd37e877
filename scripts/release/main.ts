#!/usr/bin/env node
// npm run release [-- --arch x64|arm64 ...] [--no-packages] [--no-compile-cache] [--out DIR]
// Writes, per arch, kapok-<version>-linux-<arch>.tar.gz (bundle, Node.js 24 runtime, native
// modules built for it, launcher, example config, systemd unit, third-party notices), a .deb and
// an .rpm, an ELF manifest (and, unless --no-compile-cache, dist/compile-cache: the bundle's V8
// code cache made by the artefact's own Node.js, under qemu-user for arm64); then SHA256SUMS and SM3SUMS over everything. The ELF gate (elf.ts)
// fails the command before anything is packaged. docs/release.md says more.
import {
  chmodSync,
  cpSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { sm3 } from '../../src/crypto/sm3.js';
import { type Arch, NODE_VERSION, run, step, TARGETS } from './common.js';
import { writeCompileCache } from './compile-cache.js';
import { elfManifest, GATE, gateViolations } from './elf.js';
import { productionModules } from './modules.js';
import { buildBetterSqlite } from './native.js';
import { bundledPackages, installedPackages, thirdPartyNotices } from './notices.js';
import { buildDeb, buildRpm } from './packages.js';
import { nodeRuntime } from './runtime.js';
import { sha256File, writeSums } from './sums.js';

const root = new URL('../../', import.meta.url).pathname;
const { values } = parseArgs({
  options: {
    arch: { type: 'string', multiple: true },
    out: { type: 'string', default: join(root, 'dist', 'release') },
    'no-packages': { type: 'boolean', default: false },
    'no-compile-cache': { type: 'boolean', default: false },
  },
});
const arches = (values.arch ?? ['x64', 'arm64']) as string[];
for (const a of arches) {
  if (!(a in TARGETS)) throw new Error(`--arch ${a}: expected x64 or arm64`);
}
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
const out = values.out as string;
mkdirSync(out, { recursive: true });

/** V8 heap sizes every Kapok start applies (docs/operations.md#memory; test/docs/heap-flags.test.ts). */
const HEAP_FLAGS = '--max-semi-space-size=4 --initial-old-space-size=16';

const LAUNCHER = `#!/bin/sh
# Kapok launcher: runs the bundled CLI on the bundled Node.js runtime (no system Node.js needed).
# Pin to one NUMA node with: numactl --cpunodebind=0 --membind=0 kapok up (docs/operations.md).
here=$(dirname "$(readlink -f "$0")")
# V8 heap sizes (docs/operations.md#memory), on the command line: Node.js refuses
# --initial-old-space-size in NODE_OPTIONS.
exec "$here/node/bin/node" ${HEAP_FLAGS} "$here/dist/bundle/main.js" "$@"
`;

/** deploy/kapok.service, run through the artefact's launcher in /opt/kapok. */
function unitFile(): string {
  const unit = readFileSync(join(root, 'deploy', 'kapok.service'), 'utf8');
  return unit
    .replace(
      /^# systemd unit[^\n]*\n(#[^\n]*\n)*/,
      '# systemd unit of the Kapok package (/opt/kapok); config in /etc/kapok/kapok.yaml.\n',
    )
    .replace(/^ExecStart=.*$/m, 'ExecStart=/opt/kapok/kapok up --config /etc/kapok/kapok.yaml');
}

step('bundling (scripts/bundle.mjs)');
run(process.execPath, [join(root, 'scripts', 'bundle.mjs')], {
  cwd: root,
  stdio: ['ignore', 'inherit', 'inherit'],
});

const produced: string[] = [];
for (const arch of arches as Arch[]) {
  const t = TARGETS[arch];
  const name = `kapok-${version}-linux-${arch}`;
  const stage = join(out, 'stage', name);
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(join(stage, 'node', 'bin'), { recursive: true });
  const runtime = nodeRuntime(arch);
  cpSync(join(runtime, 'bin', 'node'), join(stage, 'node', 'bin', 'node'));
  cpSync(join(runtime, 'LICENSE'), join(stage, 'node', 'LICENSE'));
  cpSync(join(root, 'dist', 'bundle'), join(stage, 'dist', 'bundle'), { recursive: true });
  // core/version.ts reads the version from here; "type": "module" makes the chunks ESM.
  writeFileSync(
    join(stage, 'package.json'),
    `${JSON.stringify({ name: 'kapok', version, private: true, type: 'module', license: 'Apache-2.0' }, null, 2)}\n`,
  );
  productionModules(t, stage, buildBetterSqlite(t));
  writeFileSync(join(stage, 'kapok'), LAUNCHER);
  chmodSync(join(stage, 'kapok'), 0o755);
  cpSync(join(root, 'kapok.example.yaml'), join(stage, 'kapok.example.yaml'));
  writeFileSync(join(stage, 'kapok.service'), unitFile());
  // dist/compile-cache: the V8 code cache of the bundle for this arch's Node.js (docs/release.md).
  if (!values['no-compile-cache']) await writeCompileCache(stage, arch);
  step(`writing THIRD-PARTY-NOTICES for ${name}`);
  writeFileSync(
    join(stage, 'THIRD-PARTY-NOTICES'),
    thirdPartyNotices({
      nodeLicense: readFileSync(join(runtime, 'LICENSE'), 'utf8'),
      nodeVersion: NODE_VERSION,
      packages: [...bundledPackages(join(root, 'dist', 'bundle'), root), ...installedPackages(stage)],
    }),
  );

  step(
    `ELF gate for ${name}: ${GATE[arch].machine}, ≤ GLIBC_${GATE[arch].maxGlibc}, ≤ GLIBCXX_${GATE[arch].maxGlibcxx}`,
  );
  const manifest = elfManifest(stage);
  const manifestFile = join(out, `${name}.elf-manifest.json`);
  writeFileSync(
    manifestFile,
    `${JSON.stringify({ artefact: name, gate: GATE[arch], files: manifest }, null, 2)}\n`,
  );
  produced.push(manifestFile);
  const bad = gateViolations(manifest, GATE[arch]);
  if (bad.length > 0) {
    for (const b of bad) process.stderr.write(`gate: ${b}\n`);
    process.stderr.write(
      `release failed: ${bad.length} ELF file(s) of ${name} break the gate (${manifestFile})\n`,
    );
    process.exit(1);
  }
  for (const e of manifest)
    step(`  ${e.path}: ${e.machine}, GLIBC_${e.glibc ?? '-'}, GLIBCXX_${e.glibcxx ?? '-'}`);

  step(`writing ${name}.tar.gz`);
  const tarball = join(out, `${name}.tar.gz`);
  const epoch =
    process.env.SOURCE_DATE_EPOCH ?? run('git', ['log', '-1', '--format=%ct'], { cwd: root }).trim();
  run('tar', [
    '-C',
    join(out, 'stage'),
    '--sort=name',
    '--owner=0',
    '--group=0',
    '--numeric-owner',
    `--mtime=@${epoch}`,
    '-czf',
    tarball,
    name,
  ]);
  produced.push(tarball);

  if (!values['no-packages']) {
    const input = {
      target: t,
      version,
      appDir: stage,
      unit: unitFile(),
      config: readFileSync(join(root, 'kapok.example.yaml'), 'utf8'),
      outDir: out,
      workDir: join(out, 'stage', `pkg-${arch}`),
    };
    step(`writing the .deb for ${arch}`);
    produced.push(buildDeb(input));
    step(`writing the .rpm for ${arch}`);
    produced.push(buildRpm(input));
  }
  rmSync(stage, { recursive: true, force: true });
}
rmSync(join(out, 'stage'), { recursive: true, force: true });

step('writing SHA256SUMS and SM3SUMS');
const files = readdirSync(out)
  .filter((f) => !f.endsWith('SUMS') && statSync(join(out, f)).isFile())
  .sort();
writeSums(join(out, 'SHA256SUMS'), out, files, sha256File);
writeSums(join(out, 'SM3SUMS'), out, files, (f) => Buffer.from(sm3(readFileSync(f))).toString('hex'));
for (const f of files) {
  process.stdout.write(`${(statSync(join(out, f)).size / 1024 / 1024).toFixed(1).padStart(8)} MiB  ${f}\n`);
}
step(`done: ${out} (${produced.length} files this run)`);
