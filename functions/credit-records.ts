import { app, type HttpRequest, type HttpResponseInit } from '@azure/functions';
import { getCreditRecords } from '../shared/watch/read-api';
import { getCreditRecordReader } from '../shared/watch/wiring';

/** A subject's current records from every bank, with provenance; ?verify=true checks them against the contract. */
export async function creditRecords(request: HttpRequest): Promise<HttpResponseInit> {
  return getCreditRecords(getCreditRecordReader(), request.params.subjectRef ?? '', request.query);
}

app.http('creditRecords', {
  route: 'credit-records/{subjectRef}',
  methods: ['GET'],
  authLevel: 'function',
  handler: creditRecords,
});
