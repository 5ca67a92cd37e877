import { connect, type NatsConnection, headers as natsHeaders } from '@nats-io/transport-node';
import { KapokError, messageOf } from '../../core/errors.js';
import { isRequestSubject, type RequestOutcome, type RequestReply } from '../../ports/request.js';

/**
 * Request-reply on core NATS (not JetStream: the answer is the branch's, now). The client reconnects
 * by itself; while it is down a request resolves `unavailable` at once, so the caller's retry policy
 * (not this adapter) decides what happens next.
 */
export interface NatsRequestOptions {
  url: string;
  /** Name shown in the server's connection list. */
  name?: string;
}

export async function createNatsRequestReply(o: NatsRequestOptions): Promise<RequestReply> {
  if (typeof o?.url !== 'string' || !/^(nats|tls):\/\//.test(o.url))
    throw new KapokError('KAPOK_CONFIG_INVALID', 'saga.natsUrl: expected nats://host:port');
  let nc: NatsConnection | null = null;
  let closed = false;
  const connecting = (async () => {
    // Keep trying in the background: a coordinator starts even when NATS is down.
    while (!closed) {
      try {
        nc = await connect({
          servers: o.url,
          name: o.name ?? 'kapok-saga',
          maxReconnectAttempts: -1,
          timeout: 2000,
        });
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  })();
  // The first connect is waited for briefly so a start with NATS up has it at once.
  await Promise.race([connecting, new Promise((r) => setTimeout(r, 2500))]);
  return {
    async request(subject, data, ro): Promise<RequestOutcome> {
      if (!isRequestSubject(subject))
        throw new KapokError(
          'KAPOK_SAGA_INVALID',
          `nats subject ${JSON.stringify(subject.slice(0, 80))} is not a plain subject`,
        );
      const c = nc as NatsConnection | null;
      if (!c || c.isClosed()) return { kind: 'unavailable', reason: 'not connected to NATS' };
      const h = natsHeaders();
      for (const [k, v] of Object.entries(ro.headers ?? {})) h.set(k, v);
      try {
        const msg = await c.request(subject, data, { timeout: ro.timeoutMs, headers: h });
        const out: Record<string, string> = {};
        if (msg.headers) for (const [k] of msg.headers) out[k] = msg.headers.get(k);
        return { kind: 'reply', data: msg.data, headers: out };
      } catch (err) {
        const e = err as Error & { isNoResponders?: () => boolean; cause?: unknown };
        if (e.name === 'TimeoutError' || (e.cause as Error | undefined)?.name === 'TimeoutError')
          return { kind: 'timeout' };
        if (e.isNoResponders?.()) return { kind: 'unavailable', reason: `no responder on ${subject}` };
        return { kind: 'unavailable', reason: messageOf(err).slice(0, 200) };
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await connecting.catch(() => {});
      const c = nc as NatsConnection | null;
      if (c && !c.isClosed()) await c.drain().catch(() => c.close());
    },
  };
}
