/**
 * The inference capability's public surface. Inside: protocol/ (OIP REST and gRPC, request bodies),
 * tensors/ (datatypes, JSON and raw tensor forms), models/ (the repository: scan, config.yaml,
 * checksums, loading and hot update), execution/ (a version's worker threads, queue and batching).
 */
export { createInference } from './capability.js';
