/**
 * Work a block waits for goes first within a process. A submit run's write-ahead, claim and broadcast hold a signed
 * batch back from the next block; ingest's outbox writes fill a backlog that, in a burst, is far ahead of what the
 * chain takes. Where both run in one process (the local host; an App Service or Premium plan instance) they share
 * its event loop and the storage account's request queue, and a claim waited behind a burst's ingest transactions.
 * So ingest waits while a batch is being committed in its process, for a bounded time. On Flex Consumption ingest and
 * the submit timer scale on instances of their own, and this changes nothing there.
 */
export class UrgentWork {
  private running = 0;
  private waiters: (() => void)[] = [];

  /** Runs `work` as urgent: bulk work that asks `settled` meanwhile waits for it. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    this.running++;
    try {
      return await work();
    } finally {
      this.running--;
      if (this.running === 0) for (const wake of this.waiters.splice(0)) wake();
    }
  }

  /** Resolves once no urgent work runs, or after `maxWaitMs`: bulk work is held back, never stalled. */
  settled(maxWaitMs: number): Promise<void> {
    if (this.running === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        resolve();
      }, maxWaitMs);
      this.waiters.push(done);
    });
  }
}
