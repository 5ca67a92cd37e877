/**
 * The Kubernetes API as the operator needs it: typed-enough objects, CRUD with optimistic
 * concurrency, and informers (list + watch kept in a local cache). The adapter
 * (adapters/kubernetes/) speaks to the API server through @kubernetes/client-node; errors come out
 * as KapokError KAPOK_OPERATOR_API with `details.status` (409 conflict, 404 not found, ...).
 */

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  // biome-ignore lint/suspicious/noExplicitAny: spec and status are per resource; readers narrow them.
  spec?: any;
  // biome-ignore lint/suspicious/noExplicitAny: as above.
  status?: any;
}

/** Where a resource lives in the API: group '' is the core group (/api/v1). */
export interface ResourceRef {
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface InformerOptions {
  /** Only this namespace (null: all). */
  namespace?: string | null;
  labelSelector?: string;
}

export interface InformerStats {
  /** Full lists done (the first one, and one after each 410 Gone or failed resume). */
  lists: number;
  /** Watch requests opened (resumed from the last resourceVersion seen). */
  watches: number;
  /** Watches that ended by an error, a reset or a silence longer than the idle limit. */
  watchErrors: number;
}

export interface Informer<T extends KubeObject> {
  /** Resolves after the first list is in the cache. */
  readonly synced: Promise<void>;
  list(): T[];
  get(namespace: string | null, name: string): T | undefined;
  readonly stats: InformerStats;
  stop(): void;
}

/** Called for each change the cache takes in (after a relist: for every object added, changed or gone). */
export type InformerHandler<T extends KubeObject> = (type: WatchEventType, obj: T) => void;

export interface KubeClient {
  inform<T extends KubeObject>(r: ResourceRef, o: InformerOptions, on: InformerHandler<T>): Informer<T>;
  get<T extends KubeObject>(r: ResourceRef, namespace: string | null, name: string): Promise<T | null>;
  create<T extends KubeObject>(r: ResourceRef, namespace: string | null, obj: T): Promise<T>;
  /** PUT: fails with status 409 when obj.metadata.resourceVersion is stale. */
  replace<T extends KubeObject>(r: ResourceRef, namespace: string | null, obj: T): Promise<T>;
  /** JSON merge patch of the object or its /status (a metadata.resourceVersion in it makes it conditional). */
  mergePatch<T extends KubeObject>(
    r: ResourceRef,
    namespace: string | null,
    name: string,
    patch: unknown,
    subresource?: 'status',
  ): Promise<T>;
  /** Deletes one object; an absent one is not an error. */
  delete(r: ResourceRef, namespace: string | null, name: string): Promise<void>;
  /** Deletes every object matching the label selector in one request. */
  deleteCollection(r: ResourceRef, namespace: string, labelSelector: string): Promise<void>;
  /** Requests sent so far (for the API-requests-per-job figure). */
  readonly requests: number;
  close(): void;
}
