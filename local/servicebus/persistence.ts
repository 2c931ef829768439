import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { open, rename, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The namespace's journal: one JSON record a line in `<dataDir>/journal.ndjson`, appended and fsynced before the
 * namespace acknowledges what a record says (group commit: everything waiting when a write starts goes out in
 * that write and one fdatasync). Replaying the lines rebuilds the queues; the file is rewritten from the live
 * state at start and whenever it has grown well past that state.
 *
 * Durability: a client only hears "accepted" (a send) or "settled" (complete, abandon, defer, dead-letter, a
 * management update) after its record is on disk, so neither Ctrl-C nor a SIGKILL loses an acknowledged send or
 * settlement. A SIGKILL loses only what no client was told yet: sends and settlements still waiting for their
 * write (the client sees the connection drop and retries; duplicate detection drops a resent message id that
 * was written after all), and the delivery counts and lock expiries since the last write (recorded without
 * waiting), so a message may come back with one delivery fewer counted. Locks are not persisted: after a restart
 * every locked message is available again and its old lock token is lost, as after a lock expiry.
 */

const FILE = 'journal.ndjson';
/** Rewrite once this much was appended since the last rewrite and it is more than twice the live state. */
const COMPACT_AFTER_BYTES = 64 * 1024 * 1024;

export class Journal<R extends object> {
  private pending: string[] = [];
  private waiting: { resolve: () => void; reject: (err: Error) => void }[] = [];
  private flushing: Promise<void> | undefined;
  private appended = 0;
  private liveBytes = 0;
  private compactNext = false;

  private file: FileHandle | undefined;

  private constructor(
    private readonly dir: string | undefined,
    private readonly snapshot: () => R[]
  ) {}

  /**
   * Opens the journal in `dir` (in memory when undefined) and returns the records to replay. Call `compact()`
   * once the replayed state is built: the file then starts from a clean snapshot (without a torn last line).
   */
  static open<R extends object>(
    dir: string | undefined,
    snapshot: () => R[]
  ): { journal: Journal<R>; replay: R[]; warning?: string } {
    if (!dir) return { journal: new Journal<R>(undefined, snapshot), replay: [] };
    mkdirSync(dir, { recursive: true });
    const path = join(dir, FILE);
    const lines = existsSync(path) ? readFileSync(path, 'utf8').split('\n') : [];
    const replay: R[] = [];
    let warning: string | undefined;
    for (const [i, line] of lines.entries()) {
      if (!line) continue;
      try {
        replay.push(JSON.parse(line) as R);
      } catch (err) {
        // Only the last line can be torn (a crash in the middle of an append); it was never acknowledged.
        if (i < lines.length - 1 && lines.slice(i + 1).some((l) => l))
          throw new Error(`${path} line ${i + 1} is corrupt: ${(err as Error).message}`);
        warning = `${path}: dropped a torn last record (written when the namespace was killed)`;
      }
    }
    return { journal: new Journal<R>(dir, snapshot), replay, warning };
  }

  /** Resolves once `records` are on disk (at once without a data dir). */
  commit(records: R[]): Promise<void> {
    if (!this.dir || records.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.pending.push(...records.map((r) => JSON.stringify(r) + '\n'));
      this.waiting.push({ resolve, reject });
      this.flushing ??= this.flush();
    });
  }

  /** Appends without waiting: the record goes out with the next commit. */
  note(record: R): void {
    if (!this.dir) return;
    this.pending.push(JSON.stringify(record) + '\n');
    this.flushing ??= this.flush();
  }

  /** Rewrites the file from the live state, after what is pending (write a temporary file, fsync, rename). */
  async compact(): Promise<void> {
    if (!this.dir) return;
    this.compactNext = true;
    this.flushing ??= this.flush();
    await this.flushing;
  }

  /** Writes what is pending and closes the file. */
  async close(): Promise<void> {
    await this.flushing;
    await this.file?.close();
    this.file = undefined;
  }

  /** The only writer: commits, notes and rewrites run here one after another. */
  private async flush(): Promise<void> {
    while (this.pending.length > 0 || this.compactNext) {
      const lines = this.pending;
      const waiting = this.waiting;
      this.pending = [];
      this.waiting = [];
      try {
        // The snapshot holds every change made in memory so far; the lines after it replay idempotently.
        if (this.compactNext || (this.appended > COMPACT_AFTER_BYTES && this.appended > 2 * this.liveBytes)) {
          this.compactNext = false;
          await this.rewrite();
        }
        if (lines.length > 0) {
          const data = lines.join('');
          const file = await this.appendHandle();
          await file.write(data);
          await file.datasync();
          this.appended += Buffer.byteLength(data);
        }
        for (const w of waiting) w.resolve();
      } catch (err) {
        for (const w of waiting) w.reject(err as Error);
      }
    }
    this.flushing = undefined;
  }

  private async appendHandle(): Promise<FileHandle> {
    this.file ??= await open(join(this.dir!, FILE), 'a');
    return this.file;
  }

  private async rewrite(): Promise<void> {
    const dir = this.dir!;
    const data = this.snapshot()
      .map((r) => JSON.stringify(r) + '\n')
      .join('');
    const tmp = join(dir, `${FILE}.tmp`);
    const out = await open(tmp, 'w');
    try {
      await out.write(data);
      await out.sync();
    } finally {
      await out.close();
    }
    await this.file?.close();
    this.file = undefined;
    await rename(tmp, join(dir, FILE));
    const dirHandle = await open(dir, 'r');
    try {
      await dirHandle.sync();
    } finally {
      await dirHandle.close();
    }
    this.liveBytes = Buffer.byteLength(data);
    this.appended = 0;
  }
}
