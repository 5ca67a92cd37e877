import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { kapok } from '../helpers/cli.js';
import { type Server, startInference } from './setup.js';

/** `kapok models list|load|unload` against a running server's REST API. */

let s: Server;
before(async () => {
  s = await startInference();
});
after(() => s.stop());

describe('kapok models', () => {
  it('list --json shows every version and state; unload and load change it', async () => {
    const list = await kapok(['models', 'list', '--url', s.base, '--json']);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(
      JSON.parse(list.stdout).map((r: { name: string; state: string }) => `${r.name}:${r.state}`),
      ['conv:READY', 'mlp:READY', 'types:READY'],
    );
    const un = await kapok(['models', 'unload', 'conv', '--url', s.base]);
    assert.equal(un.code, 0, un.stderr);
    assert.equal(un.stdout, 'unloaded conv\n');
    assert.equal((await s.get('/v2/models/conv/ready')).status, 400);
    const load = await kapok(['models', 'load', 'conv', '--url', s.base, '--json']);
    assert.equal(load.code, 0, load.stderr);
    assert.deepEqual(JSON.parse(load.stdout), { model: 'conv', loaded: true });
    const text = await kapok(['models', 'list', '--url', s.base]);
    const [head, ...lines] = text.stdout.trimEnd().split('\n');
    assert.match(head ?? '', /^MODEL\s+VERSION\s+STATE\s+REASON$/, 'a header row names the columns');
    assert.ok(
      lines.some((l) => /^conv\s+1\s+READY$/.test(l)),
      text.stdout,
    );
  });

  it('an unknown model exits 1 with the server message and its code', async () => {
    const r = await kapok(['models', 'load', 'ghost', '--url', s.base]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^kapok: model 'ghost' .* \[KAPOK_INFERENCE_MODEL_NOT_FOUND\]$/m);
  });

  it('no server running: exit 1 with a clear message', async () => {
    const r = await kapok(['models', 'list', '--url', 'http://127.0.0.1:1']);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /cannot reach Kapok at http:\/\/127.0.0.1:1 \(ECONNREFUSED\): is `kapok up` running/,
    );
  });
});

describe('kapok up with inference', () => {
  it('a taken grpc.port stops the start with exit 1 naming the key', async () => {
    const { createServer } = await import('node:net');
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    try {
      const r = await kapok(['up'], {
        KAPOK_HTTP__PORT: '0',
        KAPOK_HTTP__HOST: '127.0.0.1',
        KAPOK_GRPC__PORT: String(port),
        KAPOK_INFERENCE__ENABLED: 'true',
        KAPOK_INFERENCE__REPOSITORY: s.repo,
        KAPOK_DATA_DIR: `${s.repo}/.data`,
      });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`grpc.port ${port} .* is in use.*KAPOK_START_PORT_IN_USE`));
    } finally {
      blocker.close();
    }
  });
});
