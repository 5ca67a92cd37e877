/**
 * Inference as one capability offers it to another (the inference capability provides it; the jobs
 * capability's `inference` executor runs batch inference through it). Requests and answers are in
 * the Open Inference Protocol's JSON form, so a job spec holds what a client would POST to
 * /v2/models/{model}/infer.
 */

export interface OipTensor {
  name: string;
  datatype: string;
  shape: number[];
  data: unknown;
}

export interface OipResponse {
  model_name: string;
  model_version: string;
  id?: string;
  outputs: OipTensor[];
}

export interface InferencePort {
  /**
   * Runs one request (`{inputs, outputs?, id?, parameters?}`) on a model's version (the newest
   * ready one when absent). Throws KapokErrors of the inference catalogue: unknown model (404),
   * bad request (400), not ready or queue full (503), timeout (504).
   */
  infer(model: string, version: string | undefined, request: unknown): Promise<OipResponse>;
}
