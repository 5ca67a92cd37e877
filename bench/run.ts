import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { audit } from './audit.js';
import { edge } from './edge.js';
import { gateway } from './gateway.js';
import { gm } from './gm.js';
import { healthz } from './healthz.js';
import { inference } from './inference.js';
import { jsonDepth } from './json-depth.js';
import { kapokBin, machine, root } from './lib.js';
import { startup } from './startup.js';
import { v2x } from './v2x.js';
import { v2xCodec } from './v2x-codec.js';

/**
 * `npm run bench -- <name...>` runs benchmarks and prints one JSON document with the machine's core
 * count. Each benchmark measures a baseline in the same run and reports ratios, which hold on noisy
 * machines where absolute numbers do not. Results are also written to bench/results/.
 */
const BENCHES: Record<string, () => Promise<unknown>> = {
  startup,
  healthz,
  gateway,
  gm,
  edge,
  inference,
  'json-depth': jsonDepth,
  v2x,
  'v2x-codec': v2xCodec,
  audit,
};

const names = process.argv.slice(2);
if (names.length === 0 || names.some((n) => !(n in BENCHES) && n !== 'all')) {
  process.stderr.write(`usage: npm run bench -- <${Object.keys(BENCHES).join('|')}|all> ...\n`);
  process.exit(2);
}
if (!existsSync(kapokBin)) {
  process.stderr.write(`${kapokBin} is missing: run npm run build first\n`);
  process.exit(1);
}
// Before any benchmark pins this process to a core (which would change availableParallelism).
const host = machine();
const selected = names.includes('all') ? Object.keys(BENCHES) : names;
const results: Record<string, unknown> = {};
for (const name of selected) {
  process.stderr.write(`bench ${name}...\n`);
  results[name] = await (BENCHES[name] as () => Promise<unknown>)();
}
const doc = { when: new Date().toISOString(), machine: host, results };
const text = JSON.stringify(doc, null, 2);
process.stdout.write(`${text}\n`);
const dir = join(root, 'bench/results');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, `${selected.join('+')}-${doc.when.replace(/[:.]/g, '-')}.json`), text);
