import { isError, type JsonRpcProvider } from 'ethers';
import { isTransient, type Chain } from '../chain/provider';
import { parseMinedTx, type MinedTx } from '../chain/rpc-answers';
import { errorMessage, redactUrl } from '../redact';

/** A broadcast every endpoint refused, for the row's lastError and the failure metric. */
export interface BroadcastFailure {
  kind: 'insufficient-funds' | 'unreachable' | 'rejected';
  message: string;
}

/**
 * Sends a raw transaction through the load balancer, then the fallbacks until one takes it. "Already known"
 * is detected by asking the node for the transaction, not by reading its message. A nonce already used or a
 * replacement already pooled is left for the next run's reconciliation. Returns the failure, if every endpoint
 * failed.
 */
export async function broadcast(chain: Chain, raw: string, hash: string): Promise<BroadcastFailure | undefined> {
  let failure: BroadcastFailure = { kind: 'unreachable', message: 'no endpoint answered' };
  for (const provider of chain.providers) {
    try {
      await provider.send('eth_sendRawTransaction', [raw]);
      return undefined;
    } catch (err) {
      if (isError(err, 'NONCE_EXPIRED') || isError(err, 'REPLACEMENT_UNDERPRICED')) return undefined;
      if (await knows(provider, hash)) return undefined;
      // Stored as the row's lastError and logged: the endpoint's credentials must not go with it.
      const message = `${redactUrl(provider._getConnection().url)}: ${errorMessage(err)}`;
      // Every node will say the same until the signer is funded.
      if (isError(err, 'INSUFFICIENT_FUNDS')) return { kind: 'insufficient-funds', message };
      failure = { kind: isTransient(err) ? 'unreachable' : 'rejected', message };
    }
  }
  return failure;
}

/** Whether the node holds the transaction (pooled or mined); false when it cannot say. */
export async function knows(provider: JsonRpcProvider, hash: string): Promise<boolean> {
  try {
    return (await provider.getTransaction(hash)) !== null;
  } catch {
    return false;
  }
}

/** The receipt of any of the hashes; `everywhere` asks every endpoint (a lagging node may not have it yet). */
export async function findReceipt(chain: Chain, hashes: string[], everywhere = false): Promise<MinedTx | null> {
  const providers = everywhere ? chain.providers : [undefined];
  for (const provider of providers) {
    for (const hash of [...hashes].reverse()) {
      const receipt = provider
        ? await minedTx(provider, hash).catch(() => null)
        : await chain.read((p) => minedTx(p, hash));
      if (receipt) return receipt;
    }
  }
  return null;
}

/**
 * A transaction's receipt without its logs, from the raw answer: a batch's receipt carries hundreds of logs, which
 * ethers would turn into objects on every submit run for every batch awaiting confirmation (3% of a host's CPU at
 * saturation), only for three fields. Those are checked here as ethers would; null while not mined.
 */
async function minedTx(provider: JsonRpcProvider, hash: string): Promise<MinedTx | null> {
  return parseMinedTx(await provider.send('eth_getTransactionReceipt', [hash]), hash);
}
