import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RequestReply } from '../../src/ports/request.js';

/**
 * The request-reply port (src/ports/request.ts), run against every adapter. `responder(subject, fn)`
 * answers requests on a subject the way a branch service would; it returns a stop function.
 */
export interface RequestHarness {
  make(): Promise<RequestReply>;
  responder(
    subject: string,
    fn: (
      data: Uint8Array,
      headers: Record<string, string>,
    ) => { data: string; headers?: Record<string, string>; delayMs?: number },
  ): Promise<() => Promise<void>>;
  subject(name: string): string;
}

export function requestConformance(name: string, h: RequestHarness, o: { skip?: string | false } = {}): void {
  describe(`request-reply port: ${name}`, { skip: o.skip ?? false }, () => {
    let rr: RequestReply;
    const stops: Array<() => Promise<void>> = [];
    before(async () => {
      rr = await h.make();
    });
    after(async () => {
      for (const s of stops) await s();
      await rr.close();
      await rr.close();
    });

    it('delivers data and headers and returns the reply with its headers', async () => {
      const subject = h.subject('echo');
      stops.push(
        await h.responder(subject, (data, headers) => ({
          data: JSON.stringify({ got: Buffer.from(data).toString(), gid: headers['x-kapok-saga-gid'] }),
          headers: { 'Kapok-Saga-Status': '409' },
        })),
      );
      const r = await rr.request(subject, Buffer.from('{"a":1}'), {
        timeoutMs: 2000,
        headers: { 'x-kapok-saga-gid': 'g-1' },
      });
      assert.equal(r.kind, 'reply');
      if (r.kind !== 'reply') return;
      assert.deepEqual(JSON.parse(Buffer.from(r.data).toString()), { got: '{"a":1}', gid: 'g-1' });
      assert.equal(r.headers['Kapok-Saga-Status'], '409');
    });

    it('resolves timeout when the responder is slower than timeoutMs', async () => {
      const subject = h.subject('slow');
      stops.push(await h.responder(subject, () => ({ data: '{}', delayMs: 500 })));
      const t0 = Date.now();
      assert.deepEqual(await rr.request(subject, Buffer.from('{}'), { timeoutMs: 100 }), { kind: 'timeout' });
      assert.ok(Date.now() - t0 < 450, 'did not wait for the answer');
    });

    it('resolves unavailable when nobody answers the subject', async () => {
      const r = await rr.request(h.subject('nobody'), Buffer.from('{}'), { timeoutMs: 1000 });
      assert.equal(r.kind, 'unavailable');
    });

    it('refuses a subject with wildcards or spaces before sending', async () => {
      for (const s of ['a.*', 'a.>', 'a b', '', 'a..b'])
        await assert.rejects(rr.request(s, Buffer.from('{}'), { timeoutMs: 100 }), {
          code: 'KAPOK_SAGA_INVALID',
        });
    });
  });
}
