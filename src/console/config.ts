import { z } from 'zod';

/**
 * The `console` section: the web console at /console (docs/console.md). On by default: it serves
 * only static files and a login; every piece of data it shows comes from the admin APIs, under the
 * same guard as for scripts (a session cookie stands in for the bearer token).
 */
export const consoleSchema = z.strictObject({
  /** Serve the console at /console and its live overview at /ws/console. */
  enabled: z.boolean().default(true),
  /** A session unused this long ends (minutes). */
  sessionIdleMinutes: z.number().int().min(1).max(1440).default(30),
  /** A session ends this long after login whatever its use (hours). */
  sessionMaxHours: z.number().int().min(1).max(168).default(12),
  /** Most live sessions; the least recently used one is ended beyond it. */
  maxSessions: z.number().int().min(1).max(100_000).default(1000),
  /** Mark the session cookie Secure (set it when browsers reach Kapok over HTTPS, e.g. a TLS proxy). */
  secureCookie: z.boolean().default(false),
  /** How often the overview's figures are sampled and pushed over /ws/console (ms). */
  pulseMs: z.number().int().min(500).max(60_000).default(2000),
  /** The built front end; null: dist/console beside the package. */
  assetsDir: z.string().min(1).nullable().default(null),
});

export type ConsoleConfig = z.infer<typeof consoleSchema>;
