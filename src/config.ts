import { z } from 'zod';
import {
  type ConfigSpec,
  checkPlatform,
  type LoadedConfig,
  type LoadOptions,
  loadConfig,
  type PlatformConfig,
  platformShape,
} from './core/config/index.js';
import { edgeSchema } from './edge/config.js';
import { gatewaySchema, resolveGatewayEnvRefs } from './gateway/config.js';
import { gmSchema } from './gm/config.js';
import { inferenceSchema } from './inference/config.js';
import { v2xSchema } from './v2x/config.js';

/**
 * The one configuration schema, composed here beside the wiring point (src/app.ts): the platform's
 * sections from core, one section per capability, and the rules that span sections. Core knows no
 * capability; a capability knows only its own section.
 */

export const configSchema = z
  .strictObject({
    ...platformShape,
    gateway: gatewaySchema.prefault({}),
    inference: inferenceSchema.prefault({}),
    edge: edgeSchema.prefault({}),
    v2x: v2xSchema.prefault({}),
    gm: gmSchema.prefault({}),
  })
  .superRefine((c, ctx) => {
    checkPlatform(c, ctx);
    if (c.v2x.enabled && !c.edge.enabled) {
      ctx.addIssue({
        code: 'custom',
        path: ['v2x', 'enabled'],
        message: 'v2x.enabled needs edge.enabled: true (V2X messages arrive through the edge MQTT intake)',
      });
    }
  });

export type KapokConfig = z.infer<typeof configSchema>;
export type KapokLoadedConfig = LoadedConfig<KapokConfig>;

/** The capability sections (each has `enabled`); one issue each adds its entry. */
export type CapabilityName = Exclude<keyof KapokConfig, keyof PlatformConfig>;
export const CAPABILITIES: readonly CapabilityName[] = ['gateway', 'inference', 'edge', 'v2x', 'gm'];

const spec: ConfigSpec<KapokConfig> = {
  schema: configSchema,
  resolveEnvRefs: (config, env) => resolveGatewayEnvRefs(config.gateway, env),
};

/** Reads `--config`/`./kapok.yaml` and KAPOK_* overrides into the validated Kapok configuration. */
export function loadKapokConfig(opts: LoadOptions = {}): KapokLoadedConfig {
  return loadConfig(spec, opts);
}
