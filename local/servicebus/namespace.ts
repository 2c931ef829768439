import { once } from 'node:events';
import type { AddressInfo, Socket } from 'node:net';
import {
  create_container,
  type AmqpError,
  type Connection,
  type Delivery,
  type EventContext,
  type Message,
  type Receiver,
  type Sender,
} from 'rhea';
import { entityPath, isAuthorized, putToken, type Claim } from './cbs';
import { Dispatcher, type Disposition } from './dispatcher';
import { handleManagementRequest } from './management';
import { encodedMessages } from './messages';
import { Journal } from './persistence';
import {
  EntityError,
  Queue,
  QUEUE_DEFAULTS,
  restoreQueues,
  type Entity,
  type JournalRecord,
  type QueueSettings,
} from './queue';

/**
 * A local Service Bus namespace speaking AMQP 1.0 (built on rhea, the library under @azure/service-bus), for
 * the local stack only. The real SDK reaches it with
 * `Endpoint=sb://127.0.0.1:<port>;SharedAccessKeyName=…;SharedAccessKey=…;UseDevelopmentEmulator=true`
 * (the SDK then speaks plain TCP to that port): CBS put-token with SAS checking, senders (single messages and
 * batches), peek-lock and receive-and-delete receivers, settlement, the dead-letter sub-queue and the
 * `$management` operations. Not supported: sessions, topics and subscriptions, transactions, and the HTTPS
 * administration API.
 */

/** Standard tier's largest message: the max-message-size every sending link advertises. */
export const MAX_MESSAGE_SIZE_BYTES = 256 * 1024;

export interface NamespaceOptions {
  /** 0 (the default) picks a free port; the namespace listens on 127.0.0.1 only. */
  port?: number;
  /** Each queue, with the Bicep's settings (QUEUE_DEFAULTS) for what is not given. */
  queues: (Partial<QueueSettings> & { name: string })[];
  /** Keeps messages across restarts (journal.ndjson here); without it everything is in memory. */
  dataDir?: string;
  sharedAccessKeyName: string;
  sharedAccessKey: string;
  maxMessageSizeBytes?: number;
  /** Warnings (a torn journal line, a client's protocol error) and errors; errors go to stderr by default. */
  log?: (level: 'warning' | 'error', message: string) => void;
}

export interface LocalServiceBusNamespace {
  readonly port: number;
  readonly connectionString: string;
  /** Message counts of a queue, for status views and tests. */
  counts(queue: string): ReturnType<Queue['counts']>;
  /**
   * Test fault: the next `count` completions on the queue find their lock lost, as when a lock expires while the
   * receiver settles. The message is released at once, as at lock expiry, and delivered again with the same
   * message id, enqueue time and sequence number.
   */
  loseLocks(queue: string, count: number): void;
  /** Closes every connection, stops listening and closes the journal (nothing acknowledged is lost). */
  stop(): Promise<void>;
}

/** What one client connection may do and where its replies go. */
interface Peer {
  claims: Map<string, Claim>;
  /** The client's receiving links for $cbs and $management replies, by link name (the requests' reply-to). */
  replyLinks: Map<string, Sender>;
  consumers: Set<Sender>;
}

type Route =
  | { kind: 'cbs' }
  | { kind: 'management'; entity: Entity; path: string }
  | { kind: 'entity'; entity: Entity; path: string }
  | { kind: 'unknown'; path: string };

const DISPOSITIONS: Disposition[] = ['accepted', 'released', 'modified', 'rejected'];

