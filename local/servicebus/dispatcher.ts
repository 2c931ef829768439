import { randomUUID } from 'node:crypto';
import type { Delivery, Sender } from 'rhea';
import { appliedState, asDelivered, creditOf, lockTokenOfTag, lockTokenTag, rejectedState } from './messages';
import { EntityError, type Entity, type Outcome, type StoredMessage } from './queue';

/**
 * Hands one entity's messages to the receiver links attached to it, oldest first, round-robin, never beyond a
 * link's credit (the SDK grants credit per receive call or per free handler slot, and drains what is unused).
 * In peek-lock mode a delivery's tag is its lock token; the receiver's disposition settles the message, and the
 * delivery is settled after it (rcv-settle-mode second) with an error state when the lock was lost.
 */

export type Disposition = 'accepted' | 'released' | 'modified' | 'rejected';

interface Consumer {
  sender: Sender;
  peekLock: boolean;
}

export class Dispatcher {
  private consumers: Consumer[] = [];
  private pumpScheduled = false;

  constructor(private readonly entity: Entity) {
    entity.onAvailable = () => this.schedule();
  }

  attach(sender: Sender): void {
    // The SDK asks for settled deliveries (snd-settle-mode 1) in receive-and-delete mode.
    this.consumers.push({ sender, peekLock: sender.snd_settle_mode !== 1 });
    this.schedule();
  }

  detach(sender: Sender): void {
    this.consumers = this.consumers.filter((c) => c.sender !== sender);
  }

  /**
   * Pumps after the current I/O: by then rhea has sent what was queued before and counted it against the credit.
   * (rhea transfers within the session window; the SDK's window, 2048 unsettled deliveries, is never the limit
   * for the handful of messages a receiver holds.)
   */
  schedule(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /**
   * The receiver asks for its unused credit back. rhea echoes the drain only while credit is left, so messages
   * available now go out with all but the last credit; the rest is returned.
   */
  drain(sender: Sender): void {
    const consumer = this.consumers.find((c) => c.sender === sender);
    for (let left = creditOf(sender) - 1; consumer && left > 0 && sender.sendable(); left--) {
      const m = this.entity.take(consumer.peekLock);
      if (!m) break;
      this.transfer(consumer, m);
    }
    sender.set_drained(true);
  }

  /** The receiver's disposition of a peek-locked delivery. */
  onDisposition(delivery: Delivery, disposition: Disposition): void {
    if (delivery.settled) return;
    const token = lockTokenOfTag(delivery.tag);
    const settled = token
      ? this.entity.settle(token, outcomeOf(disposition, delivery.remote_state))
      : Promise.reject(new EntityError('amqp:not-found', 404, 'the delivery tag is not a lock token'));
    settled.then(
      () => finish(delivery, appliedState(disposition, delivery.remote_state)),
      (err: Error) => {
        const condition = err instanceof EntityError ? err.condition : 'amqp:internal-error';
        finish(delivery, rejectedState({ condition, description: err.message }));
      }
    );
  }

  private pump(): void {
    // rhea counts a transfer against the credit only when it goes out, after this returns.
    const budget = new Map<Consumer, number>();
    for (const c of this.consumers) if (c.sender.is_open()) budget.set(c, creditOf(c.sender));
    // One message a consumer a round, so receivers share what there is.
    while (budget.size > 0) {
      for (const [consumer, left] of budget) {
        if (left <= 0 || !consumer.sender.sendable()) {
          budget.delete(consumer);
          continue;
        }
        const m = this.entity.take(consumer.peekLock);
        if (!m) return;
        this.transfer(consumer, m);
        budget.set(consumer, left - 1);
        // The next pump starts with another receiver.
        this.consumers = [...this.consumers.filter((c) => c !== consumer), consumer];
      }
    }
  }

  private transfer(consumer: Consumer, m: StoredMessage): void {
    // The tag is the lock token; a receive-and-delete delivery gets a tag of the same shape.
    consumer.sender.send(asDelivered(m), lockTokenTag(m.lock?.token ?? randomUUID()), 0);
  }
}

/**
 * Settles a delivery for good. In rcv-settle-mode second the receiver settles silently once the sender has, and
 * rhea frees a delivery (its session holds 2048) only when both ends settled: so the receiver's end is marked
 * settled too. (One delivery a receiver never settles still holds back the freeing of later ones on its session,
 * in order; the SDK settles every message it hands to a handler.)
 */
function finish(delivery: Delivery, state: unknown): void {
  if (!delivery.link.is_open()) return;
  delivery.update(true, state);
  (delivery as unknown as { remote_settled: boolean }).remote_settled = true;
}

/** How Service Bus reads a receiver's disposition (rhea hands over the decoded delivery state). */
function outcomeOf(disposition: Disposition, state: Delivery['remote_state']): Outcome {
  switch (disposition) {
    case 'accepted':
      return { kind: 'complete' };
    case 'released':
      return { kind: 'abandon' };
    case 'modified': {
      const properties = state?.message_annotations as Record<string, unknown> | undefined;
      // abandon sends undeliverable-here false, defer true.
      return state?.undeliverable_here ? { kind: 'defer', properties } : { kind: 'abandon', properties };
    }
    case 'rejected': {
      const error = state?.error as
        { condition?: string; description?: string; info?: Record<string, unknown> } | undefined;
      if (error?.condition !== 'com.microsoft:dead-letter')
        return { kind: 'deadLetter', reason: error?.condition, description: error?.description };
      const { DeadLetterReason, DeadLetterErrorDescription, ...properties } = error.info ?? {};
      return {
        kind: 'deadLetter',
        reason: DeadLetterReason as string | undefined,
        description: DeadLetterErrorDescription as string | undefined,
        properties,
      };
    }
  }
}
