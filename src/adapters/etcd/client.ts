import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { KapokError, messageOf } from '../../core/errors.js';

/**
 * A small etcd v3 client on @grpc/grpc-js and etcd's own wire messages (etcd.proto beside this
 * file). Chosen over the `etcd3` package because the control plane's correctness rests on what a
 * watch does when etcd compacts or restarts, and etcd3 loses the compact revision of a cancelled
 * watch and can go quiet without an error (microsoft/etcd3#31, #72, #78); here every watch ends in
 * exactly one `onEnd` call and the caller relists. grpc-js is already Kapok's gRPC library, so this
 * adds no dependency. Only the calls Kapok uses are here.
 */

export interface EtcdClientOptions {
  /** host:port or http://host:port endpoints; the first that answers is used (grpc picks). */
  endpoints: string[];
  /** Deadline of each unary call. */
  callTimeoutMs?: number;
}

export interface KeyValue {
  key: string;
  value: Buffer;
  createRevision: number;
  modRevision: number;
  version: number;
  lease: string;
}

export interface WatchEvent {
  type: 'put' | 'delete';
  kv: KeyValue;
}

export interface WatchHandle {
  cancel(): void;
}

export interface WatchListener {
  /** Events of one revision batch; `revision` is the response header's. */
  onEvents(events: WatchEvent[], revision: number): void;
  /**
   * The watch ended and will deliver nothing more: compacted (`compactRevision` > 0, the oldest
   * revision still held), cancelled by the server, or the stream failed. Called exactly once.
   */
  onEnd(reason: { compactRevision: number; error: string }): void;
}

// biome-ignore lint/suspicious/noExplicitAny: messages as proto-loader decodes them
type Msg = any;
type Unary = (req: Msg, o: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: Msg) => void) => void;

const LOADER: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

function protoPath(): string {
  const path = fileURLToPath(new URL('./etcd.proto', import.meta.url));
  if (!existsSync(path))
    throw new KapokError('KAPOK_START_FAILED', `${path} is missing: rebuild Kapok (npm run build)`);
  return path;
}

let services: Record<string, grpc.ServiceClientConstructor> | undefined;
function load(): Record<string, grpc.ServiceClientConstructor> {
  if (!services) {
    const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(protoPath(), LOADER)).etcdserverpb as Record<
      string,
      grpc.ServiceClientConstructor
    >;
    services = pkg;
  }
  return services;
}

/** The end of the range that holds every key starting with `prefix` (etcd's "prefix + 1"). */
export function prefixEnd(prefix: string): Buffer {
  const b = Buffer.from(prefix);
  for (let i = b.length - 1; i >= 0; i--) {
    if ((b[i] as number) < 0xff) {
      const end = b.subarray(0, i + 1);
      end[i] = (b[i] as number) + 1;
      return Buffer.from(end);
    }
  }
  return Buffer.from([0]);
}

const num = (v: string | number | undefined) => Number(v ?? 0);
function kvOf(m: Msg): KeyValue {
  return {
    key: Buffer.from(m.key).toString('utf8'),
    value: Buffer.from(m.value ?? []),
    createRevision: num(m.create_revision),
    modRevision: num(m.mod_revision),
    version: num(m.version),
    lease: String(m.lease ?? '0'),
  };
}

