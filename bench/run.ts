import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { audit } from './audit.js';
import { consoleBench } from './console.js';
import { consoleSessionsBench } from './console-sessions.js';
import { control } from './control.js';
import { edge } from './edge.js';
import { edgeWrite } from './edge-write.js';
import { events } from './events.js';
import { gateway } from './gateway.js';
import { gatewayProtocols } from './gateway-protocols.js';
import { gm } from './gm.js';
import { healthz } from './healthz.js';
import { inference } from './inference.js';
import { jobs } from './jobs.js';
import { jsonDepth } from './json-depth.js';
import { kapokBin, machine, root } from './lib.js';
import { mqtt5 } from './mqtt5.js';
import { operator } from './operator.js';
import { release } from './release.js';
import { saga } from './saga.js';
import { startup } from './startup.js';
import { usageRollupBench } from './usage-rollup.js';
import { v2x } from './v2x.js';
import { v2xCodec } from './v2x-codec.js';

/**
 * `npm run bench -- <name...> [--skip-mosquitto]` runs benchmarks and prints one JSON document with
 * the machine's core count. Where a baseline exists, a benchmark measures it in the same run and
 * reports ratios to it, which hold on noisy machines where absolute numbers do not. Where none can
 * exist, BASELINES says so and why, and the runner prints it before the benchmark runs: no figure
 * claims a baseline it does not have. Every load loop counts non-2xx answers and transport (or
 * publish) errors, and any error fails the verdicts. Results are also written to bench/results/.
 * See bench/README.md.
 */
const BENCHES: Record<string, () => Promise<unknown>> = {
  startup,
  healthz,
  gateway,
  'gateway-protocols': gatewayProtocols,
  gm,
  edge,
  'edge-mqtt5': mqtt5,
  'edge-write': edgeWrite,
  events,
  inference,
  'json-depth': jsonDepth,
  v2x,
  'v2x-codec': v2xCodec,
  audit,
  control,
  jobs,
  saga,
  operator,
  console: consoleBench,
  'console-sessions': consoleSessionsBench,
  'usage-rollup': usageRollupBench,
  release,
};

/** Per benchmark: each figure and its same-run baseline, or `null` with the reason it has none. */
const BASELINES: Record<string, [figure: string, baseline: string | null, whyNone?: string][]> = {
  startup: [['ready time, idle RSS', 'a bare node:http server started the same way']],
  release: [
    ['x64 artefact start → /healthz', 'the checkout (node dist/bundle/main.js up) started the same way'],
    ['artefact sizes', null, 'file sizes, reported as they are'],
  ],
  healthz: [['rps, latency', 'a bare node:http server answering the same JSON, same pinning']],
  gateway: [
    ['added latency, rps', 'the same load sent straight to the mock upstream'],
    ['added TTFT', 'the same streamed request straight to the mock upstream'],
    ['routing decision', null, 'an in-process computation with no other implementation to compare'],
  ],
  'gateway-protocols': [
    [
      '/v1/responses and /v1/messages added latency (one at a time, at a fixed rate, streamed to the end)',
      '/v1/chat/completions through the same Kapok to the same upstream, alternating rounds',
    ],
    [
      'translation CPU µs per request (in-process)',
      "the chat path's own validate, upstream body and answer, same process",
    ],
  ],
  gm: [
    ['SM2 sign', 'sm-crypto'],
    ['SM4-GCM', "OpenSSL's SM4-CTR (its keystream)"],
    [
      'SM9 sign/verify/pairing',
      null,
      'no usable second SM9 implementation on the npm registry (the gm bench prints the packages checked)',
    ],
    ['device auth/s', 'the raw SM9 verify rate of a same-size verify pool'],
    [
      'SM9 verify arithmetic, SM2 sign (vsPrevious)',
      'the code issue 24 replaced (test/gm/sm9-oracle/; SM2 with 6-bit windows, no Z cache), alternating, CPU time',
    ],
  ],
  edge: [
    ['QoS 1 stored/s', 'a Mosquitto relaying the same load (--skip-mosquitto: none)'],
    ['line protocol points/s', 'a bare better-sqlite3 insert loop of the same points'],
    ['lag', null, 'receipt → sink confirmation is an interval inside Kapok; nothing outside measures it'],
    ['authorization on', 'authorization off, same load'],
    [
      'external mode stored/s',
      "embedded mode's QoS 1 stored/s, and the broker relaying the same load to a plain subscriber (--skip-mosquitto: not run)",
    ],
    ['two Kapoks in a share group', 'one Kapok in a share group draining the same backlog'],
  ],
  'edge-mqtt5': [
    ['MQTT 5 QoS 1 stored/s', 'MQTT 3.1.1, same Kapok, same load, rounds alternated in the same run'],
  ],
  'edge-write': [
    ['HTTP line protocol points/s (stored)', 'a bare better-sqlite3 insert loop of the same points'],
    ['HTTP line protocol points/s (accepted)', 'a bare node:http server reading the same bodies'],
  ],
  inference: [
    [
      'REST/gRPC latency',
      'onnxruntime session.run in-process, /v2/health/live and gRPC ServerLive (the transport floors)',
    ],
  ],
  'json-depth': [['checked parse', 'JSON.parse alone']],
  v2x: [
    ['in-process pipeline', 'UPER decode alone'],
    ['end-to-end OBU latency', 'a bare MQTT round trip through the same broker at the same rate'],
    ['detection', null, 'recall and false rate are scores against ground truth, not speeds'],
  ],
  'v2x-codec': [['UPER encode/decode', 'JSON.stringify/JSON.parse of the same messages']],
  saga: [
    [
      'two-branch sagas/s (SQLite, PostgreSQL), overhead per call',
      'a bare undici loop making the same two calls per saga to the same branch server',
    ],
  ],
  audit: [
    ['appends/s (group commit)', 'a bare better-sqlite3 insert loop of the same rows'],
    ['verify entries/s', 'bare SM3 hashing of the same canonical JSON'],
  ],
  control: [
    [
      'etcd put → applied in Kapok (control.config.applied)',
      'a bare etcd watch on the same prefix: put → event',
    ],
    ['1,000 keys at 100/s: revision accepted = last put, cached layer = etcd', 'none (a correctness check)'],
    ['gateway req/s with a change every second', 'the same gateway with no change'],
  ],
  jobs: [
    [
      'no-op completions/s persisted',
      "the same 1,000-task flow through BullMQ's FlowProducer on the local Redis",
    ],
    [
      'pick-next latency, 10,000 pending',
      null,
      'the claim transaction with this scoring exists nowhere else',
    ],
  ],
  operator: [
    [
      'cold start over 1,000 AIJobs, Pod phase → status p99, API requests per job',
      null,
      'no other AIJob operator exists; Kueue#8564 (5 QPS client-go default) is the context for requests per job',
    ],
  ],
  console: [
    ['overview first render', 'navigating to /healthz in the same browser (the navigation floor)'],
    ['usage series over 1,000,000 rows', 'the same aggregation run in-process by better-sqlite3'],
    [
      'gzipped JS, long tasks, heap growth',
      null,
      'sizes and counts of our own page; no other console serves this data',
    ],
  ],
  'usage-rollup': [
    ['usage series from per-minute sums over 1,000,000 rows', 'the same series from the raw rows, same run'],
  ],
  'console-sessions': [
    [
      'CPU per console session lookup on SQLite',
      'the bearer-token check, and the former in-memory lookup (SHA-256 + Map), alternating rounds in one process',
    ],
  ],
  events: [
    [
      'publish → handled in another process',
      'a bare JetStream publish → consume round trip, and a bare core NATS request/reply',
    ],
  ],
};

