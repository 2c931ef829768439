import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { Transaction, toQuantity } from 'ethers';
import { registryInterface } from '../../shared/chain/registry';
import { bytes16ToEventId } from '../../shared/domain/event-id';
import type { TransactionSigner } from '../../shared/keyvault/transaction-signer';
import { recordsPerTransaction, runSubmit, type SubmitReport } from '../../shared/submit/submitter';
import { acceptEvents, chainView, drain, expectExactlyOnce, openRows, testBed, type Bed } from './support/submit-bed';
import { recordingTelemetry } from './support/read-path-fixtures';
import { UrgentWork } from '../../shared/urgent-work';

/** A bed whose blocks the test mines by hand: whether a transaction is deep enough is then up to the test. */
async function manualBed(): Promise<Bed> {
  const manual = await testBed({ blockTimeSeconds: 0 });
  await manual.provider.send('evm_setAutomine', [false]);
  return manual;
}

/** Mines on its own again, drains, and checks every one of `ids` was applied exactly once. */
async function drainMiningAgain(manual: Bed, ids: string[]): Promise<void> {
  await manual.provider.send('evm_setAutomine', [true]);
  await manual.provider.send('evm_mine', []);
  await drain(manual, manual.deps());
  expectExactlyOnce(await chainView(manual), ids);
}

