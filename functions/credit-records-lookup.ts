import { app, type HttpRequest, type HttpResponseInit } from '@azure/functions';
import { lookupCreditRecords } from '../shared/watch/read-api';
import { getCreditRecordReader, getPseudonymizer } from '../shared/watch/wiring';

/** Looks a raw identifier up by its pseudonym, derived here; the raw value is never logged. */
export async function creditRecordsLookup(request: HttpRequest): Promise<HttpResponseInit> {
  return lookupCreditRecords(getCreditRecordReader(), getPseudonymizer(), () => request.json(), request.query);
}

app.http('creditRecordsLookup', {
  route: 'credit-records/lookup',
  methods: ['POST'],
  authLevel: 'function',
  handler: creditRecordsLookup,
});
