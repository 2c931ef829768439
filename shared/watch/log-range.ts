import { isError } from 'ethers';

/**
 * Nodes cap eth_getLogs: by block range (Geth, Besu, Erigon), by result count (Infura, Alchemy) or by time. The
 * watcher adapts: it halves its range when a node refuses one and grows back after a run of successes, so a
 * busy stretch of chain slows it down instead of stopping it.
 */
export class LogRangeSizer {
  private size: number;
  private successes = 0;

  /** Successes in a row before the range doubles again: amortizes the refusal a too-large probe costs. */
  static readonly GROW_AFTER = 4;

  constructor(private readonly max: number) {
    this.size = max;
  }

  get blocks(): number {
    return this.size;
  }

  /** Halves the refused range; false when it was a single block (nothing left to shrink). */
  shrink(refusedBlocks: number): boolean {
    this.successes = 0;
    if (refusedBlocks <= 1) return false;
    this.size = Math.max(1, Math.floor(Math.min(this.size, refusedBlocks) / 2));
    return true;
  }

  grow(): void {
    if (++this.successes < LogRangeSizer.GROW_AFTER) return;
    this.successes = 0;
    this.size = Math.min(this.max, this.size * 2);
  }
}

/** EIP-1474 "limit exceeded": Besu, Nethermind and Infura answer an oversized log query with it. */
const LIMIT_EXCEEDED = -32005;
/**
 * Codes that mean "too large" only together with a known text: Geth/Erigon reuse -32602 (invalid params) for
 * "exceed maximum block range", Geth and hosted nodes -32000 for "query returned more than 10000 results" or
 * "query timeout exceeded". Message matching is the last resort, limited to these well-known node messages.
 */
const AMBIGUOUS_CODES = new Set([-32602, -32000, -32001]);
const KNOWN_MESSAGES =
  /block range|range (is )?too (large|wide|big)|more than \d+ (results|logs)|query timeout|timed? ?out|response size|too many (blocks|logs|results)|exceeds? (the )?max(imum)?/i;

/** True when a node refused an eth_getLogs range as too large or too slow, so a smaller range may succeed. */
export function isRangeRefusal(err: unknown): boolean {
  // ethers gave up waiting: the node is too slow for this range.
  if (isError(err, 'TIMEOUT')) return true;
  // A gateway that cut a slow query short (HTTP 413 payload too large, 504 gateway timeout).
  const status = (err as { info?: { responseStatus?: string } }).info?.responseStatus ?? '';
  if (isError(err, 'SERVER_ERROR') && /^(413|504)\b/.test(status)) return true;
  const rpc = (err as { error?: { code?: unknown; message?: unknown } }).error;
  if (typeof rpc?.code !== 'number') return false;
  if (rpc.code === LIMIT_EXCEEDED) return true;
  return AMBIGUOUS_CODES.has(rpc.code) && typeof rpc.message === 'string' && KNOWN_MESSAGES.test(rpc.message);
}
