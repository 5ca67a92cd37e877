/**
 * The service registry port (docs/control.md#service-registry): each Kapok announces itself and sees
 * the others. Adapters: memory (one process; instances sharing one hub see each other) and etcd
 * (a key per instance under a lease: a killed instance disappears when its lease runs out).
 */
export interface InstanceInfo {
  /** Unique per running process (host, pid and a random part). */
  id: string;
  region: string;
  labels: Record<string, string>;
  /** Kapok's version. */
  version: string;
  /** Capabilities this instance runs. */
  capabilities: string[];
  /** Listening URLs; null when not served. */
  http: string | null;
  grpc: string | null;
  mqtt: string | null;
  /** ISO time the instance started. */
  startedAt: string;
  /** The configuration in force, published on every reload (`kapok config status`); absent before the first. */
  config?: InstanceConfigStatus;
}

/** What an instance says of its configuration: key paths and codes only, never a value. */
export interface InstanceConfigStatus {
  /** The revision of the configuration in force, per source (file, etcd). */
  revisions: number[];
  appliedAt: string | null;
  /** Keys whose new value waits for a restart. */
  pendingRestart: string[];
  /** The last rejected change, null after a change applied. */
  lastError: { code: string; message: string; at: string; revisions: number[] } | null;
  applied: number;
  rejected: number;
}

export interface RegistryStatus {
  kind: 'memory' | 'etcd';
  /** Registered and, for etcd, the lease alive and the watch running. */
  connected: boolean;
  detail?: string;
}

export interface Registry {
  /** Announces this instance and starts following the others. */
  register(self: InstanceInfo): Promise<void>;
  /** Replaces this instance's record (same id, same lease): its configuration status changed. */
  update(self: InstanceInfo): Promise<void>;
  /** Withdraws this instance at once (drain); the view of the others stays until close(). */
  deregister(): Promise<void>;
  /** Every registered instance (this one included while registered), by id. */
  list(): InstanceInfo[];
  status(): RegistryStatus;
  /** Deregisters if still registered, stops watching. */
  close(): Promise<void>;
}

const ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** A record as read from a backend: checked field by field, so a stray key cannot break the list. */
export function parseInstance(value: unknown): InstanceInfo | null {
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Record<string, unknown>;
  const str = (x: unknown) => typeof x === 'string';
  const urlOrNull = (x: unknown) => x === null || (str(x) && (x as string).length <= 512);
  if (!str(v.id) || !ID.test(v.id as string) || !str(v.region) || !str(v.version) || !str(v.startedAt))
    return null;
  if (!urlOrNull(v.http) || !urlOrNull(v.grpc) || !urlOrNull(v.mqtt)) return null;
  if (!Array.isArray(v.capabilities) || !v.capabilities.every(str)) return null;
  if (typeof v.labels !== 'object' || v.labels === null || !Object.values(v.labels).every(str)) return null;
  return {
    id: v.id as string,
    region: v.region as string,
    labels: { ...(v.labels as Record<string, string>) },
    version: v.version as string,
    capabilities: [...(v.capabilities as string[])],
    http: v.http as string | null,
    grpc: v.grpc as string | null,
    mqtt: v.mqtt as string | null,
    startedAt: v.startedAt as string,
    ...(configStatusOf(v.config) ? { config: configStatusOf(v.config) as InstanceConfigStatus } : {}),
  };
}

function configStatusOf(x: unknown): InstanceConfigStatus | null {
  if (typeof x !== 'object' || x === null) return null;
  const c = x as Record<string, unknown>;
  const nums = (a: unknown) => Array.isArray(a) && a.every((n) => typeof n === 'number');
  const strs = (a: unknown) => Array.isArray(a) && a.every((n) => typeof n === 'string');
  const e = c.lastError as Record<string, unknown> | null;
  const errOk =
    e === null ||
    (typeof e === 'object' &&
      typeof e.code === 'string' &&
      typeof e.message === 'string' &&
      typeof e.at === 'string' &&
      nums(e.revisions));
  if (!nums(c.revisions) || !strs(c.pendingRestart) || !errOk) return null;
  if (typeof c.applied !== 'number' || typeof c.rejected !== 'number') return null;
  if (c.appliedAt !== null && typeof c.appliedAt !== 'string') return null;
  return structuredClone(c) as unknown as InstanceConfigStatus;
}

export const byId = (a: InstanceInfo, b: InstanceInfo): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
