import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { KapokError } from '../../core/errors.js';
import { MAX_POINTS } from '../decode/point.js';

const gunzipAsync = promisify(gunzip);

/**
 * The body of a write request as bytes of line protocol: gunzipped when `Content-Encoding: gzip`
 * (on the thread pool, bounded by maxBytes so a small bomb cannot inflate past the limit), then
 * checked line by line against maxLineBytes and the per-request line count.
 */
export async function readBody(
  raw: Buffer,
  encoding: string | undefined,
  limits: { maxBodyBytes: number; maxLineBytes: number },
): Promise<Buffer> {
  const enc = (encoding ?? 'identity').trim().toLowerCase();
  let body = raw;
  if (enc === 'gzip' || enc === 'x-gzip') {
    try {
      body = await gunzipAsync(raw, { maxOutputLength: limits.maxBodyBytes });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE')
        throw new KapokError(
          'KAPOK_EDGE_WRITE_TOO_LARGE',
          `gzip body inflates past edge.write.maxBodyBytes (${limits.maxBodyBytes} bytes): send smaller batches`,
        );
      throw new KapokError(
        'KAPOK_EDGE_WRITE_INVALID',
        `gzip body cannot be inflated (${(err as Error).message}): send the whole gzip stream, or no Content-Encoding`,
      );
    }
  } else if (enc !== 'identity' && enc !== '')
    throw new KapokError(
      'KAPOK_HTTP_UNSUPPORTED_MEDIA_TYPE',
      `Content-Encoding ${enc.slice(0, 40)} is not accepted: send gzip or no encoding`,
    );
  checkLines(body, limits.maxLineBytes);
  return body;
}

/** Line length and count limits, on the bytes (memchr-speed scan; the decoder does the syntax). */
function checkLines(body: Buffer, maxLineBytes: number): void {
  let start = 0;
  let line = 0;
  while (start < body.length) {
    let nl = body.indexOf(10, start);
    if (nl < 0) nl = body.length;
    line++;
    if (nl - start > maxLineBytes)
      throw new KapokError(
        'KAPOK_EDGE_WRITE_TOO_LARGE',
        `line ${line} is ${nl - start} bytes, over edge.write.maxLineBytes (${maxLineBytes})`,
        { details: { line } },
      );
    if (line > MAX_POINTS)
      throw new KapokError(
        'KAPOK_EDGE_WRITE_TOO_LARGE',
        `more than ${MAX_POINTS} lines in one request: send smaller batches`,
        { details: { line } },
      );
    start = nl + 1;
  }
}
