import { createAdminGuard } from '../../core/http/admin-auth.js';

/**
 * Model control (repository load/unload over REST and gRPC) is an admin API. With
 * inference.adminToken set it needs `Authorization: Bearer <token>`; without one it is open under
 * the default profile (as Triton's is) and refused under profile gov.
 */
export function checkAdmin(authorization: string | undefined, token: string | null, gov: boolean): void {
  createAdminGuard({ token, gov, key: 'inference.adminToken', what: 'model control' }).check(authorization);
}
