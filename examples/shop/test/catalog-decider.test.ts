import { checkEventTypeName, createCommandHandler, InMemoryEventStore } from '@causeway/core';
import { describe, expect, it } from 'vitest';
import { catalogDecider, CatalogRuleError } from '../src/catalog/catalog-decider.js';
import { CATALOG_EVENT_TYPES } from '../src/contracts/catalog-events.js';

const details = { name: 'Mechanical Keyboard', description: 'Brown switches', category: 'keyboards', price: 89 };

describe('catalog contract', () => {
  it('every event type follows the naming rule (past tense, dot notation)', () => {
    for (const type of CATALOG_EVENT_TYPES) expect(checkEventTypeName(type), type).toEqual({ ok: true, problems: [] });
  });
});

describe('catalog decider', () => {
  it('adds a product once', () => {
    const added = catalogDecider.decide({ type: 'AddProduct', sku: 'KB-1', ...details }, catalogDecider.initialState());
    expect(added).toEqual({ eventType: 'catalog.product.added', data: { sku: 'KB-1', ...details } });
    const state = catalogDecider.evolve(catalogDecider.initialState(), { eventType: 'catalog.product.added', data: { sku: 'KB-1', ...details } });
    expect(() => catalogDecider.decide({ type: 'AddProduct', sku: 'KB-1', ...details }, state)).toThrow(CatalogRuleError);
  });

  it('records only the fields an update really changes, and nothing when none change', async () => {
    const store = new InMemoryEventStore({ producer: 'shop.catalog' });
    const handler = createCommandHandler({ store, decider: catalogDecider, streamType: 'product' });
    const ref = { tenantId: 'shop', streamId: 'product-KB-1' };
    await expect(handler.handle(ref, { type: 'UpdateProduct', sku: 'KB-1', changes: { price: 1 } })).rejects.toThrow('product KB-1 was never added');
    await handler.handle(ref, { type: 'AddProduct', sku: 'KB-1', ...details });
    const updated = await handler.handle(ref, { type: 'UpdateProduct', sku: 'KB-1', changes: { price: 79, name: details.name } });
    expect(updated.events.map((e) => e.data)).toEqual([{ sku: 'KB-1', changes: { price: 79 } }]);
    expect(updated.state.product).toEqual({ sku: 'KB-1', ...details, price: 79 });
    const unchanged = await handler.handle(ref, { type: 'UpdateProduct', sku: 'KB-1', changes: { price: 79 } });
    expect([unchanged.events.length, unchanged.nextExpectedVersion]).toEqual([0, 2]);
  });
});
