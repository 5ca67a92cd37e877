/** The web console's public surface: its factory (wired by src/app.ts). */
export { createConsole } from './capability.js';
export type { ConsoleConfig } from './config.js';
export { createSessions, type SessionOptions } from './sessions.js';
