import { OpsStore } from '../shared/ops/ops-store';
import { buildStatus } from '../shared/ops/status';
import { print } from './common';
import { bankTarget } from './target';

/** `status`: validators, chain, pipeline and alerts as of the bank's last heartbeat (its OpsState table). */
export async function statusCommand(options: { bankId?: string; json: boolean }): Promise<void> {
  const { config, tables, local } = bankTarget(options.bankId);
  const s = await buildStatus(new OpsStore(tables), config.bankId, Date.now());
  if (options.json) return print(JSON.stringify(s));
  print(`${s.bankId}  as of beat ${s.sampledAt ?? '(no heartbeat yet)'}`);
  print(
    `validators ${s.validators.overall}: ${s.validators.nodes.map((n) => `${n.name} ${n.status}${n.head !== undefined ? ` head ${n.head}` : ''}`).join(', ') || 'none probed yet'}`
  );
  const c = s.chain;
  print(
    `chain      ${c.overall}: head ${c.head ?? '?'}, block age ${c.blockAgeSeconds ?? '?'} s, avg block time ${c.avgBlockTimeSeconds ?? '?'} s, ${c.txPerMinute ?? '?'} tx/min, ${c.members ?? '?'} members`
  );
  const p = s.pipeline;
  print(
    `pipeline   ${p.overall}: outbox ${p.outboxDepth ?? '?'} (oldest ${p.oldestPendingAgeSeconds ?? '?'} s), rejections ${p.rejections ?? '?'}, dead letters ${p.deadLetters ?? '?'}, projection lag ${p.projectionLagBlocks ?? '?'} blocks / ${p.projectionLagSeconds ?? '?'} s`
  );
  print(
    `write side batches in flight ${p.inFlightBatches ?? '?'} (oldest ${p.oldestInFlightBlocks ?? '?'} blocks), oldest unconfirmed record ${p.oldestUnconfirmedAgeSeconds ?? '?'} s, nonce gaps ${p.nonceGaps ?? '?'}`
  );
  for (const problem of p.problems) print(`  problem: ${problem}`);
  for (const a of s.alerts) print(`alert      ${JSON.stringify(a)}`);
  const host = local?.hosts?.find((h) => h.bankId === config.bankId);
  if (host) print(`dashboard  ${host.url}/api/dashboard?code=${host.functionKey}`);
}
