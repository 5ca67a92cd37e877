import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

const root = new URL('..', import.meta.url).pathname;
const readme = readFileSync(`${root}README.md`, 'utf8');

describe('README', () => {
  it('links every document under docs/ (a new doc is found from the front page)', () => {
    const docs = readdirSync(`${root}docs`).filter((f) => f.endsWith('.md'));
    assert.ok(docs.length >= 10, `only ${docs.length} docs found`);
    const missing = docs.filter((f) => !readme.includes(`](docs/${f})`));
    assert.deepEqual(missing, [], `docs the README does not link: ${missing.join(', ')}`);
  });

  it('keeps its two commands: run on embedded defaults, run the tests', () => {
    assert.match(readme, /```sh\nnpm ci && npm start\n```/);
    assert.match(readme, /```sh\nnpm ci && npm test\n```/);
  });
});
