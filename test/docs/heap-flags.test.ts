// The V8 heap flags Kapok runs with (docs/operations.md#memory) are set where Kapok starts, not in
// code: V8 sizes its heap before any script runs (v8.setFlagsFromString('--max-semi-space-size=4')
// at the start of main left new space at 32 MB). So every launcher must carry the same flags, and
// the docs must name them; a launcher added or edited without them fails here.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

const root = new URL('../..', import.meta.url).pathname;
const read = (f: string) => readFileSync(root + f, 'utf8');
const FLAGS = '--max-semi-space-size=4 --initial-old-space-size=16';

describe('docs: the V8 heap flags are applied wherever Kapok starts', () => {
  it('npm start, the systemd unit and the release launcher carry them', () => {
    const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    assert.equal(pkg.scripts.start, `node ${FLAGS} dist/bundle/main.js up`);
    assert.match(read('deploy/kapok.service'), new RegExp(`^ExecStart=/usr/bin/node ${FLAGS} `, 'm'));
    const release = read('scripts/release/main.ts');
    assert.ok(release.includes(`const HEAP_FLAGS = '${FLAGS}';`));
    const dollar = '$';
    // On the command line: Node.js refuses --initial-old-space-size in NODE_OPTIONS.
    assert.ok(
      release.includes(
        `exec "${dollar}here/node/bin/node" ${dollar}{HEAP_FLAGS} "${dollar}here/dist/bundle/main.js" "${dollar}@"`,
      ),
    );
  });

  it('docs/operations.md and its Chinese counterpart name them', () => {
    for (const doc of ['docs/operations.md', 'docs/zh/operations.md'])
      assert.ok(read(doc).includes(`node ${FLAGS} /opt/kapok/dist/bundle/main.js up`), doc);
  });
});