function target(endpoint: string): string {
  return endpoint.replace(/^https?:\/\//, '').replace(/\/+$/, '');
}

export interface EtcdClient {
  /**
   * Every key under prefix, and the store revision of the read; with `atRevision`, the keys as they
   * were then (etcd's MVCC: fails with KAPOK_CONTROL_ETCD_FAILED once that revision is compacted).
   */
  list(prefix: string, atRevision?: number): Promise<{ kvs: KeyValue[]; revision: number }>;
  get(key: string): Promise<KeyValue | null>;
  put(key: string, value: string | Buffer, lease?: string): Promise<number>;
  delete(key: string, prefix?: boolean): Promise<number>;
  /**
   * Writes `puts` and deletes `deletes` in one transaction if no key under `prefix` changed after
   * `revision` (compare-and-swap on the revision the writer read). Returns the new revision, or
   * null when someone else wrote first. `mustExist`: keys the writer saw, which must still be there
   * (a deletion leaves no mod revision to compare).
   */
  commitIfUnchanged(
    prefix: string,
    revision: number,
    puts: Array<[string, string]>,
    deletes: string[],
    mustExist?: string[],
  ): Promise<number | null>;
  compact(revision: number): Promise<void>;
  /** The current store revision (a cheap probe). */
  revision(): Promise<number>;
  watch(prefix: string, fromRevision: number, listener: WatchListener): WatchHandle;
  leaseGrant(ttlSeconds: number): Promise<{ id: string; ttl: number }>;
  leaseRevoke(id: string): Promise<void>;
  /** Keeps the lease alive every `everyMs`; `onLost` when a keepalive answers TTL 0 or the stream fails. */
  keepAlive(id: string, everyMs: number, onLost: (why: string) => void): { stop(): void };
  close(): void;
}

export function createEtcdClient(opts: EtcdClientOptions): EtcdClient {
  if (!Array.isArray(opts.endpoints) || opts.endpoints.length === 0)
    throw new KapokError('KAPOK_CONFIG_INVALID', 'etcd: endpoints needs at least one host:port');
  const svc = load();
  const addr = target(opts.endpoints[0] as string);
  const creds = grpc.credentials.createInsecure();
  // Reconnect quickly after an etcd restart; the defaults back off to 120 s.
  const chOpts: grpc.ChannelOptions = {
    'grpc.initial_reconnect_backoff_ms': 100,
    'grpc.max_reconnect_backoff_ms': 2000,
    'grpc.max_receive_message_length': 16 * 1024 * 1024,
  };
  const KV = svc.KV as grpc.ServiceClientConstructor;
  const kv = new KV(addr, creds, chOpts);
  const watchSvc = new (svc.Watch as grpc.ServiceClientConstructor)(addr, creds, chOpts);
  const lease = new (svc.Lease as grpc.ServiceClientConstructor)(addr, creds, chOpts);
  const maint = new (svc.Maintenance as grpc.ServiceClientConstructor)(addr, creds, chOpts);
  const timeout = opts.callTimeoutMs ?? 5000;

  function unary(client: grpc.Client, method: string, req: Msg): Promise<Msg> {
    return new Promise((resolve, reject) => {
      const fn = (client as unknown as Record<string, Unary>)[method] as Unary;
      fn.call(client, req, { deadline: Date.now() + timeout }, (err, res) => {
        if (err) reject(etcdError(method, addr, err));
        else resolve(res);
      });
    });
  }

  return {
    async list(prefix, atRevision) {
      const res = await unary(kv, 'Range', {
        key: Buffer.from(prefix),
        range_end: prefixEnd(prefix),
        ...(atRevision ? { revision: String(atRevision) } : {}),
      });
      return { kvs: (res.kvs as Msg[]).map(kvOf), revision: num(res.header?.revision) };
    },
    async get(key) {
      const res = await unary(kv, 'Range', { key: Buffer.from(key) });
      const first = (res.kvs as Msg[])[0];
      return first ? kvOf(first) : null;
    },
    async put(key, value, leaseId) {
      const res = await unary(kv, 'Put', {
        key: Buffer.from(key),
        value: Buffer.from(value),
        lease: leaseId ?? '0',
      });
      return num(res.header?.revision);
    },
    async delete(key, prefix = false) {
      const res = await unary(kv, 'DeleteRange', {
        key: Buffer.from(key),
        ...(prefix ? { range_end: prefixEnd(key) } : {}),
      });
      return num(res.header?.revision);
    },
    async commitIfUnchanged(prefix, revision, puts, deletes, mustExist = []) {
      const res = await unary(kv, 'Txn', {
        // No key under the prefix was modified after `revision`: max mod_revision < revision + 1.
        compare: [
          {
            result: 'LESS',
            target: 'MOD',
            key: Buffer.from(prefix),
            range_end: prefixEnd(prefix),
            mod_revision: String(revision + 1),
          },
          ...mustExist.map((k) => ({
            result: 'GREATER',
            target: 'VERSION',
            key: Buffer.from(k),
            version: '0',
          })),
        ],
        success: [
          ...puts.map(([k, v]) => ({ request_put: { key: Buffer.from(k), value: Buffer.from(v) } })),
          ...deletes.map((k) => ({ request_delete_range: { key: Buffer.from(k) } })),
        ],
        failure: [],
      });
      return res.succeeded ? num(res.header?.revision) : null;
    },
    async compact(revision) {
      await unary(kv, 'Compact', { revision: String(revision), physical: true });
    },
    async revision() {
      const res = await unary(maint, 'Status', {});
      return num(res.header?.revision);
    },
    watch(prefix, fromRevision, listener) {
      const call = (watchSvc as unknown as { Watch(): grpc.ClientDuplexStream<Msg, Msg> }).Watch();
      let ended = false;
      const end = (compactRevision: number, error: string) => {
        if (ended) return;
        ended = true;
        call.removeAllListeners('data');
        call.on('error', () => {});
        call.cancel();
        listener.onEnd({ compactRevision, error });
      };
      call.on('data', (res: Msg) => {
        if (ended) return;
        const compactRevision = num(res.compact_revision);
        if (res.canceled || compactRevision > 0) {
          end(compactRevision, res.cancel_reason || (compactRevision ? 'compacted' : 'cancelled by etcd'));
          return;
        }
        const events = res.events as Msg[];
        if (events.length)
          listener.onEvents(
            events.map((e) => ({ type: e.type === 'DELETE' ? 'delete' : 'put', kv: kvOf(e.kv) })),
            num(res.header?.revision),
          );
      });
      call.on('error', (err: grpc.ServiceError) => end(0, `${err.code}: ${err.details || err.message}`));
      call.on('end', () => end(0, 'watch stream ended'));
      call.write({
        create_request: {
          key: Buffer.from(prefix),
          range_end: prefixEnd(prefix),
          start_revision: String(fromRevision),
          progress_notify: true,
        },
      });
      return { cancel: () => end(0, 'cancelled') };
    },
    async leaseGrant(ttlSeconds) {
      const res = await unary(lease, 'LeaseGrant', { TTL: String(ttlSeconds), ID: '0' });
      if (res.error) throw new KapokError('KAPOK_CONTROL_ETCD_UNAVAILABLE', `etcd lease grant: ${res.error}`);
      return { id: String(res.ID), ttl: num(res.TTL) };
    },
    async leaseRevoke(id) {
      await unary(lease, 'LeaseRevoke', { ID: id });
    },
    keepAlive(id, everyMs, onLost) {
      let stopped = false;
      const call = (
        lease as unknown as { LeaseKeepAlive(): grpc.ClientDuplexStream<Msg, Msg> }
      ).LeaseKeepAlive();
      const lost = (why: string) => {
        if (stopped) return;
        stop();
        onLost(why);
      };
      call.on('data', (res: Msg) => {
        if (num(res.TTL) <= 0) lost('lease expired');
      });
      call.on('error', (err: grpc.ServiceError) => lost(err.details || err.message));
      call.on('end', () => lost('keepalive stream ended'));
      const ping = () => call.write({ ID: id });
      ping();
      const timer = setInterval(ping, everyMs);
      timer.unref();
      const stop = () => {
        stopped = true;
        clearInterval(timer);
        call.removeAllListeners('data');
        call.on('error', () => {});
        call.cancel();
      };
      return { stop };
    },
    close() {
      for (const c of [kv, watchSvc, lease, maint]) c.close();
    },
  };
}

/** A gRPC failure as a catalogue error naming the endpoint, never a value. */
function etcdError(method: string, addr: string, err: grpc.ServiceError): KapokError {
  const unavailable = [grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED].includes(err.code);
  return new KapokError(
    unavailable ? 'KAPOK_CONTROL_ETCD_UNAVAILABLE' : 'KAPOK_CONTROL_ETCD_FAILED',
    `etcd at ${addr}: ${method} failed (${messageOf(err)})${unavailable ? ': check that etcd runs there and control.etcd.endpoints' : ''}`,
    { cause: err },
  );
}
