import { type IncomingMessage, type Server, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { type ErrorCode, KapokError } from '../errors.js';

/**
 * The one router for HTTP upgrades (WebSockets under /ws/*, MQTT over WebSocket) on the main HTTP
 * server. Capabilities register a path; the router is the server's only 'upgrade' listener, so an
 * upgrade is handled exactly once, and one to an unknown path gets a 404 and its socket closed
 * instead of hanging. The listener is added with the first path: without one, Node answers
 * requests that carry an Upgrade header as plain requests, as it does today when nothing uses it.
 */
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void | Promise<void>;

export interface UpgradeRouter {
  /** Routes upgrades of exactly `path` (query string ignored); returns a function that removes it. */
  register(path: string, handler: UpgradeHandler): () => void;
}

/** `onError`: told about a handler that threw (its socket is destroyed). */
export function createUpgradeRouter(
  server: Server,
  onError?: (err: unknown, path: string) => void,
): UpgradeRouter {
  const routes = new Map<string, UpgradeHandler>();
  let attached = false;
  const route = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const handler = routes.get(path);
    if (handler) {
      const failed = (err: unknown) => {
        socket.destroy();
        onError?.(err, path);
      };
      try {
        // An async handler (the admin guard looks a session cookie up in the Store) fails the same way.
        handler(req, socket, head)?.catch(failed);
      } catch (err) {
        failed(err);
      }
      return;
    }
    refuse(socket, 404, 'KAPOK_HTTP_NOT_FOUND', `no WebSocket endpoint at ${path.slice(0, 200)}`);
  };
  return {
    register(path, handler) {
      if (!path.startsWith('/')) throw new TypeError(`upgrade path ${path} must start with /`);
      if (routes.has(path))
        throw new KapokError(
          'KAPOK_START_FAILED',
          `two WebSocket endpoints want the path ${path}: give one another path`,
        );
      routes.set(path, handler);
      if (!attached) {
        attached = true;
        server.on('upgrade', route);
      }
      return () => {
        if (routes.get(path) === handler) routes.delete(path);
      };
    },
  };
}

/** Answers an upgrade with an HTTP error in Kapok's JSON shape, then closes the socket. */
export function refuse(socket: Duplex, status: number, code: ErrorCode, message: string): void {
  const body = JSON.stringify({ error: { code, message } });
  socket.on('error', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    () => socket.destroy(),
  );
}
