import { randomBytes } from 'node:crypto';
import * as tls from 'node:tls';
import { generate } from 'selfsigned';

export interface LocalTls {
  /** PEM certificate, self-signed, valid for 127.0.0.1, ::1 and localhost. Trust it as a CA. */
  certPem: string;
  /** PEM private key of the certificate. Lives only in this process's memory (or the stack's data dir). */
  keyPem: string;
}

/** Generates a fresh self-signed certificate for the HTTPS stand-ins of the local stack. */
export async function generateLocalTls(
  // Unique per certificate: OpenSSL finds a trust anchor by subject name, so two stacks' certificates trusted in
  // one process must not share one.
  commonName = `ledger-bridge local stack ${randomBytes(6).toString('hex')}`
): Promise<LocalTls> {
  const now = Date.now();
  const pems = await generate([{ name: 'commonName', value: commonName }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(now - 60_000),
    notAfterDate: new Date(now + 365 * 24 * 3600_000),
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyCertSign: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
          { type: 2, value: 'localhost' },
        ],
      },
    ],
  });
  return { certPem: pems.cert, keyPem: pems.private };
}

/**
 * Adds a certificate to this process's default trust store (what NODE_EXTRA_CA_CERTS does at start-up, but
 * after start). Child processes get the same through NODE_EXTRA_CA_CERTS pointing at the written PEM file.
 */
export function trustCertificate(certPem: string): void {
  const current = tls.getCACertificates('default');
  if (!current.includes(certPem)) tls.setDefaultCACertificates([...current, certPem]);
}
