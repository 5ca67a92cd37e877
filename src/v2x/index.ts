/**
 * The v2x capability's public surface: its factory (wired by src/app.ts) and the traffic simulator
 * `kapok v2x simulate` runs. Everything else in src/v2x is the capability's own.
 */
export { createV2x } from './capability.js';
export { builtinScenarios } from './sim/builtin.js';
export { loadScenarios, type Scenario } from './sim/scenario.js';
export { simulate } from './sim/simulate.js';
