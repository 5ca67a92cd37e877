import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { messageOf } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { modelConfigSchema } from '../config.js';
import type { InferenceMetrics } from '../metrics.js';
import type { ModelState } from './state.js';

/**
 * Reads <model>/config.yaml into `m.config` (no file: every default). A file that does not parse or
 * validate keeps the previous settings and is recorded in `m.configError`, logged once per message.
 */
export async function readModelConfig(
  m: ModelState,
  dir: string,
  logger: Logger,
  metrics: InferenceMetrics,
): Promise<void> {
  let text: string;
  try {
    text = await readFile(join(dir, 'config.yaml'), 'utf8');
  } catch {
    m.config = modelConfigSchema.parse({});
    m.configError = null;
    return;
  }
  try {
    const parsed = modelConfigSchema.safeParse(parseYaml(text) ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new Error(`${issue?.path.join('.') || '(root)'}: ${issue?.message}`);
    }
    m.config = parsed.data;
    if (m.configError) logger.info({ model: m.name }, 'inference model config.yaml fixed');
    m.configError = null;
  } catch (err) {
    // Shown to clients (repository index): the model's own path, never the repository's.
    const msg = `${m.name}/config.yaml: ${messageOf(err)}; keeping the previous settings`;
    if (m.configError !== msg) {
      logger.error(
        { code: 'KAPOK_INFERENCE_MODEL_CONFIG', model: m.name, msg, file: join(dir, 'config.yaml') },
        'inference model config rejected',
      );
      metrics.loadFailures.inc({ model: m.name, reason: 'config' });
    }
    m.configError = msg;
  }
}
