import { createHmac } from 'node:crypto';
import type { TokenCredential } from '@azure/core-auth';
import type { RawSubject } from '../../shared/domain/credit-update';
import {
  canonicalSubject,
  normalizeSubjectValue,
  parsePseudonymizationKey,
  subjectRef,
} from '../../shared/domain/pseudonymize';
import { loadPseudonymizationKey } from '../../shared/keyvault/pseudonymization-key';

const KEY_HEX = '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
const KEY = Buffer.from(KEY_HEX, 'hex');
const subject = (value: string, country = 'SE', idType: RawSubject['idType'] = 'national-id'): RawSubject => ({
  country,
  idType,
  value,
});

describe('subject pseudonymization', () => {
  it('matches the published test vector, computed here from the documented canonical form', () => {
    const canonical = 'credit-subject/v1\nSE\nnational-id\n191212121212';
    const expected = '0x' + createHmac('sha256', KEY).update(Buffer.from(canonical, 'utf8')).digest('hex');
    expect(canonicalSubject(subject(' 19121212-1212 '))).toBe(canonical);
    expect(subjectRef(KEY, subject(' 19121212-1212 '))).toBe(expected);
    // The vector in docs/credit-update-v1.md: other banks' implementations check themselves against this constant.
    expect(expected).toBe('0x890a79b13bab355d4e5cb115b6d9db8a4d8486ccbebb7f6865472c6094b2cc9d');
  });

  it('is deterministic and gives 0x + 64 lower-case hex digits', () => {
    const ref = subjectRef(KEY, subject('AB1234567', 'GB', 'passport'));
    expect(ref).toMatch(/^0x[0-9a-f]{64}$/);
    expect(subjectRef(Buffer.from(KEY), subject('AB1234567', 'GB', 'passport'))).toBe(ref);
  });

  it.each([
    ['spaces and a dash', '19121212 - 1212'],
    ['dots and slashes', '19.12.12/12.12.12'],
    ['tabs, NBSP and ideographic spaces', '\t191212\u00a012\u30001212\n'],
    ['full-width digits and hyphen (NFKC)', '１９１２１２１２－１２１２'],
  ])('normalizes %s to the same ref', (_kind, value) => {
    expect(normalizeSubjectValue(value)).toBe('191212121212');
    expect(subjectRef(KEY, subject(value))).toBe(subjectRef(KEY, subject('191212121212')));
  });

  it('upper-cases letters, locale-independently', () => {
    expect(normalizeSubjectValue('ab-123.cd')).toBe('AB123CD');
    expect(normalizeSubjectValue('straße')).toBe('STRASSE');
    expect(normalizeSubjectValue('ﬁ')).toBe('FI'); // ligature, NFKC
    expect(subjectRef(KEY, subject('ab 1234567', 'GB', 'passport'))).toBe(
      subjectRef(KEY, subject('AB1234567', 'GB', 'passport'))
    );
  });

  it('gives different refs for other keys, countries, id types and values', () => {
    const base = subjectRef(KEY, subject('191212121212'));
    const others = [
      subjectRef(Buffer.alloc(32, 7), subject('191212121212')),
      subjectRef(KEY, subject('191212121212', 'NO')),
      subjectRef(KEY, subject('191212121212', 'SE', 'tax-id')),
      subjectRef(KEY, subject('191212121213')),
    ];
    expect(new Set([base, ...others]).size).toBe(5);
  });
});

describe('the pseudonymization key', () => {
  it('decodes hex of at least 32 bytes, tolerating surrounding whitespace and upper case', () => {
    expect(parsePseudonymizationKey(`${KEY_HEX.toUpperCase()}\n`, 'test')).toEqual(KEY);
    expect(parsePseudonymizationKey(KEY_HEX + 'ff', 'test')).toHaveLength(33);
  });

  it.each([
    ['too short', KEY_HEX.slice(0, 62)],
    ['not hex', 'zz' + KEY_HEX.slice(2)],
    ['odd length', KEY_HEX + 'f'],
    ['empty', ''],
  ])('refuses a key that is %s, naming its source but not its value', (_kind, value) => {
    let message = '';
    try {
      parsePseudonymizationKey(value, 'Key Vault secret https://kv/secrets/pseudonymization-key');
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(
      /^Key Vault secret https:\/\/kv\/secrets\/pseudonymization-key must hold the pseudonymization key as hex, at least 32 bytes \(64 hex digits\); it holds \d+ characters that are not$/
    );
    if (value.length > 0) expect(message).not.toContain(value.slice(2, 20));
  });

  it('comes from PSEUDONYMIZATION_SECRET on the local stack, without Key Vault', async () => {
    const noCredential: TokenCredential = {
      getToken: () => Promise.reject(new Error('Key Vault must not be used')),
    };
    const config = {
      environment: 'local' as const,
      keyVault: { url: 'https://127.0.0.1:1', signerKeyName: 'signer' },
      pseudonymization: { secretName: 'pseudonymization-key', localSecret: KEY_HEX },
    };
    await expect(loadPseudonymizationKey(config, noCredential)).resolves.toEqual(KEY);
  });
});