describe('submitter on a 1 s block chain', () => {
  let bed: Bed;
  beforeAll(async () => {
    bed = await testBed({ blockTimeSeconds: 1 });
  });
  afterAll(async () => bed?.stop());

  it('puts 1,000 events on chain exactly once, in a handful of transactions per block', async () => {
    const ids = await acceptEvents(bed, 1000);
    const before = bed.signer.signatures;
    const started = Date.now();
    await drain(bed, bed.deps());
    const seconds = (Date.now() - started) / 1000;
    const view = await chainView(bed);
    expectExactlyOnce(view, ids);
    const signatures = bed.signer.signatures - before;
    expect(Math.max(...view.txsPerBlock.values())).toBeLessThanOrEqual(4);
    expect(signatures).toBeLessThanOrEqual(5);
    console.log(
      `1,000 events: ${view.txs.size} transactions, ${signatures} signatures (${(signatures / 1000).toFixed(4)} per record), ` +
        `${(Number(view.gasUsed) / 1000).toFixed(0)} gas per record, drained in ${seconds.toFixed(1)} s`
    );
  });

  it('commits each new batch (write-ahead, claim, broadcast) as urgent work, which ingest in its process waits for', async () => {
    const ids = await acceptEvents(bed, 120);
    const urgent = new UrgentWork();
    let commits = 0;
    const counting = {
      run: <T>(work: () => Promise<T>): Promise<T> => {
        commits++;
        return urgent.run(work);
      },
    };
    const report = await runSubmit(bed.deps({ urgent: counting }));
    expect(report.newBatches).toBeGreaterThan(0);
    expect(commits).toBe(report.newBatches);
    await drain(bed, bed.deps());
    expectExactlyOnce(await chainView(bed), ids);
  });

  it('never lets an older sequence overwrite a newer one', async () => {
    const subject = '0x' + randomBytes(32).toString('hex');
    const [newer] = await acceptEvents(bed, 1, subject, 5);
    await drain(bed, bed.deps());
    const [older] = await acceptEvents(bed, 1, subject, 3);
    await drain(bed, bed.deps());
    const view = await chainView(bed);
    expect(view.applied.get(newer!)).toBe(1);
    expect(view.applied.get(older!)).toBeUndefined();
    expect(view.skipped.get(older!)).toBe(1);
  });

  it.each(['afterSign', 'afterWriteAhead', 'afterClaim', 'afterBroadcast'] as const)(
    'loses and duplicates nothing after a crash %s',
    async (point) => {
      const ids = await acceptEvents(bed, 100);
      const crash = new Error(`crash ${point}`);
      const crashing = bed.deps({
        crashPoints: {
          [point]: () => {
            throw crash;
          },
        },
      });
      await expect(runSubmit(crashing)).rejects.toBe(crash);
      await drain(bed, bed.deps()); // the restarted instance
      expectExactlyOnce(await chainView(bed), ids);
    }
  );

  it('lets only one of two concurrent submitters take each nonce', async () => {
    const ids = await acceptEvents(bed, 400);
    await Promise.all([runSubmit(bed.deps()), runSubmit(bed.deps())]);
    await drain(bed, bed.deps());
    expectExactlyOnce(await chainView(bed), ids);
  });

  it('abandons a batch whose nonce another transaction took, at confirmation depth, and submits its events again', async () => {
    const manual = await manualBed();
    try {
      const ids = await acceptEvents(manual, 50);
      const crash = new Error('crash after write-ahead');
      const crashing = manual.deps({
        crashPoints: {
          afterWriteAhead: () => {
            throw crash;
          },
        },
      });
      await expect(runSubmit(crashing)).rejects.toBe(crash);
      // The same key sends something else with that nonce, outside ledger-bridge.
      const nonce = await manual.provider.getTransactionCount(manual.signer.wallet.address, 'latest');
      await manual.signer.wallet
        .connect(manual.provider)
        .sendTransaction({ to: manual.signer.wallet.address, value: 0n, nonce });
      await manual.provider.send('evm_mine', []);
      // Not given up before confirmation depth: a reorg could still free the nonce for the row's transaction.
      for (let depth = 0; depth < manual.config.chain.confirmations; depth++) {
        expect(await runSubmit(manual.deps())).toMatchObject({ abandoned: 0, newBatches: 0 });
        await manual.provider.send('evm_mine', []);
      }
      expect(await runSubmit(manual.deps())).toMatchObject({ abandoned: 1, newBatches: 1, newRecords: 50 });
      await drainMiningAgain(manual, ids);
    } finally {
      await manual.stop();
    }
  });

  it('gives up a batch that ran out of gas at mining, at confirmation depth, and sends its events again', async () => {
    const manual = await manualBed();
    try {
      const ids = await acceptEvents(manual, 60);
      // Records that cost more at mining than at their estimate (a reorg took away what another key of the bank
      // wrote): stood in for by signing the first batch with a quarter less gas than the submitter asks.
      let cut = false;
      const short: TransactionSigner = {
        getAddress: () => manual.signer.getAddress(),
        signTransaction: (tx) => {
          if (cut || tx.data === undefined) return manual.signer.signTransaction(tx);
          cut = true;
          return manual.signer.signTransaction({ ...tx, gasLimit: (BigInt(tx.gasLimit!) * 3n) / 4n });
        },
      };
      const telemetry = recordingTelemetry();
      expect(await runSubmit(manual.deps({ signer: short, telemetry }))).toMatchObject({
        newBatches: 1,
        newRecords: 60,
      });
      await manual.provider.send('evm_mine', []);
      const [row] = await openRows(manual.deps());
      const receipt = await manual.provider.getTransactionReceipt(row!.txHashes[0]!);
      expect(receipt!.status).toBe(0); // out of gas: the whole batch reverted, nothing applied
      // Not given up before confirmation depth: until then a reorg could mine it again, and it might succeed.
      for (let depth = 0; depth < manual.config.chain.confirmations; depth++) {
        expect(await runSubmit(manual.deps({ telemetry }))).toMatchObject({ abandoned: 0, newBatches: 0 });
        await manual.provider.send('evm_mine', []);
      }
      expect(await runSubmit(manual.deps({ telemetry }))).toMatchObject({
        abandoned: 1,
        newBatches: 1,
        newRecords: 60,
      });
      const abandoned = telemetry.events.filter((e) => e.name === 'BatchAbandoned');
      expect(abandoned.map((e) => e.properties!.reason)).toEqual([
        `transaction ${receipt!.hash} reverted in block ${receipt!.blockNumber}`,
      ]);
      await drainMiningAgain(manual, ids);
    } finally {
      await manual.stop();
    }
  });
});

describe('submitter with the RPC endpoint down for a while', () => {
  let bed: Bed;
  let proxy: Server;
  let down = false;

  beforeAll(async () => {
    // The load balancer in front of the node: while "down" it refuses every request, like an outage.
    proxy = createServer((req, res) => {
      if (down) return req.socket.destroy();
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        fetch(bed.anvil.rpcUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: Buffer.concat(chunks),
        })
          .then(async (r) => res.writeHead(r.status, { 'content-type': 'application/json' }).end(await r.text()))
          .catch(() => req.socket.destroy());
      });
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const port = (proxy.address() as { port: number }).port;
    bed = await testBed({ blockTimeSeconds: 1 }, {}, () => `http://127.0.0.1:${port}`);
  });
  afterAll(async () => {
    await bed?.stop();
    await new Promise<void>((resolve) => proxy.close(() => resolve()));
  });

  it('loses nothing and drains the backlog after recovery', async () => {
    const ids = await acceptEvents(bed, 200);
    down = true;
    const outage = bed.deps();
    const deadline = Date.now() + 10_000;
    let failedRuns = 0;
    while (Date.now() < deadline) {
      await runSubmit(outage).catch(() => failedRuns++);
      await new Promise((r) => setTimeout(r, 1_000));
    }
    expect(failedRuns).toBeGreaterThan(5);
    expect((await outage.outbox.readPending(1000)).length).toBe(200);
    down = false;
    await drain(bed, bed.deps());
    expectExactlyOnce(await chainView(bed), ids);
  }, 90_000);
});

