// deploy/kubernetes/kapok.yaml and deploy/Containerfile, checked three ways:
// 1. against the Kubernetes OpenAPI schemas as shipped by the npm package kubernetes-models (its
//    compiled JSON-schema validators for types, formats and required fields, and its TypeScript
//    types, whose excess-property check catches a misspelt field the schemas let through);
// 2. by kubectl's own decoder (`kubectl set env --local`, no server needed): every object must
//    decode into the Go types of the installed kubectl's Kubernetes version;
// 3. against Kapok itself: the ConfigMap's kapok.yaml plus the Deployment's environment must load
//    through the real configuration schema, and the probes, ports, mounts and user must match it.
// Limit: no API server runs here, so admission, defaulting and server-side validation are not
// exercised, and the image is not built (no container engine); the Containerfile's unpack step and
// HEALTHCHECK are run by bash against a stand-in tarball and a real probe server.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import type * as TS from 'typescript';
import { parseAllDocuments } from 'yaml';
import { loadKapokConfig } from '../../src/config.js';
import { Health } from '../../src/core/health.js';
import { probeRoutes } from '../../src/core/http/probes.js';
import { createMetrics } from '../../src/core/metrics.js';

const root = new URL('../..', import.meta.url).pathname;
const manifestFile = join(root, 'deploy/kubernetes/kapok.yaml');
const secretFile = join(root, 'deploy/kubernetes/kapok-secret.yaml.example');
const containerfile = readFileSync(join(root, 'deploy/Containerfile'), 'utf8');

// biome-ignore lint/suspicious/noExplicitAny: manifests are untyped YAML, checked below.
type Doc = Record<string, any>;
const docs: Doc[] = [manifestFile, secretFile].flatMap((f) =>
  parseAllDocuments(readFileSync(f, 'utf8')).map((d) => {
    assert.equal(d.errors.length, 0, `YAML error in ${f}: ${d.errors[0]?.message}`);
    return d.toJS() as Doc;
  }),
);
const byKind = (kind: string): Doc => {
  const found = docs.filter((d) => d.kind === kind);
  assert.equal(found.length, 1, `expected one ${kind} in the manifests, found ${found.length}`);
  return found[0] as Doc;
};

/** kind → the kubernetes-models class and its TypeScript interface (module path, type name). */
const MODELS = {
  ConfigMap: { model: ConfigMap, module: 'kubernetes-models/v1/ConfigMap', type: 'IConfigMap' },
  Secret: { model: Secret, module: 'kubernetes-models/v1/Secret', type: 'ISecret' },
  Service: { model: Service, module: 'kubernetes-models/v1/Service', type: 'IService' },
  Deployment: { model: Deployment, module: 'kubernetes-models/apps/v1/Deployment', type: 'IDeployment' },
  PodDisruptionBudget: {
    model: PodDisruptionBudget,
    module: 'kubernetes-models/policy/v1/PodDisruptionBudget',
    type: 'IPodDisruptionBudget',
  },
} as const;
type Kind = keyof typeof MODELS;

function validateDoc(doc: Doc): void {
  const entry = MODELS[doc.kind as Kind];
  assert.ok(entry, `kind ${doc.kind} has no schema here; add it to MODELS`);
  // biome-ignore lint/suspicious/noExplicitAny: each model takes its own kind's data.
  new (entry.model as any)(doc).validate();
}

// Through require: tsx's ESM loader takes several times longer over TypeScript's 9 MB of JS.
const ts = createRequire(import.meta.url)('typescript') as typeof TS;

