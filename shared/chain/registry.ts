import {
  BaseContract,
  Contract,
  ContractFactory,
  Interface,
  decodeBytes32String,
  encodeBytes32String,
  isHexString,
  type BaseContractMethod,
  type BytesLike,
  type ContractRunner,
  type ContractTransactionResponse,
  type Result,
  type Signer,
  type TransactionRequest,
} from 'ethers';
// Imported (not read from disk) so tsc copies it to dist/contracts/ and the same path works under ts-jest and dist/.
import artifact from '../../contracts/CreditRegistry.json';
import { errorMessage } from '../redact';

/** The CreditRegistry ABI from the checked-in artifact (rebuild with `npm run build:contract`). */
export const CREDIT_REGISTRY_ABI = artifact.abi;
export const CREDIT_REGISTRY_BYTECODE = artifact.bytecode;
export const registryInterface = new Interface(CREDIT_REGISTRY_ABI);

const SUBMIT_BATCH_SELECTOR = Buffer.from(registryInterface.getFunction('submitBatch')!.selector.slice(2), 'hex');
const WORD = 32;
const MAX_UINT256 = (1n << 256n) - 1n;

/**
 * Calldata of submitBatch(records), written straight into its ABI layout: the selector, the array's offset and
 * length, then three words a record (subject; eventId, left-aligned; data). ethers' generic coder spent ~24 ms and
 * its garbage on a 567-record batch, a burst's largest single step in a host; this takes about 1 ms. A unit test
 * holds it equal to ethers' encoding.
 */
export function encodeSubmitBatch(records: RegistryRecord[]): string {
  const head = SUBMIT_BATCH_SELECTOR.length + 2 * WORD;
  const out = Buffer.alloc(head + records.length * 3 * WORD);
  SUBMIT_BATCH_SELECTOR.copy(out, 0);
  out.writeUInt32BE(WORD, head - WORD - 4); // the array's offset, from the arguments' start
  out.writeUInt32BE(records.length, head - 4);
  records.forEach((r, i) => {
    const at = head + i * 3 * WORD;
    hexBytes(r.subject, 32).copy(out, at);
    hexBytes(r.eventId, 16).copy(out, at + WORD);
    if (r.data < 0n || r.data > MAX_UINT256) throw new Error(`record data ${r.data} is not a uint256`);
    out.write(r.data.toString(16).padStart(2 * WORD, '0'), at + 2 * WORD, 'hex');
  });
  return `0x${out.toString('hex')}`;
}

function hexBytes(value: string, size: number): Buffer {
  if (value.length !== 2 + 2 * size || !isHexString(value))
    throw new Error(`"${value}" is not ${size} bytes of 0x-prefixed hex`);
  return Buffer.from(value.slice(2), 'hex');
}

/** One record as submitted: subject and eventId are hex (bytes32, bytes16); data is the codec's packed word. */
export interface RegistryRecord {
  subject: string;
  eventId: string;
  data: bigint;
}

/** The part of the contract this code base calls, typed. Events are read through `registryInterface`. */
export type CreditRegistryContract = BaseContract & {
  admin: BaseContractMethod<[], string, string>;
  pendingAdmin: BaseContractMethod<[], string, string>;
  bankOf: BaseContractMethod<[member: string], string, string>;
  members: BaseContractMethod<[], Result, Result>;
  recordOf: BaseContractMethod<[subject: BytesLike, bankId: BytesLike], bigint, bigint>;
  submitBatch: BaseContractMethod<[records: RegistryRecord[]], void, ContractTransactionResponse>;
  addMember: BaseContractMethod<[member: string, bankId: BytesLike], void, ContractTransactionResponse>;
  removeMember: BaseContractMethod<[member: string], void, ContractTransactionResponse>;
  proposeAdmin: BaseContractMethod<[proposed: string], void, ContractTransactionResponse>;
  acceptAdmin: BaseContractMethod<[], void, ContractTransactionResponse>;
};

export function connectRegistry(address: string, runner: ContractRunner | null): CreditRegistryContract {
  return new Contract(address, CREDIT_REGISTRY_ABI, runner) as unknown as CreditRegistryContract;
}

export interface DeployedRegistry {
  registry: CreditRegistryContract;
  address: string;
  deployBlock: number;
  deployTxHash: string;
}

/** Deploys a CreditRegistry whose admin is `signer`, and waits for it to be mined. */
export async function deployRegistry(
  signer: Signer,
  overrides: Omit<TransactionRequest, 'to' | 'data'> = {}
): Promise<DeployedRegistry> {
  const contract = await new ContractFactory(CREDIT_REGISTRY_ABI, CREDIT_REGISTRY_BYTECODE, signer).deploy(overrides);
  const receipt = await contract.deploymentTransaction()?.wait();
  if (!receipt) throw new Error('CreditRegistry deployment: no receipt for the deployment transaction');
  const address = await contract.getAddress();
  return {
    registry: connectRegistry(address, signer),
    address,
    deployBlock: receipt.blockNumber,
    deployTxHash: receipt.hash,
  };
}

