/**
 * The saga capability's public surface: its factory (wired by src/app.ts) and what `kapok saga`
 * may call. The barrier helper for branch services is src/saga/barrier.ts (package export
 * `kapok/saga-barrier`). Everything else in src/saga is its own.
 */
export {
  compensateTransaction,
  LIST_STATES,
  listDeadLetters,
  listTransactions,
  retryTransaction,
  showTransaction,
  skipOperation,
} from './admin.js';
export { createSaga, type SagaDeps } from './capability.js';
export { SAGA_MIGRATIONS } from './migrations.js';
