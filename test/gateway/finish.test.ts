import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { type FakeLlm, startFakeLlm } from '../helpers/fake-llm.js';
import { type Gw, startGateway } from './setup.js';

const msg = [{ role: 'user', content: 'hi' }];

/**
 * An upstream that answers 500 headers at once and then holds the error body until the connection
 * closes: the client can leave while the gateway is between two attempts.
 */
async function startHolder(): Promise<{ url: string; requests: number; close(): Promise<void> }> {
  const holder = {
    url: '',
    requests: 0,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      holder.requests++;
      res.writeHead(500, { 'content-type': 'application/json' });
      res.flushHeaders();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  holder.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  return holder;
}

// Every request ends in exactly one usage row, one requests_total sample and one quota settlement,
// whichever way it ends. Each case has its own key and model, so counts of 1 mean "exactly once".
describe('gateway: each request is recorded exactly once', () => {
  let a: FakeLlm;
  let fb: FakeLlm;
  let claude: FakeLlm;
  let holder: Awaited<ReturnType<typeof startHolder>>;
  let gw: Gw;

  const models = ['allfail', 'sallfail', 'slow', 'sslow', 'scut', 'sabort', 'uabort', 'reject', 'sreject'];
  before(async () => {
    [a, fb, claude] = await Promise.all([startFakeLlm('a'), startFakeLlm('fb'), startFakeLlm('claude')]);
    holder = await startHolder();
    gw = await startGateway({
      providers: [
        { name: 'a', type: 'openai', baseUrl: a.url, timeoutMs: 300 },
        { name: 'fb', type: 'openai', baseUrl: fb.url, timeoutMs: 300 },
        { name: 'claude', type: 'anthropic', baseUrl: claude.origin },
        { name: 'holder', type: 'openai', baseUrl: holder.url },
      ],
      models: [
        ...models.map((name) => ({
          name,
          targets: [{ provider: 'a', model: name }],
          fallbacks: [{ provider: 'fb', model: name }],
        })),
        {
          name: 'gap',
          targets: [{ provider: 'holder', model: 'x' }],
          fallbacks: [{ provider: 'fb', model: 'gap' }],
        },
        { name: 'haiku', targets: [{ provider: 'claude', model: 'h' }] },
        { name: 'plain', targets: [{ provider: 'fb', model: 'plain' }] },
      ],
      // Failures here must not open circuits for the next case.
      circuit: { failureThreshold: 1000, cooldownMs: 1000 },
    });
  });
  after(async () => {
    await gw.stop();
    await Promise.all([a.close(), fb.close(), claude.close(), holder.close()]);
  });
  const reset = () => {
    for (const f of [a, fb]) {
      f.mode = 'ok';
      f.streamChunks = 3;
      f.requests.length = 0;
      f.aborted = 0;
    }
  };

  const post = (key: string, body: Record<string, unknown>, signal?: AbortSignal) =>
    request(`${gw.base}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      ...(signal ? { signal } : {}),
    });

  /**
   * The key's usage rows by status and by target, waiting (bounded) until `requests` are recorded: a
   * record is queued when its request finishes, which may be just after the client read the body.
   */
  async function usage(id: string, requests = 1) {
    const deadline = Date.now() + 3000;
    for (;;) {
      const byStatus = (await gw.admin('GET', `/usage?key=${id}&groupBy=status`)).body.rows;
      const n = byStatus.reduce((a: number, r: { requests: number }) => a + r.requests, 0);
      if (n >= requests || Date.now() > deadline) {
        const byTarget = (await gw.admin('GET', `/usage?key=${id}&groupBy=target`)).body.rows;
        return { byStatus, byTarget };
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Asserts one usage row with this status and target, and one requests_total sample. */
  async function recordedOnce(id: string, model: string, status: number, target: string) {
    const u = await usage(id);
    assert.equal(u.byStatus.length, 1, JSON.stringify(u.byStatus));
    assert.equal(u.byStatus[0].group, status);
    assert.equal(u.byStatus[0].requests, 1);
    assert.equal(u.byTarget[0].group, target);
    const metrics = await (await request(`${gw.base}/metrics`)).body.text();
    const samples = metrics
      .split('\n')
      .filter((l) => l.startsWith('kapok_gateway_requests_total{') && l.includes(`model="${model}"`));
    assert.deepEqual(samples.length, 1, samples.join('\n'));
    assert.match(samples[0] as string, new RegExp(`target="${target}",status="${status}".* 1$`));
    return u.byStatus[0];
  }

  it('unary, every target fails: one 502 record against no target', async () => {
    reset();
    const { id, key } = await gw.createKey();
    a.mode = 'status';
    fb.mode = 'status';
    const res = await post(key, { model: 'allfail', messages: msg });
    assert.equal(res.statusCode, 502);
    await res.body.dump();
    await recordedOnce(id, 'allfail', 502, 'none');
    const metrics = await (await request(`${gw.base}/metrics`)).body.text();
    for (const t of ['a', 'fb'])
      assert.match(
        metrics,
        new RegExp(`upstream_attempts_total\\{target="${t}/allfail",outcome="http_5xx".* 1\n`),
      );
  });

  it('stream, every target fails before a byte: one 502 record against no target', async () => {
    reset();
    const { id, key } = await gw.createKey();
    a.mode = 'status';
    fb.mode = 'status';
    const res = await post(key, { model: 'sallfail', messages: msg, stream: true });
    assert.equal(res.statusCode, 502);
    await res.body.dump();
    await recordedOnce(id, 'sallfail', 502, 'none');
  });

  it('unary and stream, upstreams time out: one 504 record each', async () => {
    reset();
    a.mode = 'hang';
    fb.mode = 'hang';
    for (const [model, stream] of [
      ['slow', false],
      ['sslow', true],
    ] as const) {
      const { id, key } = await gw.createKey();
      const res = await post(key, { model, messages: msg, stream });
      assert.equal(res.statusCode, 504);
      await res.body.dump();
      await recordedOnce(id, model, 504, 'none');
    }
    const metrics = await (await request(`${gw.base}/metrics`)).body.text();
    assert.match(metrics, /upstream_attempts_total\{target="a\/sslow",outcome="timeout".* 1\n/);
  });

  it('stream cut after data: one 502 record against the target, streamed chunks charged', async () => {
    reset();
    const { id, key } = await gw.createKey();
    a.mode = 'cut';
    const res = await post(key, { model: 'scut', messages: msg, stream: true });
    assert.equal(res.statusCode, 200);
    assert.match(await res.body.text(), /KAPOK_GATEWAY_STREAM_INTERRUPTED/);
    const row = await recordedOnce(id, 'scut', 502, 'a/scut');
    assert.equal(row.completion_tokens, a.cutAfter);
    assert.equal(fb.requests.length, 0);
  });

  it('client leaves mid-stream: one 499 record against the target', async () => {
    reset();
    const { id, key } = await gw.createKey();
    a.mode = 'slowStream';
    a.streamChunks = 50;
    const ac = new AbortController();
    const res = await post(key, { model: 'sabort', messages: msg, stream: true }, ac.signal);
    let text = '';
    try {
      for await (const c of res.body) {
        text += c;
        if ((text.match(/\n\n/g) ?? []).length >= 2) ac.abort();
      }
    } catch {
      // aborted
    }
    const row = await recordedOnce(id, 'sabort', 499, 'a/sabort');
    assert.ok(row.completion_tokens >= 2, `charged ${row.completion_tokens} streamed chunks`);
    assert.ok(row.prompt_tokens > 0);
  });

  it('client leaves while a unary upstream is thinking: one 499 record against the target', async () => {
    reset();
    const { id, key } = await gw.createKey();
    a.mode = 'hang';
    const ac = new AbortController();
    const pending = post(key, { model: 'uabort', messages: msg }, ac.signal).catch(() => null);
    while (a.requests.length === 0) await new Promise((r) => setTimeout(r, 10));
    ac.abort();
    await pending;
    const row = await recordedOnce(id, 'uabort', 499, 'a/uabort');
    assert.equal(row.prompt_tokens + row.completion_tokens, 0, 'nothing charged');
    assert.equal(fb.requests.length, 0);
  });

  it('client leaves between two attempts: one 499 record and the token reservation refunded', async () => {
    reset();
    const { id, key } = await gw.createKey({ tpm: 1000 });
    const ac = new AbortController();
    const pending = post(key, { model: 'gap', messages: msg, max_tokens: 300 }, ac.signal).catch(() => null);
    while (holder.requests === 0) await new Promise((r) => setTimeout(r, 10));
    // Let the 500 headers reach the gateway: it is now reading the held error body.
    await new Promise((r) => setTimeout(r, 100));
    ac.abort();
    await pending;
    await recordedOnce(id, 'gap', 499, 'none');
    assert.equal(fb.requests.length, 0, 'no attempt after the client left');
    const next = await post(key, { model: 'plain', messages: msg, max_tokens: 1 });
    await next.body.dump();
    const remaining = Number(next.headers['x-ratelimit-remaining-tokens']);
    assert.ok(remaining > 1000 - 50, `only the second request is reserved (remaining ${remaining})`);
  });

  it('upstream 4xx passed on (unary and stream): one 400 record against the target', async () => {
    reset();
    a.mode = 'status';
    a.status = 400;
    for (const [model, stream] of [
      ['reject', false],
      ['sreject', true],
    ] as const) {
      const { id, key } = await gw.createKey();
      const res = await post(key, { model, messages: msg, stream });
      assert.equal(res.statusCode, 400);
      await res.body.dump();
      await recordedOnce(id, model, 400, `a/${model}`);
    }
    assert.equal(fb.requests.length, 0);
    a.status = 500;
  });

  it('a provider transform refusing the body: one 400 record, nothing charged', async () => {
    const { id, key } = await gw.createKey();
    for (const stream of [false, true]) {
      const res = await post(key, { model: 'haiku', messages: [{ role: 'bogus', content: 'x' }], stream });
      assert.equal(res.statusCode, 400);
      assert.match(await res.body.text(), /"param":"messages\[0\]\.role"/);
    }
    const u = await usage(id, 2);
    assert.deepEqual(
      u.byStatus.map((r: { group: number; requests: number; prompt_tokens: number }) => [
        r.group,
        r.requests,
        r.prompt_tokens,
      ]),
      [[400, 2, 0]],
    );
    assert.equal(u.byTarget[0].group, 'claude/h');
    assert.equal(claude.requests.length, 0);
  });
});
