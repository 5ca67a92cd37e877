/**
 * The quick starts of README.md and docs/*.md, run as a reader would run them, so they cannot rot.
 *
 * Convention: a fenced block whose info string carries one of these words is part of a quick start;
 * every other block is prose. The marked blocks of a document are taken in document order:
 *
 *   ```yaml quickstart-file=kapok.yaml   the block's text is written to that path (relative to the
 *                                        working directory) when it is reached.
 *   ```sh quickstart-server              the long-running start command (one per document): started
 *                                        in the background; ready when GET /readyz on the HTTP port
 *                                        answers 200 (and, for `npm run demo`, once its banner
 *                                        "kapok demo is running" is printed). Stopped with SIGTERM
 *                                        at the end, and must then exit 0 (the documented drain).
 *   ```sh quickstart                     a bash script (`set -euo pipefail`: every command must
 *                                        exit 0) run to completion. A line ending in a comment
 *                                        `# → TEXT` says what the reader will see: the script's
 *                                        stdout must contain each TEXT, in the order written.
 *
 * How a block is run, on a fresh temporary working directory per document:
 * - Ports: the literals 8080 (HTTP), 1883 (MQTT) and 8081 (gRPC) in a block's text are rewritten to
 *   free ports, and the same ports are set as KAPOK_HTTP__PORT, KAPOK_EDGE__MQTT__PORT and
 *   KAPOK_GRPC__PORT for every command, so what a doc takes from the defaults (`npm start`,
 *   `npx kapok …` reading the config) lands on the same ports. Docs therefore show the default ports.
 *   No other KAPOK_* variable of the test's environment reaches the blocks.
 * - Commands: bash functions stand in for what a fresh clone has: `npx kapok ARGS` runs this
 *   checkout's CLI (as test/helpers/cli.ts does: test/helpers/kapok-bin.ts), `npm ci` is
 *   a no-op (this checkout is installed), `npm start [-- ARGS]` is `kapok up ARGS`, and `npm run demo
 *   [-- ARGS]` is `kapok demo --port … --mqtt-port … --grpc-port … ARGS`. Anything else (`curl`,
 *   `node -e`) is the real program; NODE_PATH points at this checkout's node_modules so a Node
 *   one-liner's `require("mqtt")` resolves in the temporary directory as it does in the clone.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { kapokArgv } from '../helpers/kapok-bin.js';
import { freePort } from '../helpers/ports.js';
import { tmpDir } from '../helpers/tmp.js';

const root = new URL('../../', import.meta.url).pathname;

const DOCS = [
  'README.md',
  'docs/gateway.md',
  'docs/inference.md',
  'docs/edge.md',
  'docs/v2x.md',
  'docs/gm.md',
];

type Block =
  | { kind: 'file'; path: string; text: string }
  | { kind: 'server'; text: string }
  | { kind: 'script'; text: string; expect: string[] };

/** The marked blocks of a Markdown text, in order. */
export function quickstartBlocks(md: string): Block[] {
  const out: Block[] = [];
  const fence = /^```([^\n]*)\n([\s\S]*?)^```$/gm;
  for (const m of md.matchAll(fence)) {
    const words = (m[1] as string).trim().split(/\s+/);
    const text = m[2] as string;
    const file = words.find((w) => w.startsWith('quickstart-file='));
    if (file) out.push({ kind: 'file', path: file.slice('quickstart-file='.length), text });
    else if (words.includes('quickstart-server')) out.push({ kind: 'server', text });
    else if (words.includes('quickstart'))
      out.push({
        kind: 'script',
        text,
        expect: [...text.matchAll(/# → (.+)$/gm)].map((e) => (e[1] as string).trim()),
      });
  }
  return out;
}

interface Ports {
  http: number;
  mqtt: number;
  grpc: number;
}

const rewrite = (text: string, p: Ports) =>
  text
    .replace(/\b8080\b/g, String(p.http))
    .replace(/\b1883\b/g, String(p.mqtt))
    .replace(/\b8081\b/g, String(p.grpc));

/** The stand-ins for a fresh clone's commands (see the header). The server forms `exec`. */
function prelude(p: Ports): string {
  return `set -euo pipefail
kapok_cli() { node $QUICKSTART_KAPOK "$@"; }
npx() {
  if [ "\${1:-}" = kapok ]; then shift; kapok_cli "$@"; return; fi
  echo "quickstart: npx $* is not available in the test (use npx kapok)" >&2; return 127
}
npm() {
  case "\${1:-} \${2:-}" in
    "ci "*|"install "*) return 0 ;;
    "start "*) shift; [ "\${1:-}" = -- ] && shift; exec node $QUICKSTART_KAPOK up "$@" ;;
    "run demo") shift 2; [ "\${1:-}" = -- ] && shift
      exec node $QUICKSTART_KAPOK demo --port ${p.http} --mqtt-port ${p.mqtt} --grpc-port ${p.grpc} "$@" ;;
  esac
  echo "quickstart: npm $* is not mapped in the test" >&2; return 127
}
`;
}

function blockEnv(p: Ports): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith('KAPOK_') && k !== 'GOVERNMENT_ENV') env[k] = v;
  return {
    ...env,
    KAPOK_HTTP__PORT: String(p.http),
    KAPOK_EDGE__MQTT__PORT: String(p.mqtt),
    KAPOK_GRPC__PORT: String(p.grpc),
    // Word-split by the shell functions: paths here have no spaces (a file: URL for tsx).
    QUICKSTART_KAPOK: kapokArgv().join(' '),
    NODE_PATH: `${root}node_modules`,
  };
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function runScript(
  script: string,
  cwd: string,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<Run> {
  const child = spawn('bash', ['-c', script], { cwd, env, detached: true });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  // A hung command would otherwise hold the whole file: kill its process group.
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), timeoutMs);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid) process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

