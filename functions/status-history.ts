import { app, type HttpResponseInit } from '@azure/functions';
import { PROTECTED_AUTH_LEVEL, requireRole } from './access';
import { APP_ROLES } from '../shared/access';
import { getServices } from '../shared/services';

/** The last 30 minutes of heartbeat samples and the current status: the dashboard's data. */
export async function statusHistory(): Promise<HttpResponseInit> {
  const report = await getServices().statusHistory(Date.now());
  return { status: 200, jsonBody: report, headers: { 'cache-control': 'no-store' } };
}

app.http('statusHistory', {
  route: 'status/history',
  methods: ['GET'],
  authLevel: PROTECTED_AUTH_LEVEL,
  handler: requireRole(APP_ROLES.operationsRead, statusHistory),
});
