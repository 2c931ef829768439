import { RpcClient, ProbeError } from './rpc';
import { blockHeader, type BlockHeader } from './rpc-parse';

/** Blocks the chain-level figures are computed over. */
export const CHAIN_WINDOW_BLOCKS = 30;

/**
 * The last few block headers of the best node, kept between beats so each beat fetches only the new ones
 * (one batched request). Hash continuity is checked: if the window does not link up (a reorg, or the best
 * node moved to another chain), it is fetched again from scratch.
 */
export class HeaderWindow {
  private cache = new Map<number, BlockHeader>();
  private source = '';

  constructor(readonly size = CHAIN_WINDOW_BLOCKS) {}

  async load(client: RpcClient, head: BlockHeader, signal: AbortSignal): Promise<BlockHeader[]> {
    if (this.source !== client.url) this.cache.clear();
    this.source = client.url;
    this.cache.set(head.number, head);
    let headers = await this.fill(client, head, signal);
    if (!linked(headers)) {
      this.cache.clear();
      this.cache.set(head.number, head);
      headers = await this.fill(client, head, signal);
      if (!linked(headers)) throw new ProbeError('recent blocks do not link up by parent hash (reorg in progress?)');
    }
    for (const n of this.cache.keys()) if (n < head.number - this.size + 1 || n > head.number) this.cache.delete(n);
    return headers;
  }

  private async fill(client: RpcClient, head: BlockHeader, signal: AbortSignal): Promise<BlockHeader[]> {
    const from = Math.max(0, head.number - this.size + 1);
    const missing: number[] = [];
    for (let n = from; n <= head.number; n++) if (!this.cache.has(n)) missing.push(n);
    const answers = await client.batch(
      missing.map((n) => ({ method: 'eth_getBlockByNumber', params: [`0x${n.toString(16)}`, false] })),
      signal
    );
    answers.forEach((answer, i) => {
      if (answer.status === 'rejected') throw answer.reason;
      const header = blockHeader(answer.value, `block ${missing[i]}`);
      if (header.number !== missing[i]) throw new ProbeError(`asked for block ${missing[i]}, got ${header.number}`);
      this.cache.set(header.number, header);
    });
    const headers: BlockHeader[] = [];
    for (let n = from; n <= head.number; n++) headers.push(this.cache.get(n)!);
    return headers;
  }
}

function linked(headers: BlockHeader[]): boolean {
  return headers.every((h, i) => i === 0 || h.parentHash === headers[i - 1]!.hash);
}

export interface ChainStats {
  avgBlockTimeSeconds?: number;
  txPerMinute?: number;
}

/**
 * Average block interval over the window, and transactions per minute from the window's first block up to now
 * (not up to the last block), so a stalled chain shows a falling rate rather than its last busy minute.
 */
export function chainStats(headers: BlockHeader[], nowSeconds: number): ChainStats {
  if (headers.length < 2) return {};
  const first = headers[0]!;
  const last = headers[headers.length - 1]!;
  const stats: ChainStats = {
    avgBlockTimeSeconds: round((last.timestamp - first.timestamp) / (headers.length - 1), 3),
  };
  const span = Math.max(1, nowSeconds - first.timestamp);
  const txs = headers.slice(1).reduce((sum, h) => sum + h.txCount, 0);
  stats.txPerMinute = round((txs / span) * 60, 2);
  return stats;
}

export const round = (value: number, digits: number): number => {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
};