/** Reads the member list as (address, bank id) pairs. */
export async function readMembers(registry: CreditRegistryContract): Promise<{ address: string; bankId: string }[]> {
  const [addrs, bankIds] = (await registry.members()) as unknown as [string[], string[]];
  return addrs.map((address, i) => ({ address, bankId: bytes32ToBankId(bankIds[i]!) }));
}

const BANK_ID = /^[A-Z0-9-]{1,31}$/;

/** Bank ids are short ASCII names ("BANK-A"); on chain they are right-padded bytes32. */
export function bankIdToBytes32(bankId: string): string {
  if (!BANK_ID.test(bankId)) {
    throw new Error(`invalid bank id ${JSON.stringify(bankId)}: expected 1-31 characters of A-Z, 0-9 and '-'`);
  }
  return encodeBytes32String(bankId);
}

export function bytes32ToBankId(value: string): string {
  const bankId = isHexString(value, 32) ? safeDecodeBytes32(value) : undefined;
  if (bankId === undefined || !BANK_ID.test(bankId)) {
    throw new Error(
      `${value} is not an encoded bank id (1-31 characters of A-Z, 0-9 and '-', right-padded with zeros)`
    );
  }
  return bankId;
}

function safeDecodeBytes32(value: string): string | undefined {
  try {
    return decodeBytes32String(value);
  } catch {
    return undefined;
  }
}

/** The contract orders records by the low 64 bits of their data word. */
export function sequenceOf(data: bigint): bigint {
  return BigInt.asUintN(64, data);
}

/** CreditRecordSkipped reasons; the values are the contract's SkipReason enum. */
export enum SkipReason {
  Duplicate = 1,
  Stale = 2,
  Conflict = 3,
  InvalidSequence = 4,
}

const SKIP_REASON_TEXT: Record<SkipReason, string> = {
  [SkipReason.Duplicate]: 'duplicate: same sequence and same data already recorded',
  [SkipReason.Stale]: 'stale: an older sequence than the recorded one',
  [SkipReason.Conflict]: 'conflict: same sequence as the recorded one but different data',
  [SkipReason.InvalidSequence]: 'invalid sequence: sequence 0 is never applied',
};

/** A human-readable explanation of a skip reason as found in the event (ethers decodes uint8 as bigint). */
export function describeSkipReason(reason: number | bigint): string {
  return SKIP_REASON_TEXT[Number(reason) as SkipReason] ?? `unknown skip reason ${reason}`;
}

const ERROR_TEXT: Record<string, string> = {
  NotAdmin: 'the sender is not the registry admin',
  NotPendingAdmin: 'the sender is not the proposed admin',
  NotMember: 'the sender is not a consortium member',
  AlreadyMember: 'the address is already a member',
  UnknownMember: 'the address is not a member',
  ZeroBankId: 'the bank id is empty',
  ZeroAddress: 'the address is the zero address',
  EmptyBatch: 'the batch has no records (a caller bug)',
};

export interface RegistryRevert {
  /** The custom error's name, e.g. "NotMember". */
  name: string;
  args: unknown[];
  /** e.g. "CreditRegistry rejected the call: NotMember(0xabc…) — the sender is not a consortium member". */
  message: string;
}

/**
 * Decodes a CreditRegistry custom error from an ethers error (a failed estimateGas, call or send), using the ABI.
 * Returns undefined when the error carries no revert data this contract defines (e.g. a network failure).
 */
export function decodeRegistryRevert(err: unknown): RegistryRevert | undefined {
  const data = revertData(err);
  const parsed = data === undefined ? null : safeParseError(data);
  if (!parsed) return undefined;
  const args = [...parsed.args] as unknown[];
  const call = `${parsed.name}(${args.map(String).join(', ')})`;
  const why = ERROR_TEXT[parsed.name];
  return {
    name: parsed.name,
    args,
    message: `CreditRegistry rejected the call: ${call}${why ? ` — ${why}` : ''}`,
  };
}

/** The decoded revert message when there is one, otherwise the error's own message (its URLs redacted). */
export function registryErrorMessage(err: unknown): string {
  return decodeRegistryRevert(err)?.message ?? errorMessage(err);
}

function safeParseError(data: string): ReturnType<Interface['parseError']> {
  try {
    return registryInterface.parseError(data);
  } catch {
    return null;
  }
}

/** Revert data sits on the ethers error itself or, for some nodes, on the nested JSON-RPC error. */
function revertData(err: unknown): string | undefined {
  const candidates = [err, field(err, 'error'), field(field(err, 'info'), 'error')];
  for (const candidate of candidates) {
    const data = field(candidate, 'data');
    if (typeof data === 'string' && isHexString(data) && data.length >= 10) return data;
  }
  return undefined;
}

function field(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
}
