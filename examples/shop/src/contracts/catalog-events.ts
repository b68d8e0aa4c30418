import type { DomainEvent } from '@causeway/core';

/** The catalog service's published events: what the shop sells. */
export interface ProductDetails {
  readonly name: string;
  readonly description: string;
  readonly category: string;
  readonly price: number;
}

export type ProductAdded = DomainEvent<'catalog.product.added', { sku: string } & ProductDetails>;
/** Only the fields that changed are present. */
export type ProductUpdated = DomainEvent<'catalog.product.updated', { sku: string; changes: Partial<ProductDetails> }>;

export type CatalogEvent = ProductAdded | ProductUpdated;

/** Every event type the catalog emits; a test checks each against the naming rule. */
export const CATALOG_EVENT_TYPES: readonly CatalogEvent['eventType'][] = ['catalog.product.added', 'catalog.product.updated'];
