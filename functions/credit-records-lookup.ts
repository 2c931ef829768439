import { app, type HttpRequest, type HttpResponseInit } from '@azure/functions';
import { PROTECTED_AUTH_LEVEL, requireRole } from './access';
import { APP_ROLES } from '../shared/access';
import { lookupCreditRecords, NO_STORE } from '../shared/read/requests';
import { getServices } from '../shared/services';

/** Looks a raw identifier up by its pseudonym, derived here; the raw value is never logged. */
export async function creditRecordsLookup(request: HttpRequest): Promise<HttpResponseInit> {
  const services = getServices();
  const answer = await lookupCreditRecords(
    services.reader,
    (subject) => services.pseudonymize(subject),
    () => request.text(),
    request.query
  );
  return { status: answer.status, jsonBody: answer.body, headers: NO_STORE };
}

app.http('creditRecordsLookup', {
  route: 'credit-records/lookup',
  methods: ['POST'],
  authLevel: PROTECTED_AUTH_LEVEL,
  handler: requireRole(APP_ROLES.creditRecordsRead, creditRecordsLookup),
});
