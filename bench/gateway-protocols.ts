import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pool } from 'undici';
import { stringify } from 'yaml';
import { messagesToChat, validateMessages } from '../src/gateway/ingress/messages/request.js';
import { chatToMessage } from '../src/gateway/ingress/messages/response.js';
import { toChatRequest, validateResponses } from '../src/gateway/ingress/responses/request.js';
import { fromChatCompletion } from '../src/gateway/ingress/responses/response.js';
import { openaiProvider } from '../src/gateway/providers/openai/index.js';
import { validateChat } from '../src/gateway/proxy/validate.js';
import {
  benchGateway,
  CAPABILITIES_OFF_CONFIG,
  createBenchKey,
  freePort,
  kapokBin,
  noErrors,
  type Outcomes,
  reportPinning,
  sleepUntilDue,
  spawnProcess,
  stop,
  tempDir,
  verdict,
  waitFor200,
} from './lib.js';

/**
 * What the wire protocols beside chat completions cost: `/v1/responses` (translated to and from
 * chat completions, the path every chat-only local server takes) and `/v1/messages` (Anthropic
 * ingress, translated likewise), each against `/v1/chat/completions` through the same Kapok, the
 * same key and the same mock upstream, in the same run. Kapok is pinned to core 0; the mock and
 * this load generator share core 1. Rounds alternate the routes (chat, responses, messages, chat,
 * …) so drift on a shared machine falls on all of them; the figure is the median over rounds of
 * each round's p50 difference. Streams: time to the end of a 20-chunk answer the mock writes at
 * once, one request at a time, so the per-event translation shows. Any error fails the verdict.
 */
const ADMIN = 'bench-admin-token-0123456789';
const CHUNKS = 20;

/** A mock OpenAI-compatible upstream: a fixed chat answer, or CHUNKS SSE chunks + usage + [DONE] in one go. */
const MOCK = `
const http = require('node:http');
const CHUNKS = ${CHUNKS};
const body = JSON.stringify({ id: 'x', object: 'chat.completion', created: 1, model: 'm',
  choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 9, completion_tokens: 1, total_tokens: 10 } });
const chunk = (c, f) => 'data: ' + JSON.stringify({ id: 'x', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: c === null ? {} : { content: c }, finish_reason: f }] }) + '\\n\\n';
let stream = '';
for (let i = 0; i < CHUNKS; i++) stream += chunk('w' + i + ' ', null);
stream += chunk(null, 'stop') + 'data: ' + JSON.stringify({ id: 'x', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [], usage: { prompt_tokens: 9, completion_tokens: CHUNKS, total_tokens: 9 + CHUNKS } }) + '\\n\\ndata: [DONE]\\n\\n';
http.createServer({ noDelay: true }, (req, res) => {
  let n = '';
  req.on('data', (d) => { n += d; });
  req.on('end', () => {
    if (n.includes('"stream":true')) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.end(stream);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
}).listen(Number(process.env.PORT), '127.0.0.1');
`;

type Route = 'chat' | 'responses' | 'messages';
const PATHS: Record<Route, string> = {
  chat: '/v1/chat/completions',
  responses: '/v1/responses',
  messages: '/v1/messages',
};
const prompt = 'Say ok.';
const BODIES: Record<Route, (stream: boolean) => string> = {
  chat: (stream) =>
    JSON.stringify({ model: 'qwen', messages: [{ role: 'user', content: prompt }], max_tokens: 16, stream }),
  responses: (stream) => JSON.stringify({ model: 'qwen', input: prompt, max_output_tokens: 16, stream }),
  messages: (stream) =>
    JSON.stringify({ model: 'qwen', messages: [{ role: 'user', content: prompt }], max_tokens: 16, stream }),
};
/** What a completed answer must contain, per route and mode (a 200 with a broken body is an error). */
const DONE_MARK: Record<Route, [unary: string, stream: string]> = {
  chat: ['"choices"', 'data: [DONE]'],
  responses: ['"output_text"', 'event: response.completed'],
  messages: ['"content"', 'event: message_stop'],
};

