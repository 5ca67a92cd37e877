export { diffPaths, keepPaths } from './diff.js';
export {
  ConfigError,
  type ConfigSpec,
  type LoadedConfig,
  type LoadOptions,
  loadConfig,
  readConfigFile,
} from './load.js';
export { checkPlatform, type PlatformConfig, platformConfigSchema, platformShape } from './platform.js';
export { secret, secretSchemas } from './secret.js';
export { leafPaths, redact } from './walk.js';
