import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Ajv } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { jsonPatch, mergePatch, PatchError } from './patch.js';
import {
  BUILTIN,
  groupList,
  keyOf,
  openApiV3GroupVersion,
  openApiV3Root,
  type ResourceType,
  resourceList,
  status,
  typesOfCrd,
} from './resources.js';
import { parseFieldSelector, parseLabelSelector, SelectorError } from './selectors.js';
import { ApiError, type Obj, ObjectStore, type Watcher } from './store.js';

/**
 * A Kubernetes API server for tests (never shipped): the REST surface client-node and kubectl use,
 * over plain HTTP. What it does not do: authentication and RBAC, admission, protobuf, strategic
 * merge on custom resources (refused with 415, as kube-apiserver does), field ownership in
 * server-side apply (an apply merges into the object; conflicts are not detected).
 */

export interface KubeApiServerOptions {
  /** How often a watch with allowWatchBookmarks gets a BOOKMARK. */
  bookmarkMs?: number;
  /** Events kept for watches to resume from; older ones answer 410 Gone. */
  maxLog?: number;
}

interface Target {
  res: string;
  type: ResourceType;
  namespace: string | null;
  name: string | null;
  sub: 'status' | null;
}

const MAX_BODY = 3 * 1024 * 1024;

export class KubeApiServer {
  readonly store: ObjectStore;
  readonly server: Server;
  /** Requests by `VERB resource` (watch and list apart), for counting what a client costs. */
  readonly requests = new Map<string, number>();
  private readonly streams = new Set<ServerResponse>();
  private readonly sockets = new Set<Socket>();
  private readonly ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  private readonly validators = new Map<string, (o: unknown) => string[]>();