export async function gatewayProtocols() {
  const seconds = Number(process.env.KAPOK_BENCH_SECONDS ?? 3);
  const rounds = Number(process.env.KAPOK_BENCH_ROUNDS ?? 5);
  const rate = Number(process.env.KAPOK_BENCH_RATE ?? 1000);
  const streams = Number(process.env.KAPOK_BENCH_STREAMS ?? 300);
  const serialN = Number(process.env.KAPOK_BENCH_SERIAL ?? 2000);
  spawnSync('taskset', ['-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
  const tmp = tempDir();
  const mockPort = await freePort();
  const mock = spawnProcess(['taskset', '-c', '1', process.execPath, '-e', MOCK], { PORT: String(mockPort) });
  const kapokPort = await freePort();
  const configFile = join(tmp.dir, 'kapok.yaml');
  writeFileSync(
    configFile,
    stringify({
      dataDir: tmp.dir,
      log: { level: 'warn', requests: false },
      http: { host: '127.0.0.1', port: kapokPort },
      ...CAPABILITIES_OFF_CONFIG,
      gateway: benchGateway(mockPort, ADMIN),
    }),
  );
  const kapok = spawnProcess(
    ['taskset', '-c', '0', process.execPath, kapokBin, 'up', '--config', configFile],
    {},
  );
  try {
    await waitFor200(`http://127.0.0.1:${kapokPort}/healthz`, performance.now(), kapok);
    const pinning = reportPinning('gateway-protocols', {
      kapok: kapok.pid,
      mockUpstream: mock.pid,
      loadGenerator: process.pid,
    });
    const key = await createBenchKey(`http://127.0.0.1:${kapokPort}`, ADMIN, 'gateway-protocols');
    const origin = `http://127.0.0.1:${kapokPort}`;
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${key}` };
    const routes: Route[] = ['chat', 'responses', 'messages'];

    // Warm-up (JIT, pools, tokenizer): every route, unary and streamed.
    const warm = noErrors();
    for (const r of routes) {
      addTo(warm, await openLoop(origin, headers, r, rate, 1));
      addTo(warm, await streamLoop(origin, headers, r, 50));
    }

    const serial: Record<Route, Load[]> = { chat: [], responses: [], messages: [] };
    const unary: Record<Route, Load[]> = { chat: [], responses: [], messages: [] };
    const streamed: Record<Route, Load[]> = { chat: [], responses: [], messages: [] };
    for (let i = 0; i < rounds; i++)
      for (const r of routes)
        serial[r].push(await serialLoop(origin, headers, r, Math.ceil(serialN / rounds)));
    for (let i = 0; i < rounds; i++)
      for (const r of routes) unary[r].push(await openLoop(origin, headers, r, rate, seconds));
    for (let i = 0; i < rounds; i++)
      for (const r of routes)
        streamed[r].push(await streamLoop(origin, headers, r, Math.ceil(streams / rounds)));

    const added = (runs: Record<Route, Load[]>, r: Route, q: 'p50Ms' | 'p99Ms') =>
      r3(median(runs[r].map((l, i) => l[q] - (runs.chat[i] as Load)[q])));
    const figures = {
      oneAtATime: Object.fromEntries(
        routes.map((r) => [
          r,
          {
            p50Ms: r3(median(serial[r].map((l) => l.p50Ms))),
            p99Ms: r3(median(serial[r].map((l) => l.p99Ms))),
          },
        ]),
      ),
      responsesAddedP50Ms: added(serial, 'responses', 'p50Ms'),
      responsesAddedP99Ms: added(serial, 'responses', 'p99Ms'),
      messagesAddedP50Ms: added(serial, 'messages', 'p50Ms'),
      unaryAtRate: Object.fromEntries(
        routes.map((r) => [
          r,
          {
            p50Ms: r3(median(unary[r].map((l) => l.p50Ms))),
            p99Ms: r3(median(unary[r].map((l) => l.p99Ms))),
          },
        ]),
      ),
      streamedToEnd: Object.fromEntries(
        routes.map((r) => [
          r,
          {
            p50Ms: r3(median(streamed[r].map((l) => l.p50Ms))),
            p99Ms: r3(median(streamed[r].map((l) => l.p99Ms))),
          },
        ]),
      ),
      responsesAddedP50MsAtRate: added(unary, 'responses', 'p50Ms'),
      messagesAddedP50MsAtRate: added(unary, 'messages', 'p50Ms'),
      responsesStreamAddedP50Ms: added(streamed, 'responses', 'p50Ms'),
      messagesStreamAddedP50Ms: added(streamed, 'messages', 'p50Ms'),
      inProcessUsPerRequest: inProcess(),
    };
    const all = (runs: Record<Route, Load[]>) =>
      routes
        .flatMap((r) => runs[r])
        .reduce((a, l) => ({ ...addTo(a, l), requests: a.requests + l.requests }), {
          ...noErrors(),
          requests: 0,
        });
    const targets = { responsesAddedP50Ms: 0.2 };
    const v = verdict(
      { responsesAddedP50: figures.responsesAddedP50Ms <= targets.responsesAddedP50Ms },
      {
        warmUp: { ...warm, requests: 1 },
        oneAtATime: all(serial),
        unary: all(unary),
        streamed: all(streamed),
      },
    );
    return {
      setup: {
        seconds,
        rounds,
        rate,
        streamsPerRoute: Math.ceil(streams / rounds) * rounds,
        oneAtATimePerRoute: Math.ceil(serialN / rounds) * rounds,
        kapok:
          'taskset -c 0, auth (API key) + quotas (memory KV) + routing + usage records; one chat-only upstream',
        mockAndLoadGenerator: 'taskset -c 1 (undici Pool, open loop, latency from scheduled send time)',
        baseline: '/v1/chat/completions through the same Kapok to the same upstream, alternating rounds',
        pinning,
      },
      ...figures,
      targets,
      met: v.met,
      why: v.why,
    };
  } finally {
    await stop(kapok);
    await stop(mock);
    tmp.remove();
  }
}

interface Load extends Outcomes {
  p50Ms: number;
  p99Ms: number;
  requests: number;
}

const r3 = (n: number) => Math.round(n * 1000) / 1000;
const pct = (s: number[], p: number) =>
  s.length ? (s[Math.min(s.length - 1, Math.floor(p * s.length))] as number) : Number.NaN;
const median = (xs: number[]) =>
  pct(
    [...xs].sort((a, b) => a - b),
    0.5,
  );
const addTo = (into: Outcomes, from: Outcomes) => {
  into.non2xx += from.non2xx;
  into.transportErrors += from.transportErrors;
  return into;
};

/** `rate` requests/s for `seconds`; latency (complete 2xx answers) from each request's scheduled time. */
async function openLoop(
  origin: string,
  headers: Record<string, string>,
  r: Route,
  rate: number,
  seconds: number,
): Promise<Load> {
  const pool = new Pool(origin, { connections: 256, pipelining: 1 });
  const body = BODIES[r](false);
  const lat: number[] = [];
  const out = noErrors();
  const total = rate * seconds;
  const start = performance.now();
  let scheduled = 0;
  const inflight = new Set<Promise<void>>();
  while (scheduled < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000));
    for (; scheduled < due; scheduled++) {
      const at = start + (scheduled * 1000) / rate;
      const p = pool
        .request({ path: PATHS[r], method: 'POST', headers, body })
        .then(async (res) => {
          const text = await res.body.text();
          if (res.statusCode === 200 && text.includes(DONE_MARK[r][0])) lat.push(performance.now() - at);
          else out.non2xx++;
        })
        .catch(() => {
          out.transportErrors++;
        })
        .finally(() => inflight.delete(p));
      inflight.add(p);
    }
    await sleepUntilDue(start, scheduled, rate);
  }
  await Promise.all(inflight);
  await pool.close();
  lat.sort((a, b) => a - b);
  return { p50Ms: r3(pct(lat, 0.5)), p99Ms: r3(pct(lat, 0.99)), requests: total, ...out };
}

/** `n` requests one at a time; time to the complete answer. */
async function serialLoop(
  origin: string,
  headers: Record<string, string>,
  r: Route,
  n: number,
): Promise<Load> {
  const pool = new Pool(origin, { connections: 1 });
  const body = BODIES[r](false);
  const lat: number[] = [];
  const out = noErrors();
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    try {
      const res = await pool.request({ path: PATHS[r], method: 'POST', headers, body });
      const text = await res.body.text();
      if (res.statusCode === 200 && text.includes(DONE_MARK[r][0])) lat.push(performance.now() - t0);
      else out.non2xx++;
    } catch {
      out.transportErrors++;
    }
  }
  await pool.close();
  lat.sort((a, b) => a - b);
  return { p50Ms: r3(pct(lat, 0.5)), p99Ms: r3(pct(lat, 0.99)), requests: n, ...out };
}

/** CPU µs per request of each route's own request/answer work (no I/O), median of 5 batches. */
function inProcess() {
  const answer = JSON.stringify({
    id: 'x',
    object: 'chat.completion',
    created: 1,
    model: 'm',
    choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 9, completion_tokens: 1, total_tokens: 10 },
  });
  const work: Record<Route, () => unknown> = {
    chat: () => {
      const b = validateChat(JSON.parse(BODIES.chat(false)));
      openaiProvider.chatRequest(b, 'm');
      return openaiProvider.chatResponse(answer, 'qwen');
    },
    responses: () => {
      const b = validateResponses(JSON.parse(BODIES.responses(false)));
      openaiProvider.chatRequest(toChatRequest(b, false), 'm');
      return fromChatCompletion(openaiProvider.chatResponse(answer, 'qwen'), b, 'qwen');
    },
    messages: () => {
      const b = validateMessages(JSON.parse(BODIES.messages(false)));
      openaiProvider.chatRequest(messagesToChat(b, false), 'm');
      return chatToMessage(openaiProvider.chatResponse(answer, 'qwen'), 'qwen');
    },
  };
  const n = 20_000;
  const us = (r: Route) => {
    const batches: number[] = [];
    for (let b = 0; b < 5; b++) {
      // CPU time, not wall time: on a shared machine the process is descheduled at random.
      const t0 = process.cpuUsage();
      for (let i = 0; i < n; i++) work[r]();
      const t = process.cpuUsage(t0);
      batches.push((t.user + t.system) / n);
    }
    return r3(median(batches));
  };
  const chat = us('chat');
  const responses = us('responses');
  const messages = us('messages');
  return {
    chat,
    responses,
    messages,
    responsesAdded: r3(responses - chat),
    messagesAdded: r3(messages - chat),
  };
}

/** `n` streamed requests one at a time; time to the complete answer (its end event). */
async function streamLoop(
  origin: string,
  headers: Record<string, string>,
  r: Route,
  n: number,
): Promise<Load> {
  const pool = new Pool(origin, { connections: 1 });
  const body = BODIES[r](true);
  const lat: number[] = [];
  const out = noErrors();
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    try {
      const res = await pool.request({ path: PATHS[r], method: 'POST', headers, body });
      const text = await res.body.text();
      if (res.statusCode === 200 && text.includes(DONE_MARK[r][1])) lat.push(performance.now() - t0);
      else out.non2xx++;
    } catch {
      out.transportErrors++;
    }
  }
  await pool.close();
  lat.sort((a, b) => a - b);
  return { p50Ms: r3(pct(lat, 0.5)), p99Ms: r3(pct(lat, 0.99)), requests: n, ...out };
}