describe('submitter batch sizes', () => {
  const budget = 2_000_000;
  let bed: Bed;
  beforeAll(async () => {
    bed = await testBed({ blockTimeSeconds: 1 }, { SUBMIT_TX_GAS_BUDGET: String(budget) });
  });
  afterAll(async () => bed?.stop());

  /** Records and gas limit of each transaction that carried any of `ids`. */
  async function transactionsOf(ids: string[]): Promise<{ hash: string; records: number; gasLimit: bigint }[]> {
    const wanted = new Set(ids);
    const logs = await bed.provider.getLogs({ address: bed.registryAddress, fromBlock: bed.deployBlock });
    const records = new Map<string, number>();
    for (const log of logs) {
      const parsed = registryInterface.parseLog(log);
      if (parsed?.name !== 'CreditRecordUpdated' || !wanted.has(bytes16ToEventId(parsed.args.eventId as string)))
        continue;
      records.set(log.transactionHash, (records.get(log.transactionHash) ?? 0) + 1);
    }
    return Promise.all(
      [...records].map(async ([hash, n]) => ({
        hash,
        records: n,
        gasLimit: (await bed.provider.getTransaction(hash))!.gasLimit,
      }))
    );
  }

  it('fits batches to the gas budget by what records cost: updates go about three times as many a batch', async () => {
    const subjects = Array.from({ length: 900 }, () => '0x' + randomBytes(32).toString('hex'));
    const created = await acceptEvents(bed, subjects.length, subjects, 1);
    await drain(bed, bed.deps());
    const updated = await acceptEvents(bed, subjects.length, subjects, 2);
    await drain(bed, bed.deps());
    // New subjects after updates: sized at the updates' cost first, the batch overshoots and is cut to fit.
    const createdAfter = await acceptEvents(bed, 600);
    await drain(bed, bed.deps());
    const view = await chainView(bed);
    for (const ids of [created, updated, createdAfter]) expectExactlyOnce(view, ids);

    const newTxs = await transactionsOf(created);
    const updateTxs = await transactionsOf(updated);
    const newAfterTxs = await transactionsOf(createdAfter);
    const largest = (txs: { records: number }[]): number => Math.max(...txs.map((t) => t.records));
    const all = [...newTxs, ...updateTxs, ...newAfterTxs];
    expect(all.filter((t) => t.gasLimit > BigInt(budget))).toEqual([]);
    expect(largest(updateTxs)).toBeGreaterThan(2.5 * largest(newTxs));
    expect(largest(newAfterTxs)).toBeLessThanOrEqual(largest(newTxs) + 10);
    console.log(
      `records per transaction at a ${budget} gas budget: new ${newTxs.map((t) => t.records).join(', ')}; ` +
        `updates ${updateTxs.map((t) => t.records).join(', ')}; new again ${newAfterTxs.map((t) => t.records).join(', ')}`
    );
  });

  it('signs a batch while eth_estimateGas checks it, at the gas limit its size predicts, and signs once a batch', async () => {
    const ids = await acceptEvents(bed, 300);
    const deps = bed.deps();
    // The signatures asked for when each estimate is: a batch signed only after its estimate would show one fewer.
    const signaturesAtEstimate: number[] = [];
    const watched = new Set<object>();
    const read = deps.chain.read.bind(deps.chain);
    deps.chain.read = (fn) =>
      read((p) => {
        if (!watched.has(p)) {
          watched.add(p);
          const estimateGas = p.estimateGas.bind(p);
          p.estimateGas = (tx) => {
            signaturesAtEstimate.push(bed.signer.signatures);
            return estimateGas(tx);
          };
        }
        return fn(p);
      });
    const before = bed.signer.signatures;
    await drain(bed, deps);
    expectExactlyOnce(await chainView(bed), ids);

    const txs = await transactionsOf(ids);
    expect(txs.length).toBeGreaterThan(1);
    expect(signaturesAtEstimate).toEqual(signaturesAtEstimate.map((_, i) => before + i + 1));
    expect(bed.signer.signatures - before).toBe(txs.length);
    const { rows } = await deps.batches.recent(await deps.signer.getAddress(), 0, 1000);
    for (const tx of txs) {
      const row = rows.find((r) => r.txHashes.includes(tx.hash))!;
      expect(BigInt(row.gasLimit!)).toBe(tx.gasLimit);
      expect(row.gasLimit!).toBeGreaterThanOrEqual(row.gasEstimate!);
      expect(tx.gasLimit).toBeLessThanOrEqual(BigInt(budget));
    }
  });

  it("signs each of a run's batches while the one before is written ahead, claimed and broadcast, in nonce order", async () => {
    // More than the run's four batches take: each is a whole one, and none waits for a read after the one before.
    const ids = await acceptEvents(bed, 5 * recordsPerTransaction(bed.config));
    const steps: string[] = [];
    const step = (name: string, nonce: unknown): number => steps.push(`${name} ${Number(nonce)}`);
    const deps = bed.deps({
      signer: {
        getAddress: () => bed.signer.getAddress(),
        signTransaction: (tx) => (step('sign', tx.nonce), bed.signer.signTransaction(tx)),
      },
    });
    const create = deps.batches.create.bind(deps.batches);
    deps.batches.create = (row) => (step('write', row.nonce), create(row));
    const claim = deps.outbox.claim.bind(deps.outbox);
    deps.outbox.claim = async (records, signer, nonce) => {
      await sleep(300); // a slow claim: the next batch is signed meanwhile
      const claimed = await claim(records, signer, nonce);
      step('claimed', nonce);
      return claimed;
    };
    for (const provider of deps.chain.providers) {
      const send = provider.send.bind(provider);
      provider.send = (method, params: unknown[]) => {
        if (method === 'eth_sendRawTransaction') step('broadcast', Transaction.from(params[0] as string).nonce);
        return send(method, params);
      };
    }

    const report = await runSubmit(deps);
    expect(report.newBatches).toBe(bed.config.submit.maxInFlight);
    const nonces = [...new Set(steps.filter((s) => s.startsWith('write')).map((s) => Number(s.split(' ')[1])))];
    expect(nonces).toHaveLength(report.newBatches);
    const at = (name: string, nonce: number): number => steps.indexOf(`${name} ${nonce}`);
    for (const [i, nonce] of nonces.entries()) {
      expect(at('write', nonce)).toBeLessThan(at('claimed', nonce));
      expect(at('claimed', nonce)).toBeLessThan(at('broadcast', nonce));
      if (i === 0) continue;
      // Signed while the batch before it was being claimed; written only once that one was broadcast.
      expect(at('sign', nonce)).toBeLessThan(at('claimed', nonces[i - 1]!));
      expect(at('write', nonce)).toBeGreaterThan(at('broadcast', nonces[i - 1]!));
    }
    await drain(bed, bed.deps());
    expectExactlyOnce(await chainView(bed), ids);
  });
});

