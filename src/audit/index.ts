/**
 * The audit capability's public surface: its factory (wired by src/app.ts) and what `kapok audit`
 * and the other commands (recording their acts) may call. Everything else in src/audit is its own.
 */
export { createAudit } from './capability.js';
export { type AuditEntry, type Checkpoint, chainHash, GENESIS_HASH } from './chain.js';
export { exportLines, verifyExport } from './export.js';
export { AUDIT_MIGRATIONS } from './migrations.js';
export { queryEntries, verifyStore } from './reader.js';
export { type Envelope, envelopeAad } from './ship.js';
export { openAuditTrail } from './trail.js';
export type { VerifyResult } from './verify.js';
