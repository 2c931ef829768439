import { JsonRpcProvider, getAddress, parseEther, toQuantity } from 'ethers';
import { bankIdToBytes32, deployRegistry } from '../../shared/chain/registry';
import { feeFields, readBlockTerms } from '../../shared/submit/fees';

export interface ConsortiumMember {
  address: string;
  bankId: string;
}

export interface Consortium {
  registryAddress: string;
  adminAddress: string;
  deployBlock: number;
}

/** Enough for years of local batches; anvil_setBalance mints it, so no faucet account is drained. */
const MEMBER_BALANCE = parseEther('1000');

/**
 * Deploys CreditRegistry on a local anvil from its unlocked dev account #0 (eth_sendTransaction, so no private key
 * appears here), registers the members and funds them so they can pay gas.
 */
export async function deployConsortium(rpcUrl: string, members: ConsortiumMember[]): Promise<Consortium> {
  // Validate everything before the first transaction, so a typo does not leave a half-built consortium.
  const entries = members.map((m) => ({ address: getAddress(m.address), bankId: bankIdToBytes32(m.bankId) }));
  const provider = new JsonRpcProvider(rpcUrl, undefined, { pollingInterval: 100 });
  try {
    const admin = await provider.getSigner(0);
    // ethers' default fee guess fails on a zero-gas chain; price transactions the way the submitter does.
    const fees = feeFields((await readBlockTerms(provider)).fees);
    const { registry, address, deployBlock } = await deployRegistry(admin, fees);
    // Send every registration before waiting, so interval mining needs one block rather than one per member.
    const pending = [];
    for (const { address: member, bankId } of entries) pending.push(await registry.addMember(member, bankId, fees));
    await Promise.all(pending.map((tx) => tx.wait()));
    for (const { address: member } of entries) {
      await provider.send('anvil_setBalance', [member, toQuantity(MEMBER_BALANCE)]);
    }
    return { registryAddress: address, adminAddress: await admin.getAddress(), deployBlock };
  } finally {
    provider.destroy();
  }
}
