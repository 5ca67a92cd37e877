import type { z } from 'zod';

/** Schemas whose values are secrets: `kapok config print` shows them as `***`, logs never carry them. */
export const secretSchemas = new WeakSet<z.ZodType>();

/** Marks a schema as a secret (usable from capability config files without an import cycle). */
export function secret<T extends z.ZodType>(schema: T): T {
  secretSchemas.add(schema);
  return schema;
}
