import type { Socket } from 'node:net';

export interface ConnectionLimitsOptions {
  /** A socket that sends no CONNECT within this is closed (Aedes' connectTimeout). */
  connectTimeoutMs: number;
  /** A socket with no traffic in either direction for this long is closed. */
  idleTimeoutMs: number;
  maxConnectionsPerIp: number;
  maxConnections: number;
}

/**
 * Connection caps of the embedded broker's port: per client IP and in total, counted from accept
 * to close, plus an idle timeout on the socket. Keepalive covers connected clients that asked
 * for one; the idle timeout also covers keepalive 0 and sockets that never speak.
 */
export class ConnectionLimits {
  readonly #o: ConnectionLimitsOptions;
  readonly #perIp = new Map<string, number>();
  open = 0;

  constructor(o: ConnectionLimitsOptions) {
    this.#o = o;
  }

  /** Counts the socket in (and out on close) and arms its idle timeout; or says which cap refused it. */
  admit(socket: Socket): 'ip' | 'total' | null {
    const ip = socket.remoteAddress ?? '';
    const n = this.#perIp.get(ip) ?? 0;
    if (this.open >= this.#o.maxConnections) return 'total';
    if (n >= this.#o.maxConnectionsPerIp) return 'ip';
    this.#perIp.set(ip, n + 1);
    this.open++;
    socket.once('close', () => {
      this.open--;
      const left = (this.#perIp.get(ip) ?? 1) - 1;
      if (left <= 0) this.#perIp.delete(ip);
      else this.#perIp.set(ip, left);
    });
    socket.setTimeout(this.#o.idleTimeoutMs, () => socket.destroy());
    return null;
  }
}

/** At most `max` lines per `windowMs`; the number suppressed is reported when a window closes. */
export class LogLimiter {
  #windowStart = 0;
  #count = 0;
  #suppressed = 0;

  constructor(
    private readonly max: number,
    private readonly windowMs: number,
    private readonly onSuppressed: (n: number) => void,
  ) {}

  log(write: () => void): void {
    const now = Date.now();
    if (now - this.#windowStart >= this.windowMs) {
      if (this.#suppressed > 0) this.onSuppressed(this.#suppressed);
      this.#windowStart = now;
      this.#count = 0;
      this.#suppressed = 0;
    }
    if (this.#count < this.max) {
      this.#count++;
      write();
    } else this.#suppressed++;
  }
}