interface Server {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

async function startServer(script: string, cwd: string, env: NodeJS.ProcessEnv, p: Ports): Promise<Server> {
  const isDemo = /\bnpm run demo\b/.test(script);
  const child = spawn('bash', ['-c', script], { cwd, env, detached: true });
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.stderr.on('data', (d) => {
    out += d;
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const deadline = Date.now() + 40_000;
  for (;;) {
    if (gone) throw new Error(`the quick start's server exited before ready:\n${out}`);
    if (Date.now() > deadline) {
      killGroup(child, 'SIGKILL');
      throw new Error(`the quick start's server was not ready in 40 s:\n${out}`);
    }
    const ready = await fetch(`http://127.0.0.1:${p.http}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ready && (!isDemo || out.includes('kapok demo is running'))) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  return { child, output: () => out, exited };
}

/** Each TEXT in order: found after the previous one. */
function assertInOrder(stdout: string, expect: string[], what: string): void {
  let at = 0;
  for (const e of expect) {
    const i = stdout.indexOf(e, at);
    assert.ok(i >= 0, `${what}: expected "${e}" in the output (after the previous expectation):\n${stdout}`);
    at = i + e.length;
  }
}

describe('quick starts (README.md, docs/*.md): run as written, on a fresh working directory', () => {
  it('the convention is found: every document has a server block, a script, and says what to expect', () => {
    for (const doc of DOCS) {
      const blocks = quickstartBlocks(readFileSync(join(root, doc), 'utf8'));
      assert.equal(
        blocks.filter((b) => b.kind === 'server').length,
        1,
        `${doc}: one quickstart-server block`,
      );
      const scripts = blocks.filter((b) => b.kind === 'script');
      assert.ok(scripts.length > 0, `${doc}: at least one quickstart block`);
      assert.ok(
        scripts.some((b) => b.kind === 'script' && b.expect.length > 0),
        `${doc}: at least one "# → " expectation`,
      );
      for (const b of blocks)
        assert.doesNotMatch(
          b.text,
          /\b(websocat|mosquitto_pub|mosquitto_sub|ollama)\b/,
          `${doc}: Node and curl only`,
        );
    }
  });

  for (const doc of DOCS) {
    it(`${doc}: its quick start runs and shows what it says`, { timeout: 80_000 }, async () => {
      const blocks = quickstartBlocks(readFileSync(join(root, doc), 'utf8'));
      const ports: Ports = { http: await freePort(), mqtt: await freePort(), grpc: await freePort() };
      const cwd = tmpDir('kapok-quickstart-');
      const env = blockEnv(ports);
      let server: Server | null = null;
      try {
        for (const [i, b] of blocks.entries()) {
          const what = `${doc} block ${i + 1} (${b.kind})`;
          if (b.kind === 'file') {
            const path = join(cwd, b.path);
            mkdirSync(dirname(path), { recursive: true });
            writeFileSync(path, rewrite(b.text, ports));
          } else if (b.kind === 'server') {
            server = await startServer(prelude(ports) + rewrite(b.text, ports), cwd, env, ports);
          } else {
            const r = await runScript(prelude(ports) + rewrite(b.text, ports), cwd, env, 45_000);
            assert.equal(
              r.code,
              0,
              `${what} exited ${r.code}:\n${b.text}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}${server ? `\nserver:\n${server.output().slice(-4000)}` : ''}`,
            );
            assertInOrder(r.stdout, rewriteAll(b.expect, ports), what);
          }
        }
      } finally {
        if (server) {
          // The server command is exec'd: SIGTERM reaches Kapok itself, which drains and exits 0.
          server.child.kill('SIGTERM');
          const code = await Promise.race([
            server.exited,
            new Promise<'hung'>((r) => setTimeout(() => r('hung'), 15_000)),
          ]);
          killGroup(server.child, 'SIGKILL'); // whatever it left behind, or itself when hung
          assert.equal(
            code,
            0,
            `${doc}: the server did not stop cleanly on SIGTERM:\n${server.output().slice(-4000)}`,
          );
        }
      }
    });
  }
});

const rewriteAll = (texts: string[], p: Ports) => texts.map((t) => rewrite(t, p));
