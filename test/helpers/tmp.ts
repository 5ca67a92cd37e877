import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

/** A fresh temporary folder, removed when the test file ends. */
export function tmpDir(prefix = 'kapok-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes `text` to `name` inside a fresh temp dir and returns the file path. */
export function tmpFile(name: string, text: string): string {
  const file = join(tmpDir(), name);
  writeFileSync(file, text);
  return file;
}
