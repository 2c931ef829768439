import type { JsonRpcProvider, TransactionRequest } from 'ethers';

/**
 * How this chain prices gas, read from the latest block and the node:
 * - `free`: a zero-gas-price PoA chain (common on Besu/GoQuorum consortia): legacy transactions at price 0;
 * - `eip1559`: a base fee exists and is non-zero: type-2 transactions;
 * - `legacy`: a gas price without a base fee.
 */
export type FeeModel =
  | { kind: 'free' }
  | { kind: 'eip1559'; maxFeePerGas: bigint; maxPriorityFeePerGas: bigint }
  | { kind: 'legacy'; gasPrice: bigint };

/** What the latest block says about pricing and room. */
export interface BlockTerms {
  fees: FeeModel;
  /** The gas one block holds: what decides whether a batch can still make the next block. */
  gasLimit: number;
  /** The gas the latest block used: how full the chain's blocks are. */
  gasUsed: number;
  /** When the latest block was made (seconds): a chain that makes none for a while is idle, however full it was. */
  timestamp: number;
}

/**
 * The latest block's fee model, never paying more than `capPerGas` per gas (SUBMIT_MAX_FEE_PER_GAS_GWEI), its
 * gas limit and the gas it used.
 */
export async function readBlockTerms(provider: JsonRpcProvider, capPerGas?: bigint): Promise<BlockTerms> {
  const [block, gasPriceHex] = await Promise.all([
    provider.getBlock('latest'),
    provider.send('eth_gasPrice', []) as Promise<string>,
  ]);
  if (!block) throw new Error('the RPC endpoint returned no latest block');
  const fees = feesOf(block.baseFeePerGas ?? 0n, BigInt(gasPriceHex));
  return {
    fees: capPerGas === undefined ? fees : capFees(fees, capPerGas),
    gasLimit: Number(block.gasLimit),
    gasUsed: Number(block.gasUsed),
    timestamp: block.timestamp,
  };
}

function feesOf(baseFee: bigint, gasPrice: bigint): FeeModel {
  if (baseFee === 0n && gasPrice === 0n) return { kind: 'free' };
  if (baseFee > 0n) {
    const tip = gasPrice > baseFee ? gasPrice - baseFee : 1n;
    // Twice the base fee rides out six full blocks of base-fee growth before the transaction stalls.
    return { kind: 'eip1559', maxPriorityFeePerGas: tip, maxFeePerGas: 2n * baseFee + tip };
  }
  return { kind: 'legacy', gasPrice };
}

export function feeFields(
  model: FeeModel
): Pick<TransactionRequest, 'type' | 'gasPrice' | 'maxFeePerGas' | 'maxPriorityFeePerGas'> {
  switch (model.kind) {
    case 'free':
      return { type: 0, gasPrice: 0n };
    case 'legacy':
      return { type: 0, gasPrice: model.gasPrice };
    case 'eip1559':
      return { type: 2, maxFeePerGas: model.maxFeePerGas, maxPriorityFeePerGas: model.maxPriorityFeePerGas };
  }
}

/** The same fees, none above `cap` per gas: a stuck transaction is better than an unbounded bill. */
export function capFees(model: FeeModel, cap: bigint): FeeModel {
  const min = (a: bigint, b: bigint): bigint => (a < b ? a : b);
  switch (model.kind) {
    case 'free':
      return model;
    case 'legacy':
      return { kind: 'legacy', gasPrice: min(model.gasPrice, cap) };
    case 'eip1559': {
      const maxFeePerGas = min(model.maxFeePerGas, cap);
      return { kind: 'eip1559', maxFeePerGas, maxPriorityFeePerGas: min(model.maxPriorityFeePerGas, maxFeePerGas) };
    }
  }
}

/**
 * A replacement must pay at least 10% more on every fee field for nodes to accept it (geth, Besu); 25% leaves
 * room. A free chain has nothing to bump: a stuck transaction there is rebroadcast as it is.
 */
export function bumpFees(previous: FeeModel, current: FeeModel): FeeModel {
  const up = (value: bigint): bigint => (value * 125n) / 100n + 1n;
  if (previous.kind === 'eip1559' && current.kind === 'eip1559') {
    const tip = up(previous.maxPriorityFeePerGas);
    const maxFee = up(previous.maxFeePerGas);
    return {
      kind: 'eip1559',
      maxPriorityFeePerGas: tip > current.maxPriorityFeePerGas ? tip : current.maxPriorityFeePerGas,
      maxFeePerGas: maxFee > current.maxFeePerGas ? maxFee : current.maxFeePerGas,
    };
  }
  if (previous.kind === 'legacy' && current.kind === 'legacy') {
    const price = up(previous.gasPrice);
    return { kind: 'legacy', gasPrice: price > current.gasPrice ? price : current.gasPrice };
  }
  return previous;
}

/** The fee model a signed transaction used (to bump it later). */
export function feeModelOf(tx: {
  type: number | null;
  gasPrice: bigint | null;
  maxFeePerGas: bigint | null;
  maxPriorityFeePerGas: bigint | null;
}): FeeModel {
  if (tx.type === 2)
    return {
      kind: 'eip1559',
      maxFeePerGas: tx.maxFeePerGas ?? 0n,
      maxPriorityFeePerGas: tx.maxPriorityFeePerGas ?? 0n,
    };
  return (tx.gasPrice ?? 0n) === 0n ? { kind: 'free' } : { kind: 'legacy', gasPrice: tx.gasPrice ?? 0n };
}

/** The most a transaction with these fees can pay per gas (0 on a free chain): what the fee cap limits. */
export function maxFeePerGas(model: FeeModel): bigint {
  switch (model.kind) {
    case 'free':
      return 0n;
    case 'legacy':
      return model.gasPrice;
    case 'eip1559':
      return model.maxFeePerGas;
  }
}
