/**
 * The control capability's public surface: its factory and the hot-reload engine (wired by
 * src/app.ts), and what `kapok config` may call. Everything else in src/control is its own.
 */
export { createControl } from './capability.js';
export { etcdPrefix } from './config.js';
export { type LastGood, lastGoodFile, readLastGood, writeLastGood } from './last-good.js';
export { Reloader, type ReloaderOptions, type ReloadStatus } from './reload.js';
