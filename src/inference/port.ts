import type { InferencePort, OipResponse } from '../ports/inference.js';
import { buildJob } from './protocol/checks.js';
import { parseInferBody } from './protocol/rest-body.js';
import type { InferenceService } from './service.js';
import { jsonData } from './tensors/json.js';

/**
 * The inference port (ports/inference.ts) over this capability's service: the same checks,
 * queue, batching, deadline and metrics as a REST /v2 infer call, without HTTP in between.
 */
export function inferencePort(service: InferenceService): InferencePort {
  return {
    async infer(model, version, request): Promise<OipResponse> {
      let id: string | undefined;
      const { version: v, done } = await service.infer(model, version, async (runner) => {
        const parsed = parseInferBody(request, runner.inputs, runner.batched ? runner.cfg.maxBatchSize : 0);
        id = parsed.id;
        return {
          timeoutMs: parsed.timeoutMs,
          job: (deadline) =>
            buildJob(runner.inputs, runner.outputs, parsed.tensors, parsed.outputs, deadline),
        };
      });
      return {
        model_name: model,
        model_version: v,
        ...(id !== undefined ? { id } : {}),
        outputs: done.outputs.map((t) => ({
          name: t.name,
          datatype: t.datatype,
          shape: t.shape,
          data: JSON.parse(jsonData(t)) as unknown,
        })),
      };
    },
  };
}
