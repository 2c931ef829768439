/**
 * Preloaded into the Azurite process (`node --require`): fixes two costs in Azurite's queue that made the
 * local Service Bus emulation, not ledger-bridge, the bottleneck of every load test. What the queue returns is
 * unchanged. If Azurite's methods change shape, they are left alone and a line on stderr says so.
 *
 * LokiJS keeps sorted ("binary") indices per collection. Any batch remove, even of nothing, marks them stale,
 * and the next lookup re-sorts every index over the whole collection: O(n log n) for one operation.
 *
 * 1. The queue store sweeps expired messages on every send, receive, update and delete with a scan and a batch
 *    remove: with a backlog of n messages each operation cost O(n log n), quadratic over a run. The sweep now
 *    runs at most once a second per queue and removes only when something expired (messages expire after
 *    days, so at most a second late).
 * 2. The queue's garbage collector frees message bodies one by one with `findAndRemove`, a batch remove: one
 *    full index rebuild per freed message. It now removes the one document, which updates the indices in place.
 *
 * Profiled under the benchmark's backlog, these took more of Azurite's CPU than everything else it did.
 */

interface LokiCollection {
  find(query: object): object[];
  findOne(query: object): object | null;
  remove(doc: object | object[]): void;
}

interface LokiStore {
  db: { getCollection(name: string): LokiCollection };
}

interface QueueMetadataStore extends LokiStore {
  MESSAGES_COLLECTION: string;
  checkQueueExist(account: string, queue: string, context?: unknown): void;
  clearExpiredMessages(account: string, queue: string, context?: unknown): Promise<void>;
}

interface ExtentMetadataStore extends LokiStore {
  EXTENTS_COLLECTION: string;
  deleteExtent(extentId: string): Promise<void>;
}

const SWEEP_INTERVAL_MS = 1000;

/** Replaces `proto[method]` when its current source still matches `expected`. */
function patch<T extends object, K extends keyof T>(proto: T, method: K, expected: RegExp[], replacement: T[K]): void {
  const source = String(proto[method]);
  if (expected.every((re) => re.test(source))) proto[method] = replacement;
  else process.stderr.write(`azurite-patches: ${String(method)} changed upstream; left unpatched\n`);
}

/* eslint-disable @typescript-eslint/no-require-imports */
const queueStore = (
  require('azurite/dist/src/queue/persistence/LokiQueueMetadataStore') as {
    default: { prototype: QueueMetadataStore };
  }
).default.prototype;
const extentStore = (
  require('azurite/dist/src/common/persistence/LokiExtentMetadataStore') as {
    default: { prototype: ExtentMetadataStore };
  }
).default.prototype;
/* eslint-enable @typescript-eslint/no-require-imports */

const lastSweep = new Map<string, number>();

patch(
  queueStore,
  'clearExpiredMessages',
  [/expirationTime/, /coll\.remove\(docs\)/],
  function (this: QueueMetadataStore, account: string, queue: string, context?: unknown) {
    this.checkQueueExist(account, queue, context);
    const key = `${account}/${queue}`;
    const now = Date.now();
    if (now - (lastSweep.get(key) ?? 0) < SWEEP_INTERVAL_MS) return Promise.resolve();
    lastSweep.set(key, now);
    const messages = this.db.getCollection(this.MESSAGES_COLLECTION);
    const expired = messages.find({ accountName: account, queueName: queue, expirationTime: { $lte: now } });
    if (expired.length > 0) messages.remove(expired);
    return Promise.resolve();
  }
);

patch(
  extentStore,
  'deleteExtent',
  [/findAndRemove\(\{\s*id: extentId\s*\}\)/],
  function (this: ExtentMetadataStore, extentId: string) {
    const extents = this.db.getCollection(this.EXTENTS_COLLECTION);
    const doc = extents.findOne({ id: extentId });
    if (doc) extents.remove(doc);
    return Promise.resolve();
  }
);