describe('submitter on a chain whose blocks hold less than SUBMIT_TX_GAS_BUDGET', () => {
  it('sizes batches to the block gas limit, says so once, and loses nothing', async () => {
    // The default budget (15M) on 4M-gas blocks (mined as transactions come): a batch sized to it could never make
    // a block, and every record would wait in `filling`.
    const bed = await testBed({ blockTimeSeconds: 0, gasLimit: 4_000_000 });
    try {
      const ids = await acceptEvents(bed, 300);
      const lines: string[] = [];
      const deps = bed.deps({ log: (line) => lines.push(line) });
      // No empty blocks come on this chain to show room: without the fill wait the last small batch goes at once,
      // not three block times after the last full block.
      const noFillWait = { ...bed.config, submit: { ...bed.config.submit, fillWaitSeconds: 0 } };
      await drain(bed, { ...deps, config: noFillWait });
      const warnings = lines.filter((l) => l.includes('SUBMIT_TX_GAS_BUDGET'));
      expect(warnings).toEqual([
        'submit: SUBMIT_TX_GAS_BUDGET (15000000) is above the block gas limit (4000000): batches are sized to the ' +
          'block gas limit',
      ]);
      // A block of a few records has no room for a batch of a whole block, but it is not a full block: a trickle
      // goes at once.
      const few = await acceptEvents(bed, 10);
      expect(await runSubmit(deps)).toMatchObject({ newBatches: 1, filling: 0 });
      const more = await acceptEvents(bed, 10);
      expect(await runSubmit(deps)).toMatchObject({ newBatches: 1, filling: 0 });
      await drain(bed, deps);
      expectExactlyOnce(await chainView(bed), [...ids, ...few, ...more]);
    } finally {
      await bed.stop();
    }
  });

  it('cuts a batch that new subjects after updates would make too large to estimate on a block-sized budget', async () => {
    // The budget is the whole block (the default 15M cut to these 4M blocks). After a run of updates (~8.9k gas a
    // record) the next batch is sized for as many again; new subjects (~26.1k) make it need more gas than a block
    // holds, and the node cannot estimate it at all: the run must cut it, not stop on it every second.
    const bed = await testBed({ blockTimeSeconds: 0, gasLimit: 4_000_000 });
    try {
      const lines: string[] = [];
      const deps = bed.deps({ log: (line) => lines.push(line) });
      const drainAll = (): Promise<void> =>
        drain(bed, { ...deps, config: { ...bed.config, submit: { ...bed.config.submit, fillWaitSeconds: 0 } } });
      const subjects = Array.from({ length: 300 }, () => '0x' + randomBytes(32).toString('hex'));
      const created = await acceptEvents(bed, subjects.length, subjects, 1);
      await drainAll();
      const updated = await acceptEvents(bed, subjects.length, subjects, 2);
      await drainAll();
      const createdAfter = await acceptEvents(bed, 300);
      await drainAll();
      expectExactlyOnce(await chainView(bed), [...created, ...updated, ...createdAfter]);
      expect(lines.filter((l) => l.includes('would fail'))).toEqual([]);
    } finally {
      await bed.stop();
    }
  });
});