// Every benchmark declares its baselines (or why it has none): a new one cannot run without.
const undeclared = Object.keys(BENCHES).filter((n) => !BASELINES[n]?.length);
if (undeclared.length) {
  process.stderr.write(`bench/run.ts: no BASELINES entry for ${undeclared.join(', ')}\n`);
  process.exit(1);
}

const FLAGS = new Set(['--skip-mosquitto']);
const args = process.argv.slice(2);
if (args.includes('--skip-mosquitto')) process.env.KAPOK_BENCH_SKIP_MOSQUITTO = '1';
const names = args.filter((a) => !FLAGS.has(a));
const selected0 = (ns: string[]) => (ns.includes('all') ? Object.keys(BENCHES) : ns);
if (names.length === 0 || names.some((n) => !(n in BENCHES) && n !== 'all')) {
  process.stderr.write(
    `usage: npm run bench -- <${Object.keys(BENCHES).join('|')}|all> ... [--skip-mosquitto]\n`,
  );
  process.exit(2);
}
// The events, control, saga and operator benchmarks run from source (tsx); the others start the built bundle.
const fromSource = new Set(['events', 'control', 'saga', 'operator']);
if (selected0(names).some((n) => !fromSource.has(n)) && !existsSync(kapokBin)) {
  process.stderr.write(`${kapokBin} is missing: run npm run build first\n`);
  process.exit(1);
}
// Before any benchmark pins this process to a core (which would change availableParallelism).
const host = machine();
const selected = names.includes('all') ? Object.keys(BENCHES) : names;
const results: Record<string, unknown> = {};
for (const name of selected) {
  process.stderr.write(`bench ${name}...\n`);
  for (const [figure, baseline, why] of BASELINES[name] ?? [])
    process.stderr.write(
      baseline ? `  baseline: ${figure} ← ${baseline}\n` : `  no baseline: ${figure}: ${why}\n`,
    );
  results[name] = await (BENCHES[name] as () => Promise<unknown>)();
}
const baselines = Object.fromEntries(
  selected.map((n) => [
    n,
    (BASELINES[n] ?? []).map(([figure, baseline, why]) =>
      baseline ? { figure, baseline } : { figure, baseline: null, noBaseline: why },
    ),
  ]),
);
const doc = { when: new Date().toISOString(), machine: host, baselines, results };
const text = JSON.stringify(doc, null, 2);
process.stdout.write(`${text}\n`);
const dir = join(root, 'bench/results');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, `${selected.join('+')}-${doc.when.replace(/[:.]/g, '-')}.json`), text);
