import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

/**
 * `kapok/saga-barrier` is the package export of src/saga/barrier.ts: package.json points at the
 * bundle entry scripts/bundle.mjs builds, and the module imports nothing (a branch service takes it
 * without Kapok's dependencies).
 */
const root = new URL('../../', import.meta.url);
describe('kapok/saga-barrier export', () => {
  it('maps to the bundle entry built from src/saga/barrier.ts, which imports nothing', () => {
    const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as {
      exports: Record<string, string>;
    };
    assert.equal(pkg.exports['./saga-barrier'], './dist/bundle/saga-barrier.js');
    const bundle = readFileSync(new URL('scripts/bundle.mjs', root), 'utf8');
    assert.match(bundle, /'saga-barrier': 'src\/saga\/barrier\.ts'/);
    const src = readFileSync(new URL('src/saga/barrier.ts', root), 'utf8');
    assert.deepEqual(src.match(/^import .*$/gm) ?? [], [], 'no imports');
  });
});
