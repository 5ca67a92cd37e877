import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { type StandInLlm, startStandInLlm } from '../../src/cli/demo/stand-in-llm.js';

// kapok demo's stand-in upstream: an official OpenAI client can use it, and it refuses bad input
// plainly (it is a fake of a model server, so only its HTTP behaviour is checked, not any model).
describe('kapok demo: the stand-in LLM upstream', () => {
  let llm: StandInLlm;
  before(async () => {
    llm = await startStandInLlm();
  });
  after(() => llm.close());

  it('answers chat (plain and streamed) and embeddings through the OpenAI SDK, saying it is not a model', async () => {
    const c = new OpenAI({ apiKey: 'unused', baseURL: llm.url, maxRetries: 0 });
    const plain = await c.chat.completions.create({
      model: 'x',
      messages: [{ role: 'user', content: 'hi' }],
    });
    assert.match(plain.choices[0]?.message.content ?? '', /not an LLM.*"hi"/);
    let text = '';
    for await (const ch of await c.chat.completions.create({
      model: 'x',
      stream: true,
      messages: [{ role: 'user', content: 'streamed' }],
    }))
      text += ch.choices[0]?.delta.content ?? '';
    assert.match(text, /not an LLM.*"streamed"/);
    const e = await c.embeddings.create({ model: 'x', input: ['a', 'a', 'b'] });
    assert.deepEqual(e.data[0]?.embedding, e.data[1]?.embedding, 'deterministic');
    assert.notDeepEqual(e.data[0]?.embedding, e.data[2]?.embedding);
  });

  it('refuses malformed, non-object and oversized bodies with 400, unknown routes with 404', async () => {
    const post = (body: string | Buffer, path = '/chat/completions') =>
      fetch(`${llm.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    assert.equal((await post('{"messages": [')).status, 400);
    assert.equal((await post('[1,2]')).status, 400);
    assert.equal((await post(Buffer.alloc(1024 * 1024 + 10, 0x20))).status, 400);
    assert.equal((await post('{}', '/completions')).status, 404);
    const ok = await post(JSON.stringify({ messages: 'not a list' }));
    assert.equal(ok.status, 200, 'a missing or odd messages field echoes nothing, it does not crash');
  });
});
