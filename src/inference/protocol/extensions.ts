/**
 * The OIP extensions Kapok implements, answered by `GET /v2` and gRPC ServerMetadata (Triton's
 * names, which its clients check): model_repository (index, load, unload) and binary_tensor_data
 * (REST bodies with raw tensor bytes after the JSON header; gRPC has raw_*_contents natively).
 */
export const OIP_EXTENSIONS = ['model_repository', 'binary_tensor_data'] as const;