/** TypeScript diagnostics of `const x: I<Kind> = <doc>` for each doc: excess properties are errors. */
function typeErrors(checked: Doc[]): string[] {
  const kinds = [...new Set(checked.map((d) => d.kind as Kind))];
  const src = [
    ...kinds.map((k) => `import type { ${MODELS[k].type} } from '${MODELS[k].module}';`),
    ...checked.map((d, i) => `export const doc${i}: ${MODELS[d.kind as Kind].type} = ${JSON.stringify(d)};`),
  ].join('\n');
  const file = join(root, 'test/deploy/__manifests__.ts');
  // No standard library: a few global types are all these interfaces use, and parsing lib.*.d.ts
  // would take seconds. Only the manifest file's own diagnostics are asked for.
  const libFile = join(root, 'test/deploy/__lib__.d.ts');
  const lib = [
    'interface Array<T> { length: number; [n: number]: T }',
    'interface Boolean {}',
    'interface Function {}',
    'interface CallableFunction {}',
    'interface NewableFunction {}',
    'interface IArguments {}',
    'interface Number {}',
    'interface Object {}',
    'interface RegExp {}',
    'interface String {}',
    'type Record<K extends keyof any, T> = { [P in K]: T };',
    'type Partial<T> = { [P in keyof T]?: T[P] };',
    'type Omit<T, K extends keyof any> = { [P in Exclude<keyof T, K>]: T[P] };',
    'type Exclude<T, U> = T extends U ? never : T;',
    'type Pick<T, K extends keyof T> = { [P in K]: T[P] };',
  ].join('\n');
  const options: TS.CompilerOptions = {
    strict: true,
    noEmit: true,
    noLib: true,
    skipLibCheck: true,
    types: [],
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
  };
  const host = ts.createCompilerHost(options);
  const virtual = new Map([
    [file, src],
    [libFile, lib],
  ]);
  const readFile = host.readFile.bind(host);
  host.readFile = (f) => virtual.get(f) ?? readFile(f);
  const exists = host.fileExists.bind(host);
  host.fileExists = (f) => virtual.has(f) || exists(f);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (f, v, ...rest) => {
    const text = virtual.get(f);
    return text === undefined ? getSourceFile(f, v, ...rest) : ts.createSourceFile(f, text, v);
  };
  const program = ts.createProgram([libFile, file], options, host);
  return program
    .getSemanticDiagnostics(program.getSourceFile(file))
    .map((d) => ts.flattenDiagnosticMessageText(d.messageText, ' '));
}

