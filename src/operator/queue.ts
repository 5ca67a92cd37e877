/**
 * A work queue like client-go's: a key is queued once however many events name it, is never
 * processed by two workers at once (an event during processing queues it again after), and can be
 * added after a delay (RequeueAfter) or with a per-key exponential backoff after failures.
 */
export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly active = new Set<string>();
  private readonly again = new Set<string>();
  private readonly timers = new Map<string, { at: number; t: NodeJS.Timeout }>();
  private readonly failures = new Map<string, number>();
  private waiters: Array<(k: string | null) => void> = [];
  private closed = false;

  constructor(
    private readonly baseMs: number,
    private readonly maxMs: number,
  ) {}

  add(key: string) {
    if (this.closed) return;
    if (this.active.has(key)) return void this.again.add(key);
    if (this.queued.has(key)) return;
    const w = this.waiters.shift();
    if (w) {
      this.active.add(key);
      return w(key);
    }
    this.queued.add(key);
    this.queue.push(key);
  }

  /** Adds the key after ms (the earliest of several requests wins). */
  addAfter(key: string, ms: number): void {
    if (this.closed) return;
    const at = Date.now() + ms;
    const cur = this.timers.get(key);
    if (cur && cur.at <= at) return;
    if (cur) clearTimeout(cur.t);
    const t = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, ms);
    t.unref?.();
    this.timers.set(key, { at, t });
  }

  /** After a failed reconcile: again after base·2^n (jittered), up to max. */
  retry(key: string): void {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const d = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(n, 20));
    this.addAfter(key, d / 2 + (Math.random() * d) / 2);
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  /** The next key (waits for one); null once closed. */
  next(): Promise<string | null> {
    if (this.closed) return Promise.resolve(null);
    const k = this.queue.shift();
    if (k !== undefined) {
      this.queued.delete(k);
      this.active.add(k);
      return Promise.resolve(k);
    }
    return new Promise((ok) => this.waiters.push(ok));
  }

  done(key: string): void {
    this.active.delete(key);
    if (this.again.delete(key)) this.add(key);
  }

  get length(): number {
    return this.queue.length;
  }

  close(): void {
    this.closed = true;
    for (const { t } of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    for (const w of this.waiters) w(null);
    this.waiters = [];
  }
}
