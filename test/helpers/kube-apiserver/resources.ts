/**
 * The resource types the test API server serves and the discovery documents kubectl and
 * client-node read: /api, /apis, /api/v1 and /apis/<group>/<version> (legacy discovery; kubectl
 * falls back to it when the aggregated form is not offered). Custom resources are added by creating
 * a CustomResourceDefinition, as on a real server.
 */

export interface ResourceType {
  group: string;
  version: string;
  kind: string;
  plural: string;
  singular: string;
  namespaced: boolean;
  /** A /status subresource: the main endpoint ignores status, /status ignores everything else. */
  statusSubresource: boolean;
  shortNames?: string[];
  /** OpenAPI v3 schema of a custom resource (validated on create and update). */
  schema?: unknown;
  printerColumns?: Array<{ name: string; type: string; jsonPath: string }>;
}

export const apiVersionOf = (r: ResourceType) => (r.group ? `${r.group}/${r.version}` : r.version);
export const keyOf = (group: string, version: string, plural: string) => `${group}/${version}/${plural}`;

export const BUILTIN: ResourceType[] = [
  {
    group: '',
    version: 'v1',
    kind: 'Pod',
    plural: 'pods',
    singular: 'pod',
    namespaced: true,
    statusSubresource: true,
    shortNames: ['po'],
  },
  {
    group: '',
    version: 'v1',
    kind: 'Node',
    plural: 'nodes',
    singular: 'node',
    namespaced: false,
    statusSubresource: true,
    shortNames: ['no'],
  },
  {
    group: '',
    version: 'v1',
    kind: 'Namespace',
    plural: 'namespaces',
    singular: 'namespace',
    namespaced: false,
    statusSubresource: true,
    shortNames: ['ns'],
  },
  {
    group: 'coordination.k8s.io',
    version: 'v1',
    kind: 'Lease',
    plural: 'leases',
    singular: 'lease',
    namespaced: true,
    statusSubresource: false,
  },
  {
    group: 'apiextensions.k8s.io',
    version: 'v1',
    kind: 'CustomResourceDefinition',
    plural: 'customresourcedefinitions',
    singular: 'customresourcedefinition',
    namespaced: false,
    statusSubresource: true,
    shortNames: ['crd'],
  },
];

interface CrdVersion {
  name: string;
  served?: boolean;
  schema?: { openAPIV3Schema?: unknown };
  subresources?: { status?: unknown };
  additionalPrinterColumns?: Array<{ name: string; type: string; jsonPath: string }>;
}

/** The resource types a CustomResourceDefinition object declares (one per served version). */
export function typesOfCrd(crd: Record<string, unknown>): ResourceType[] {
  const spec = crd.spec as {
    group: string;
    scope: string;
    names: { kind: string; plural: string; singular?: string; shortNames?: string[] };
    versions: CrdVersion[];
  };
  return spec.versions
    .filter((v) => v.served !== false)
    .map((v) => ({
      group: spec.group,
      version: v.name,
      kind: spec.names.kind,
      plural: spec.names.plural,
      singular: spec.names.singular ?? spec.names.kind.toLowerCase(),
      namespaced: spec.scope === 'Namespaced',
      statusSubresource: v.subresources?.status !== undefined,
      shortNames: spec.names.shortNames ?? [],
      schema: v.schema?.openAPIV3Schema,
      printerColumns: v.additionalPrinterColumns ?? [],
    }));
}

const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

export function resourceList(groupVersion: string, types: ResourceType[]) {
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion,
    resources: types.flatMap((r) => [
      {
        name: r.plural,
        singularName: r.singular,
        namespaced: r.namespaced,
        kind: r.kind,
        verbs: VERBS,
        shortNames: r.shortNames ?? [],
      },
      ...(r.statusSubresource
        ? [
            {
              name: `${r.plural}/status`,
              singularName: '',
              namespaced: r.namespaced,
              kind: r.kind,
              verbs: ['get', 'patch', 'update'],
            },
          ]
        : []),
    ]),
  };
}

export function groupList(types: ResourceType[]) {
  const groups = new Map<string, Set<string>>();
  for (const r of types) if (r.group) groups.set(r.group, (groups.get(r.group) ?? new Set()).add(r.version));
  return {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: [...groups].map(([name, versions]) => {
      const vs = [...versions].map((version) => ({ groupVersion: `${name}/${version}`, version }));
      return { name, versions: vs, preferredVersion: vs[0] };
    }),
  };
}

/** A metav1.Status answer. */
export function status(code: number, reason: string, message: string, details?: Record<string, unknown>) {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: code < 400 ? 'Success' : 'Failure',
    message,
    reason,
    code,
    ...(details ? { details } : {}),
  };
}

/**
 * The OpenAPI v3 discovery kubectl reads before apply: it sends `fieldValidation=Strict` (and
 * skips its own schema check) for a kind whose PATCH operation lists that parameter.
 */
export function openApiV3Root(types: ResourceType[]) {
  const gvs = new Set(types.map((t) => (t.group ? `apis/${t.group}/${t.version}` : `api/${t.version}`)));
  return {
    paths: Object.fromEntries([...gvs].map((gv) => [gv, { serverRelativeURL: `/openapi/v3/${gv}` }])),
  };
}

export function openApiV3GroupVersion(gv: string, types: ResourceType[]) {
  const of = types.filter((t) => (t.group ? `apis/${t.group}/${t.version}` : `api/${t.version}`) === gv);
  const paths: Record<string, unknown> = {};
  for (const t of of) {
    const base = `/${gv}${t.namespaced ? '/namespaces/{namespace}' : ''}/${t.plural}/{name}`;
    paths[base] = {
      patch: {
        'x-kubernetes-group-version-kind': { group: t.group, version: t.version, kind: t.kind },
        parameters: [{ name: 'fieldValidation', in: 'query', schema: { type: 'string' } }],
        responses: { '200': { description: 'OK' } },
      },
    };
  }
  return {
    openapi: '3.0.0',
    info: { title: 'Kubernetes (test API server)', version: 'v1.32.0' },
    paths,
    components: { schemas: {} },
  };
}
