import { Chain } from '../shared/chain/provider';
import { subjectRef as pseudonymize } from '../shared/domain/pseudonymize';
import { loadPseudonymizationKey } from '../shared/keyvault/pseudonymization-key';
import { CreditRecordReader, type SubjectRecords } from '../shared/read/read-model';
import { BadRequest, parseLookup } from '../shared/read/requests';
import { print, UsageError } from './common';
import { bankTarget, type BankTarget } from './target';

const SUBJECT_REF = /^0x[0-9a-fA-F]{64}$/;
const RAW_SUBJECT = /^([A-Z]{2}):([a-z-]+):(.+)$/;

/**
 * `records <subject>`: a subject's current records across banks, read from the bank's own projections (and with
 * --verify checked against the contract). The subject is a 0x ref, or raw as COUNTRY:idType:value, which is
 * pseudonymized here with the bank's consortium key (from its Key Vault) under the same rule and checks as the
 * read API's lookup; the raw value is never printed.
 */
export async function recordsCommand(options: {
  subject: string;
  bankId?: string;
  verify: boolean;
  history: boolean;
  json: boolean;
}): Promise<void> {
  const target = bankTarget(options.bankId);
  const { config } = target;
  const bankId = config.bankId;
  const subjectRef = await subjectRefOf(target, options.subject);
  const chain = new Chain({ rpcUrls: config.chain.rpcUrls, chainId: config.chain.chainId });
  let body: SubjectRecords | undefined;
  try {
    const reader = new CreditRecordReader(target.tables, chain, config.chain.registryAddress);
    body = await reader.read(subjectRef, { verify: options.verify, history: options.history });
  } finally {
    chain.destroy();
  }
  if (!body) {
    const notFound = { error: 'no bank has a credit record for this subjectRef', subjectRef };
    if (options.json) print(JSON.stringify(notFound));
    else print(`no bank has a credit record for subject ${subjectRef} (read at ${bankId})`);
    process.exitCode = 3;
    return;
  }
  if (options.json) return print(JSON.stringify(body));
  print(`subject ${body.subjectRef}  (read at ${bankId}, ${body.records.length} bank(s) report)`);
  for (const r of body.records) {
    const p = r.provenance;
    print(
      `  ${r.bankId.padEnd(8)} seq ${String(r.sequence).padStart(3)}  score ${r.score ?? '?'}  open ${r.openAccounts ?? '?'}  ` +
        `late 30/60/90 ${r.delinquencies ? `${r.delinquencies.days30}/${r.delinquencies.days60}/${r.delinquencies.days90}` : '?'}  ` +
        `defaulted ${r.defaulted ?? '?'}  balance ${r.totalBalance ?? '?'}/${r.creditLimit ?? '?'}  as of ${r.asOf ?? '?'}` +
        (r.layoutError ? `  (${r.layoutError})` : '')
    );
    print(
      `           event ${p.eventId}  tx ${p.txHash}  block ${p.blockNumber}#${p.logIndex}` +
        (r.verification
          ? `  chain ${r.verification.matches ? 'matches' : `DIFFERS (${r.verification.chainData})`}`
          : '')
    );
  }
  if (body.verified !== undefined)
    print(
      `verified against the contract at block ${body.verifiedAtBlock}: ${body.verified ? 'all match' : 'MISMATCH'}`
    );
  if (body.history) {
    print(`history (${body.history.length} updates, newest first):`);
    for (const h of body.history)
      print(
        `  ${h.bankId.padEnd(8)} seq ${h.sequence}  score ${h.score ?? '?'}  block ${h.provenance.blockNumber}  event ${h.provenance.eventId}`
      );
  }
  if (body.verified === false) process.exitCode = 4;
}

async function subjectRefOf(target: BankTarget, subject: string): Promise<string> {
  if (SUBJECT_REF.test(subject)) return subject.toLowerCase();
  const raw = RAW_SUBJECT.exec(subject);
  if (!raw)
    throw new UsageError(
      'the subject must be a subject ref (0x + 64 hex digits) or a raw identifier COUNTRY:idType:value, e.g. SE:national-id:19121212-1212'
    );
  try {
    const parsed = parseLookup({ country: raw[1], idType: raw[2], value: raw[3] });
    return pseudonymize(await loadPseudonymizationKey(target.config, target.credential), parsed);
  } catch (err) {
    if (err instanceof BadRequest) throw new UsageError(err.message);
    throw err;
  }
}