describe('submitter at a full block', () => {
  // A 4M-gas block holds two batches at a 2M budget; blocks are mined by hand, so what is unmined is up to the test.
  let bed: Bed;
  beforeAll(async () => {
    // A long block time keeps a hand-mined full block counting as "blocks are full" however slowly a test runs.
    bed = await testBed(
      { blockTimeSeconds: 0, gasLimit: 4_000_000 },
      { SUBMIT_TX_GAS_BUDGET: '2000000', BLOCK_TIME_SECONDS: '60' }
    );
    await bed.provider.send('evm_setAutomine', [false]);
  });
  afterAll(async () => bed?.stop());

  const withFillWait = (seconds: number) =>
    bed.deps({ config: { ...bed.config, submit: { ...bed.config.submit, fillWaitSeconds: seconds } } });

  it('leaves a partial batch to fill up while it could not make the next block anyway, and sends it once it can', async () => {
    // Without the wait for full blocks (the next test), so that only this key's own unmined batches count.
    const deps = withFillWait(0);
    const ids = await acceptEvents(bed, 200);
    // Two full batches take the next block; the rest could only land in a later one, where it would take the
    // room a full batch needs: it waits.
    const first = await runSubmit(deps);
    expect(first).toMatchObject({ newBatches: 2, inFlight: 2 });
    expect(first.filling).toBe(200 - first.newRecords);
    expect(first.filling).toBeGreaterThan(0);

    await bed.provider.send('evm_mine', []);
    expect(await runSubmit(deps)).toMatchObject({ mined: 2, newBatches: 1, newRecords: first.filling, filling: 0 });

    await bed.provider.send('evm_mine', []);
    // A partial batch that fits beside an unmined full one goes at once: holding it would only add latency.
    const more = await acceptEvents(bed, 100);
    expect(await runSubmit(deps)).toMatchObject({ newBatches: 2, newRecords: 100, filling: 0 });

    await drainMiningAgain(bed, [...ids, ...more]);
  });

  it("tops up a run's last batch with records accepted while it sent the earlier ones", async () => {
    await bed.provider.send('evm_setAutomine', [false]);
    const ids = await acceptEvents(bed, 100);
    const deps = bed.deps();
    // A burst still coming in: more records arrive while the run claims its first batch.
    let late: string[] = [];
    const claim = deps.outbox.claim.bind(deps.outbox);
    deps.outbox.claim = async (...args) => {
      const claimed = await claim(...args);
      if (late.length === 0) late = await acceptEvents(bed, 60);
      return claimed;
    };
    const report = await runSubmit(deps);
    const [first, second] = await openRows(deps);
    expect(report.newBatches).toBe(2);
    // The run's own read left fewer than a batch for the second; the records that came meanwhile filled it.
    expect(second!.eventIds.length).toBeGreaterThan(100 - first!.eventIds.length);
    expect(report.filling).toBe(160 - report.newRecords);

    await drainMiningAgain(bed, [...ids, ...late]);
  });

  it('sends a full batch of records accepted while it sent all it had read, and leaves fewer to the next run', async () => {
    await bed.provider.send('evm_setAutomine', [false]);
    await bed.provider.send('evm_mine', []); // an empty block: a partial batch goes at once
    const perTx = recordsPerTransaction(bed.config);
    /** Runs the submitter with `count` more records accepted while it claims its first batch. */
    const runWhileAccepting = async (count: number): Promise<{ report: SubmitReport; late: string[] }> => {
      const deps = bed.deps();
      let late: string[] | undefined;
      const claim = deps.outbox.claim.bind(deps.outbox);
      deps.outbox.claim = async (...args) => {
        const claimed = await claim(...args);
        late ??= await acceptEvents(bed, count);
        return claimed;
      };
      return { report: await runSubmit(deps), late: late ?? [] };
    };
    // The first records of a burst: the run sends the few it read, then the full batch that came meanwhile.
    const first = await acceptEvents(bed, 5);
    const burst = await runWhileAccepting(perTx);
    expect(burst.report).toMatchObject({ newBatches: 2, newRecords: 5 + perTx, filling: 0 });
    // Fewer than a batch that came meanwhile are the next run's: not a transaction for every few records.
    await bed.provider.send('evm_mine', []);
    await bed.provider.send('evm_mine', []); // empty again
    const trickle = await acceptEvents(bed, 5);
    const few = await runWhileAccepting(10);
    expect(few.report).toMatchObject({ newBatches: 1, newRecords: 5 });
    expect(await runSubmit(bed.deps())).toMatchObject({ newBatches: 1, newRecords: 10 });

    await drainMiningAgain(bed, [...first, ...burst.late, ...trickle, ...few.late]);
  });

  it('sends its next transaction again once the chain passed it over for two blocks with room for it', async () => {
    await bed.provider.send('evm_setAutomine', [false]);
    await bed.provider.send('evm_mine', []);
    const ids = await acceptEvents(bed, 5);
    const deps = bed.deps();
    expect(await runSubmit(deps)).toMatchObject({ newBatches: 1, broadcasts: 1 });
    const row = (await openRows(deps)).find((r) => r.status === 'signed');
    // The node loses it, as anvil's pool did at the end of bench bursts; empty blocks go by.
    await bed.provider.send('anvil_dropTransaction', [row!.txHashes[0]]);
    await bed.provider.send('evm_mine', []);
    // One block may only have been sealed before the transaction reached it; SUBMIT_REBROADCAST_AFTER_BLOCKS is 5.
    expect(await runSubmit(deps)).toMatchObject({ rebroadcasts: 0 });
    await bed.provider.send('evm_mine', []);
    expect(await runSubmit(deps)).toMatchObject({ rebroadcasts: 1, feeBumps: 0 });
    await bed.provider.send('evm_mine', []);
    expect(await runSubmit(deps)).toMatchObject({ mined: 1 });

    await drainMiningAgain(bed, ids);
  });

  it('while blocks are full, leaves a partial batch to fill up, until a block has room or its oldest record has waited SUBMIT_FILL_WAIT_SECONDS', async () => {
    await bed.provider.send('evm_setAutomine', [false]);
    await bed.provider.send('evm_mine', []); // an empty block: room
    const ids = await acceptEvents(bed, 120);
    expect(await runSubmit(bed.deps())).toMatchObject({ newBatches: 2, newRecords: 120 }); // a full one and the rest
    await bed.provider.send('evm_mine', []);
    // The block they share has room for a few records, but not for another full batch: blocks are full.
    const block = (await bed.provider.getBlock('latest'))!;
    const room = Number(block.gasLimit - block.gasUsed);
    expect(room).toBeLessThan(bed.config.submit.txGasBudget);
    expect(room).toBeGreaterThan(500_000);

    // A few records would fit that room, but where blocks are full they would take a full batch's place: they wait.
    const few = await acceptEvents(bed, 10);
    expect(await runSubmit(bed.deps())).toMatchObject({ newBatches: 0, filling: 10 });
    await sleep(1_100);
    expect(await runSubmit(withFillWait(1))).toMatchObject({ newBatches: 1, newRecords: 10, filling: 0 });

    // Most of a batch waits as well: the full batch it would keep out of a block would wait for a later one anyway.
    const most = await acceptEvents(bed, 60);
    expect(await runSubmit(bed.deps())).toMatchObject({ newBatches: 0, filling: 60 });
    await bed.provider.send('evm_mine', []); // a block of 10 records: room
    expect(await runSubmit(bed.deps())).toMatchObject({ newBatches: 1, newRecords: 60, filling: 0 });

    await drainMiningAgain(bed, [...ids, ...few, ...most]);
  });

  it("counts a partial batch's fill wait from the key's newest batch when that came later: a burst's tail waits for room", async () => {
    await bed.provider.send('evm_setAutomine', [false]);
    await bed.provider.send('evm_mine', []);
    const perTx = recordsPerTransaction(bed.config);
    const ids = await acceptEvents(bed, 2 * perTx);
    expect(await runSubmit(bed.deps())).toMatchObject({ newBatches: 2 });
    await bed.provider.send('evm_mine', []); // two full batches: blocks are full
    const tail = await acceptEvents(bed, perTx + 10);
    await sleep(1_100);
    // Its records have waited the second, but the key's full batch went just now: the rest waits for room.
    const held = await runSubmit(withFillWait(1));
    expect(held).toMatchObject({ newBatches: 1, filling: perTx + 10 - held.newRecords });
    expect(held.filling).toBeGreaterThan(0);
    await sleep(1_100);
    expect(await runSubmit(withFillWait(1))).toMatchObject({ newBatches: 1, newRecords: held.filling, filling: 0 });

    await drainMiningAgain(bed, [...ids, ...tail]);
  });

  it('sends a partial batch held behind a full block once the chain has made no block for three block times', async () => {
    // Blocks mined by hand stand for a chain that makes none without transactions (Besu with empty blocks off):
    // after a burst its last, full block stays the latest, and a held batch must not wait SUBMIT_FILL_WAIT_SECONDS.
    await bed.provider.send('evm_setAutomine', [false]);
    const deps = bed.deps({ config: { ...bed.config, chain: { ...bed.config.chain, blockTimeSeconds: 2 } } });
    const ids = await acceptEvents(bed, 120);
    expect(await runSubmit(deps)).toMatchObject({ newBatches: 2, newRecords: 120 });
    await bed.provider.send('evm_mine', []); // the burst's last block, full
    const rest = await acceptEvents(bed, 10);
    expect(await runSubmit(deps)).toMatchObject({ newBatches: 0, filling: 10 });
    await sleep(6_100); // three block times
    expect(await runSubmit(deps)).toMatchObject({ newBatches: 1, newRecords: 10, filling: 0 });

    await drainMiningAgain(bed, [...ids, ...rest]);
  });
});

