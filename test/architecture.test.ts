import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';

/**
 * The dependency rules of docs/architecture.md, read off the import graph of src/ (static, dynamic
 * and type-only imports, re-exports). Layers, bottom up: core → crypto (the national algorithms,
 * a library gm, audit and control share) → ports → adapters | capabilities → the top (app.ts,
 * config.ts, migrations.ts) → cli. A capability is any other folder of src/.
 */

const SRC = resolve(import.meta.dirname, '../src');
const LAYERS = new Set(['core', 'crypto', 'ports', 'adapters', 'cli']);
const TOP = new Set(['app.ts', 'config.ts', 'migrations.ts']);
/** A capability's public files: what the top and the CLI may import. */
const PUBLIC = new Set(['index.ts', 'config.ts', 'migrations.ts']);
/** Engine client libraries: only adapters talk to engines. */
const ENGINES = new Set([
  'pg',
  'better-sqlite3',
  'ioredis',
  '@influxdata/influxdb-client',
  'etcd3',
  'nats',
  '@nats-io/transport-node',
  '@nats-io/jetstream',
  '@kubernetes/client-node',
]);

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : n.endsWith('.ts') ? [p] : [];
  });
}

const SPEC = /(?:\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)['"]([^'"]+)['"]/g;

interface Edge {
  from: string;
  to: string;
}

/** Every import in src/: relative ones resolved to src-relative paths (`.js` → `.ts`), bare ones as given. */
function graph(): { local: Edge[]; bare: Edge[] } {
  const local: Edge[] = [];
  const bare: Edge[] = [];
  for (const file of files(SRC)) {
    const from = relative(SRC, file);
    // Comments may mention paths; strip them (string contents with // are rare in import lines).
    const text = readFileSync(file, 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/^\s*\/\/.*$/gm, '');
    for (const m of text.matchAll(SPEC)) {
      const spec = m[1] as string;
      if (spec.startsWith('.')) {
        const to = relative(SRC, resolve(dirname(file), spec)).replace(/\.js$/, '.ts');
        local.push({ from, to });
      } else if (!spec.startsWith('node:')) bare.push({ from, to: spec });
    }
  }
  return { local, bare };
}

const { local, bare } = graph();
const area = (p: string) => (p.includes('/') ? (p.split('/')[0] as string) : p);
const isCapability = (a: string) => !LAYERS.has(a) && !TOP.has(a) && !a.endsWith('.ts');
const capabilities = [...new Set(local.map((e) => area(e.from)).filter(isCapability))].sort();
const show = (es: Edge[]) => es.map((e) => `${e.from} → ${e.to}`).join('\n');

describe('architecture: the import graph of src/', () => {
  it('reads a real graph (guards the checks below against a parser that finds nothing)', () => {
    assert.ok(local.length > 300, `only ${local.length} local imports found`);
    for (const c of ['gateway', 'inference', 'edge', 'v2x', 'gm', 'control'])
      assert.ok(capabilities.includes(c), c);
    assert.ok(local.some((e) => e.from === 'app.ts' && e.to === 'gateway/index.ts'));
  });

  it('core imports nothing of ours outside core', () => {
    assert.equal(show(local.filter((e) => area(e.from) === 'core' && area(e.to) !== 'core')), '');
  });

  it('crypto imports only core and itself: algorithms, no capability, port or engine', () => {
    const bad = local.filter((e) => area(e.from) === 'crypto' && !['core', 'crypto'].includes(area(e.to)));
    assert.equal(show(bad), '');
  });

  it('ports import only core and ports', () => {
    const bad = local.filter((e) => area(e.from) === 'ports' && !['core', 'ports'].includes(area(e.to)));
    assert.equal(show(bad), '');
  });

  it('an adapter imports core, ports and its own engine folder only', () => {
    const bad = local.filter(
      (e) =>
        area(e.from) === 'adapters' &&
        !['core', 'ports'].includes(area(e.to)) &&
        e.to.split('/').slice(0, 2).join('/') !== e.from.split('/').slice(0, 2).join('/'),
    );
    assert.equal(show(bad), '');
  });

  it('a capability imports core, crypto, ports and its own files, never another capability, an adapter, the top or the CLI', () => {
    const bad = local.filter((e) => {
      const a = area(e.from);
      return isCapability(a) && !['core', 'crypto', 'ports', a].includes(area(e.to));
    });
    assert.equal(show(bad), '');
  });

  it('no engine client library outside adapters', () => {
    const bad = bare.filter((e) => area(e.from) !== 'adapters' && ENGINES.has(e.to));
    assert.equal(show(bad), '');
  });

  it('the top and the CLI reach a capability only through its public files (index.ts, config.ts, migrations.ts)', () => {
    const bad = local.filter((e) => {
      const a = area(e.from);
      const b = area(e.to);
      if (!(TOP.has(a) || a === 'cli') || !isCapability(b)) return false;
      return e.to.split('/').length !== 2 || !PUBLIC.has(e.to.split('/')[1] as string);
    });
    assert.equal(show(bad), '');
  });

  it('the CLI never picks an adapter (it goes through app.ts)', () => {
    assert.equal(show(local.filter((e) => area(e.from) === 'cli' && area(e.to) === 'adapters')), '');
  });

  it('only the top picks adapters', () => {
    const bad = local.filter(
      (e) => area(e.to) === 'adapters' && area(e.from) !== 'adapters' && !TOP.has(area(e.from)),
    );
    assert.equal(show(bad), '');
  });

  it('every capability has a small public index.ts', () => {
    for (const c of capabilities) {
      const index = join(SRC, c, 'index.ts');
      const lines = readFileSync(index, 'utf8').split('\n').length;
      assert.ok(lines <= 60, `${c}/index.ts has ${lines} lines: keep the capability's code in its own files`);
    }
  });
});