export async function startNamespace(options: NamespaceOptions): Promise<LocalServiceBusNamespace> {
  const log =
    options.log ?? ((level, message) => (level === 'error' ? console.error(`servicebus: ${message}`) : undefined));
  const key = { name: options.sharedAccessKeyName, key: options.sharedAccessKey };

  const queues = new Map<string, Queue>();
  const { journal, replay, warning } = Journal.open<JournalRecord>(options.dataDir, () =>
    [...queues.values()].flatMap((q) => q.snapshot())
  );
  if (warning) log('warning', warning);
  for (const q of options.queues) queues.set(q.name.toLowerCase(), new Queue({ ...QUEUE_DEFAULTS, ...q }, journal));
  for (const name of restoreQueues(queues, replay))
    log('warning', `the journal holds queue '${name}', which is not configured: its messages are dropped`);
  await journal.compact();

  const entities = new Map<string, Entity>();
  const dispatchers = new Map<Entity, Dispatcher>();
  for (const q of queues.values())
    for (const e of [q.active, q.deadLetters]) {
      entities.set(e.path.toLowerCase(), e);
      dispatchers.set(e, new Dispatcher(e));
    }
  const consumerOf = new WeakMap<Sender, Dispatcher>();
  const peers = new Map<Connection, Peer>();

  const route = (address: string | undefined): Route => {
    const path = entityPath(address ?? '');
    if (path === '$cbs') return { kind: 'cbs' };
    const management = path.endsWith('/$management');
    const entity = entities.get(management ? path.slice(0, -'/$management'.length) : path);
    if (!entity) return { kind: 'unknown', path };
    return { kind: management ? 'management' : 'entity', entity, path };
  };

  const peerOf = (connection: Connection): Peer => {
    let peer = peers.get(connection);
    if (!peer) peers.set(connection, (peer = { claims: new Map(), replyLinks: new Map(), consumers: new Set() }));
    return peer;
  };

  /** Why a link to `r` is refused, if it is (unknown entity, no valid token for it). */
  const refusal = (r: Route, peer: Peer): AmqpError | undefined => {
    if (r.kind === 'cbs') return undefined;
    if (r.kind === 'unknown')
      return { condition: 'amqp:not-found', description: `The messaging entity '${r.path}' could not be found.` };
    if (!isAuthorized(peer.claims.values(), r.path))
      return {
        condition: 'amqp:unauthorized-access',
        description: `Unauthorized access to '${r.path}': put a token first.`,
      };
    return undefined;
  };

  const reply = (peer: Peer, request: Message, applicationProperties: Record<string, unknown>, body?: unknown) => {
    const link = peer.replyLinks.get(String(request.reply_to));
    if (!link?.is_open()) return log('warning', `no open reply link '${String(request.reply_to)}' for a request`);
    link.send({ correlation_id: request.message_id, application_properties: applicationProperties, body });
  };

  const container = create_container({
    id: 'ledger-bridge-local-servicebus',
    // Sends are accepted only once journaled; every sending link learns the largest message it may send.
    receiver_options: { autoaccept: false, max_message_size: options.maxMessageSizeBytes ?? MAX_MESSAGE_SIZE_BYTES },
    // Defer (modified, undeliverable-here) must stay distinguishable from abandon (released).
    sender_options: { treat_modified_as_released: false },
  });

  // A client sends to us: $cbs and $management requests, or messages to a queue.
  container.on('receiver_open', (context: EventContext) => {
    const receiver = context.receiver!;
    echoTermini(receiver);
    const r = route(receiver.target?.address);
    const refused = refusal(r, peerOf(context.connection));
    if (refused) return receiver.close(refused);
    if (r.kind === 'entity' && r.entity.isDeadLetterQueue)
      receiver.close({ condition: 'amqp:not-allowed', description: 'A dead-letter queue cannot be sent to.' });
  });

  // A client receives from us: replies, or messages of a queue or its dead-letter queue.
  container.on('sender_open', (context: EventContext) => {
    const sender = context.sender!;
    echoTermini(sender);
    const peer = peerOf(context.connection);
    const r = route(sender.source?.address);
    const refused = refusal(r, peer);
    if (refused) return sender.close(refused);
    if (r.kind !== 'entity') return void peer.replyLinks.set(sender.name, sender);
    if (sender.source?.filter)
      return sender.close({
        condition: 'amqp:not-implemented',
        description: 'Sessions and filters are not supported.',
      });
    // rhea pre-settles deliveries when its own attach says so; the SDK asks for that in receive-and-delete mode.
    (sender as unknown as { local: { attach: { snd_settle_mode: number } } }).local.attach.snd_settle_mode =
      sender.snd_settle_mode;
    const dispatcher = dispatchers.get(r.entity)!;
    consumerOf.set(sender, dispatcher);
    peer.consumers.add(sender);
    dispatcher.attach(sender);
  });

  container.on('message', (context: EventContext) => {
    const receiver = context.receiver!;
    const delivery = context.delivery!;
    const peer = peerOf(context.connection);
    const r = route(receiver.target?.address);
    handleTransfer(r, peer, context.message!, delivery).then(
      () => settleIfOpen(delivery, () => delivery.accept()),
      (err: Error) => {
        if (!(err instanceof EntityError)) log('error', `handling a transfer to '${r.kind}': ${err.stack}`);
        const condition = err instanceof EntityError ? err.condition : 'amqp:internal-error';
        settleIfOpen(delivery, () => delivery.reject({ condition, description: err.message }));
      }
    );
  });

  async function handleTransfer(r: Route, peer: Peer, payload: Message, delivery: Delivery): Promise<void> {
    if (r.kind === 'cbs') {
      const { claim, reply: status } = putToken(payload, key, (path) => route(path).kind !== 'unknown');
      if (claim) peer.claims.set(claim.path, claim);
      reply(peer, payload, status);
    } else if (r.kind === 'management') {
      const { body, ...status } = await handleManagementRequest(r.entity, payload);
      reply(peer, payload, status, body);
    } else if (r.kind === 'entity') {
      const raws = encodedMessages(delivery.format, payload);
      const size = Buffer.isBuffer(payload) ? payload.length : raws[0]!.length;
      const max = options.maxMessageSizeBytes ?? MAX_MESSAGE_SIZE_BYTES;
      if (size > max)
        throw new EntityError(
          'amqp:link:message-size-exceeded',
          403,
          `The received message (${size} bytes) exceeds the limit (${max} bytes) currently allowed on the link.`
        );
      await r.entity.queue.enqueue(raws);
    }
  }

  for (const disposition of DISPOSITIONS)
    container.on(disposition, (context: EventContext) =>
      consumerOf.get(context.sender!)?.onDisposition(context.delivery!, disposition)
    );
  container.on('sender_flow', (context: EventContext) => consumerOf.get(context.sender!)?.schedule());
  container.on('sender_draining', (context: EventContext) => consumerOf.get(context.sender!)?.drain(context.sender!));

  const forgetLink = (context: EventContext): void => {
    const link = context.sender;
    const peer = peers.get(context.connection);
    if (!link || !peer) return;
    consumerOf.get(link)?.detach(link);
    peer.consumers.delete(link);
    if (peer.replyLinks.get(link.name) === link) peer.replyLinks.delete(link.name);
  };
  // Locks held by a closed link stay until they expire (the SDK then settles through $management).
  container.on('sender_close', forgetLink);
  const forgetPeer = (context: EventContext): void => {
    const peer = peers.get(context.connection);
    if (!peer) return;
    for (const sender of peer.consumers) consumerOf.get(sender)?.detach(sender);
    peers.delete(context.connection);
  };
  container.on('connection_open', (context: EventContext) => peerOf(context.connection));
  container.on('connection_close', forgetPeer);
  container.on('disconnected', forgetPeer);
  container.on('protocol_error', (err: Error) => log('warning', `protocol error from a client: ${err.message}`));
  container.on('error', (err: Error) => log('warning', `AMQP error: ${err.message}`));

  const server = container.listen({ host: '127.0.0.1', port: options.port ?? 0 });
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await Promise.race([
    once(server, 'listening'),
    once(server, 'error').then(([err]) => Promise.reject(err as Error)),
  ]).catch(async (err: unknown) => {
    for (const q of queues.values()) q.dispose();
    await journal.close();
    throw err;
  });
  const port = (server.address() as AddressInfo).port;
  const queueNamed = (name: string): Queue => {
    const q = queues.get(name.toLowerCase());
    if (!q) throw new Error(`no queue '${name}' in this namespace`);
    return q;
  };

  return {
    port,
    connectionString:
      `Endpoint=sb://127.0.0.1:${port};SharedAccessKeyName=${key.name};SharedAccessKey=${key.key};` +
      'UseDevelopmentEmulator=true',
    counts(queue: string) {
      return queueNamed(queue).counts();
    },
    loseLocks(queue: string, count: number) {
      queueNamed(queue).active.locksToLose += count;
    },
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const connection of peers.keys())
        connection.close({ condition: 'amqp:connection:forced', description: 'The namespace is stopping.' });
      // Give clients a moment to close their end, then cut what is left.
      const deadline = Date.now() + 1000;
      while (sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      for (const socket of sockets) socket.destroy();
      await closed;
      for (const q of queues.values()) q.dispose();
      await journal.close();
    },
  };
}

/** A server link mirrors the client's source and target in its attach. */
function echoTermini(link: Sender | Receiver): void {
  if (link.source) link.set_source(link.source);
  if (link.target) link.set_target(link.target);
}

/** Settles an incoming delivery unless its link went away while the journal was written. */
function settleIfOpen(delivery: Delivery, settle: () => void): void {
  if (delivery.link.is_open()) settle();
}
