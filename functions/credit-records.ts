import { app, type HttpRequest, type HttpResponseInit } from '@azure/functions';
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
  authLevel: 'function',
  handler: creditRecords,
});
