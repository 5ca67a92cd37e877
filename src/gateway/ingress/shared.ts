/** Largest number of input items, messages or tools one request may carry. */
export const MAX_ITEMS = 10_000;

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Random id with a prefix (resp_, msg_, fc_): answers need ids when the upstream gives none. */
export function newId(prefix: string): string {
  return `${prefix}${crypto.randomUUID().replaceAll('-', '')}`;
}
