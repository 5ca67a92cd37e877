import type { ResourceRef } from '../ports/kubernetes.js';

/** The resources the operator reads and writes, and the names it marks them with. */
export const AIJOBS: ResourceRef = {
  group: 'kapok.io',
  version: 'v1alpha1',
  plural: 'aijobs',
  kind: 'AIJob',
  namespaced: true,
};
export const PODS: ResourceRef = { group: '', version: 'v1', plural: 'pods', kind: 'Pod', namespaced: true };
export const NODES: ResourceRef = {
  group: '',
  version: 'v1',
  plural: 'nodes',
  kind: 'Node',
  namespaced: false,
};
export const LEASES: ResourceRef = {
  group: 'coordination.k8s.io',
  version: 'v1',
  plural: 'leases',
  kind: 'Lease',
  namespaced: true,
};

/** Holds an AIJob until its Pods are deleted. */
export const FINALIZER = 'kapok.io/worker-pods';
/** Pod labels: the AIJob's name (selector for its Pods) and that Pods are the operator's. */
export const LABEL_JOB = 'kapok.io/aijob';
export const LABEL_MANAGED = 'app.kubernetes.io/managed-by';
export const MANAGER = 'kapok-operator';
/** Pod annotations with the exact task name (labels cannot hold every task name) and attempt. */
export const ANNOTATION_TASK = 'kapok.io/task';
export const ANNOTATION_ATTEMPT = 'kapok.io/attempt';
