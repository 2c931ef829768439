import { toBeHex } from 'ethers';
import type { Chain } from '../chain/provider';
import { bankIdToBytes32, connectRegistry } from '../chain/registry';
import { CreditLedger } from '../storage/credit-ledger';
import type { TableStore } from '../storage/tables';
import { readWatcherStatus } from '../watch/state';

/** A subject reference as the chain holds it: bytes32 hex, the keyed-HMAC pseudonym (never a raw identifier). */
const SUBJECT_REF = /^0x[0-9a-fA-F]{64}$/;

/** The canonical (lower-case) form of a subject reference, or undefined when it is not one. */
export function parseSubjectRef(raw: string): string | undefined {
  return SUBJECT_REF.test(raw) ? raw.toLowerCase() : undefined;
}

export interface CreditRecordView {
  bankId: string;
  sequence: string;
  asOf?: string;
  score?: number;
  openAccounts?: number;
  delinquencies?: { days30: number; days60: number; days90: number };
  defaulted?: boolean;
  totalBalance?: number;
  creditLimit?: number;
  /** Set when the record word uses a layout this version cannot decode. */
  layoutError?: string;
  provenance: {
    eventId: string;
    txHash: string;
    blockNumber: number;
    blockHash: string;
    logIndex: number;
    data: string;
  };
  /** With verify=true: the contract's word for (subject, bank) at the verified block, and whether it matches. */
  verification?: { matches: boolean; chainData: string };
}

export interface SubjectRecords {
  subjectRef: string;
  records: CreditRecordView[];
  /** With verify=true: every record matches the contract state at `verifiedAtBlock`. */
  verified?: boolean;
  verifiedAtBlock?: number | 'latest';
  /** With history=true: every applied update, newest first. */
  history?: CreditRecordView[];
}

/** Bank ids outside the naming rule are projected as their bytes32 hex (see events.ts). */
const bankKey = (bankId: string): string => (bankId.startsWith('0x') ? bankId : bankIdToBytes32(bankId));

function viewOf(row: Record<string, unknown>): CreditRecordView {
  const decoded = row.layoutError === undefined;
  return {
    bankId: String(row.bankId),
    sequence: String(row.sequence),
    ...(decoded
      ? {
          asOf: String(row.asOf),
          score: Number(row.score),
          openAccounts: Number(row.openAccounts),
          delinquencies: { days30: Number(row.days30), days60: Number(row.days60), days90: Number(row.days90) },
          defaulted: row.defaulted === true,
          totalBalance: Number(row.totalBalance),
          creditLimit: Number(row.creditLimit),
        }
      : { layoutError: String(row.layoutError) }),
    provenance: {
      eventId: String(row.eventId),
      txHash: String(row.txHash),
      blockNumber: Number(row.blockNumber),
      blockHash: String(row.blockHash),
      logIndex: Number(row.logIndex),
      data: String(row.data),
    },
  };
}

/** Reads a subject's projected records (every bank's), optionally checked against the contract. */
export class CreditRecordReader {
  constructor(
    private readonly tables: TableStore,
    private readonly chain: Chain,
    private readonly registryAddress: string
  ) {}

  /** Undefined when no bank has a record for the subject. */
  async read(
    subjectRef: string,
    options: { verify?: boolean; history?: boolean } = {}
  ): Promise<SubjectRecords | undefined> {
    // One range query: the subject's current rows, and its history rows when asked for.
    const rows = await new CreditLedger(this.tables).subject(subjectRef, { history: options.history });
    const records = rows.filter((r) => r.kind === 'record');
    if (records.length === 0) return undefined;
    const result: SubjectRecords = { subjectRef, records: records.map(viewOf) };
    if (options.verify) await this.verify(result);
    if (options.history) result.history = rows.filter((r) => r.kind === 'history').map(viewOf);
    return result;
  }

  /**
   * Compares each row's data word with recordOf(subject, bank) at the watcher's checkpoint: the block the
   * projection claims to reflect, so a newer record not yet confirmed is not mistaken for tampering.
   */
  private async verify(result: SubjectRecords): Promise<void> {
    const status = await readWatcherStatus(this.tables);
    const blockTag = status && status.checkpointBlock >= 0 ? status.checkpointBlock : 'latest';
    await Promise.all(
      result.records.map(async (record) => {
        const word = await this.chain.read((provider) =>
          connectRegistry(this.registryAddress, provider).recordOf(result.subjectRef, bankKey(record.bankId), {
            blockTag,
          })
        );
        const chainData = toBeHex(word, 32);
        record.verification = { matches: chainData === record.provenance.data.toLowerCase(), chainData };
      })
    );
    result.verified = result.records.every((r) => r.verification?.matches === true);
    result.verifiedAtBlock = blockTag;
  }
}
