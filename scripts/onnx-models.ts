#!/usr/bin/env node
// Writes small ONNX models for tests and benchmarks (the encoder lives in src/cli/demo, where
// `kapok demo` uses it too):
//   node --import tsx scripts/onnx-models.ts <repository-dir>
// writes <dir>/{mlp,conv,types}/1/model.onnx.
import { convModel, mlpModel, typesModel, writeModel } from '../src/cli/demo/onnx-models.js';

export * from '../src/cli/demo/onnx-models.js';

if (import.meta.url === `file://${process.argv[1]}`) {
  const dir = process.argv[2];
  if (!dir) {
    process.stderr.write('usage: node --import tsx scripts/onnx-models.ts <repository-dir>\n');
    process.exit(2);
  }
  writeModel(dir, 'mlp', 1, mlpModel());
  writeModel(dir, 'conv', 1, convModel());
  writeModel(dir, 'types', 1, typesModel());
  process.stdout.write(`wrote mlp, conv and types under ${dir}\n`);
}
