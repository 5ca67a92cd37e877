/**
 * The edge capability's public surface: its factory (wired by src/app.ts, which builds its sinks and
 * spool storage) and the dead-letter replay `kapok edge replay-dead-letters` runs. Everything else
 * in src/edge is the capability's own.
 */
export { createEdge, type EdgeDeps } from './capability.js';
export { replayDeadLetters } from './replay.js';
