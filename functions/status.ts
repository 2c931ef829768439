import { app, type HttpResponseInit } from '@azure/functions';
import { PROTECTED_AUTH_LEVEL, requireRole } from './access';
import { APP_ROLES } from '../shared/access';
import { getServices } from '../shared/services';

/** Validators, chain, pipeline and alerts as of the last heartbeat (TABLES.ops; no Application Insights query). */
export async function status(): Promise<HttpResponseInit> {
  const report = await getServices().status(Date.now());
  return { status: 200, jsonBody: report, headers: { 'cache-control': 'no-store' } };
}

app.http('status', {
  route: 'status',
  methods: ['GET'],
  authLevel: PROTECTED_AUTH_LEVEL,
  handler: requireRole(APP_ROLES.operationsRead, status),
});
