import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  JsonRpcProvider,
  Wallet,
  hexlify,
  parseEther,
  randomBytes,
  toQuantity,
  type ContractTransactionResponse,
  type HDNodeWallet,
  type Signer,
  type TransactionReceipt,
} from 'ethers';
import { startAnvil, type Anvil } from '../../local/stack/anvil';
import { deployConsortium } from '../../local/stack/consortium';
import {
  SkipReason,
  bankIdToBytes32,
  connectRegistry,
  decodeRegistryRevert,
  deployRegistry,
  readMembers,
  registryErrorMessage,
  registryInterface,
  type RegistryRecord,
  type RegistryRevert,
} from '../../shared/chain/registry';

const ROOT = join(__dirname, '..', '..');
const BANK_A = bankIdToBytes32('BANK-A');
const BANK_B = bankIdToBytes32('BANK-B');

let anvil: Anvil;
let provider: JsonRpcProvider;
let admin: Signer;
let registryAddress: string;
// Throwaway keys generated per run; anvil_setBalance funds them.
let signerA1: HDNodeWallet;
let signerA2: HDNodeWallet;
let signerB: HDNodeWallet;
let outsider: HDNodeWallet;

async function fundedWallet(): Promise<HDNodeWallet> {
  const wallet = Wallet.createRandom().connect(provider);
  await provider.send('anvil_setBalance', [wallet.address, toQuantity(parseEther('100'))]);
  return wallet;
}

function registryAs(runner: Signer, address = registryAddress) {
  return connectRegistry(address, runner);
}

async function mined(tx: Promise<ContractTransactionResponse>): Promise<TransactionReceipt> {
  const receipt = await (await tx).wait();
  if (!receipt) throw new Error('no receipt');
  return receipt;
}

/** Awaits a call that must revert and returns the decoded custom error. */
async function revertOf(call: Promise<unknown>): Promise<RegistryRevert | undefined> {
  try {
    await call;
  } catch (err) {
    return decodeRegistryRevert(err);
  }
  throw new Error('expected the call to revert, but it succeeded');
}

/** The registry events of a receipt as [name, ...args], for whole-list comparisons. */
function events(receipt: TransactionReceipt): unknown[][] {
  return receipt.logs
    .map((log) => registryInterface.parseLog(log))
    .filter((log) => log !== null)
    .map((log) => [log.name, ...(log.args.toArray() as unknown[])]);
}

function subject(): string {
  return hexlify(randomBytes(32));
}

function record(subjectHex: string, sequence: bigint, payload = 0xc0ffeen): RegistryRecord {
  // The codec owns the high 192 bits; the contract only reads the low 64 (sequence).
  return { subject: subjectHex, eventId: hexlify(randomBytes(16)), data: (payload << 64n) | sequence };
}

beforeAll(async () => {
  anvil = await startAnvil({ blockTimeSeconds: 0 });
  // No request cache: ethers otherwise reuses a pending nonce for 250 ms and back-to-back sends collide.
  provider = new JsonRpcProvider(anvil.rpcUrl, undefined, { pollingInterval: 50, cacheTimeout: -1 });
  admin = await provider.getSigner(0);
  signerA1 = Wallet.createRandom().connect(provider);
  signerA2 = Wallet.createRandom().connect(provider);
  signerB = Wallet.createRandom().connect(provider);
  outsider = await fundedWallet();
  ({ registryAddress } = await deployConsortium(anvil.rpcUrl, [
    { address: signerA1.address, bankId: 'BANK-A' },
    { address: signerA2.address, bankId: 'BANK-A' },
    { address: signerB.address, bankId: 'BANK-B' },
  ]));
});

afterAll(async () => {
  provider?.destroy();
  await anvil?.stop();
});

describe('deployment', () => {
  it('runs the checked-in artifact on a london chain and funds the members', async () => {
    const artifact = JSON.parse(readFileSync(join(ROOT, 'contracts', 'CreditRegistry.json'), 'utf8')) as {
      deployedBytecode: string;
    };
    expect(await provider.getCode(registryAddress)).toBe(artifact.deployedBytecode);
    expect(await provider.getBalance(signerB.address)).toBeGreaterThan(0n);
    expect(await registryAs(admin).admin()).toBe(await admin.getAddress());
  });
});

