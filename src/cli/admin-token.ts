import type { KapokConfig } from '../config.js';
import { KapokError } from '../core/errors.js';
import { ADMIN_ROLES, type AdminRole } from '../core/http/admin-auth.js';

/**
 * The bearer a CLI command sends to a running Kapok's admin API (docs/configuration.md#admin-access):
 * the token of admin.tokens named by `--as`; else the capability's own token; else the configured
 * token with the lowest role that suffices (least privilege); else none (a loopback call to a Kapok
 * that has no token at all).
 */
export function adminBearer(
  config: KapokConfig,
  own: string | null,
  need: AdminRole,
  as?: string,
): string | null {
  const tokens = config.admin.tokens;
  if (as !== undefined) {
    const t = tokens.find((x) => x.name === as);
    if (!t)
      throw new KapokError(
        'KAPOK_CONFIG_INVALID',
        `--as ${as.slice(0, 64)}: admin.tokens has no token of that name (names: ${tokens.map((x) => x.name).join(', ') || 'none'})`,
      );
    return t.token;
  }
  if (own) return own;
  const rank = (r: AdminRole) => ADMIN_ROLES.indexOf(r);
  const fit = tokens.filter((t) => rank(t.role) >= rank(need)).sort((a, b) => rank(a.role) - rank(b.role))[0];
  return fit?.token ?? null;
}

export const AS_OPTION = [
  '--as <name>',
  'send the admin.tokens token of this name (default: the least role that suffices)',
] as const;
