import type { HttpHandler } from '@azure/functions';
import { checkAccess, protectedAuthLevel, type AppRole } from '../shared/access';
import { getConfig } from '../shared/config';

/** The Functions auth level of every protected route: Easy Auth and app roles in Azure, function keys locally. */
export const PROTECTED_AUTH_LEVEL = protectedAuthLevel(getConfig().environment);

/** Runs `handler` only for a caller that holds `role` (in Azure; see shared/access.ts); 401/403/503 otherwise. */
export function requireRole(role: AppRole, handler: HttpHandler): HttpHandler {
  return async (request, context) => {
    const access = checkAccess(getConfig().environment, request.headers.get('x-ms-client-principal'), role);
    if (!access.allowed) {
      return { status: access.status, jsonBody: { error: access.error }, headers: { 'cache-control': 'no-store' } };
    }
    return handler(request, context);
  };
}
