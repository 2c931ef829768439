import Ajv2020, { type ErrorObject, type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { isPseudonymous, type CreditUpdate, type RawSubject } from './credit-update';
import schema from './credit-update.v1.schema.json';
import { findDuplicateKey } from './json-keys';
import { subjectValueProblem } from './pseudonymize';
import { MINUTE_MS } from '../util';

/**
 * Parses and validates one credit-update v1 message body. Every rejection carries a stable `code` (the
 * telemetry dimension) and a reason that names the JSON path and what is expected. Reasons quote the schema's
 * field names, limits and values, never the body's data nor a field name the schema does not define (a sender
 * may key data by a person's name): a raw subject identifier must not leak through them.
 */

export const MAX_BODY_BYTES = 8 * 1024;
/** How far asOf may lie ahead of this clock: bank and bridge clocks are not perfectly in step. */
export const MAX_CLOCK_SKEW_MS = 5 * MINUTE_MS;
const MAX_REASONS = 10;

export type RejectionCode =
  | 'empty'
  | 'too-large'
  | 'not-utf8'
  | 'not-json'
  | 'duplicate-key'
  | 'schema'
  | 'wrong-bank'
  | 'future-asof'
  | 'bad-asof'
  | 'blank-subject'
  | 'bad-subject'
  /** Set by ingest, not here: an event id accepted before with other content. */
  | 'conflict';

export type ParseResult =
  | { ok: true; event: CreditUpdate }
  /** eventId only when the body holds a well-formed one, so a rejection can be traced to the event. */
  | { ok: false; code: RejectionCode; reason: string; eventId?: string };

// Compiled once per process: strict, so a schema mistake fails at load rather than validating loosely.
const ajv = new Ajv2020({ strict: true, allErrors: true });
addFormats(ajv, ['date-time']);
const validateSchema = ajv.compile<CreditUpdate>(schema);
const isEventId = ajv.getSchema(`${schema.$id}#/properties/eventId`)!;
const RAW_SUBJECT_SCHEMA = '#/properties/subject/oneOf/0';
const validateRawSubject = ajv.getSchema(`${schema.$id}${RAW_SUBJECT_SCHEMA}`) as ValidateFunction<RawSubject>;

export function parseCreditUpdate(body: Buffer, expectedBankId: string, now = new Date()): ParseResult {
  if (body.length === 0) return reject('empty', 'body is empty');
  if (body.length > MAX_BODY_BYTES) {
    return reject('too-large', `body is ${body.length} bytes; the limit is ${MAX_BODY_BYTES} bytes (8 KiB)`);
  }
  const text = decodeUtf8(body);
  if (text === undefined) {
    return reject('not-utf8', `body is not valid UTF-8 (first invalid byte at offset ${invalidUtf8Offset(body)})`);
  }
  if (/^[ \t\r\n]*$/.test(text)) return reject('empty', `body is only whitespace (${body.length} bytes)`);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    return reject('not-json', `body is not JSON: ${parserMessage(err as Error)}`);
  }
  const duplicate = findDuplicateKey(text);
  if (duplicate) {
    const [first, second] = duplicate.positions;
    return reject(
      'duplicate-key',
      `${objectName(duplicate.path)} has ${fieldName(duplicate.key)} twice (fields ${first} and ${second}); parsers disagree on which one counts`
    );
  }
  if (!isObject(data)) return reject('schema', `the event must be a JSON object, not ${jsonType(data)}`);
  const eventId = isEventId(data.eventId) ? (data.eventId as string).toLowerCase() : undefined;
  const rejectEvent = (code: RejectionCode, reason: string): ParseResult => ({ ok: false, code, reason, eventId });

  if (!validateSchema(data)) return rejectEvent('schema', schemaReason(validateSchema.errors ?? [], data));
  const event = { ...data, eventId: data.eventId.toLowerCase() };
  if (event.bankId !== expectedBankId) {
    return rejectEvent(
      'wrong-bank',
      `event is for bank ${event.bankId}, but this ledger-bridge reports for ${expectedBankId}`
    );
  }
  const asOf = Date.parse(event.asOf);
  if (!(asOf >= 0)) {
    // NaN too: RFC 3339 allows a leap second (23:59:60), which has no unix time.
    return rejectEvent('bad-asof', '/asOf must be at or after 1970-01-01T00:00:00Z and not a leap second');
  }
  if (asOf > now.getTime() + MAX_CLOCK_SKEW_MS) {
    return rejectEvent(
      'future-asof',
      `/asOf ${event.asOf} is more than ${MAX_CLOCK_SKEW_MS / MINUTE_MS} minutes in the future (now ${now.toISOString()})`
    );
  }
  const subject = event.subject;
  const problem = isPseudonymous(subject) ? undefined : subjectValueProblem(subject.idType, subject.value);
  if (problem) {
    return rejectEvent(problem.kind === 'blank' ? 'blank-subject' : 'bad-subject', `/subject/value ${problem.reason}`);
  }
  return { ok: true, event };
}

/**
 * A raw subject {country, idType, value} on its own (the read API's lookup, the CLI): the event schema's subject
 * rules and the identifier rule of the pseudonymization contract, so a lookup accepts exactly what ingest does.
 */
export function parseRawSubject(data: unknown): { ok: true; subject: RawSubject } | { ok: false; reason: string } {
  if (!validateRawSubject(data)) {
    return { ok: false, reason: schemaReason(validateRawSubject.errors ?? [], data as JsonObject, RAW_SUBJECT_SCHEMA) };
  }
  const problem = subjectValueProblem(data.idType, data.value);
  if (problem) return { ok: false, reason: `/value ${problem.reason}` };
  return { ok: true, subject: { country: data.country, idType: data.idType, value: data.value } };
}

