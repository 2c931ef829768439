import { app, type HttpResponseInit } from '@azure/functions';
import { buildHistory } from '../shared/ops/status';
import { opsStore } from '../shared/ops/wiring';
import { getRuntime } from '../shared/runtime';

/** The last 30 minutes of heartbeat samples and the current status: the dashboard's data. */
export async function statusHistory(): Promise<HttpResponseInit> {
  const runtime = getRuntime();
  const report = await buildHistory(opsStore(runtime), runtime.config.bankId, Date.now());
  return { status: 200, jsonBody: report, headers: { 'cache-control': 'no-store' } };
}

app.http('statusHistory', {
  route: 'status/history',
  methods: ['GET'],
  authLevel: 'function',
  handler: statusHistory,
});
