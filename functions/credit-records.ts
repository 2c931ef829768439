import { app, type HttpRequest, type HttpResponseInit } from '@azure/functions';
import { PROTECTED_AUTH_LEVEL, requireRole } from './access';
import { APP_ROLES } from '../shared/access';
import { NO_STORE, readCreditRecords } from '../shared/read/requests';
import { getServices } from '../shared/services';

/** A subject's current records from every bank, with provenance; ?verify=true checks them against the contract. */
export async function creditRecords(request: HttpRequest): Promise<HttpResponseInit> {
  const answer = await readCreditRecords(getServices().reader, request.params.subjectRef ?? '', request.query);
  return { status: answer.status, jsonBody: answer.body, headers: NO_STORE };
}

app.http('creditRecords', {
  route: 'credit-records/{subjectRef}',
  methods: ['GET'],
  authLevel: PROTECTED_AUTH_LEVEL,
  handler: requireRole(APP_ROLES.creditRecordsRead, creditRecords),
});
