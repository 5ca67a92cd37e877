import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Connection hygiene for the HTTP port. Node's headersTimeout and requestTimeout start only once a
 * request begins, so a socket that never sends a byte is held forever; with Node's own
 * maxConnections, fifty of them lock everyone out (probes included). Here:
 * - a new connection that sends nothing within `firstByteTimeoutMs` is closed;
 * - at `maxConnections`, or at `maxConnectionsPerIp` for the client's address, the connection idle
 *   longest (no request in flight, no bytes since its last response) is closed to make room; only
 *   when none is idle is the new one refused;
 * - `destroyAll` cuts everything at a drain deadline, upgraded sockets (WebSockets) included, which
 *   Node's closeAllConnections does not see.
 * Loopback gets no exemption: a reverse proxy on the same host makes every client loopback.
 */
export interface ConnectionLimits {
  maxConnections: number;
  maxConnectionsPerIp: number;
  firstByteTimeoutMs: number;
}

export interface ConnectionGuard {
  readonly open: number;
  /** Closes every connection with nothing in flight (drain). */
  closeIdle(): void;
  /** Closes every connection, upgraded ones included (drain deadline). */
  destroyAll(): void;
}

interface Conn {
  ip: string;
  inFlight: number;
  /** bytesRead when it last went idle: more bytes since means a request (or an upgrade) is under way. */
  idleBytes: number;
  timer: NodeJS.Timeout | undefined;
}

export type RefuseReason = 'max_connections' | 'max_connections_per_ip';

export function guardConnections(
  server: Server,
  limits: ConnectionLimits,
  onRefuse?: (reason: RefuseReason) => void,
): ConnectionGuard {
  const conns = new Map<Socket, Conn>();
  // Insertion order is the order sockets went idle: the first reapable one is the longest idle.
  const idle = new Set<Socket>();
  const idleByIp = new Map<string, Set<Socket>>();
  const countByIp = new Map<string, number>();

  const setIdle = (s: Socket, c: Conn) => {
    c.idleBytes = s.bytesRead;
    idle.add(s);
    const set = idleByIp.get(c.ip);
    if (set) set.add(s);
    else idleByIp.set(c.ip, new Set([s]));
  };
  const unsetIdle = (s: Socket, c: Conn) => {
    idle.delete(s);
    const set = idleByIp.get(c.ip);
    set?.delete(s);
    if (set?.size === 0) idleByIp.delete(c.ip);
  };
  /** Closes the longest-idle socket of `from`; entries that turned busy are dropped on the way. */
  const reapOne = (from: Set<Socket> | undefined): boolean => {
    if (!from) return false;
    for (const s of from) {
      const c = conns.get(s);
      if (c && c.inFlight === 0 && s.bytesRead === c.idleBytes) {
        s.destroy();
        forget(s);
        return true;
      }
      if (c) unsetIdle(s, c);
    }
    return false;
  };
  const forget = (s: Socket) => {
    const c = conns.get(s);
    if (!c) return;
    conns.delete(s);
    unsetIdle(s, c);
    clearTimeout(c.timer);
    const n = (countByIp.get(c.ip) ?? 1) - 1;
    if (n === 0) countByIp.delete(c.ip);
    else countByIp.set(c.ip, n);
  };

  server.on('connection', (s: Socket) => {
    const ip = s.remoteAddress ?? '';
    let refused: RefuseReason | undefined;
    if ((countByIp.get(ip) ?? 0) >= limits.maxConnectionsPerIp && !reapOne(idleByIp.get(ip)))
      refused = 'max_connections_per_ip';
    else if (conns.size >= limits.maxConnections && !reapOne(idle)) refused = 'max_connections';
    if (refused) {
      s.destroy();
      onRefuse?.(refused);
      return;
    }
    const c: Conn = { ip, inFlight: 0, idleBytes: 0, timer: undefined };
    conns.set(s, c);
    countByIp.set(ip, (countByIp.get(ip) ?? 0) + 1);
    setIdle(s, c);
    c.timer = setTimeout(() => {
      if (s.bytesRead === 0) s.destroy();
    }, limits.firstByteTimeoutMs);
    c.timer.unref();
    s.once('close', () => forget(s));
  });

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const s = req.socket;
    const c = conns.get(s);
    if (!c) return;
    clearTimeout(c.timer);
    c.inFlight++;
    unsetIdle(s, c);
    res.once('close', () => {
      c.inFlight--;
      if (c.inFlight === 0 && conns.has(s) && !s.destroyed) setIdle(s, c);
    });
  });

  return {
    get open() {
      return conns.size;
    },
    closeIdle() {
      while (reapOne(idle));
    },
    destroyAll() {
      for (const s of [...conns.keys()]) {
        s.destroy();
        forget(s);
      }
    },
  };
}
