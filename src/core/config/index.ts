export { ConfigError, type LoadedConfig, type LoadOptions, loadConfig } from './load.js';
export { CAPABILITIES, type CapabilityName, configSchema, type KapokConfig } from './schema.js';
export { leafPaths, redact } from './walk.js';
