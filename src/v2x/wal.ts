import {
  closeSync,
  existsSync,
  fstatSync,
  fsync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  writeSync,
} from 'node:fs';
import { crc32 } from 'node:zlib';
import { KapokError } from '../core/errors.js';

/** A driving strategy for one vehicle, as logged and as published (JSON). */
export interface Strategy {
  id: string;
  vehicleId: string;
  action: 'BRAKE_IMMEDIATE' | 'SLOW_DOWN' | 'CAUTION' | 'STOP_AT_LINE' | 'SPEED_ADVICE';
  warningId: string;
  warningType: string;
  severity: string;
  /** The warning's vehicles (the acting one first). */
  vehicles: string[];
  /** The message that triggered the warning. */
  trigger: { vehicle: string; msgCnt: number; secMark: number };
  /** SPEED_ADVICE: advised speed (m/s). */
  speedMs?: number;
  createdAt: number;
  expiresAt: number;
}

const ADD = 1;
const ACK = 2;
const EXPIRE = 3;
const HEADER = 8;
/** Largest record body accepted on replay (a corrupt length must not allocate gigabytes). */
const MAX_RECORD = 64 * 1024;

export interface WalOptions {
  file: string;
  fsync: 'always' | 'interval' | 'never';
  intervalMs: number;
  compactBytes: number;
}

/**
 * Append-only strategy log: records `[u32 length][u32 crc32][u8 type][body]` (little endian) for
 * strategy added (JSON), acknowledged (id) and expired (id). Replay stops at the first torn or
 * corrupt record (a crash mid-write) and truncates there by compacting. Past compactBytes the log is
 * rewritten with the live strategies only (write to a temp file, fsync, rename).
 */
export class StrategyWal {
  readonly #o: WalOptions;
  #fd = -1;
  #size = 0;
  #dirty = false;
  #syncing = false;
  /** Compact past this: compactBytes, or twice the live size when that is larger (no thrashing). */
  #threshold = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Strategies added and neither acked nor expired (what a compaction keeps). */
  readonly live = new Map<string, Strategy>();
  /** The error code of the last write when it failed (e.g. ENOSPC), null while writes succeed. */
  failure: string | null = null;
  /** Records dropped on replay (corrupt tail). */
  corrupt = 0;
  /** Rewrites done (the one at open included). */
  compactions = 0;

  constructor(o: WalOptions) {
    if (!o.file) throw new Error('StrategyWal: options.file is required');
    if (!(o.compactBytes >= 4096)) throw new Error('StrategyWal: options.compactBytes must be ≥ 4096');
    this.#o = o;
  }

  get size(): number {
    return this.#size;
  }

  /** Reads the log; returns the live strategies (acked and expired ones removed). */
  open(): Strategy[] {
    try {
      if (existsSync(this.#o.file)) this.#replay(readFileSync(this.#o.file));
      this.#rewrite();
    } catch (err) {
      if (err instanceof KapokError) throw err;
      throw new KapokError(
        'KAPOK_START_FAILED',
        `v2x.wal.file ${this.#o.file} cannot be read or written (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): fix its permissions or set v2x.wal.file`,
        { cause: err },
      );
    }
    if (this.#o.fsync === 'interval')
      this.#timer = setInterval(() => this.#flushAsync(), this.#o.intervalMs).unref();
    return [...this.live.values()];
  }

  add(s: Strategy): void {
    this.live.set(s.id, s);
    this.#append(ADD, JSON.stringify(s));
  }

  ack(id: string): void {
    if (!this.live.delete(id)) return;
    this.#append(ACK, id);
  }

  expire(id: string): void {
    if (!this.live.delete(id)) return;
    this.#append(EXPIRE, id);
  }

  /**
   * Interval policy: fsync on libuv's thread pool, so the event loop (message intake, strategy
   * delivery) never waits on the disk; one at a time.
   */
  #flushAsync(): void {
    if (!this.#dirty || this.#fd < 0 || this.#syncing) return;
    this.#dirty = false;
    this.#syncing = true;
    fsync(this.#fd, () => {
      this.#syncing = false;
    });
  }

  /** fsync now (synchronously) if anything was written since the last one. */
  flush(): void {
    if (!this.#dirty || this.#fd < 0) return;
    this.#dirty = false;
    fsyncSync(this.#fd);
  }

  close(): void {
    clearInterval(this.#timer);
    if (this.#fd < 0) return;
    this.flush();
    closeSync(this.#fd);
    this.#fd = -1;
  }

  #append(type: number, body: string): void {
    if (this.#fd < 0)
      throw new KapokError('KAPOK_INTERNAL', 'v2x strategy log used before open or after close');
    const rec = encode(type, body);
    try {
      writeSync(this.#fd, rec);
      this.#size += rec.length;
      if (this.#o.fsync === 'always') fsyncSync(this.#fd);
      else this.#dirty = true;
      if (this.#size > this.#threshold) this.#rewrite();
      this.failure = null;
    } catch (err) {
      // Disk full, I/O error: the caller sees the error; readiness sees it until a write succeeds.
      this.failure = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw err;
    }
  }

  #replay(buf: Buffer): void {
    let off = 0;
    while (off + HEADER <= buf.length) {
      const len = buf.readUInt32LE(off);
      const crc = buf.readUInt32LE(off + 4);
      if (len < 1 || len > MAX_RECORD || off + HEADER + len > buf.length) break;
      const body = buf.subarray(off + HEADER, off + HEADER + len);
      if (crc32(body) !== crc) break;
      const type = body[0];
      const text = body.subarray(1).toString('utf8');
      if (type === ADD) {
        try {
          const s = JSON.parse(text) as Strategy;
          if (typeof s.id === 'string') this.live.set(s.id, s);
        } catch {
          break;
        }
      } else if (type === ACK || type === EXPIRE) this.live.delete(text);
      else break;
      off += HEADER + len;
    }
    if (off < buf.length) this.corrupt++;
  }

  /** Writes the live strategies to a fresh log and switches to it. */
  #rewrite(): void {
    const tmp = `${this.#o.file}.tmp`;
    const fd = openSync(tmp, 'w');
    let size = 0;
    for (const s of this.live.values()) {
      const rec = encode(ADD, JSON.stringify(s));
      writeSync(fd, rec);
      size += rec.length;
    }
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, this.#o.file);
    if (this.#fd >= 0) closeSync(this.#fd);
    this.#fd = openSync(this.#o.file, 'a');
    this.#size = fstatSync(this.#fd).size || size;
    this.#threshold = Math.max(this.#o.compactBytes, 2 * this.#size);
    this.#dirty = false;
    this.compactions++;
  }
}

function encode(type: number, body: string): Buffer {
  const len = Buffer.byteLength(body) + 1;
  const rec = Buffer.allocUnsafe(HEADER + len);
  rec.writeUInt32LE(len, 0);
  rec[HEADER] = type;
  rec.write(body, HEADER + 1, 'utf8');
  rec.writeUInt32LE(crc32(rec.subarray(HEADER)), 4);
  return rec;
}
