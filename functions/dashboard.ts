import { randomBytes } from 'node:crypto';
import { app, type HttpResponseInit } from '@azure/functions';
import { PROTECTED_AUTH_LEVEL, requireRole } from './access';
import { APP_ROLES } from '../shared/access';
import { getConfig } from '../shared/config';
import { dashboardHtml } from '../shared/ops/dashboard-html';

/**
 * The ops dashboard: one self-contained page (inline CSS, JS and SVG; no CDN) that polls /api/status/history.
 * In Azure, Entra sign-in and the Operations.Read role guard it and its data (no key in the URL); locally, open it
 * with ?code=<function key>, which the page sends on to the data endpoint.
 */
export async function dashboard(): Promise<HttpResponseInit> {
  const nonce = randomBytes(16).toString('base64');
  return {
    status: 200,
    body: dashboardHtml({ bankId: getConfig().bankId, nonce }),
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      // Only our inline script/style run; data comes from this origin only; the key in the URL never leaves.
      'content-security-policy': `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
      'referrer-policy': 'no-referrer',
      'x-content-type-options': 'nosniff',
    },
  };
}

app.http('dashboard', {
  route: 'dashboard',
  methods: ['GET'],
  authLevel: PROTECTED_AUTH_LEVEL,
  handler: requireRole(APP_ROLES.operationsRead, dashboard),
});
