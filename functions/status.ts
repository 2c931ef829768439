import { app, type HttpResponseInit } from '@azure/functions';
import { buildStatus } from '../shared/ops/status';
import { opsStore } from '../shared/ops/wiring';
import { getRuntime } from '../shared/runtime';

/** Validators, chain, pipeline and alerts as of the last heartbeat (TABLES.ops; no Application Insights query). */
export async function status(): Promise<HttpResponseInit> {
  const runtime = getRuntime();
  const report = await buildStatus(opsStore(runtime), runtime.config.bankId, Date.now());
  return { status: 200, jsonBody: report, headers: { 'cache-control': 'no-store' } };
}

app.http('status', { route: 'status', methods: ['GET'], authLevel: 'function', handler: status });
