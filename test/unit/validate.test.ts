import { FIELD_MAX } from '../../shared/domain/record-codec';
import { subjectRef } from '../../shared/domain/pseudonymize';
import { MAX_BODY_BYTES, parseCreditUpdate, type ParseResult } from '../../shared/domain/validate';
import { BadRequest, parseLookup } from '../../shared/read/requests';

const BANK = 'BANK-A';
const NOW = new Date('2026-05-01T12:00:00.000Z');
/** A distinctive raw identifier: no rejection reason may ever contain it, in any spelling. */
const RAW_ID = 'ZQ-7731-SECRETID-0042';
const EVENT_ID = '2f1c7a52-6a53-4a5e-9c1e-0b8d2f6e4c11';

type Json = Record<string, unknown>;
const valid = (): Json => ({
  specVersion: 'credit-update/v1',
  eventId: EVENT_ID,
  bankId: BANK,
  subject: { country: 'SE', idType: 'national-id', value: RAW_ID },
  sequence: 42,
  asOf: '2026-04-30T23:15:00Z',
  credit: {
    score: 712,
    openAccounts: 3,
    delinquencies: { days30: 1, days60: 0, days90: 0 },
    defaulted: false,
    totalBalance: 15_250,
    creditLimit: 40_000,
  },
});
/** A valid event with one change at a JSON path ('credit.score'); `undefined` removes the field. */
function edit(path: string, value: unknown): Json {
  const event = valid();
  const keys = path.split('.');
  let node = event;
  for (const key of keys.slice(0, -1)) node = node[key] as Json;
  if (value === undefined) delete node[keys.at(-1)!];
  else node[keys.at(-1)!] = value;
  return event;
}
const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));
const parse = (body: Buffer): ParseResult => parseCreditUpdate(body, BANK, NOW);

function rejection(body: Buffer): { code: string; reason: string; eventId?: string } {
  const result = parse(body);
  if (result.ok) throw new Error('expected a rejection, but the event was accepted');
  return result;
}

