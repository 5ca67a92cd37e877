import WebSocket from 'ws';

/** Resolves with the HTTP status of a WebSocket upgrade: 101 when it opened, else the refusal's. */
export function upgradeStatus(url: string, authorization?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, authorization ? { headers: { authorization } } : {});
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('error', reject);
  });
}