describe('submitter fees', () => {
  it('uses legacy transactions at price 0 on a zero-gas chain', async () => {
    const bed = await testBed({ blockTimeSeconds: 0, freeGas: true });
    try {
      const ids = await acceptEvents(bed, 20);
      await drain(bed, bed.deps());
      const view = await chainView(bed);
      expectExactlyOnce(view, ids);
      const tx = await bed.provider.getTransaction([...view.txs][0]!);
      expect(tx).toMatchObject({ type: 0, gasPrice: 0n });
    } finally {
      await bed.stop();
    }
  });

  /** Mines one block whose base fee is twice what the batch's latest transaction pays at most: it stays pooled. */
  async function priceOut(bed: Bed, deps: ReturnType<Bed['deps']>): Promise<void> {
    const [row] = await openRows(deps);
    const maxFee = Transaction.from(await deps.batches.rawTxOf(row!)).maxFeePerGas!;
    await bed.provider.send('anvil_setNextBlockBaseFeePerGas', [toQuantity(2n * maxFee)]);
    await bed.provider.send('evm_mine', []);
  }

  it("rebroadcasts as it is first, then raises fees only for the transaction at the chain's next nonce", async () => {
    const bed = await testBed(
      { blockTimeSeconds: 0 },
      { SUBMIT_REBROADCAST_AFTER_BLOCKS: '1', SUBMIT_MAX_RECORDS_PER_TX: '5' }
    );
    try {
      await bed.provider.send('evm_setAutomine', [false]);
      const ids = await acceptEvents(bed, 10);
      const deps = bed.deps();
      await runSubmit(deps); // signs and broadcasts two batches: nonces n and n + 1
      const original = await openRows(deps);
      expect(original).toHaveLength(2);
      const originalRaw = await deps.batches.rawTxOf(original[0]!);
      // Base fees rise past what both pay (the node evicts them); nothing is mined.
      await priceOut(bed, deps);
      expect((await runSubmit(deps)).feeBumps).toBe(0); // the first rebroadcast sends the same transactions
      expect((await openRows(deps)).map((r) => r.txHashes)).toEqual(original.map((r) => r.txHashes));
      await priceOut(bed, deps);
      const report = await runSubmit(deps);
      // Only nonce n is bumped: n + 1 waits behind it, and higher fees would not get it mined any sooner.
      expect(report.feeBumps).toBe(1);
      const [row, queued] = await openRows(deps);
      expect(row!.txHashes).toHaveLength(2);
      expect(queued!.txHashes).toEqual(original[1]!.txHashes);
      const [first, bumped] = [originalRaw, await deps.batches.rawTxOf(row!)].map((raw) => Transaction.from(raw));
      expect(first!.type).toBe(2);
      expect(bumped!.maxFeePerGas! > first!.maxFeePerGas!).toBe(true);
      expect(bumped!.nonce).toBe(first!.nonce);
      await bed.provider.send('anvil_setNextBlockBaseFeePerGas', [toQuantity(1n)]);
      await bed.provider.send('evm_setAutomine', [true]);
      await drain(bed, deps);
      expectExactlyOnce(await chainView(bed), ids);
      const [mined] = await deps.batches.recent(bed.signer.wallet.address, 0, 10).then((r) => r.rows);
      expect(mined!.minedTxHash).toBe(row!.txHashes[1]);
    } finally {
      await bed.stop();
    }
  });

  it.each([
    ['SUBMIT_MAX_FEE_BUMPS', '2'],
    ['SUBMIT_MAX_FEE_PER_GAS_GWEI', '20'],
  ])('stops raising fees at %s=%s, keeps the row bounded, and says so once', async (setting, value) => {
    const bed = await testBed({ blockTimeSeconds: 0 }, { SUBMIT_REBROADCAST_AFTER_BLOCKS: '1', [setting]: value });
    try {
      await bed.provider.send('evm_setAutomine', [false]);
      await bed.provider.send('anvil_setNextBlockBaseFeePerGas', [toQuantity(10n ** 9n)]);
      await bed.provider.send('evm_mine', []);
      const ids = await acceptEvents(bed, 5);
      const telemetry = recordingTelemetry();
      const deps = bed.deps({ telemetry });
      await runSubmit(deps);
      // Every block's base fee outruns the batch's latest fees: each bump falls behind, until a limit stops them.
      for (let i = 0; i < 8; i++) {
        await priceOut(bed, deps);
        await runSubmit(deps);
      }
      const [row] = await openRows(deps);
      expect(row!.status).toBe('signed');
      expect(row!.txHashes).toHaveLength(1 + row!.feeBumps);
      if (setting === 'SUBMIT_MAX_FEE_BUMPS') expect(row!.feeBumps).toBe(2);
      else {
        expect(row!.feeBumps).toBeGreaterThanOrEqual(1);
        expect(Transaction.from(await deps.batches.rawTxOf(row!)).maxFeePerGas!).toBeLessThanOrEqual(20n * 10n ** 9n);
      }
      const limits = telemetry.events.filter((e) => e.name === 'FeeLimitReached');
      expect(limits).toHaveLength(1);
      expect(limits[0]!.properties!.limit).toContain(setting);
      expect(row!.feeLimit).toMatch(new RegExp(`^not mined at \\d+ wei per gas after .*${setting}`));
      // Fees fall back: the last transaction signed is mined, once.
      await bed.provider.send('anvil_setNextBlockBaseFeePerGas', [toQuantity(1n)]);
      await bed.provider.send('evm_setAutomine', [true]);
      await bed.provider.send('evm_mine', []);
      await drain(bed, deps);
      expectExactlyOnce(await chainView(bed), ids);
    } finally {
      await bed.stop();
    }
  });
});
