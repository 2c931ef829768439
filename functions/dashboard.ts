import { randomBytes } from 'node:crypto';
import { app, type HttpResponseInit } from '@azure/functions';
import { getConfig } from '../shared/config';
import { dashboardHtml } from '../shared/ops/dashboard-html';

/**
 * The ops dashboard: one self-contained page (inline CSS, JS and SVG; no CDN) that polls /api/status/history.
 * Function-level auth: open it with ?code=<function key>; the page sends that key to the data endpoint.
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

app.http('dashboard', { route: 'dashboard', methods: ['GET'], authLevel: 'function', handler: dashboard });
