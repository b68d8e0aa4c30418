import type { Decider } from '@causeway/core';
import type { CatalogEvent, ProductDetails } from '../contracts/catalog-events.js';

export type CatalogCommand =
  | ({ readonly type: 'AddProduct'; readonly sku: string } & ProductDetails)
  | { readonly type: 'UpdateProduct'; readonly sku: string; readonly changes: Partial<ProductDetails> };

/** One product's stream state: null until it is added. */
export interface ProductState {
  readonly product: ({ readonly sku: string } & ProductDetails) | null;
}

/** A rule of the catalog was broken; the command is refused and nothing is written. */
export class CatalogRuleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CatalogRuleError';
  }
}

const DETAIL_KEYS = ['name', 'description', 'category', 'price'] as const;

export const catalogDecider: Decider<ProductState, CatalogCommand, CatalogEvent> = {
  initialState: () => ({ product: null }),

  decide(command, state) {
    switch (command.type) {
      case 'AddProduct': {
        if (state.product !== null) throw new CatalogRuleError(`product ${command.sku} was already added`);
        const { type: _type, ...product } = command;
        return { eventType: 'catalog.product.added', data: product };
      }
      case 'UpdateProduct': {
        const current = state.product;
        if (current === null) throw new CatalogRuleError(`product ${command.sku} was never added`);
        // Only real changes are recorded; an update that changes nothing decides nothing.
        const changes: Partial<Record<keyof ProductDetails, string | number>> = {};
        for (const key of DETAIL_KEYS) {
          const value = command.changes[key];
          if (value !== undefined && value !== current[key]) changes[key] = value;
        }
        if (Object.keys(changes).length === 0) return [];
        return { eventType: 'catalog.product.updated', data: { sku: command.sku, changes: changes as Partial<ProductDetails> } };
      }
    }
  },

  evolve(state, event) {
    switch (event.eventType) {
      case 'catalog.product.added':
        return { product: event.data };
      case 'catalog.product.updated':
        return state.product === null ? state : { product: { ...state.product, ...event.data.changes } };
    }
  },
};
