import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ERROR_CATALOGUE } from '../../src/core/errors.js';

/**
 * Every code of the error catalogue is asserted by some test, or is named below with the reason
 * it cannot be.
 *
 * How "asserted" is detected (simple on purpose; it says what it sees, no more): the code occurs
 * as a whole word (KAPOK_EDGE_SPOOL does not count for KAPOK_EDGE_SPOOL_FULL) in a TypeScript file
 * under test/ (shared flows and helpers included: they hold assertions too), except
 *  - this file and the files in LISTING_FILES (they name codes without testing them);
 *  - comment lines (starting with //, /* or *);
 *  - a code being raised: `new KapokError('KAPOK_…'` (any `new …Error(` with the code first); a
 *    test that throws a code proves nothing about the code.
 * What is left is a code a test compares something with (`e.code`, `assert.equal`, a body or
 * `x-kapok-error` header match, isKapokError ...). This check cannot see whether the comparison
 * really runs; it catches what matters most: codes no test names at all.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const THIS_FILE = 'test/core/catalogue-coverage.test.ts';
/** Files that list codes without asserting them (tables, fixtures). None today. */
const LISTING_FILES: readonly string[] = [];

/** Codes no test can provoke, each with why. A covered or unknown code here fails the test. */
const CANNOT_BE_PROVOKED: Readonly<Record<string, string>> = {};

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...tsFiles(p));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** A test file's text as evidence: comment lines and raised codes removed. */
function evidence(text: string): string {
  return text
    .split('\n')
    .filter((l) => !/^\s*(\/\/|\/\*|\*)/.test(l))
    .join('\n')
    .replace(/new \w*Error\(\s*(['"`])KAPOK_[A-Z0-9_]+\1/g, 'new Error($1raised$1');
}

/** Whether `code` occurs in `text` as a whole word. */
const mentions = (text: string, code: string) => new RegExp(`(?<![A-Z0-9_])${code}(?![A-Z0-9_])`).test(text);

/** Codes of `codes` that some test asserts, with the first file that does. */
function coverage(codes: readonly string[]): Map<string, string> {
  const skip = new Set([THIS_FILE, ...LISTING_FILES]);
  const found = new Map<string, string>();
  for (const file of tsFiles(join(ROOT, 'test')).sort()) {
    const rel = relative(ROOT, file).split('\\').join('/');
    if (skip.has(rel)) continue;
    const text = evidence(readFileSync(file, 'utf8'));
    for (const code of codes) if (!found.has(code) && mentions(text, code)) found.set(code, rel);
  }
  return found;
}

describe('error catalogue coverage', () => {
  const codes = Object.keys(ERROR_CATALOGUE);
  const covered = coverage(codes);
  const excused = Object.keys(CANNOT_BE_PROVOKED);

  it('every catalogue code is asserted by a test, or excused with a reason', () => {
    const untested = codes.filter((c) => !covered.has(c) && !excused.includes(c));
    assert.deepEqual(untested, [], `codes no test asserts: ${untested.join(', ')}`);
  });

  it('the excuses are current: each names a catalogue code, no test covers it, none twice', () => {
    const unknown = excused.filter((c) => !(c in ERROR_CATALOGUE));
    assert.deepEqual(unknown, [], `excused codes not in the catalogue (remove them): ${unknown.join(', ')}`);
    const stale = excused.filter((c) => covered.has(c)).map((c) => `${c} (asserted in ${covered.get(c)})`);
    assert.deepEqual(stale, [], `excused codes a test now asserts (remove the excuse): ${stale.join(', ')}`);
    assert.equal(new Set(excused).size, excused.length, 'a code is excused twice');
    for (const [code, why] of Object.entries(CANNOT_BE_PROVOKED))
      assert.ok(why.trim().length > 20, `${code}: say why it cannot be provoked`);
    for (const f of LISTING_FILES) assert.ok(statSync(join(ROOT, f)).isFile(), `${f} is gone`);
  });

  it('the detector sees what it claims: a whole word outside comments, not a raise', () => {
    const t = evidence(
      [
        "// 'KAPOK_A_COMMENTED'",
        "throw new KapokError('KAPOK_A_RAISED', 'x');",
        'new KapokError(\n  "KAPOK_A_RAISED_TOO",',
        "assert.equal(e.code, 'KAPOK_A_ASSERTED');",
        'assert.match(text, /KAPOK_A_LONGER_NAME/);',
      ].join('\n'),
    );
    const seen = (c: string) => mentions(t, c);
    assert.deepEqual(
      ['KAPOK_A_COMMENTED', 'KAPOK_A_RAISED', 'KAPOK_A_RAISED_TOO', 'KAPOK_A_ASSERTED', 'KAPOK_A_LONGER'].map(
        seen,
      ),
      [false, false, false, true, false],
    );
  });
});
