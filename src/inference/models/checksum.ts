import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isKapokError, KapokError } from '../../core/errors.js';

/**
 * Checks model.onnx against its expected SHA-256: `configured` (config.yaml's sha256 for the
 * version), else the first 64 hex digits of a model.onnx.sha256 beside it; with neither, no check.
 */
export async function verifyChecksum(file: string, configured: string | undefined): Promise<void> {
  let expected = configured?.toLowerCase() ?? null;
  if (!expected) {
    try {
      const text = await readFile(`${file}.sha256`, 'utf8');
      const hex = /^\s*([0-9a-fA-F]{64})\b/.exec(text)?.[1];
      if (!hex)
        throw new KapokError('KAPOK_INFERENCE_CHECKSUM', `${file}.sha256 does not start with 64 hex digits`);
      expected = hex.toLowerCase();
    } catch (err) {
      if (isKapokError(err)) throw err;
    }
  }
  if (!expected) return;
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  const actual = hash.digest('hex');
  if (actual !== expected)
    throw new KapokError(
      'KAPOK_INFERENCE_CHECKSUM',
      `${file}: sha256 ${actual} differs from the expected ${expected}; the file is not loaded`,
    );
}
