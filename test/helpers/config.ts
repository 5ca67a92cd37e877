import { CAPABILITIES, configSchema, type KapokConfig } from '../../src/config.js';

/** The capabilities a bare `kapok up` starts. */
const ON_BY_DEFAULT = CAPABILITIES.filter((c) => configSchema.parse({})[c].enabled);

/**
 * The config a test means: every capability is on by default (kapok up runs them all), so a test
 * starts only those it names. A section given without `enabled` stays off, as before the defaults
 * changed; `{ edge: { enabled: true, … } }` turns one on.
 */
export function testConfig(partial: Record<string, unknown> = {}): KapokConfig {
  const given: Record<string, unknown> = { ...partial };
  for (const name of CAPABILITIES)
    given[name] = { enabled: false, ...((partial[name] as Record<string, unknown> | undefined) ?? {}) };
  return configSchema.parse(given);
}

/** The same as KAPOK_* variables, for tests that spawn `kapok`: every capability off unless set. */
export const CAPABILITIES_OFF_ENV: Readonly<Record<string, string>> = Object.fromEntries(
  ON_BY_DEFAULT.map((c) => [`KAPOK_${c.toUpperCase()}__ENABLED`, 'false']),
);

/** YAML lines turning off every capability but `on` (for tests that write a config file). */
export function offYaml(...on: string[]): string[] {
  return ON_BY_DEFAULT.filter((c) => !on.includes(c)).map((c) => `${c}: { enabled: false }`);
}

/** Config sections turning off every capability that is on by default (spread, then name yours). */
export const ALL_OFF: Readonly<Record<string, { enabled: false }>> = Object.fromEntries(
  ON_BY_DEFAULT.map((c) => [c, { enabled: false }]),
);
