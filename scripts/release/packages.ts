// .deb (UOS, Kylin desktop) and .rpm (Kylin server, openEuler) from an artefact's folder: Kapok in
// /opt/kapok, a `kapok` system user, the systemd unit, /etc/kapok/kapok.yaml (kept on upgrade) and
// /var/lib/kapok. The service is installed, not started: the operator edits the config first.
import { chmodSync, cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, type Target } from './common.js';

export interface PackageInput {
  target: Target;
  version: string;
  /** The unpacked artefact (becomes /opt/kapok). */
  appDir: string;
  unit: string;
  config: string;
  outDir: string;
  workDir: string;
}

const SUMMARY = 'Kapok edge-to-cloud AI gateway (bundled Node.js runtime)';
const DESCRIPTION =
  'LLM gateway, ONNX inference, MQTT telemetry, V2X and GM (SM2/SM3/SM4/SM9) crypto in one process.';

/** Creates the user and state folder; shared by the deb postinst and the rpm %pre/%post. */
const CREATE_USER = `getent group kapok >/dev/null || groupadd --system kapok
getent passwd kapok >/dev/null || useradd --system --gid kapok --home-dir /var/lib/kapok --shell /sbin/nologin --comment "Kapok" kapok`;
const FIX_DIRS = `install -d -o kapok -g kapok -m 0750 /var/lib/kapok
chown root:kapok /etc/kapok /etc/kapok/kapok.yaml && chmod 0750 /etc/kapok && chmod 0640 /etc/kapok/kapok.yaml
if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
echo "kapok: edit /etc/kapok/kapok.yaml, then: systemctl enable --now kapok"`;
const STOP = `if [ -d /run/systemd/system ]; then systemctl stop kapok >/dev/null 2>&1 || true; fi`;

function tree(p: PackageInput, root: string, unitDir: string): void {
  rmSync(root, { recursive: true, force: true });
  mkdirSync(join(root, 'opt'), { recursive: true });
  cpSync(p.appDir, join(root, 'opt', 'kapok'), { recursive: true, verbatimSymlinks: true });
  mkdirSync(join(root, unitDir), { recursive: true });
  writeFileSync(join(root, unitDir, 'kapok.service'), p.unit);
  mkdirSync(join(root, 'etc', 'kapok'), { recursive: true });
  writeFileSync(join(root, 'etc', 'kapok', 'kapok.yaml'), p.config);
  mkdirSync(join(root, 'var', 'lib', 'kapok'), { recursive: true });
}

export function buildDeb(p: PackageInput): string {
  const root = join(p.workDir, 'deb');
  tree(p, root, 'lib/systemd/system');
  const debian = join(root, 'DEBIAN');
  mkdirSync(debian);
  writeFileSync(
    join(debian, 'control'),
    `Package: kapok
Version: ${p.version}
Architecture: ${p.target.deb}
Maintainer: Kapok maintainers <kapok@localhost>
Section: net
Priority: optional
Depends: libc6 (>= 2.28), libstdc++6, passwd
Description: ${SUMMARY}
 ${DESCRIPTION}
`,
  );
  writeFileSync(join(debian, 'conffiles'), '/etc/kapok/kapok.yaml\n');
  const script = (name: string, body: string) => {
    writeFileSync(join(debian, name), `#!/bin/sh\nset -e\n${body}\n`);
    chmodSync(join(debian, name), 0o755);
  };
  script('postinst', `if [ "$1" = configure ]; then\n${CREATE_USER}\n${FIX_DIRS}\nfi`);
  script('prerm', `if [ "$1" = remove ]; then\n${STOP}\nfi`);
  script('postrm', `if [ "$1" = purge ]; then rm -rf /var/lib/kapok /etc/kapok; fi`);
  const out = join(p.outDir, `kapok_${p.version}_${p.target.deb}.deb`);
  run('dpkg-deb', ['--root-owner-group', '-Zgzip', '-z6', '--build', root, out], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  rmSync(root, { recursive: true, force: true });
  return out;
}

export function buildRpm(p: PackageInput): string {
  const top = join(p.workDir, 'rpm');
  rmSync(top, { recursive: true, force: true });
  const stage = join(top, 'stage');
  tree(p, stage, 'usr/lib/systemd/system');
  const spec = join(top, 'kapok.spec');
  writeFileSync(
    spec,
    `# Prebuilt: nothing is compiled, stripped or scanned for dependencies here (the release gate
# already checked every ELF file's architecture and glibc needs).
%global debug_package %{nil}
%global __os_install_post %{nil}
%global __strip /bin/true
%global _build_id_links none
%define _binary_payload w6.gzdio
Name: kapok
Version: ${p.version.replace(/-/g, '~')}
Release: 1
Summary: ${SUMMARY}
License: Apache-2.0 and others (see /opt/kapok/THIRD-PARTY-NOTICES)
ExclusiveArch: ${p.target.rpm}
AutoReqProv: no
Requires: glibc >= 2.28, libstdc++
Requires(pre): /usr/sbin/useradd, /usr/sbin/groupadd
%description
${DESCRIPTION}
%install
cp -a ${stage}/. %{buildroot}/
%pre
${CREATE_USER}
%post
${FIX_DIRS}
%preun
if [ "$1" = 0 ]; then
${STOP}
fi
%files
/opt/kapok
/usr/lib/systemd/system/kapok.service
%dir /etc/kapok
%config(noreplace) /etc/kapok/kapok.yaml
%dir %attr(0750,kapok,kapok) /var/lib/kapok
`,
  );
  run(
    'rpmbuild',
    [
      '-bb',
      '--quiet',
      '--target',
      `${p.target.rpm}-linux`,
      '--define',
      `_topdir ${top}`,
      '--define',
      `_rpmdir ${top}/out`,
      '--define',
      '_rpmfilename %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm',
      spec,
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const name = `kapok-${p.version.replace(/-/g, '~')}-1.${p.target.rpm}.rpm`;
  const out = join(p.outDir, name);
  cpSync(join(top, 'out', name), out);
  rmSync(top, { recursive: true, force: true });
  return out;
}
