import type { DeliveryControl, SettleOps } from '@causeway/core';
import type { Channel, ConsumeMessage } from 'amqplib';

/** One consumer channel; messages settle on the channel they came on, or not at all. */
export interface Lane {
  readonly channel: Channel;
  consumerTag: string | undefined;
  open: boolean;
  error: unknown;
  /** Delivered on this channel and no ack/nack sent yet, in delivery (tag) order. */
  readonly unsent: Set<Inbound>;
  /** Acked by the handler, waiting for this turn's flush. */
  readonly acks: Inbound[];
}

export interface InboundOwner {
  ack(inbound: Inbound): Promise<void>;
  nack(inbound: Inbound, delayMs: number): Promise<void>;
}

/** One delivered message; its settle operations too (createDelivery calls them as methods: no closures per message). */
export class Inbound implements SettleOps {
  control: DeliveryControl | undefined = undefined;
  /** Settled, given back, or given up on: nothing more is sent for it. */
  done = false;
  /** Its ack waits in `lane.acks` for the flush. */
  ackQueued = false;
  readonly msg: ConsumeMessage;
  readonly lane: Lane;
  /** Epoch ms after which the message is requeued and its handler abandoned. */
  readonly deadline: number;
  readonly #owner: InboundOwner;

  constructor(msg: ConsumeMessage, lane: Lane, deadline: number, owner: InboundOwner) {
    this.msg = msg;
    this.lane = lane;
    this.deadline = deadline;
    this.#owner = owner;
  }

  ack(): Promise<void> {
    return this.#owner.ack(this);
  }

  nack(delayMs: number): Promise<void> {
    return this.#owner.nack(this, delayMs);
  }
}

/** basic.nack on the message's own channel while it is open; a closing channel requeues it anyway. */
export function giveBack(lane: Lane, msg: ConsumeMessage, requeue: boolean): void {
  try {
    if (lane.open) lane.channel.nack(msg, false, requeue);
  } catch {
    // The channel is closing: the broker hands the message back.
  }
}