// [kind, body, code, what the reason must say]
const cases: [string, Buffer, string, RegExp][] = [
  ['empty body', Buffer.alloc(0), 'empty', /^body is empty$/],
  ['whitespace only', Buffer.from(' \r\n\t  '), 'empty', /only whitespace \(6 bytes\)/],
  [
    'non-UTF-8 byte (Latin-1 ä)',
    Buffer.concat([Buffer.from('{"eventId":"'), Buffer.from([0xe4]), Buffer.from('"}')]),
    'not-utf8',
    /not valid UTF-8 \(first invalid byte at offset 12\)/,
  ],
  [
    'encoded UTF-16 surrogate after a genuine U+FFFD',
    Buffer.concat([Buffer.from('{"a":"\uFFFD'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')]),
    'not-utf8',
    /offset 9\)/,
  ],
  [
    'oversized payload',
    json({ ...valid(), pad: 'x'.repeat(MAX_BODY_BYTES) }),
    'too-large',
    /body is \d{4,} bytes; the limit is 8192 bytes \(8 KiB\)/,
  ],
  [
    'trailing comma',
    Buffer.from('{"sequence":1,}'),
    'not-json',
    /not JSON: Expected double-quoted property name.*position 14/,
  ],
  ['truncated JSON', json(valid()).subarray(0, 60), 'not-json', /not JSON: .*(position|end of JSON)/],
  [
    'broken JSON around a raw id (the parser would quote it)',
    Buffer.from(`{"subject":{"value":${RAW_ID}}}`),
    'not-json',
    /not JSON: Unexpected token 'Z'$/,
  ],
  ['single-quoted JSON', Buffer.from("{'eventId': 1}"), 'not-json', /not JSON/],
  ['JSON array', Buffer.from('[1,2]'), 'schema', /the event must be a JSON object, not an array/],
  ['JSON string', Buffer.from('"credit"'), 'schema', /must be a JSON object, not a string/],
  ['JSON null', Buffer.from('null'), 'schema', /must be a JSON object, not null/],
  ['JSON number', Buffer.from('42'), 'schema', /must be a JSON object, not a number/],
  ...['specVersion', 'eventId', 'bankId', 'subject', 'sequence', 'asOf', 'credit'].map(
    (field): [string, Buffer, string, RegExp] => [
      `missing ${field}`,
      json(edit(field, undefined)),
      'schema',
      new RegExp(`^/${field} is required$`),
    ]
  ),
  ['missing credit.score', json(edit('credit.score', undefined)), 'schema', /^\/credit\/score is required$/],
  [
    'missing credit.delinquencies.days90',
    json(edit('credit.delinquencies.days90', undefined)),
    'schema',
    /^\/credit\/delinquencies\/days90 is required$/,
  ],
  ['missing subject.value', json(edit('subject.value', undefined)), 'schema', /^\/subject\/value is required$/],
  [
    'empty subject object',
    json(edit('subject', {})),
    'schema',
    /\/subject\/country is required; \/subject\/idType is required; \/subject\/value is required/,
  ],
  ['score as a string', json(edit('credit.score', '712')), 'schema', /^\/credit\/score must be integer, not a string$/],
  [
    'fractional sequence',
    json(edit('sequence', 4.5)),
    'schema',
    /^\/sequence must be integer, not a fractional number$/,
  ],
  [
    'boolean as a string',
    json(edit('credit.defaulted', 'false')),
    'schema',
    /^\/credit\/defaulted must be boolean, not a string$/,
  ],
  ['subject as a string', json(edit('subject', RAW_ID)), 'schema', /^\/subject must be object, not a string$/],
  ['score 299', json(edit('credit.score', 299)), 'schema', /^\/credit\/score must be >= 300$/],
  ['score 851', json(edit('credit.score', 851)), 'schema', /^\/credit\/score must be <= 850$/],
  ['negative open accounts', json(edit('credit.openAccounts', -1)), 'schema', /^\/credit\/openAccounts must be >= 0$/],
  ['256 open accounts', json(edit('credit.openAccounts', 256)), 'schema', /^\/credit\/openAccounts must be <= 255$/],
  [
    'negative delinquency count',
    json(edit('credit.delinquencies.days60', -3)),
    'schema',
    /^\/credit\/delinquencies\/days60 must be >= 0$/,
  ],
  [
    'balance beyond the record layout',
    json(edit('credit.totalBalance', Number(FIELD_MAX.totalBalance) + 1)),
    'schema',
    /^\/credit\/totalBalance must be <= 1099511627775$/,
  ],
  ['sequence 0', json(edit('sequence', 0)), 'schema', /^\/sequence must be >= 1$/],
  ['sequence 2^53', json(edit('sequence', 2 ** 53)), 'schema', /^\/sequence must be <= 9007199254740991$/],
  [
    'unknown top-level field',
    json(edit('note', 'hi')),
    'schema',
    /^the event has an unknown field \(field 8\); it may hold only specVersion, eventId, bankId, subject, sequence, asOf, credit$/,
  ],
  [
    'unknown nested field',
    json(edit('credit.delinquencies.days120', 1)),
    'schema',
    /^\/credit\/delinquencies has an unknown field \(field 4\); it may hold only days30, days60, days90$/,
  ],
  [
    'unknown field named like a person (its name is personal data)',
    json(edit('subject.AnnaSvensson', true)),
    'schema',
    /^\/subject has an unknown field \(field 4\); it may hold only country, idType, value$/,
  ],
  [
    'unknown field named like an identifier value',
    json(edit(`subject.${RAW_ID}`, true)),
    'schema',
    /^\/subject has an unknown field \(field 4\)/,
  ],
  ['malformed UUID', json(edit('eventId', '2f1c7a52-6a53-4a5e-9c1e')), 'schema', /^\/eventId must match .*\(UUID/],
  ['bankId in lower case', json(edit('bankId', 'bank-a')), 'schema', /^\/bankId must match .*A-Z, 0-9 and '-'/],
  [
    'event for another bank',
    json(edit('bankId', 'BANK-B')),
    'wrong-bank',
    /^event is for bank BANK-B, but this ledger-bridge reports for BANK-A$/,
  ],
  ['date without time', json(edit('asOf', '2026-04-30')), 'schema', /^\/asOf must be a date-time \(.*RFC 3339/],
  ['date-time without offset', json(edit('asOf', '2026-04-30T10:00:00')), 'schema', /^\/asOf must be a date-time/],
  ['impossible date', json(edit('asOf', '2026-02-30T10:00:00Z')), 'schema', /^\/asOf must be a date-time/],
  ['asOf as a number', json(edit('asOf', 1_777_000_000)), 'schema', /^\/asOf must be string, not a number$/],
  [
    'asOf in the future',
    json(edit('asOf', '2026-05-01T12:06:00Z')),
    'future-asof',
    /^\/asOf 2026-05-01T12:06:00Z is more than 5 minutes in the future \(now 2026-05-01T12:00:00.000Z\)$/,
  ],
  ['asOf before 1970', json(edit('asOf', '1969-12-31T23:59:59Z')), 'bad-asof', /at or after 1970-01-01T00:00:00Z/],
  ['asOf a leap second', json(edit('asOf', '2016-12-31T23:59:60Z')), 'bad-asof', /not a leap second/],
  [
    'country of three letters',
    json(edit('subject.country', 'SWE')),
    'schema',
    /^\/subject\/country must match .*ISO 3166-1 alpha-2/,
  ],
  ['country in lower case', json(edit('subject.country', 'se')), 'schema', /^\/subject\/country must match/],
  [
    'unknown idType',
    json(edit('subject.idType', 'drivers-licence')),
    'schema',
    /^\/subject\/idType must be one of national-id, tax-id, passport, company-registration$/,
  ],
  ['blank subject value', json(edit('subject.value', '   ')), 'schema', /^\/subject\/value must match .*not blank/],
  [
    'subject value of 65 characters',
    json(edit('subject.value', '7'.repeat(65))),
    'schema',
    /^\/subject\/value must NOT have more than 64 characters$/,
  ],
  ['subject value of separators only', json(edit('subject.value', '-./ -')), 'blank-subject', /no characters left/],
  [
    'zero-width joiner inside an identifier',
    json(edit('subject.value', '19121212\u200D-7777')),
    'bad-subject',
    /^\/subject\/value has an invisible control, format or bidi character \(U\+200D\) at position 9$/,
  ],
  [
    'right-to-left override',
    json(edit('subject.value', '\u202E19121212-7777')),
    'bad-subject',
    /U\+202E\) at position 1$/,
  ],
  [
    'NUL inside an identifier',
    json(edit('subject.value', '1912\u00001212')),
    'bad-subject',
    /U\+0000\) at position 5$/,
  ],
  ['zero-width space alone', json(edit('subject.value', '\u200B')), 'bad-subject', /U\+200B/],
  ['a tab inside an identifier', json(edit('subject.value', '1912\t1212')), 'bad-subject', /U\+0009\) at position 5$/],
  [
    'emoji as an identifier',
    json(edit('subject.value', '\u{1F600}'.repeat(40))),
    'bad-subject',
    /^\/subject\/value has a character that a national-id may not hold at position 1 \(allowed: letters A-Z and digits 0-9;/,
  ],
  ['a letter outside A-Z', json(edit('subject.value', '19121212Å7777')), 'bad-subject', /at position 9 /],
  [
    'the same key twice (a parser upstream may read the first)',
    Buffer.from(JSON.stringify(valid()).replace('"bankId":"BANK-A"', '"bankId":"BANK-B","bankId":"BANK-A"')),
    'duplicate-key',
    /^the event has the field bankId twice \(fields 3 and 4\); parsers disagree on which one counts$/,
  ],
  [
    'the same nested key twice, one of them escaped',
    Buffer.from(JSON.stringify(valid()).replace('"score":712', '"score":300,"\\u0073core":712')),
    'duplicate-key',
    /^\/credit has the field score twice \(fields 1 and 2\)/,
  ],
  [
    'an unknown key twice (its name is not shown)',
    Buffer.from(JSON.stringify(valid()).replace('"value":', `"${RAW_ID}":1,"${RAW_ID}":2,"value":`)),
    'duplicate-key',
    /^\/subject has a field twice \(fields 3 and 4\)/,
  ],
  [
    'ref in upper case',
    json(edit('subject', { ref: '0x' + 'AB'.repeat(32) })),
    'schema',
    /^\/subject\/ref must match \^0x\[0-9a-f\]\{64\}\$/,
  ],
  ['ref too short', json(edit('subject', { ref: '0x' + 'ab'.repeat(31) })), 'schema', /^\/subject\/ref must match/],
  [
    'subject with both raw fields and ref',
    json(edit('subject.ref', '0x' + 'ab'.repeat(32))),
    'schema',
    /^\/subject must be either a raw identifier \{country, idType, value\} or a pseudonymous \{ref\}, not both/,
  ],
  [
    'other spec version',
    json(edit('specVersion', 'credit-update/v2')),
    'schema',
    /^\/specVersion must be "credit-update\/v1"$/,
  ],
  [
    'deeply nested junk',
    json(edit('credit', JSON.parse('['.repeat(2000) + ']'.repeat(2000)))),
    'schema',
    /^\/credit must be object, not an array$/,
  ],
  [
    'several problems at once',
    json({ ...edit('credit.score', 9000), sequence: -1, extra: 1 }),
    'schema',
    /^the event has an unknown field \(field 8\); .*; \/sequence must be >= 1; \/credit\/score must be <= 850/,
  ],
];

describe('parseCreditUpdate rejects', () => {
  it('at least 30 distinct kinds of bad input', () => expect(cases.length).toBeGreaterThanOrEqual(30));

  it.each(cases)('%s', (_kind, body, code, reason) => {
    const rejected = rejection(body);
    expect(rejected.code).toBe(code);
    expect(rejected.reason).toMatch(reason);
    for (const spelling of [RAW_ID, RAW_ID.replace(/-/g, ''), 'SECRETID', '7731'])
      expect(rejected.reason).not.toContain(spelling);
  });

  it('caps a long list of problems', () => {
    const event = valid();
    for (let i = 0; i < 15; i++) event[`extra${String.fromCharCode(97 + i)}`] = i;
    expect(rejection(json(event)).reason).toMatch(/; and 5 more$/);
  });

  it('names the event id of a rejected event when it is well-formed, in lower case', () => {
    expect(rejection(json({ ...edit('bankId', 'BANK-B'), eventId: EVENT_ID.toUpperCase() })).eventId).toBe(EVENT_ID);
    expect(rejection(json(edit('credit.score', 1))).eventId).toBe(EVENT_ID);
    expect(rejection(json(edit('eventId', 'not-a-uuid'))).eventId).toBeUndefined();
    expect(rejection(Buffer.from('{')).eventId).toBeUndefined();
  });
});

describe('parseCreditUpdate accepts', () => {
  it('a valid event with a raw subject', () => {
    expect(parse(json(valid()))).toEqual({ ok: true, event: valid() });
  });

  it('a pseudonymous subject, a UTF-8 BOM, limits at both ends and asOf within the clock skew', () => {
    const event = {
      ...valid(),
      eventId: EVENT_ID.toUpperCase(),
      subject: { ref: '0x' + 'c3'.repeat(32) },
      sequence: Number.MAX_SAFE_INTEGER,
      asOf: '2026-05-01T12:04:59.999Z',
      credit: {
        score: 850,
        openAccounts: 255,
        delinquencies: { days30: 255, days60: 0, days90: 255 },
        defaulted: true,
        totalBalance: Number(FIELD_MAX.totalBalance),
        creditLimit: 0,
      },
    };
    const result = parse(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), json(event)]));
    expect(result).toEqual({ ok: true, event: { ...event, eventId: EVENT_ID } });
    expect(parse(json({ ...valid(), credit: { ...event.credit, score: 300 }, asOf: '1970-01-01T00:00:00Z' })).ok).toBe(
      true
    );
  });

  it('a raw subject value with spaces and separators, and a date-time with an offset', () => {
    const result = parse(json({ ...edit('subject.value', ' 19121212-1212 '), asOf: '2026-05-01T13:00:00+02:00' }));
    expect(result.ok).toBe(true);
  });
});