describe('membership', () => {
  it('lists members with their banks', async () => {
    const registry = registryAs(outsider);
    expect(await readMembers(registry)).toEqual([
      { address: signerA1.address, bankId: 'BANK-A' },
      { address: signerA2.address, bankId: 'BANK-A' },
      { address: signerB.address, bankId: 'BANK-B' },
    ]);
    expect(await registry.bankOf(signerA2.address)).toBe(BANK_A);
    expect(await registry.bankOf(outsider.address)).toBe(`0x${'00'.repeat(32)}`);
  });

  it('lets only the admin add or remove members', async () => {
    const asOutsider = registryAs(outsider);
    expect((await revertOf(asOutsider.addMember(outsider.address, BANK_B)))?.message).toBe(
      `CreditRegistry rejected the call: NotAdmin(${outsider.address}) — the sender is not the registry admin`
    );
    expect((await revertOf(asOutsider.removeMember(signerB.address)))?.name).toBe('NotAdmin');
  });

  it('validates additions and removals', async () => {
    const registry = registryAs(admin);
    const fresh = Wallet.createRandom().address;
    expect((await revertOf(registry.addMember(signerA1.address, BANK_B)))?.name).toBe('AlreadyMember');
    expect((await revertOf(registry.addMember(fresh, `0x${'00'.repeat(32)}`)))?.name).toBe('ZeroBankId');
    expect((await revertOf(registry.addMember(`0x${'00'.repeat(20)}`, BANK_B)))?.name).toBe('ZeroAddress');
    expect(await revertOf(registry.removeMember(fresh))).toMatchObject({ name: 'UnknownMember', args: [fresh] });
  });

  it('removes a member in O(1) and the removed key can no longer submit', async () => {
    const rotated = await fundedWallet();
    await mined(registryAs(admin).addMember(rotated.address, BANK_B));
    await mined(registryAs(rotated).submitBatch([record(subject(), 1n)]));

    const receipt = await mined(registryAs(admin).removeMember(signerA1.address));
    expect(events(receipt)).toEqual([['MemberRemoved', signerA1.address, BANK_A]]);
    await mined(registryAs(admin).removeMember(rotated.address));
    // Swap-and-pop moved the last member into the removed slot.
    expect(await readMembers(registryAs(admin))).toEqual([
      { address: signerB.address, bankId: 'BANK-B' },
      { address: signerA2.address, bankId: 'BANK-A' },
    ]);
    expect((await revertOf(registryAs(rotated).submitBatch([record(subject(), 2n)])))?.name).toBe('NotMember');

    await mined(registryAs(admin).addMember(signerA1.address, BANK_A));
    expect(await registryAs(admin).bankOf(signerA1.address)).toBe(BANK_A);
  });

  it('transfers admin in two steps', async () => {
    const { address } = await deployRegistry(admin);
    const next = await fundedWallet();
    await mined(registryAs(admin, address).proposeAdmin(next.address));
    expect(await registryAs(admin, address).pendingAdmin()).toBe(next.address);
    expect((await revertOf(registryAs(outsider, address).acceptAdmin()))?.name).toBe('NotPendingAdmin');

    const receipt = await mined(registryAs(next, address).acceptAdmin());
    expect(events(receipt)).toEqual([['AdminChanged', await admin.getAddress(), next.address]]);
    expect(await registryAs(next, address).admin()).toBe(next.address);
    expect((await revertOf(registryAs(admin, address).addMember(outsider.address, BANK_B)))?.name).toBe('NotAdmin');
    await mined(registryAs(next, address).addMember(outsider.address, BANK_B));
  });
});

describe('submitBatch', () => {
  it('rejects a non-member with a clear, decoded error', async () => {
    let caught: unknown;
    await registryAs(outsider)
      .submitBatch([record(subject(), 1n)])
      .catch((err: unknown) => (caught = err));
    expect(registryErrorMessage(caught)).toBe(
      `CreditRegistry rejected the call: NotMember(${outsider.address}) — the sender is not a consortium member`
    );
  });

  it('rejects an empty batch', async () => {
    expect((await revertOf(registryAs(signerA1).submitBatch([])))?.name).toBe('EmptyBatch');
  });

  it('applies new records and emits every field a projection needs', async () => {
    const records = [record(subject(), 5n), record(subject(), 1n)];
    const receipt = await mined(registryAs(signerA1).submitBatch(records));
    expect(events(receipt)).toEqual(records.map((r) => ['CreditRecordUpdated', r.subject, BANK_A, r.eventId, r.data]));
    for (const r of records) expect(await registryAs(outsider).recordOf(r.subject, BANK_A)).toBe(r.data);
  });

  it('skips duplicate, stale, conflicting and zero sequences without reverting the batch', async () => {
    const [s1, s2, s3, s4] = [subject(), subject(), subject(), subject()];
    const first = record(s1, 5n, 111n);
    const s2v1 = record(s2, 1n);
    await mined(registryAs(signerA1).submitBatch([first, s2v1]));

    // A second signer of the same bank shares the bank's sequences.
    const duplicate = { ...first, eventId: hexlify(randomBytes(16)) };
    const stale = record(s1, 3n, 111n);
    const conflict = record(s1, 5n, 222n);
    const zero = record(s3, 0n);
    const s2v2 = record(s2, 2n, 333n);
    const s4v1 = record(s4, 1n);
    const batch = [duplicate, s2v2, stale, conflict, zero, s4v1];
    const receipt = await mined(registryAs(signerA2).submitBatch(batch));

    const skipped = (r: RegistryRecord, seq: bigint, current: bigint, reason: SkipReason) =>
      ['CreditRecordSkipped', r.subject, BANK_A, r.eventId, seq, current, BigInt(reason)] as unknown[];
    expect(events(receipt)).toEqual([
      skipped(duplicate, 5n, 5n, SkipReason.Duplicate),
      ['CreditRecordUpdated', s2, BANK_A, s2v2.eventId, s2v2.data],
      skipped(stale, 3n, 5n, SkipReason.Stale),
      skipped(conflict, 5n, 5n, SkipReason.Conflict),
      skipped(zero, 0n, 0n, SkipReason.InvalidSequence),
      ['CreditRecordUpdated', s4, BANK_A, s4v1.eventId, s4v1.data],
    ]);
    const read = registryAs(outsider);
    expect(await read.recordOf(s1, BANK_A)).toBe(first.data);
    expect(await read.recordOf(s2, BANK_A)).toBe(s2v2.data);
    expect(await read.recordOf(s3, BANK_A)).toBe(0n);
    expect(await read.recordOf(s4, BANK_A)).toBe(s4v1.data);
  });

  it('keeps separate sequences per bank for the same subject', async () => {
    const shared = subject();
    const fromA = record(shared, 7n, 1n);
    const fromB = record(shared, 1n, 2n);
    await mined(registryAs(signerA1).submitBatch([fromA]));
    const receipt = await mined(registryAs(signerB).submitBatch([fromB]));
    expect(events(receipt).map(([name]) => name)).toEqual(['CreditRecordUpdated']);
    expect(await registryAs(outsider).recordOf(shared, BANK_A)).toBe(fromA.data);
    expect(await registryAs(outsider).recordOf(shared, BANK_B)).toBe(fromB.data);
  });
});

