import { QueueClient } from '@azure/storage-queue';
import { startAzurite, type Azurite } from '../../local/stack/azurite';

/**
 * The local stack starts Azurite with local/stack/azurite-patches preloaded (it removes a per-operation index
 * rebuild from Azurite's queue store). The queue must behave exactly as before, and the patch must actually
 * apply to the Azurite version in the lockfile: an upgrade that changes the patched methods fails here.
 */
describe('Azurite queue with the local stack patches', () => {
  let azurite: Azurite;
  let queue: QueueClient;

  beforeAll(async () => {
    azurite = await startAzurite();
    queue = new QueueClient(azurite.accounts[0]!.connectionString, 'patched');
    await queue.create();
  });
  afterAll(async () => azurite?.stop());

  it('applies every patch to this Azurite version', () => {
    expect(azurite.processes[0]!.recentOutput()).not.toMatch(/azurite-patches/);
  });

  it('still delivers in order, hides locked messages, deletes and drops expired messages', async () => {
    for (let i = 0; i < 40; i++) await queue.sendMessage(`m${i}`);
    await queue.sendMessage('short-lived', { messageTimeToLive: 1 });

    const first = (await queue.receiveMessages({ numberOfMessages: 32, visibilityTimeout: 30 })).receivedMessageItems;
    expect(first.map((m) => m.messageText)).toEqual(Array.from({ length: 32 }, (_, i) => `m${i}`));
    for (const m of first) await queue.deleteMessage(m.messageId, m.popReceipt);

    await new Promise((resolve) => setTimeout(resolve, 2_100)); // the sweep runs at most once a second
    const rest = (await queue.receiveMessages({ numberOfMessages: 32, visibilityTimeout: 30 })).receivedMessageItems;
    expect(rest.map((m) => m.messageText)).toEqual(Array.from({ length: 8 }, (_, i) => `m${32 + i}`));
    expect((await queue.peekMessages({ numberOfMessages: 32 })).peekedMessageItems).toHaveLength(0);
    await expect(queue.deleteMessage(first[0]!.messageId, first[0]!.popReceipt)).rejects.toMatchObject({
      statusCode: 404,
    });
  });
});
