import type { z } from 'zod';
import { secretSchemas } from './secret.js';

/**
 * Just enough zod introspection for env-override mapping, secret redaction and the example-file
 * test. zod 4 keeps a schema's kind in `_zod.def.type`; wrappers (default, optional, ...) hold the
 * wrapped schema in `innerType`.
 */

interface Def {
  type: string;
  innerType?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  in?: z.ZodType;
}
const defOf = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

const WRAPPERS = new Set(['default', 'prefault', 'optional', 'nullable', 'readonly', 'catch', 'nonoptional']);

export interface Leaf {
  /** The unwrapped kind: 'object', 'string', 'number', 'boolean', 'enum', 'array', 'record', ... */
  kind: string;
  nullable: boolean;
  secret: boolean;
  schema: z.ZodType;
}

/** Unwraps defaults/optionals, noting nullability and secrecy on the way down. */
export function unwrap(schema: z.ZodType): Leaf {
  let s = schema;
  let nullable = false;
  let isSecret = secretSchemas.has(s);
  for (;;) {
    const def = defOf(s);
    if (def.type === 'nullable') nullable = true;
    if (WRAPPERS.has(def.type) && def.innerType) s = def.innerType;
    else if (def.type === 'pipe' && def.in) s = def.in;
    else break;
    if (secretSchemas.has(s)) isSecret = true;
  }
  return { kind: defOf(s).type, nullable, secret: isSecret, schema: s };
}

/** Fields of an object schema (after unwrapping), or undefined for a non-object. */
export function fieldsOf(schema: z.ZodType): Record<string, z.ZodType> | undefined {
  const leaf = unwrap(schema);
  return leaf.kind === 'object' ? defOf(leaf.schema).shape : undefined;
}

/** Every leaf key path of the schema, depth first in declaration order (`http.port`, ...). */
export function leafPaths(schema: z.ZodType, prefix: string[] = []): string[][] {
  const fields = fieldsOf(schema);
  if (!fields) return [prefix];
  return Object.entries(fields).flatMap(([k, s]) => leafPaths(s, [...prefix, k]));
}

/** camelCase key → UPPER_SNAKE part of an environment variable name. */
export function upperSnake(key: string): string {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9]+/g, '_')
    .toUpperCase();
}

/** Copy of a config value with every secret replaced by `***` (null/empty secrets stay as they are). */
export function redact(schema: z.ZodType, value: unknown): unknown {
  const leaf = unwrap(schema);
  if (leaf.secret) {
    if (value === null || value === undefined) return value;
    if (typeof value === 'object' && Object.keys(value as object).length === 0) return value;
    return '***';
  }
  const fields = fieldsOf(schema);
  if (!fields || value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const f = fields[k];
    out[k] = f ? redact(f, v) : v;
  }
  return out;
}