  constructor(private readonly opts: KubeApiServerOptions = {}) {
    this.store = new ObjectStore(BUILTIN, opts.maxLog, (crd, deleted) => {
      if (deleted) return;
      for (const t of typesOfCrd(crd)) {
        this.store.addType(t);
        if (t.schema) this.validators.set(keyOf(t.group, t.version, t.plural), this.compile(t.schema));
      }
    });
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err) => this.fail(res, err));
    });
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  /** Validates with the CRD's structural schema; the x-kubernetes-* extensions are not checked. */
  private compile(schema: unknown): (o: unknown) => string[] {
    const v = this.ajv.compile(schema as object);
    return (o) =>
      v(o)
        ? []
        : (v.errors ?? []).map(
            (e) => `${e.instancePath.replace(/\//g, '.').slice(1) || '<root>'}: ${e.message}`,
          );
  }

  /** Ends every open watch by resetting its connection (a dropped watch, as a proxy or LB does). */
  dropWatches(): number {
    const n = this.streams.size;
    for (const r of this.streams) r.socket?.destroy();
    this.streams.clear();
    return n;
  }

  openWatches(): number {
    return this.streams.size;
  }

  count(verb: string, res: string): void {
    const k = `${verb} ${res}`;
    this.requests.set(k, (this.requests.get(k) ?? 0) + 1);
  }

  totalRequests(filter: (key: string) => boolean = () => true): number {
    let n = 0;
    for (const [k, v] of this.requests) if (filter(k)) n += v;
    return n;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((ok) => this.server.close(() => ok()));
  }

  private fail(res: ServerResponse, err: unknown) {
    if (res.headersSent) return void res.destroy();
    if (err instanceof ApiError) return this.send(res, err.code, status(err.code, err.reason, err.message));
    if (err instanceof PatchError || err instanceof SelectorError)
      return this.send(res, 400, status(400, 'BadRequest', err.message));
    this.send(res, 500, status(500, 'InternalError', String(err)));
  }

  private send(res: ServerResponse, code: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private async body(req: IncomingMessage): Promise<string> {
    let size = 0;
    const chunks: Buffer[] = [];
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > MAX_BODY) throw new ApiError(413, 'RequestEntityTooLarge', 'request body too large');
      chunks.push(c as Buffer);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  private parseBody(text: string, contentType: string): Obj {
    try {
      return contentType.includes('yaml') ? (parseYaml(text) as Obj) : (JSON.parse(text) as Obj);
    } catch (err) {
      throw new ApiError(400, 'BadRequest', `could not decode the body: ${(err as Error).message}`);
    }
  }

  private target(path: string): Target | null {
    const segs = path.split('/').filter(Boolean).map(decodeURIComponent);
    let group = '';
    let version: string;
    let rest: string[];
    if (segs[0] === 'api') [version, rest] = [segs[1] as string, segs.slice(2)];
    else if (segs[0] === 'apis')
      [group, version, rest] = [segs[1] as string, segs[2] as string, segs.slice(3)];
    else return null;
    let namespace: string | null = null;
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      namespace = rest[1] as string;
      rest = rest.slice(2);
    }
    const res = keyOf(group, version, rest[0] ?? '');
    const type = this.store.types.get(res);
    if (!type || rest.length > 3) return null;
    if (rest[2] !== undefined && rest[2] !== 'status') return null;
    return {
      res,
      type,
      namespace: type.namespaced ? namespace : null,
      name: rest[1] ?? null,
      sub: rest[2] ? 'status' : null,
    };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const q = url.searchParams;
    const method = req.method ?? 'GET';
    const types = [...this.store.types.values()];
    if (method === 'GET') {
      if (url.pathname === '/version')
        return this.send(res, 200, {
          major: '1',
          minor: '32',
          gitVersion: 'v1.32.0-kapok-test',
          platform: 'linux/amd64',
        });
      if (url.pathname === '/api')
        return this.send(res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] });
      if (url.pathname === '/apis') return this.send(res, 200, groupList(types));
      if (url.pathname === '/openapi/v3') return this.send(res, 200, openApiV3Root(types));
      if (url.pathname.startsWith('/openapi/v3/'))
        return this.send(res, 200, openApiV3GroupVersion(url.pathname.slice('/openapi/v3/'.length), types));
      const gv = /^\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))\/?$/.exec(url.pathname);
      if (gv) {
        const [group, version] = gv[1] ? ['', 'v1'] : [gv[2] as string, gv[3] as string];
        const of = types.filter((t) => t.group === group && t.version === version);
        if (!of.length)
          return this.send(
            res,
            404,
            status(404, 'NotFound', 'the server could not find the requested resource'),
          );
        return this.send(res, 200, resourceList(group ? `${group}/${version}` : version, of));
      }
    }
    const t = this.target(url.pathname);
    if (!t) {
      this.count(method, url.pathname);
      return this.send(res, 404, status(404, 'NotFound', 'the server could not find the requested resource'));
    }
    const watching = q.get('watch') === 'true' || q.get('watch') === '1';
    this.count(watching ? 'WATCH' : t.name === null && method === 'GET' ? 'LIST' : method, t.type.plural);
    if (method === 'GET' && t.name === null)
      return watching ? this.watch(req, res, t, q) : this.list(req, res, t, q);
    if (method === 'GET') return this.send(res, 200, this.store.get(t.res, t.namespace, t.name as string));
    if (method === 'DELETE' && t.name === null) {
      const match = this.matcher(q);
      const gone = this.store
        .list(t.res, t.namespace, match)
        .map((o) => this.store.delete(t.res, t.namespace, o.metadata.name));
      return this.send(res, 200, { kind: `${t.type.kind}List`, apiVersion: 'v1', metadata: {}, items: gone });
    }
    if (method === 'DELETE') {
      const o = this.store.delete(t.res, t.namespace, t.name as string);
      return this.send(res, 200, o);
    }
    const ct = String(req.headers['content-type'] ?? 'application/json');
    const body = this.parseBody(await this.body(req), ct);
    if (method === 'POST' && t.name === null) {
      this.validate(t, body);
      return this.send(res, 201, this.store.create(t.res, t.namespace, body));
    }
    if (t.name === null)
      throw new ApiError(405, 'MethodNotAllowed', `${method} is not allowed on a collection`);
    if (method === 'PUT') {
      this.validate(t, body);
      return this.send(res, 200, this.store.update(t.res, t.namespace, t.name, body, t.sub));
    }
    if (method === 'PATCH') return this.patch(res, t, ct, body);
    throw new ApiError(405, 'MethodNotAllowed', `${method} is not allowed`);
  }

  private validate(t: Target, body: Obj): void {
    const v = this.validators.get(t.res);
    const problems = v ? v({ ...body, metadata: undefined }) : [];
    if (problems.length)
      throw new ApiError(
        422,
        'Invalid',
        `${t.type.kind}.${t.type.group} "${body.metadata?.name ?? ''}" is invalid: ${problems.join(', ')}`,
      );
  }

  private patch(res: ServerResponse, t: Target, ct: string, body: Obj) {
    const name = t.name as string;
    if (ct.startsWith('application/apply-patch')) {
      let current: Obj | null = null;
      try {
        current = this.store.get(t.res, t.namespace, name);
      } catch (err) {
        if (!(err instanceof ApiError && err.code === 404)) throw err;
      }
      if (!current) {
        this.validate(t, body);
        return this.send(
          res,
          201,
          this.store.create(t.res, t.namespace, { ...body, metadata: { ...body.metadata, name } }),
        );
      }
      const merged = mergePatch(current, body) as Obj;
      merged.metadata.resourceVersion = current.metadata.resourceVersion;
      this.validate(t, merged);
      return this.send(res, 200, this.store.update(t.res, t.namespace, name, merged, t.sub));
    }
    const current = this.store.get(t.res, t.namespace, name);
    let next: Obj;
    if (ct.startsWith('application/merge-patch+json')) next = mergePatch(current, body) as Obj;
    else if (ct.startsWith('application/json-patch+json')) next = jsonPatch(current, body) as Obj;
    else if (ct.startsWith('application/strategic-merge-patch+json')) {
      if (t.type.group && !['coordination.k8s.io'].includes(t.type.group))
        throw new ApiError(
          415,
          'UnsupportedMediaType',
          'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml',
        );
      next = mergePatch(current, body) as Obj; // strategic merge on built-ins: merge semantics only
    } else throw new ApiError(415, 'UnsupportedMediaType', `unsupported patch type ${ct}`);
    // A patch without a resourceVersion applies to the latest object; one with it is conditional.
    if (next.metadata?.resourceVersion === undefined)
      next.metadata = { ...next.metadata, resourceVersion: current.metadata.resourceVersion };
    this.validate(t, next);
    this.send(res, 200, this.store.update(t.res, t.namespace, name, next, t.sub));
  }

  private matcher(q: URLSearchParams): (o: Obj) => boolean {
    const labels = parseLabelSelector(q.get('labelSelector'));
    const fields = parseFieldSelector(q.get('fieldSelector'));
    return (o) => labels(o.metadata?.labels) && fields(o);
  }

  private list(req: IncomingMessage, res: ServerResponse, t: Target, q: URLSearchParams) {
    const items = this.store.list(t.res, t.namespace, this.matcher(q));
    const rv = String(this.store.rv);
    const accept = String(req.headers.accept ?? '');
    if (accept.includes('as=Table') && t.type.printerColumns?.length)
      return this.send(res, 200, this.table(t.type, items, rv));
    this.send(res, 200, {
      kind: `${t.type.kind}List`,
      apiVersion: t.type.group ? `${t.type.group}/${t.type.version}` : 'v1',
      metadata: { resourceVersion: rv },
      items,
    });
  }

  /** The Table kubectl prints, from the CRD's printer columns (simple .a.b paths). */
  private table(type: ResourceType, items: Obj[], rv: string): Obj {
    const cols = [
      { name: 'Name', type: 'string', jsonPath: '.metadata.name' },
      ...(type.printerColumns ?? []),
    ];
    const read = (o: Obj, p: string) => {
      const v = p
        .split('.')
        .filter(Boolean)
        .reduce<unknown>((x, k) => (x as Obj | undefined)?.[k], o);
      return v ?? null;
    };
    return {
      kind: 'Table',
      apiVersion: 'meta.k8s.io/v1',
      metadata: { resourceVersion: rv },
      columnDefinitions: cols.map((c) => ({
        name: c.name,
        type: c.type === 'date' ? 'string' : c.type,
        format: c.name === 'Name' ? 'name' : '',
        description: '',
        priority: 0,
      })),
      rows: items.map((o) => ({
        cells: cols.map((c) => {
          const v = read(o, c.jsonPath);
          if (c.type === 'date' && typeof v === 'string') return ageOf(v);
          return v;
        }),
        object: { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata },
      })),
    };
  }

  private watch(req: IncomingMessage, res: ServerResponse, t: Target, q: URLSearchParams): void {
    const match = this.matcher(q);
    const from = q.get('resourceVersion');
    const bookmarks = q.get('allowWatchBookmarks') === 'true';
    const asTable =
      String(req.headers.accept ?? '').includes('as=Table') && (t.type.printerColumns?.length ?? 0) > 0;
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders(); // a watch is open once its headers are out, before any event
    const write = (type: string, object: Obj) => {
      const obj =
        asTable && type !== 'BOOKMARK' && type !== 'ERROR'
          ? this.table(t.type, [object], object.metadata.resourceVersion)
          : object;
      res.write(`${JSON.stringify({ type, object: obj })}\n`);
    };
    const w: Watcher = { res: t.res, namespace: t.namespace, matches: match, send: write };
    if (!from || from === '0') {
      for (const o of this.store.list(t.res, t.namespace, match)) write('ADDED', o);
    } else {
      try {
        for (const e of this.store.since(t.res, Number(from))) {
          if (t.namespace !== null && e.object.metadata.namespace !== t.namespace) continue;
          const now = match(e.object);
          const before = e.old ? match(e.old) : false;
          if (e.type === 'MODIFIED' && !now && before) write('DELETED', e.object);
          else if (now) write(e.type === 'MODIFIED' && !before ? 'ADDED' : e.type, e.object);
        }
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        write('ERROR', status(err.code, err.reason, err.message));
        return void res.end();
      }
    }
    this.store.watchers.add(w);
    this.streams.add(res);
    const timers: NodeJS.Timeout[] = [];
    if (bookmarks)
      timers.push(
        setInterval(() => {
          const apiVersion = t.type.group ? `${t.type.group}/${t.type.version}` : 'v1';
          write('BOOKMARK', {
            kind: t.type.kind,
            apiVersion,
            metadata: { resourceVersion: String(this.store.rv) },
          });
        }, this.opts.bookmarkMs ?? 1000),
      );
    const timeout = Number(q.get('timeoutSeconds') ?? 0);
    if (timeout > 0) timers.push(setTimeout(() => res.end(), timeout * 1000));
    const done = () => {
      this.store.watchers.delete(w);
      this.streams.delete(res);
      for (const x of timers) clearTimeout(x);
    };
    res.on('close', done);
    req.on('close', done);
  }
}

function ageOf(ts: string): string {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(ts)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  return `${Math.floor(s / 3600)}h`;
}
