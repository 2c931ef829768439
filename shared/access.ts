import type { Environment } from './config';

/**
 * Who may call which HTTP route. In Azure, App Service authentication (Entra ID, infra/modules/functionapp.bicep)
 * signs every caller in before a function runs and passes who it is in X-MS-CLIENT-PRINCIPAL, a header it removes
 * from incoming requests; each route then requires its app role (infra/entra/app-roles.json), so no function key
 * is needed and none sits in a dashboard URL. Locally there is no Entra ID: the local host's function keys guard
 * the routes. Easy Auth itself cannot run here; this module is the narrow seam, tested with the headers it sets.
 */

export const APP_ROLES = {
  /** The read API: downstream applications and their users. */
  creditRecordsRead: 'CreditRecords.Read',
  /** Status, status history and the dashboard: operators and monitoring. */
  operationsRead: 'Operations.Read',
} as const;
export type AppRole = (typeof APP_ROLES)[keyof typeof APP_ROLES];

/** Azure: anonymous at the Functions level, because Easy Auth and the role check below stand in front. */
export const protectedAuthLevel = (environment: Environment): 'anonymous' | 'function' =>
  environment === 'azure' ? 'anonymous' : 'function';

export type AccessDecision = { allowed: true } | { allowed: false; status: 401 | 403 | 503; error: string };

interface ClientPrincipal {
  auth_typ?: string;
  role_typ?: string;
  claims?: { typ?: string; val?: string }[];
}

/**
 * Whether a request may use a route that needs `role`. `authEnabled` is App Service's WEBSITE_AUTH_ENABLED: with
 * authentication off the principal header could be forged, so every protected route stays closed (fail closed).
 */
export function checkAccess(
  environment: Environment,
  principalHeader: string | null,
  role: AppRole,
  authEnabled: string | undefined = process.env.WEBSITE_AUTH_ENABLED
): AccessDecision {
  if (environment !== 'azure') return { allowed: true };
  if (authEnabled?.toLowerCase() !== 'true') {
    return { allowed: false, status: 503, error: 'App Service authentication is off: this route stays closed' };
  }
  const principal = parsePrincipal(principalHeader);
  if (!principal) return { allowed: false, status: 401, error: 'sign in with Microsoft Entra ID first' };
  const roleClaim = principal.role_typ ?? 'roles';
  const roles = (principal.claims ?? []).filter((c) => c.typ === roleClaim || c.typ === 'roles').map((c) => c.val);
  return roles.includes(role)
    ? { allowed: true }
    : { allowed: false, status: 403, error: `this route needs the app role ${role}` };
}

function parsePrincipal(header: string | null): ClientPrincipal | undefined {
  if (!header) return undefined;
  try {
    const principal = JSON.parse(Buffer.from(header, 'base64').toString('utf8')) as unknown;
    return typeof principal === 'object' && principal !== null ? principal : undefined;
  } catch {
    return undefined;
  }
}