describe('gas per record', () => {
  /** Realistic records: random subjects, event ids and a fully used data word, so calldata costs are not understated. */
  function batchOf(subjects: string[], sequence: bigint): RegistryRecord[] {
    return subjects.map((s) => record(s, sequence, BigInt(hexlify(randomBytes(24)))));
  }

  it('stays within the per-record budget the throughput model assumes', async () => {
    const registry = registryAs(signerB);
    const rows: { batch: number; newRecords: bigint; updates: bigint }[] = [];
    for (const size of [1, 10, 100]) {
      const subjects = Array.from({ length: size }, subject);
      const created = await mined(registry.submitBatch(batchOf(subjects, 1n)));
      const updated = await mined(registry.submitBatch(batchOf(subjects, 2n)));
      expect(events(updated).filter(([name]) => name === 'CreditRecordUpdated')).toHaveLength(size);
      rows.push({ batch: size, newRecords: created.gasUsed, updates: updated.gasUsed });
    }
    const [one, , hundred] = rows as [(typeof rows)[0], (typeof rows)[0], (typeof rows)[0]];
    const perNew = (hundred.newRecords - one.newRecords) / 99n;
    const perUpdate = (hundred.updates - one.updates) / 99n;
    console.log(
      [
        'CreditRegistry gas (from receipts)',
        ...rows.map((r) => `  batch ${String(r.batch).padStart(3)}: new ${r.newRecords}, update ${r.updates}`),
        `  marginal per record: new ${perNew}, update ${perUpdate}`,
        `  per-batch overhead:  new ${one.newRecords - perNew}, update ${one.updates - perUpdate}`,
      ].join('\n')
    );
    // Lower bounds prove the records are really stored (a zero-to-nonzero SSTORE alone costs 20k).
    expect(perNew).toBeGreaterThan(20_000n);
    expect(perNew).toBeLessThan(30_000n);
    expect(perUpdate).toBeGreaterThan(5_000n);
    expect(perUpdate).toBeLessThan(12_000n);
  });
});

describe('artifact', () => {
  const run = (cwd: string, ...args: string[]) =>
    spawnSync(process.execPath, [join(cwd, 'scripts', 'build-contract.js'), ...args], {
      encoding: 'utf8',
      env: { ...process.env, NODE_PATH: join(ROOT, 'node_modules') },
    });

  it('is up to date with the source', () => {
    const result = run(ROOT, '--check');
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('--check fails on a stale artifact and a rebuild restores it byte for byte', () => {
    const dir = mkdtempSync(join(tmpdir(), 'build-contract-'));
    try {
      mkdirSync(join(dir, 'scripts'));
      mkdirSync(join(dir, 'contracts'));
      copyFileSync(join(ROOT, 'scripts', 'build-contract.js'), join(dir, 'scripts', 'build-contract.js'));
      copyFileSync(join(ROOT, 'contracts', 'CreditRegistry.sol'), join(dir, 'contracts', 'CreditRegistry.sol'));
      writeFileSync(join(dir, 'contracts', 'CreditRegistry.json'), '{}\n');

      const check = run(dir, '--check');
      expect(check.status).toBe(1);
      expect(check.stderr).toContain('out of date');
      expect(run(dir).status).toBe(0);
      expect(readFileSync(join(dir, 'contracts', 'CreditRegistry.json'), 'utf8')).toBe(
        readFileSync(join(ROOT, 'contracts', 'CreditRegistry.json'), 'utf8')
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
