// The release path's parts that run in seconds (the whole `npm run release` and the smoke tests
// under qemu run in .ci/run with KAPOK_CI_RELEASE=1): the ELF reader against binutils' readelf on
// onnxruntime-node's real x64 and arm64 binaries, the gate, the module closure, the notices'
// package list, and the .deb/.rpm builders on a small tree read back with dpkg-deb and rpm.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { TARGETS } from '../../scripts/release/common.js';
import { compareVersions, elfManifest, GATE, gateViolations, inspectElf } from '../../scripts/release/elf.js';
import { closure, EXTERNAL } from '../../scripts/release/modules.js';
import { bundledPackages, thirdPartyNotices } from '../../scripts/release/notices.js';
import { buildDeb, buildRpm } from '../../scripts/release/packages.js';

const root = new URL('../../', import.meta.url).pathname;
const ortBin = join(root, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', 'linux');
const tmp = mkdtempSync(join(tmpdir(), 'kapok-release-test-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const sh = (cmd: string, args: string[]) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};

/** The highest GLIBC/GLIBCXX version readelf lists in the version-needs section. */
function readelfHighest(file: string, prefix: string): string | null {
  const vs = [
    ...sh('readelf', ['-V', '-W', file]).matchAll(new RegExp(`Name: ${prefix}_([0-9.]+)`, 'g')),
  ].map((m) => m[1] as string);
  return vs.sort(compareVersions).at(-1) ?? null;
}

describe('ELF manifest and gate', () => {
  it('reads machine and glibc needs as readelf does, on real x64 and arm64 binaries', () => {
    const entries = elfManifest(ortBin);
    assert.ok(entries.length >= 4, 'onnxruntime-node ships x64 and arm64 binaries');
    for (const e of entries) {
      const file = join(ortBin, e.path);
      assert.equal(e.machine, e.path.startsWith('arm64/') ? 'aarch64' : 'x86-64', e.path);
      assert.equal(e.glibc, readelfHighest(file, 'GLIBC'), e.path);
      assert.equal(e.glibcxx, readelfHighest(file, 'GLIBCXX'), e.path);
    }
    assert.equal(inspectElf(join(root, 'package.json')), null);
  });

  it('passes onnxruntime-node arm64 and fails x64 files, newer glibc or libstdc++ in an arm64 artefact', () => {
    const entries = elfManifest(ortBin);
    const arm = entries.filter((e) => e.path.startsWith('arm64/'));
    assert.deepEqual(gateViolations(arm, GATE.arm64), []);
    const x64 = entries.filter((e) => e.path.startsWith('x64/'));
    assert.match(gateViolations(x64, GATE.arm64)[0] ?? '', /built for x86-64, not aarch64/);
    const bad = gateViolations(
      [
        { path: 'a.node', machine: 'aarch64', glibc: '2.29', glibcxx: null },
        { path: 'b.node', machine: 'aarch64', glibc: '2.17', glibcxx: '3.4.30' },
        { path: 'c.node', machine: 'aarch64', glibc: '2.28', glibcxx: '3.4.22' },
      ],
      GATE.arm64,
    );
    assert.deepEqual(bad, [
      'a.node: needs GLIBC_2.29 (at most GLIBC_2.28)',
      'b.node: needs GLIBCXX_3.4.30 (at most GLIBCXX_3.4.22)',
    ]);
    assert.equal(compareVersions('2.3', '2.28'), -1);
    assert.equal(compareVersions('3.4.22', '3.4.3'), 1);
  });
});

describe('what an artefact carries', () => {
  it('keeps the bundle externals and their dependencies only', () => {
    const dirs = [...closure(root, EXTERNAL)].map((d) => d.slice(root.length));
    for (const want of [
      'node_modules/better-sqlite3',
      'node_modules/bindings',
      'node_modules/onnxruntime-common',
    ])
      assert.ok(dirs.includes(want), want);
    assert.ok(!dirs.includes('node_modules/fastify'), 'fastify is in the bundle');
    assert.throws(() => closure(root, ['no-such-package-kapok']), /not installed/);
  });

  it('lists bundled packages from source maps, nested ones included, with their licences', () => {
    const bundle = join(tmp, 'bundle');
    mkdirSync(bundle);
    writeFileSync(
      join(bundle, 'main.js.map'),
      JSON.stringify({
        sources: [
          '../../src/cli/main.ts',
          '../../node_modules/zod/v4/core/core.js',
          '../../node_modules/@fastify/cors/index.js',
          '../../node_modules/fastify/node_modules/semver/index.js',
        ],
      }),
    );
    const pkgs = bundledPackages(bundle, root).map((d) => d.slice(root.length));
    assert.deepEqual(pkgs, [
      'node_modules/@fastify/cors',
      'node_modules/fastify/node_modules/semver',
      'node_modules/zod',
    ]);
    const text = thirdPartyNotices({
      nodeLicense: 'Node.js is licensed for use as follows: MIT',
      nodeVersion: '24.0.0',
      packages: [join(root, 'node_modules', 'zod')],
    });
    assert.match(text, /Node\.js 24\.0\.0 and 1 npm packages/);
    assert.match(text, /zod [0-9.]+: MIT\n-+\nMIT License/);
  });
});

describe('packages', () => {
  const app = join(tmp, 'app');
  mkdirSync(join(app, 'node', 'bin'), { recursive: true });
  writeFileSync(join(app, 'kapok'), '#!/bin/sh\necho kapok\n', { mode: 0o755 });
  const input = {
    target: TARGETS.arm64,
    version: '0.1.0',
    appDir: app,
    unit: '[Service]\nExecStart=/opt/kapok/kapok up --config /etc/kapok/kapok.yaml\n',
    config: 'region: test\n',
    outDir: tmp,
    workDir: join(tmp, 'work'),
  };

  it('writes a .deb for arm64 with /opt/kapok, the unit, a kept config and the kapok user', () => {
    const deb = buildDeb(input);
    const info = sh('dpkg-deb', ['-I', deb]);
    assert.match(info, /Architecture: arm64/);
    assert.match(info, /Depends: libc6 \(>= 2\.28\)/);
    const files = sh('dpkg-deb', ['-c', deb]);
    for (const f of [
      './opt/kapok/kapok',
      './lib/systemd/system/kapok.service',
      './etc/kapok/kapok.yaml',
      './var/lib/kapok/',
    ])
      assert.ok(files.includes(f), f);
    assert.match(files, /-rwxr-xr-x root\/root .* \.\/opt\/kapok\/kapok/);
    assert.equal(sh('dpkg-deb', ['-f', deb, 'Package']).trim(), 'kapok');
    assert.equal(sh('dpkg-deb', ['--info', deb, 'conffiles']).trim(), '/etc/kapok/kapok.yaml');
    assert.match(sh('dpkg-deb', ['--info', deb, 'postinst']), /useradd --system --gid kapok/);
  });

  it('writes an .rpm for aarch64 with the same layout and user', () => {
    const rpm = buildRpm(input);
    assert.match(rpm, /kapok-0\.1\.0-1\.aarch64\.rpm$/);
    assert.equal(sh('rpm', ['-qp', '--qf', '%{ARCH}', rpm]), 'aarch64');
    const files = sh('rpm', ['-qpl', rpm]);
    for (const f of [
      '/opt/kapok/kapok',
      '/usr/lib/systemd/system/kapok.service',
      '/etc/kapok/kapok.yaml',
      '/var/lib/kapok',
    ])
      assert.ok(files.split('\n').includes(f), f);
    assert.match(sh('rpm', ['-qpc', rpm]), /\/etc\/kapok\/kapok\.yaml/);
    assert.match(sh('rpm', ['-qp', '--scripts', rpm]), /preinstall[^\n]*\n[\s\S]*useradd --system/);
    assert.match(
      sh('rpm', ['-qp', '--qf', '[%{FILEUSERNAME} %{FILENAMES}\n]', rpm]),
      /kapok \/var\/lib\/kapok/,
    );
  });
});

describe('package install into a throwaway root', () => {
  // rpm --root installs the files and keeps its database there; scriptlets are skipped (--noscripts):
  // they would chroot into a root with no shell and no useradd. They are read back above instead.
  const make = (version: string, config: string) => {
    const app = join(tmp, `app-${version}`);
    mkdirSync(join(app, 'dist', 'bundle'), { recursive: true });
    writeFileSync(join(app, 'kapok'), '#!/bin/sh\necho kapok\n', { mode: 0o755 });
    writeFileSync(join(app, 'dist', 'bundle', 'main.js'), `// ${version}\n`);
    return buildRpm({
      target: TARGETS.x64,
      version,
      appDir: app,
      unit: '[Service]\nUser=kapok\nExecStart=/opt/kapok/kapok up --config /etc/kapok/kapok.yaml\n',
      config,
      outDir: join(tmp, `out-${version}`),
      workDir: join(tmp, `work-${version}`),
    });
  };

  it('rpm -i puts the files in place; rpm -U keeps an edited config and ships the new one as .rpmnew', () => {
    const r = join(tmp, 'root');
    mkdirSync(r, { recursive: true });
    mkdirSync(join(tmp, 'out-0.1.0'), { recursive: true });
    mkdirSync(join(tmp, 'out-0.1.1'), { recursive: true });
    const rpm = (args: string[]) => sh('rpm', ['--root', r, ...args]);
    rpm(['-i', '--nodeps', '--noscripts', make('0.1.0', 'region: first\n')]);
    assert.equal(rpm(['-q', 'kapok']).trim(), 'kapok-0.1.0-1.x86_64');
    const listed = rpm(['-ql', 'kapok']).split('\n');
    for (const f of ['/opt/kapok/kapok', '/opt/kapok/dist/bundle/main.js', '/etc/kapok/kapok.yaml'])
      assert.ok(listed.includes(f), f);
    assert.match(
      readFileSync(join(r, 'usr/lib/systemd/system/kapok.service'), 'utf8'),
      /^ExecStart=\/opt\/kapok\/kapok up/m,
    );
    assert.equal(statSync(join(r, 'opt/kapok/kapok')).mode & 0o777, 0o755);
    assert.equal(readFileSync(join(r, 'etc/kapok/kapok.yaml'), 'utf8'), 'region: first\n');

    writeFileSync(join(r, 'etc/kapok/kapok.yaml'), 'region: edited by the operator\n');
    rpm(['-U', '--nodeps', '--noscripts', make('0.1.1', 'region: second\n')]);
    assert.equal(rpm(['-q', 'kapok']).trim(), 'kapok-0.1.1-1.x86_64');
    assert.equal(readFileSync(join(r, 'opt/kapok/dist/bundle/main.js'), 'utf8'), '// 0.1.1\n');
    assert.equal(readFileSync(join(r, 'etc/kapok/kapok.yaml'), 'utf8'), 'region: edited by the operator\n');
    assert.equal(readFileSync(join(r, 'etc/kapok/kapok.yaml.rpmnew'), 'utf8'), 'region: second\n');
  });
});
