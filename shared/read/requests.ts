import type { RawSubject } from '../domain/credit-update';
import { findDuplicateKey } from '../domain/json-keys';
import { parseRawSubject } from '../domain/validate';
import { parseSubjectRef, type CreditRecordReader } from './read-model';

/**
 * The read API's requests and answers, free of any HTTP library: each call returns a status and a JSON body,
 * which the functions in functions/ hand to the host. Bad input is a 400 whose message names the problem.
 */

/** Every read answer carries this: credit data must not linger in shared caches or browser history. */
export const NO_STORE = { 'Cache-Control': 'no-store' } as const;

export interface ReadAnswer {
  status: 200 | 400 | 404;
  body: unknown;
}

export class BadRequest extends Error {}

const json = (status: ReadAnswer['status'], body: unknown): ReadAnswer => ({ status, body });

function flag(query: URLSearchParams, name: string): boolean {
  const raw = query.get(name);
  if (raw === null || raw === '' || raw === 'false' || raw === '0') return false;
  if (raw === 'true' || raw === '1') return true;
  throw new BadRequest(`query parameter ${name} must be true or false, got ${JSON.stringify(raw)}`);
}

async function answer(reader: CreditRecordReader, subjectRef: string, query: URLSearchParams): Promise<ReadAnswer> {
  const result = await reader.read(subjectRef, { verify: flag(query, 'verify'), history: flag(query, 'history') });
  return result
    ? json(200, result)
    : json(404, { error: 'no bank has a credit record for this subjectRef', subjectRef });
}

/** GET /api/credit-records/{subjectRef}[?verify=true][&history=true] */
export async function readCreditRecords(
  reader: CreditRecordReader,
  rawRef: string,
  query: URLSearchParams
): Promise<ReadAnswer> {
  try {
    const subjectRef = parseSubjectRef(rawRef);
    if (!subjectRef) {
      throw new BadRequest(
        'subjectRef must be 0x followed by 64 hex digits (the pseudonymous subject reference); to look up a raw identifier use POST /api/credit-records/lookup'
      );
    }
    return await answer(reader, subjectRef, query);
  } catch (err) {
    if (err instanceof BadRequest) return json(400, { error: err.message });
    throw err;
  }
}

/** Validates a lookup body with ingest's own subject rules; errors name the field, never echo the identifier. */
export function parseLookup(body: unknown): RawSubject {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new BadRequest('the body must be a JSON object {"country", "idType", "value"}');
  }
  const parsed = parseRawSubject(body);
  if (!parsed.ok) throw new BadRequest(parsed.reason);
  return parsed.subject;
}

/**
 * POST /api/credit-records/lookup {country, idType, value}: pseudonymizes server-side with the consortium key and
 * answers as the GET does, plus the subjectRef. The raw value is neither logged nor returned.
 */
export async function lookupCreditRecords(
  reader: CreditRecordReader,
  pseudonymize: (subject: RawSubject) => Promise<string>,
  readText: () => Promise<string>,
  query: URLSearchParams
): Promise<ReadAnswer> {
  try {
    let body: unknown;
    let text: string;
    try {
      text = await readText();
      body = JSON.parse(text);
    } catch {
      throw new BadRequest('the body must be JSON: {"country", "idType", "value"}');
    }
    // As ingest does: another parser would read the first of two equal keys, JSON.parse reads the last.
    const duplicate = findDuplicateKey(text);
    if (duplicate) throw new BadRequest('the body has a field twice; each of country, idType, value must appear once');
    const subject = parseLookup(body);
    return await answer(reader, await pseudonymize(subject), query);
  } catch (err) {
    if (err instanceof BadRequest) return json(400, { error: err.message });
    throw err;
  }
}
