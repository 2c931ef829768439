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
