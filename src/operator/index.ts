/**
 * The AIJob Kubernetes operator's public surface: its factory (wired by src/app.ts with a
 * Kubernetes client and the jobs capability's model) and its config.
 */
export { createOperator, type OperatorDeps } from './capability.js';
export type { OperatorConfig } from './config.js';
export { AIJOBS, FINALIZER } from './resources.js';
