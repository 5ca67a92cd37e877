import assert from 'node:assert/strict';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { createFileConfigSource } from '../../src/adapters/file/config-source.js';
import type { ConfigLayer } from '../../src/ports/config-source.js';
import { tmpDir } from '../helpers/tmp.js';
import { configSourceConformance } from '../ports/config-source.conformance.js';
import { until } from '../ports/events.conformance.js';

let file = '';
configSourceConformance('file', {
  async make() {
    file = join(tmpDir('kapok-cfgsrc-'), 'kapok.yaml');
    writeFileSync(file, '');
    return createFileConfigSource({ file, debounceMs: 20 });
  },
  async write(tree) {
    // As editors and ConfigMap updates do: a new file renamed over the old one.
    writeFileSync(`${file}.tmp`, stringify(tree));
    renameSync(`${file}.tmp`, file);
  },
  async writeBroken() {
    writeFileSync(file, 'a: [unclosed\n');
  },
});

describe('file config source', () => {
  it('sees an in-place write as well as a rename', async () => {
    const f = join(tmpDir(), 'k.yaml');
    writeFileSync(f, 'log: { level: info }\n');
    const s = createFileConfigSource({ file: f, debounceMs: 20 });
    const got: ConfigLayer[] = [];
    assert.deepEqual((await s.read()).tree, { log: { level: 'info' } });
    s.watch({ onChange: (l) => got.push(l), onProblem: () => {} });
    writeFileSync(f, 'log: { level: debug }\n');
    await until('in-place write', () => got.length > 0);
    assert.deepEqual(got[0]?.tree, { log: { level: 'debug' } });
    await s.close();
  });

  it('reports a removed file as a problem, not as empty config, and is not connected', async () => {
    const f = join(tmpDir(), 'k.yaml');
    writeFileSync(f, 'log: { level: info }\n');
    const s = createFileConfigSource({ file: f, debounceMs: 20 });
    await s.read();
    const problems: string[] = [];
    const got: ConfigLayer[] = [];
    s.watch({ onChange: (l) => got.push(l), onProblem: (e) => problems.push(e.code) });
    rmSync(f);
    await s.refresh();
    assert.deepEqual(problems.slice(0, 1), ['KAPOK_CONFIG_FILE']);
    assert.equal(got.length, 0);
    assert.equal(s.status().connected, false);
    await s.close();
  });

  it('runs on defaults without a file: an empty layer that never changes', async () => {
    const s = createFileConfigSource({ file: null });
    assert.deepEqual(await s.read(), { tree: {}, revision: 0 });
    assert.equal(s.where, '(defaults)');
    await s.refresh();
    await s.close();
  });

  it('refuses a file over 1 MiB on refresh with KAPOK_CONFIG_FILE', async () => {
    const f = join(tmpDir(), 'k.yaml');
    writeFileSync(f, '{}\n');
    const s = createFileConfigSource({ file: f });
    await s.read();
    const problems: string[] = [];
    s.watch({ onChange: () => {}, onProblem: (e) => problems.push(`${e.code} ${e.message}`) });
    writeFileSync(f, `x: "${'a'.repeat(1024 * 1024 + 10)}"\n`);
    await s.refresh();
    assert.match(problems[0] ?? '', /^KAPOK_CONFIG_FILE .*larger than 1048576 bytes/);
    await s.close();
  });
});
