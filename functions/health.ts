import { app, type HttpResponseInit } from '@azure/functions';
import { getConfig } from '../shared/config';

/** Liveness for load balancers and the local stack: the app loaded and its settings are valid. */
export async function health(): Promise<HttpResponseInit> {
  const config = getConfig();
  return { status: 200, jsonBody: { status: 'ok', bankId: config.bankId, environment: config.environment } };
}

app.http('health', { route: 'health', methods: ['GET'], authLevel: 'anonymous', handler: health });
