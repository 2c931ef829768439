import { createHmac } from 'node:crypto';
import type { RawSubject } from './credit-update';

/**
 * Subject pseudonymization, the consortium-wide contract (every bank must derive the same ref for the same
 * person or company, so records from all banks meet under one subject):
 *
 *   subjectRef = "0x" + lower-case hex( HMAC-SHA256( key, UTF-8( "credit-subject/v1\n" + country + "\n" + idType
 *                                                                + "\n" + normalize(value) ) ) )
 *
 *   key            the consortium secret's bytes (the secret holds them as hex; the hex is decoded, not hashed)
 *   country        as in the event: ISO 3166-1 alpha-2, upper case ("SE")
 *   idType         as in the event ("national-id", "tax-id", "passport", "company-registration")
 *   normalize(v)   1. Unicode NFKC   2. upper case by the Unicode default mapping, not locale-sensitive
 *                  (JavaScript toUpperCase: "ß" -> "SS")   3. remove every White_Space character (JavaScript
 *                  /\s/u, which includes U+0020, tab, NBSP) and every "-", "." and "/"
 *
 * Separators are "\n" (U+000A) with no trailing newline. Example: value " 19121212-1212 " becomes "191212121212".
 *
 * Which values are identifiers at all is part of the contract too, or two banks could derive two refs for one
 * person: a value is refused (subjectValueProblem) when it holds a control (Cc), format (Cf, which includes the
 * zero-width joiners and the bidi controls) or other bidi-control character anywhere, or when its normalized form
 * holds anything but the characters its idType allows (A-Z and 0-9 for every idType today), or nothing at all.
 */
export const SUBJECT_REF_DOMAIN = 'credit-subject/v1';

/** The key must be at least this long: HMAC-SHA256's security needs a 256-bit secret. */
export const MIN_KEY_BYTES = 32;

export function normalizeSubjectValue(value: string): string {
  return value
    .normalize('NFKC')
    .toUpperCase()
    .replace(/[\s\-./]/gu, '');
}

const LATIN_ALPHANUMERIC = { pattern: /^[A-Z0-9]$/, described: 'letters A-Z and digits 0-9' };
/** What a normalized value of each idType may consist of: identifiers as issued, in Latin letters and digits. */
export const ID_TYPE_CHARACTERS: Record<RawSubject['idType'], { pattern: RegExp; described: string }> = {
  'national-id': LATIN_ALPHANUMERIC,
  'tax-id': LATIN_ALPHANUMERIC,
  passport: LATIN_ALPHANUMERIC,
  'company-registration': LATIN_ALPHANUMERIC,
};

export interface SubjectValueProblem {
  /** blank: nothing left once normalized; characters: a character no identifier of its idType holds. */
  kind: 'blank' | 'characters';
  /** Completes "/subject/value …"; names the kind of character and its position, never the value. */
  reason: string;
}

// Cc, Cf and Bidi_Control: invisible or direction-changing characters that make one identifier look like another.
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Bidi_Control}]/u;

/** Why a raw subject value is not an identifier (positions are 1-based, in code points), or undefined. */
export function subjectValueProblem(idType: RawSubject['idType'], value: string): SubjectValueProblem | undefined {
  const characters = [...value];
  const invisible = characters.findIndex((c) => INVISIBLE.test(c));
  if (invisible >= 0) {
    const codePoint = characters[invisible]!.codePointAt(0)!;
    const hex = codePoint.toString(16).toUpperCase().padStart(4, '0');
    return {
      kind: 'characters',
      reason: `has an invisible control, format or bidi character (U+${hex}) at position ${invisible + 1}`,
    };
  }
  const allowed = ID_TYPE_CHARACTERS[idType];
  const isAllowed = (normalized: string): boolean => [...normalized].every((c) => allowed.pattern.test(c));
  // Character by character first, to say where; then the whole value, which is what the ref is derived from.
  const outside = characters.findIndex((c) => !isAllowed(normalizeSubjectValue(c)));
  const normalized = normalizeSubjectValue(value);
  if (outside >= 0 || !isAllowed(normalized)) {
    const where = outside >= 0 ? ` at position ${outside + 1}` : '';
    return {
      kind: 'characters',
      reason: `has a character that a ${idType} may not hold${where} (allowed: ${allowed.described}; white space, '-', '.' and '/' are ignored)`,
    };
  }
  if (normalized === '') {
    return { kind: 'blank', reason: "has no characters left once white space, '-', '.' and '/' are removed" };
  }
  return undefined;
}

export function canonicalSubject(subject: RawSubject): string {
  return [SUBJECT_REF_DOMAIN, subject.country, subject.idType, normalizeSubjectValue(subject.value)].join('\n');
}

export function subjectRef(key: Buffer, subject: RawSubject): string {
  return `0x${createHmac('sha256', key).update(canonicalSubject(subject), 'utf8').digest('hex')}`;
}

/** Decodes the key from hex; the error names where it came from and what is wrong, never the value. */
export function parsePseudonymizationKey(hex: string, source: string): Buffer {
  const trimmed = hex.trim(); // a secret set from a file often ends with a newline
  if (!/^(?:[0-9a-fA-F]{2})+$/.test(trimmed) || trimmed.length < MIN_KEY_BYTES * 2) {
    throw new Error(
      `${source} must hold the pseudonymization key as hex, at least ${MIN_KEY_BYTES} bytes (${MIN_KEY_BYTES * 2} hex digits); it holds ${trimmed.length} characters that are not`
    );
  }
  return Buffer.from(trimmed, 'hex');
}
