import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import OpenAI from 'openai';
import { kapokSpawn } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';

/** Polls `fn` until it returns a value, at most `ms`. */
async function eventually<T>(what: string, ms: number, fn: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what}: not within ${ms} ms (${String(last ?? 'no value')})`);
}

// The demo's own parts (stand-in LLM, simulated devices, V2X simulator) run inside the `kapok demo`
// process; the clients here are the official OpenAI SDK and plain HTTP, as a newcomer's would be.
describe('kapok demo', () => {
  it('within 30 s: a chat completion with the printed key, an inference, telemetry, a V2X warning; Ctrl-C stops it clean', async () => {
    const [mqttPort, grpcPort] = [await freePort(), await freePort()];
    const child = kapokSpawn([
      'demo',
      '--port',
      '0',
      '--mqtt-port',
      String(mqttPort),
      '--grpc-port',
      String(grpcPort),
    ]);
    let out = '';
    let err = '';
    child.stdout?.on('data', (d) => {
      out += d;
    });
    child.stderr?.on('data', (d) => {
      err += d;
    });
    const exited = once(child, 'exit');
    try {
      const t0 = Date.now();
      const banner = await eventually('the banner', 30_000, async () =>
        /API key\s+(\S+)/.test(out) && /gateway\s+(http:\S+)\/v1/.test(out) ? out : undefined,
      );
      const key = (/API key\s+(\S+)/.exec(banner) as RegExpExecArray)[1] as string;
      const base = (/gateway\s+(http:\S+)\/v1/.exec(banner) as RegExpExecArray)[1] as string;
      const dataDir = (/data\s+(\S+)/.exec(banner) as RegExpExecArray)[1] as string;
      assert.match(banner, /STAND-IN/, 'the stand-in upstream is labelled as such');

      const chat = await new OpenAI({
        apiKey: key,
        baseURL: `${base}/v1`,
        maxRetries: 0,
      }).chat.completions.create({
        model: 'demo-chat',
        messages: [{ role: 'user', content: 'hello kapok' }],
      });
      assert.match(chat.choices[0]?.message.content ?? '', /stand-in model, not an LLM.*hello kapok/);

      const infer = await fetch(`${base}/v2/models/demo-mlp/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 16], data: Array(16).fill(0.5) }],
        }),
      });
      assert.equal(infer.status, 200, await infer.clone().text());
      const outputs = ((await infer.json()) as { outputs: Array<{ shape: number[] }> }).outputs;
      assert.deepEqual(outputs[0]?.shape, [1, 4]);

      const points = await eventually('telemetry from the simulated devices', 30_000, async () => {
        const r = await fetch(`${base}/api/edge/query?measurement=env&field=temp&device=demo-pump-1`);
        const body = (await r.json()) as { points: unknown[] };
        return body.points.length > 0 ? body.points : undefined;
      });
      assert.ok(points.length > 0);

      const warnings = await eventually('a V2X warning from the simulator', 30_000, async () => {
        const r = await fetch(`${base}/api/v2x/warnings`);
        const body = (await r.json()) as { warnings?: unknown[] } | unknown[];
        const list = Array.isArray(body) ? body : (body.warnings ?? []);
        return list.length > 0 ? list : undefined;
      });
      assert.ok(warnings.length > 0);
      assert.ok(Date.now() - t0 < 60_000, 'the whole tour fits in a minute');

      child.kill('SIGINT');
      const [code] = (await exited) as [number | null];
      assert.equal(code, 0, err);
      assert.ok(!existsSync(dataDir), 'the temporary data is removed');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
