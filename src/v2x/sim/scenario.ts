import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';

/**
 * Scripted scenarios with known ground truth, shared by the tests, the simulator and the benchmark.
 * Coordinates are local metres (x east, y north) around the scenario's anchor.
 */

const event = z.strictObject({
  atS: z.number().min(0),
  accelMs2: z.number().min(-20).max(10),
  hardBraking: z.boolean().default(false),
});

const vehicle = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9_-]{1,16}$/),
  x: z.number(),
  y: z.number(),
  headingDeg: z.number().min(0).max(360),
  speedMs: z.number().min(0).max(80),
  lengthM: z.number().positive().max(40).default(4.5),
  widthM: z.number().positive().max(10).default(1.8),
  events: z.array(event).default([]),
});

const signal = z.strictObject({
  intersection: z.number().int().min(0).max(65535),
  /** Stop line of the one approach described. */
  x: z.number(),
  y: z.number(),
  approachHeadingDeg: z.number().min(0).max(360),
  phase: z.number().int().min(0).max(255),
  light: z.enum(['red', 'yellow', 'protected-green', 'permissive-green']),
  remainingS: z.number().positive().max(3600),
});

const expectation = z.strictObject({
  type: z.enum(['FCW', 'ICW', 'EBW', 'RLVW', 'GLOSA']),
  vehicle: z.string(),
  other: z.string().optional(),
});

export const scenarioSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9-]{1,64}$/),
  description: z.string().default(''),
  durationS: z.number().positive().max(600),
  vehicles: z.array(vehicle).min(1).max(256),
  signals: z.array(signal).default([]),
  /** Warnings that must be raised (empty: the scenario must stay silent). */
  expect: z.array(expectation),
  /** Warnings that may be raised without counting as false (borderline by design). */
  allow: z.array(expectation).default([]),
});

export type Scenario = z.infer<typeof scenarioSchema>;
export type Expectation = z.infer<typeof expectation>;

/** Loads one scenario file, or every *.json in a directory (sorted by name). */
export function loadScenarios(path: string): Scenario[] {
  const files = statSync(path).isDirectory()
    ? readdirSync(path)
        .filter((f) => f.endsWith('.json'))
        .sort()
        .map((f) => join(path, f))
    : [path];
  return files.map((f) => {
    const r = scenarioSchema.safeParse(JSON.parse(readFileSync(f, 'utf8')));
    if (!r.success) {
      const i = r.error.issues[0];
      throw new Error(`scenario ${f}: ${i?.path.join('.')}: ${i?.message}`);
    }
    return r.data;
  });
}