const reject = (code: RejectionCode, reason: string): ParseResult => ({ ok: false, code, reason });

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeUtf8(body: Buffer): string | undefined {
  try {
    return utf8.decode(body);
  } catch {
    return undefined;
  }
}

/**
 * The byte offset of the first invalid sequence: the first U+FFFD of a lenient decode that is not an encoded
 * U+FFFD in the body. Everything before it decoded cleanly, so its UTF-8 length is the offset.
 */
function invalidUtf8Offset(body: Buffer): number {
  const lenient = body.toString('utf8');
  for (let i = lenient.indexOf('\uFFFD'); i >= 0; i = lenient.indexOf('\uFFFD', i + 1)) {
    const offset = Buffer.byteLength(lenient.slice(0, i));
    if (!body.subarray(offset, offset + 3).equals(Buffer.from([0xef, 0xbf, 0xbd]))) return offset;
  }
  return body.length;
}

/** V8 quotes a snippet of the input (`Unexpected token 'x', ..."<snippet>"... is not valid JSON`): drop it. */
function parserMessage(err: Error): string {
  return err.message.replace(/^(Unexpected token '.+?'), [^]*$/, '$1');
}

type JsonObject = Record<string, unknown>;
const isObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'number' && !Number.isInteger(value)) return 'a fractional number';
  return `a ${typeof value}`;
}

const RAW_SUBJECT_FIELDS = ['country', 'idType', 'value'];
const SUBJECT_BRANCH = /^#\/properties\/subject\/oneOf\/(\d)\//;
/** Every field name the schema defines: the only names a reason may quote. */
const SCHEMA_FIELDS = new Set<string>();
(function collect(node: unknown): void {
  if (!isObject(node)) return;
  if (isObject(node.properties)) Object.keys(node.properties).forEach((name) => SCHEMA_FIELDS.add(name));
  Object.values(node).forEach((child) => (Array.isArray(child) ? child.forEach(collect) : collect(child)));
})(schema);

const fieldName = (key: string): string => (SCHEMA_FIELDS.has(key) ? `the field ${key}` : 'a field');
const objectName = (path: string[]): string =>
  path.length === 0 ? 'the event' : path.every((k) => SCHEMA_FIELDS.has(k)) ? `/${path.join('/')}` : 'an object';

/**
 * One readable line per schema violation, e.g. "/credit/score must be <= 850". `root` is where the validating
 * schema sits in the event schema (error schema paths are relative to it).
 */
function schemaReason(errors: ErrorObject[], data: JsonObject, root = '#'): string {
  const subject = data.subject;
  // subject is oneOf {raw} or {ref}: report only the branch the sender evidently meant.
  const meant = isObject(subject) && 'ref' in subject ? 1 : 0;
  const relevant = errors.filter((e) => {
    const branch = SUBJECT_BRANCH.exec(e.schemaPath);
    return e.keyword !== 'oneOf' && (!branch || Number(branch[1]) === meant);
  });
  const lines = relevant.map((e) => describe(e, data, root));
  if (meant === 1 && RAW_SUBJECT_FIELDS.some((field) => field in (subject as JsonObject))) {
    lines.unshift(
      '/subject must be either a raw identifier {country, idType, value} or a pseudonymous {ref}, not both'
    );
  }
  const unique = [...new Set(lines)];
  const more = unique.length > MAX_REASONS ? `; and ${unique.length - MAX_REASONS} more` : '';
  return unique.slice(0, MAX_REASONS).join('; ') + more;
}

function describe(error: ErrorObject, data: JsonObject, root: string): string {
  const path = error.instancePath;
  const where = path || (root === '#' ? 'the event' : 'the body');
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return `${path}/${String(params.missingProperty)} is required`;
    case 'additionalProperties': {
      // Never the name: it is not one of the schema's, so it may be data (a sender keying by a person's name).
      const holder = valueAt(data, path);
      const position = isObject(holder) ? Object.keys(holder).indexOf(String(params.additionalProperty)) + 1 : 0;
      const allowed = Object.keys((schemaAt(`${root}${error.schemaPath.slice(1)}`).properties as JsonObject) ?? {});
      return `${where} has an unknown field (field ${position}); it may hold only ${allowed.join(', ')}`;
    }
    case 'type':
      return `${where} must be ${String(params.type)}, not ${jsonType(valueAt(data, path))}`;
    case 'enum':
      return `${where} must be one of ${(params.allowedValues as unknown[]).join(', ')}`;
    case 'const':
      return `${where} must be ${JSON.stringify(params.allowedValue)}`;
    case 'pattern':
    case 'format': {
      const description = schemaAt(`${root}${error.schemaPath.slice(1)}`).description;
      const expected =
        error.keyword === 'pattern' ? `match ${String(params.pattern)}` : `be a ${String(params.format)}`;
      return `${where} must ${expected}${typeof description === 'string' ? ` (${description})` : ''}`;
    }
    default:
      // minimum, maximum, minLength, maxLength: ajv's own wording quotes only the limit ("must be <= 850").
      return `${where} ${error.message ?? `violates ${error.keyword}`}`;
  }
}

/** The schema object holding the failed keyword, e.g. "#/properties/asOf/format" -> the asOf schema. */
function schemaAt(schemaPath: string): JsonObject {
  let node: unknown = schema;
  for (const segment of schemaPath.split('/').slice(1, -1)) node = (node as JsonObject)[segment];
  return isObject(node) ? node : {};
}

function valueAt(data: JsonObject, pointer: string): unknown {
  let node: unknown = data;
  for (const segment of pointer.split('/').slice(1)) {
    node = (node as JsonObject)[segment.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return node;
}
