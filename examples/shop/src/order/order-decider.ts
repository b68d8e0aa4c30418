import type { Decider } from '@causeway/core';
import type { OrderEvent, OrderLine } from '../contracts/order-events.js';

export type OrderCommand =
  | { readonly type: 'PlaceOrder'; readonly orderId: string; readonly customerId: string; readonly lines: readonly OrderLine[] }
  | { readonly type: 'PayOrder'; readonly orderId: string; readonly amount: number; readonly paymentId: string }
  | { readonly type: 'ShipOrder'; readonly orderId: string; readonly carrier: string; readonly trackingNumber: string }
  | { readonly type: 'CancelOrder'; readonly orderId: string; readonly reason: string };

export type OrderStatus = 'none' | 'placed' | 'paid' | 'shipped' | 'cancelled';

export interface OrderState {
  readonly status: OrderStatus;
  readonly total: number;
  readonly paid: number;
}

/** A rule of the order's life was broken; the command is refused and nothing is written. */
export class OrderRuleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OrderRuleError';
  }
}

export const orderDecider: Decider<OrderState, OrderCommand, OrderEvent> = {
  initialState: () => ({ status: 'none', total: 0, paid: 0 }),

  decide(command, state) {
    switch (command.type) {
      case 'PlaceOrder': {
        if (state.status !== 'none') throw new OrderRuleError(`order ${command.orderId} was already placed`);
        if (command.lines.length === 0) throw new OrderRuleError('an order needs at least one line');
        const total = command.lines.reduce((sum, l) => sum + l.quantity * l.unitPrice, 0);
        return { eventType: 'shop.order.placed', data: { orderId: command.orderId, customerId: command.customerId, lines: [...command.lines], total } };
      }
      case 'PayOrder':
        if (state.status !== 'placed') throw new OrderRuleError(`order ${command.orderId} cannot be paid while ${state.status}`);
        if (command.amount !== state.total) throw new OrderRuleError(`payment ${command.amount} does not match the total ${state.total}`);
        return { eventType: 'shop.order.paid', data: { orderId: command.orderId, amount: command.amount, paymentId: command.paymentId } };
      case 'ShipOrder':
        if (state.status !== 'paid') throw new OrderRuleError(`order ${command.orderId} cannot ship while ${state.status}`);
        return { eventType: 'shop.order.shipped', data: { orderId: command.orderId, carrier: command.carrier, trackingNumber: command.trackingNumber } };
      case 'CancelOrder':
        if (state.status === 'shipped' || state.status === 'cancelled' || state.status === 'none') {
          throw new OrderRuleError(`order ${command.orderId} cannot be cancelled while ${state.status}`);
        }
        return { eventType: 'shop.order.cancelled', data: { orderId: command.orderId, reason: command.reason } };
    }
  },

  evolve(state, event) {
    switch (event.eventType) {
      case 'shop.order.placed':
        return { ...state, status: 'placed', total: event.data.total };
      case 'shop.order.paid':
        return { ...state, status: 'paid', paid: event.data.amount };
      case 'shop.order.shipped':
        return { ...state, status: 'shipped' };
      case 'shop.order.cancelled':
        return { ...state, status: 'cancelled' };
    }
  },
};