describe('deploy/kubernetes/kapok.yaml: Kubernetes schemas', () => {
  it('holds the ConfigMap, Secret, Deployment, Service and PodDisruptionBudget', () => {
    assert.deepEqual(docs.map((d) => d.kind).sort(), [
      'ConfigMap',
      'Deployment',
      'PodDisruptionBudget',
      'Secret',
      'Service',
    ]);
  });

  it('validates against the OpenAPI schemas (kubernetes-models), which do refuse a wrong type', () => {
    for (const d of docs) validateDoc(d);
    const bad = structuredClone(byKind('Deployment'));
    bad.spec.template.spec.containers[0].ports[0].containerPort = 'http';
    assert.throws(() => validateDoc(bad), /containerPort must be integer/);
  });

  it('names no field the API types lack (TypeScript excess-property check; a misspelt probe is caught)', () => {
    const typo = structuredClone(byKind('Deployment'));
    const c = typo.spec.template.spec.containers[0];
    c.livenesProbe = c.livenessProbe;
    const errors = typeErrors([...docs, typo]);
    assert.equal(errors.length, 1, `expected only the planted typo to fail:\n${errors.join('\n')}`);
    assert.match(errors[0] as string, /livenesProbe/);
  });

  it('decodes into kubectl’s own Kubernetes types (kubectl set env --local, offline)', (t) => {
    const version = spawnSync('kubectl', ['version', '--client', '-o', 'json'], { encoding: 'utf8' });
    if (version.error) {
      if (process.env.KAPOK_REQUIRE_SERVICES === '1') assert.fail('kubectl is not installed');
      t.skip('kubectl is not installed');
      return;
    }
    const env = { ...process.env, KUBECONFIG: '/dev/null' };
    const run = (...files: string[]) =>
      spawnSync(
        'kubectl',
        ['set', 'env', '--local', ...files.flatMap((f) => ['-f', f]), 'KAPOK_PROBE=1', '-o', 'json'],
        {
          encoding: 'utf8',
          env,
        },
      );
    const ok = run(manifestFile, secretFile);
    // set env changes only the Deployment; the other kinds are decoded, then reported as not applicable.
    assert.doesNotMatch(ok.stderr, /unable to decode|cannot unmarshal|error converting/, ok.stderr);
    assert.match(ok.stdout, /"KAPOK_PROBE"/);
    const dir = mkdtempSync(join(tmpdir(), 'kapok-k8s-'));
    try {
      const bad = join(dir, 'bad.yaml');
      writeFileSync(
        bad,
        readFileSync(manifestFile, 'utf8').replace(
          'terminationGracePeriodSeconds: 30',
          'terminationGracePeriodSeconds: "30s"',
        ),
      );
      assert.match(run(bad).stderr, /cannot unmarshal string/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('deploy/kubernetes/kapok.yaml: matches Kapok', () => {
  const deploy = byKind('Deployment');
  const pod = deploy.spec.template.spec;
  const c = pod.containers[0];
  const secret = byKind('Secret');
  const cm = byKind('ConfigMap');
  const mount = (name: string) => c.volumeMounts.find((m: Doc) => m.name === name)?.mountPath as string;
  const portNamed = (name: string) => c.ports.find((p: Doc) => p.name === name)?.containerPort as number;

  /** The container's environment as the kubelet would set it: Secret and pod-name references resolved. */
  const podEnv = (): Record<string, string> =>
    Object.fromEntries(
      c.env.map((e: Doc) => {
        if (e.value !== undefined) return [e.name, e.value];
        if (e.valueFrom.fieldRef) return [e.name, 'kapok-7d9f8c6b5-x2x4q'];
        const ref = e.valueFrom.secretKeyRef;
        assert.equal(ref.name, secret.metadata.name, `${e.name} refers to another Secret`);
        const v = secret.stringData[ref.key];
        assert.equal(typeof v, 'string', `${e.name}: the Secret has no key ${ref.key}`);
        return [e.name, v];
      }),
    );

  const dir = mkdtempSync(join(tmpdir(), 'kapok-k8s-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const load = () => {
    const configPath = c.args[c.args.indexOf('--config') + 1] as string;
    assert.equal(
      configPath,
      `${mount('config')}/kapok.yaml`,
      'the --config path is not the mounted ConfigMap',
    );
    const file = join(dir, 'kapok.yaml');
    writeFileSync(file, cm.data['kapok.yaml']);
    return loadKapokConfig({ file, env: podEnv(), cwd: dir }).config;
  };

  it('the ConfigMap and the Deployment environment load through Kapok’s own configuration schema', () => {
    const config = load();
    assert.equal(config.store.driver, 'postgres');
    assert.match(String(config.store.url), /^postgres:\/\//);
    assert.match(String(config.kv.url), /^redis:\/\//);
    assert.match(String(config.events.nats.url), /^nats:\/\//);
    // Replicas behind one Service share everything durable; per-instance state stays off.
    assert.equal(config.kv.driver, 'redis');
    assert.equal(config.events.adapter, 'nats');
    assert.deepEqual([config.edge.enabled, config.v2x.enabled], [false, false]);
    assert.ok(
      deploy.spec.replicas >= 2,
      'a PodDisruptionBudget of maxUnavailable 1 needs 2 replicas to keep one',
    );
    // An env var that names no key would stop the start with exit 2: prove the check is live.
    assert.throws(
      () =>
        loadKapokConfig({
          file: join(dir, 'kapok.yaml'),
          env: { ...podEnv(), KAPOK_STORE__URI: 'x' },
          cwd: dir,
        }),
      /KAPOK_STORE__URI names no config key/,
    );
  });

  it('probes, ports and Service use Kapok’s real routes and configured ports', async () => {
    const config = load();
    assert.equal(portNamed('http'), config.http.port);
    assert.equal(portNamed('grpc'), config.grpc.port);
    assert.deepEqual(
      [c.startupProbe.httpGet, c.livenessProbe.httpGet, c.readinessProbe.httpGet],
      [
        { path: '/healthz', port: 'http' },
        { path: '/healthz', port: 'http' },
        { path: '/readyz', port: 'http' },
      ],
    );
    const svc = byKind('Service');
    for (const p of svc.spec.ports)
      assert.ok(portNamed(p.targetPort), `Service targets unknown port ${p.targetPort}`);
    const labels = deploy.spec.template.metadata.labels;
    for (const sel of [
      deploy.spec.selector.matchLabels,
      svc.spec.selector,
      byKind('PodDisruptionBudget').spec.selector.matchLabels,
    ])
      for (const [k, v] of Object.entries(sel))
        assert.equal(labels[k], v, `selector ${k}=${v} misses the pods`);
    // The routes answer as the probes expect, on Kapok's own probe handlers.
    const app = Fastify();
    const health = new Health();
    await probeRoutes(app, { region: config.region, health, metrics: createMetrics() });
    assert.equal((await app.inject({ url: c.livenessProbe.httpGet.path })).statusCode, 200);
    assert.equal((await app.inject({ url: c.readinessProbe.httpGet.path })).statusCode, 200);
    health.markStopping();
    assert.equal((await app.inject({ url: c.readinessProbe.httpGet.path })).statusCode, 503);
    await app.close();
  });

  it('keys, data and drain timing agree with the configuration', () => {
    const config = load();
    assert.equal(mount('data'), config.dataDir);
    const keys = pod.volumes.find((v: Doc) => v.name === 'keys').secret;
    const keyFiles = keys.items.map((i: Doc) => `${mount('keys')}/${i.path}`);
    assert.ok(
      keyFiles.includes(config.gm.kekFile),
      `gm.kekFile ${config.gm.kekFile} is not a mounted Secret file`,
    );
    assert.ok(
      keyFiles.includes(podEnv().KAPOK_CONFIG_KEYS_FILE),
      'KAPOK_CONFIG_KEYS_FILE is not a mounted Secret file',
    );
    for (const i of keys.items) assert.ok(i.key in secret.stringData, `Secret lacks ${i.key}`);
    // Secret files belong to root: the Kapok user reads them through the pod's fsGroup, others not at all.
    assert.equal(pod.securityContext.fsGroup, pod.securityContext.runAsGroup);
    assert.equal(keys.defaultMode & 0o040, 0o040, 'the group (fsGroup) must read the key files');
    assert.equal(keys.defaultMode & 0o027, 0, 'key files: no group write, nothing for others');
    // The placeholder KEK is not a key: Kapok refuses it instead of starting with a known one.
    assert.doesNotMatch(secret.stringData['gm.kek'], /^[0-9a-fA-F]{32}$/);
    assert.ok(
      config.shutdownDelayMs >= 3000,
      'behind a Service, shutdownDelayMs should let endpoints update',
    );
    assert.ok(
      pod.terminationGracePeriodSeconds * 1000 > config.shutdownDelayMs + config.shutdownTimeoutMs,
      'terminationGracePeriodSeconds must cover shutdownDelayMs + shutdownTimeoutMs',
    );
  });

  it('runs locked down: non-root as the image user, read-only root, no capabilities, resources set', () => {
    const uid = Number(/^USER (\d+):(\d+)$/m.exec(containerfile)?.[1]);
    assert.ok(uid > 0);
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.equal(pod.securityContext.runAsUser, uid);
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
    assert.ok(c.resources.requests.cpu && c.resources.requests.memory && c.resources.limits.memory);
    assert.equal(pod.automountServiceAccountToken, false);
  });
});

describe('deploy/Containerfile', () => {
  let server: FastifyInstance;
  let port = 0;
  const dir = mkdtempSync(join(tmpdir(), 'kapok-cf-'));
  before(async () => {
    server = Fastify();
    await probeRoutes(server, { region: 'guangzhou', health: new Health(), metrics: createMetrics() });
    server.get('/other', async () => ({}));
    await server.listen({ host: '127.0.0.1', port: 0 });
    port = (server.server.address() as AddressInfo).port;
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('compiles nothing, runs as a non-root user with /var/lib/kapok as the volume and dataDir', () => {
    assert.match(containerfile, /^ARG TARGETARCH$/m);
    const instructions = containerfile.replace(/^#.*\n/gm, '');
    assert.doesNotMatch(instructions, /\b(npm|npx|node-gyp|gcc|g\+\+|make|apt-get install|cmake)\b/);
    assert.match(containerfile, /^USER 10001:10001$/m);
    assert.match(containerfile, /^VOLUME \["\/var\/lib\/kapok"\]$/m);
    assert.match(containerfile, /^ENV KAPOK_DATA_DIR=\/var\/lib\/kapok$/m);
    const load = loadKapokConfig({ env: {}, cwd: dir }).config;
    const exposed = /^EXPOSE (.+)$/m.exec(containerfile)?.[1]?.split(' ').map(Number);
    assert.deepEqual(exposed, [load.http.port, load.grpc.port, load.edge.mqtt.port]);
  });

  it('unpacks the tarball of the target architecture and refuses others (the RUN step, in bash)', () => {
    const step = /^RUN set -eu;[^\n]*\\\n((?:.*\\\n)*.*\n)/m.exec(containerfile)?.[0];
    assert.ok(step, 'unpack step not found');
    const script = step
      .replace(/^RUN /, '')
      .replace(/\\\n/g, '\n')
      .replaceAll('/tmp/', `${dir}/in/`)
      .replaceAll('/opt/kapok', `${dir}/out`);
    mkdirSync(join(dir, 'in'));
    for (const arch of ['x64', 'arm64']) {
      const top = join(dir, 'pack', `kapok-0.1.0-linux-${arch}`, 'bin');
      mkdirSync(top, { recursive: true });
      writeFileSync(join(top, 'kapok'), `#!/bin/sh\necho ${arch}\n`, { mode: 0o755 });
      spawnSync('tar', [
        '-czf',
        join(dir, 'in', `kapok-0.1.0-linux-${arch}.tar.gz`),
        '-C',
        join(dir, 'pack'),
        `kapok-0.1.0-linux-${arch}`,
      ]);
    }
    const unpack = (targetArch: string) => {
      rmSync(join(dir, 'out'), { recursive: true, force: true });
      return spawnSync('bash', ['-c', script], {
        encoding: 'utf8',
        env: { ...process.env, TARGETARCH: targetArch, VERSION: '0.1.0' },
      });
    };
    for (const [target, arch] of [
      ['amd64', 'x64'],
      ['arm64', 'arm64'],
    ]) {
      const r = unpack(target as string);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(readFileSync(join(dir, 'out/bin/kapok'), 'utf8').trim().split('\n')[1], `echo ${arch}`);
    }
    const r = unpack('riscv64');
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /no Kapok release for riscv64/);
  });

  it('HEALTHCHECK passes on Kapok’s /healthz and fails where /healthz does not answer ok', async () => {
    const cmd = JSON.parse(/^ {2}CMD (\[.*\])$/m.exec(containerfile)?.[1] ?? 'null') as string[];
    assert.equal(cmd[0], 'bash');
    // Asynchronously: the probe server answers from this very process.
    const check = (p: number) =>
      new Promise<number | null>((done) => {
        const child = spawn(cmd[0] as string, cmd.slice(1), {
          env: { ...process.env, KAPOK_HTTP__PORT: String(p) },
          stdio: 'ignore',
        });
        child.on('exit', (code) => done(code));
      });
    assert.equal(await check(port), 0);
    assert.notEqual(await check(closedPort()), 0);
  });
});

/** A port nothing listens on: bound then released by the OS. */
function closedPort(): number {
  const r = spawnSync(
    process.execPath,
    [
      '-e',
      "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})",
    ],
    { encoding: 'utf8' },
  );
  return Number(r.stdout.trim());
}