describe('one subject rule for ingest, the lookup and the CLI', () => {
  const values = [
    RAW_ID,
    ' 19121212-1212 ',
    '１９１２１２１２－１２１２', // full-width digits and hyphen: NFKC makes them the ASCII identifier
    '19121212\u200D-7777',
    '\u202E19121212-7777',
    '1912\u00001212',
    '\u200B',
    '\u0000',
    '\u{1F600}'.repeat(40),
    '7'.repeat(65),
    '-./ -',
    '   ',
    '',
  ];
  it.each(values.map((v) => [JSON.stringify(v), v]))('ingest and lookup agree on %s', (_shown, value) => {
    const ingestAccepts = parse(json(edit('subject.value', value))).ok;
    let lookupAccepts = true;
    try {
      parseLookup({ country: 'SE', idType: 'national-id', value });
    } catch (err) {
      expect(err).toBeInstanceOf(BadRequest);
      expect((err as Error).message).not.toContain(value.trim() || '\u0000');
      lookupAccepts = false;
    }
    expect(lookupAccepts).toBe(ingestAccepts);
  });

  it('accepts an identifier with separators and full-width forms as the same subject', () => {
    const subject = (value: string) => ({ country: 'SE', idType: 'national-id' as const, value });
    const key = Buffer.alloc(32, 7);
    expect(subjectRef(key, parseLookup(subject('１９１２１２１２－１２１２')))).toBe(
      subjectRef(key, parseLookup(subject('19121212-1212')))
    );
  });

  it('refuses an unknown lookup field without naming it', () => {
    expect(() => parseLookup({ country: 'SE', idType: 'passport', value: 'X1', AnnaSvensson: 1 })).toThrow(
      /^the body has an unknown field \(field 4\); it may hold only country, idType, value$/
    );
  });
});
