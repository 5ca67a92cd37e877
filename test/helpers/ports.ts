import { createServer } from 'node:net';

/**
 * A TCP port on 127.0.0.1 that nothing listens on now (bound, then released): a free port for a
 * server a test starts, or a "dead" address whose connections are refused.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
