import { describe, expect, it } from 'vitest';
import {
  ConcurrencyError,
  InMemoryEventStore,
  aggregateStream,
  createCommandHandler,
  isConcurrencyError,
  uuidv7,
  type AppendOptions,
  type AppendResult,
  type CommandHandlerOptions,
  type Decider,
  type NewEvent,
  type StreamRef,
} from '@causeway/core';

// A shop order: place, pay, ship, with the domain rules a decider enforces.
type OrderState = { readonly status: 'none' | 'placed' | 'paid' | 'shipped'; readonly total: number; readonly log: readonly string[] };
type OrderCommand =
  | { readonly kind: 'place'; readonly total: number }
  | { readonly kind: 'pay'; readonly amount: number }
  | { readonly kind: 'ship' }
  | { readonly kind: 'note'; readonly text: string };
type OrderEvent =
  | { readonly eventType: 'shop.order.placed'; readonly data: { readonly total: number } }
  | { readonly eventType: 'shop.order.paid'; readonly data: { readonly amount: number } }
  | { readonly eventType: 'shop.order.shipped'; readonly data: Record<string, never> }
  | { readonly eventType: 'shop.order.noted'; readonly data: { readonly text: string } };

class OrderRuleBroken extends Error {
  override readonly name = 'OrderRuleBroken';
}

const orderDecider: Decider<OrderState, OrderCommand, OrderEvent> = {
  initialState: () => ({ status: 'none', total: 0, log: [] }),
  decide(command, state) {
    switch (command.kind) {
      case 'place':
        if (state.status !== 'none') throw new OrderRuleBroken('order already placed');
        return { eventType: 'shop.order.placed', data: { total: command.total } };
      case 'pay':
        if (state.status !== 'placed') throw new OrderRuleBroken(`cannot pay an order that is ${state.status}`);
        if (command.amount !== state.total) throw new OrderRuleBroken(`amount ${command.amount} differs from total ${state.total}`);
        return { eventType: 'shop.order.paid', data: { amount: command.amount } };
      case 'ship':
        if (state.status === 'shipped') return [];
        if (state.status !== 'paid') throw new OrderRuleBroken(`cannot ship an order that is ${state.status}`);
        return [{ eventType: 'shop.order.shipped', data: {} }];
      case 'note':
        return { eventType: 'shop.order.noted', data: { text: command.text } };
    }
  },
  evolve(state, event) {
    switch (event.eventType) {
      case 'shop.order.placed':
        return { ...state, status: 'placed', total: event.data.total };
      case 'shop.order.paid':
        return { ...state, status: 'paid' };
      case 'shop.order.shipped':
        return { ...state, status: 'shipped' };
      case 'shop.order.noted':
        return { ...state, log: [...state.log, event.data.text] };
    }
  },
};

type Store = CommandHandlerOptions<OrderState, OrderCommand, OrderEvent>['store'];

/** The handler never passes a beforeCommit hook, so only these two options are forwarded. */
function forwarded(options: AppendOptions<never> | undefined): AppendOptions<undefined> {
  return {
    ...(options?.expectedVersion !== undefined ? { expectedVersion: options.expectedVersion } : {}),
    ...(options?.streamType !== undefined ? { streamType: options.streamType } : {}),
  };
}

/** The store with its appends counted; `conflicts(n)` says whether the n-th append (1-based) is refused. */
function conflicting(inner: InMemoryEventStore, conflicts: (n: number) => boolean): { store: Store; appends: () => number; reads: () => number } {
  let appends = 0;
  let reads = 0;
  const store: Store = {
    readStream: (stream, options) => {
      reads++;
      return inner.readStream(stream, options);
    },
    loadSnapshot: (stream, name) => inner.loadSnapshot(stream, name),
    saveSnapshot: (stream, snapshot) => inner.saveSnapshot(stream, snapshot),
    async append(stream: StreamRef, events: readonly NewEvent[], options?: AppendOptions<never>): Promise<AppendResult> {
      appends++;
      if (conflicts(appends)) throw new ConcurrencyError(stream.tenantId, stream.streamId, options?.expectedVersion ?? 'any', 99);
      return inner.append(stream, events, forwarded(options));
    },
  };
  return { store, appends: () => appends, reads: () => reads };
}

const newStream = (): StreamRef => ({ tenantId: 'acme', streamId: `order-${uuidv7()}` });

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error('expected the promise to reject');
}

describe('createCommandHandler', () => {
  it('appends the decided events with the loaded version as expectedVersion and returns the new state', async () => {
    const inner = new InMemoryEventStore();
    const expectedVersions: unknown[] = [];
    const store: Store = {
      readStream: (s, o) => inner.readStream(s, o),
      loadSnapshot: (s, n) => inner.loadSnapshot(s, n),
      saveSnapshot: (s, snap) => inner.saveSnapshot(s, snap),
      append: (s, events, options) => {
        expectedVersions.push(options?.expectedVersion);
        return inner.append(s, events, forwarded(options));
      },
    };
    const handler = createCommandHandler({ store, decider: orderDecider, streamType: 'order' });
    const stream = newStream();

    const placed = await handler.handle(stream, { kind: 'place', total: 30 });
    expect(placed.state).toEqual({ status: 'placed', total: 30, log: [] });
    expect(placed.nextExpectedVersion).toBe(1);
    expect(placed.attempts).toBe(1);
    expect(placed.events.map((e) => [e.eventType, e.streamVersion, e.data])).toEqual([['shop.order.placed', 1, { total: 30 }]]);

    const paid = await handler.handle(stream, { kind: 'pay', amount: 30 });
    const shipped = await handler.handle(stream, { kind: 'ship' });
    expect(paid.state.status).toBe('paid');
    expect(shipped.state).toEqual({ status: 'shipped', total: 30, log: [] });
    expect(shipped.nextExpectedVersion).toBe(3);
    expect(expectedVersions).toEqual([0, 1, 2]);

    const stored = await inner.readStream(stream);
    expect(stored.map((e) => e.eventType)).toEqual(['shop.order.placed', 'shop.order.paid', 'shop.order.shipped']);
    expect(stored.map((e) => e.streamVersion)).toEqual([1, 2, 3]);
    expect((await inner.streamInfo(stream))?.streamType).toBe('order');
  });

  it('appends nothing when the decider decides nothing', async () => {
    const inner = new InMemoryEventStore();
    const { store, appends } = conflicting(inner, () => false);
    const handler = createCommandHandler({ store, decider: orderDecider });
    const stream = newStream();
    await handler.handle(stream, { kind: 'place', total: 5 });
    await handler.handle(stream, { kind: 'pay', amount: 5 });
    await handler.handle(stream, { kind: 'ship' });
    const again = await handler.handle(stream, { kind: 'ship' });
    expect(again).toEqual({ state: { status: 'shipped', total: 5, log: [] }, nextExpectedVersion: 3, events: [], attempts: 1 });
    expect(appends()).toBe(3);
    expect(await inner.readStream(stream)).toHaveLength(3);
  });

  it('stamps one correlation and the given metadata on the events of a command', async () => {
    const store = new InMemoryEventStore();
    const handler = createCommandHandler({ store, decider: orderDecider });
    const stream = newStream();
    const result = await handler.handle(
      stream,
      { kind: 'place', total: 1 },
      { correlation: { correlationId: 'req-1', causationId: 'cmd-1' }, metadata: { region: 'eu' } },
    );
    expect(result.events[0]).toMatchObject({ correlationId: 'req-1', causationId: 'cmd-1', metadata: { region: 'eu' } });
  });

  it('retries after a ConcurrencyError and applies the command once', async () => {
    const inner = new InMemoryEventStore();
    const { store, appends, reads } = conflicting(inner, (n) => n === 1);
    const handler = createCommandHandler({ store, decider: orderDecider, retryBaseMs: 1 });
    const stream = newStream();
    const result = await handler.handle(stream, { kind: 'place', total: 9 }, { correlation: { correlationId: 'req-2', causationId: null } });
    expect(result.attempts).toBe(2);
    expect(appends()).toBe(2);
    expect(reads()).toBe(2);
    const stored = await inner.readStream(stream);
    expect(stored.map((e) => [e.eventType, e.streamVersion, e.correlationId])).toEqual([['shop.order.placed', 1, 'req-2']]);
  });

  it('applies each of 10 racing commands on one stream exactly once', async () => {
    const store = new InMemoryEventStore();
    const handler = createCommandHandler({ store, decider: orderDecider, maxAttempts: 100, retryBaseMs: 1, retryMaxMs: 20 });
    const stream = newStream();
    const texts = Array.from({ length: 10 }, (_, i) => `note-${i}`);
    const results = await Promise.all(texts.map((text) => handler.handle(stream, { kind: 'note', text })));

    const stored = await store.readStream(stream);
    expect(stored.map((e) => e.streamVersion)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(stored.map((e) => (e.data as { text: string }).text).sort()).toEqual([...texts].sort());
    expect(results.map((r) => r.nextExpectedVersion).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    // Each result's state is the fold up to its own version: its log holds that many notes, its own last.
    for (const [i, r] of results.entries()) {
      expect(r.state.log).toHaveLength(r.nextExpectedVersion);
      expect(r.state.log[r.state.log.length - 1]).toBe(texts[i]);
    }
    // Racing on one stream must have caused conflicts, or this test proved nothing about retries.
    expect(results.some((r) => r.attempts > 1)).toBe(true);
  });

  it('gives up with the ConcurrencyError after exactly maxAttempts appends', async () => {
    const inner = new InMemoryEventStore();
    const { store, appends } = conflicting(inner, () => true);
    const handler = createCommandHandler({ store, decider: orderDecider, maxAttempts: 4, retryBaseMs: 1, retryMaxMs: 2 });
    const stream = newStream();
    const error = await rejection(handler.handle(stream, { kind: 'place', total: 3 }));
    expect(isConcurrencyError(error)).toBe(true);
    expect(error).toBeInstanceOf(ConcurrencyError);
    expect(appends()).toBe(4);
    expect(await inner.readStream(stream)).toEqual([]);
  });

  it('with maxAttempts 1 does not retry at all', async () => {
    const { store, appends } = conflicting(new InMemoryEventStore(), () => true);
    const handler = createCommandHandler({ store, decider: orderDecider, maxAttempts: 1 });
    expect(isConcurrencyError(await rejection(handler.handle(newStream(), { kind: 'place', total: 3 })))).toBe(true);
    expect(appends()).toBe(1);
  });

  it('propagates a domain error from decide at once, without retry or append', async () => {
    const inner = new InMemoryEventStore();
    const { store, appends, reads } = conflicting(inner, () => false);
    const handler = createCommandHandler({ store, decider: orderDecider });
    const stream = newStream();
    const error = await rejection(handler.handle(stream, { kind: 'pay', amount: 1 }));
    expect(error).toBeInstanceOf(OrderRuleBroken);
    expect((error as Error).message).toBe('cannot pay an order that is none');
    expect(appends()).toBe(0);
    expect(reads()).toBe(1);

    await handler.handle(stream, { kind: 'place', total: 10 });
    const wrongAmount = await rejection(handler.handle(stream, { kind: 'pay', amount: 11 }));
    expect((wrongAmount as Error).message).toBe('amount 11 differs from total 10');
    expect(appends()).toBe(1);
    expect((await inner.readStream(stream)).map((e) => e.eventType)).toEqual(['shop.order.placed']);
  });

  it('does not retry a non-concurrency append error', async () => {
    const inner = new InMemoryEventStore();
    let appends = 0;
    const store: Store = {
      readStream: (s, o) => inner.readStream(s, o),
      loadSnapshot: (s, n) => inner.loadSnapshot(s, n),
      saveSnapshot: (s, snap) => inner.saveSnapshot(s, snap),
      append: async () => {
        appends++;
        throw new Error('disk full');
      },
    };
    const handler = createCommandHandler({ store, decider: orderDecider });
    expect((await rejection(handler.handle(newStream(), { kind: 'place', total: 1 })) as Error).message).toBe('disk full');
    expect(appends).toBe(1);
  });

  it('rejects bad options at construction', () => {
    const store = new InMemoryEventStore();
    expect(() => createCommandHandler({ store, decider: orderDecider, maxAttempts: 0 })).toThrow(/maxAttempts must be an integer >= 1/);
    expect(() => createCommandHandler({ store, decider: orderDecider, snapshot: { name: 'v1', every: 0 } })).toThrow(
      /snapshot.every must be an integer >= 1/,
    );
  });

  it('snapshots every 5 versions and folds only the tail after the latest snapshot', async () => {
    const store = new InMemoryEventStore();
    const handler = createCommandHandler({ store, decider: orderDecider, snapshot: { name: 'v1', every: 5 } });
    const stream = newStream();
    for (let i = 1; i <= 12; i++) await handler.handle(stream, { kind: 'note', text: `n${i}` });

    const snapshot = await store.loadSnapshot<OrderState>(stream, 'v1');
    expect(snapshot?.version).toBe(10);
    expect(snapshot?.state.log).toEqual(['n1', 'n2', 'n3', 'n4', 'n5', 'n6', 'n7', 'n8', 'n9', 'n10']);
    expect(await store.loadSnapshot(stream)).toBeNull();

    const fold = { evolve: orderDecider.evolve, initialState: orderDecider.initialState };
    const fromSnapshot = await aggregateStream(store, stream, { ...fold, snapshotName: 'v1' });
    const full = await aggregateStream(store, stream, fold);
    expect(fromSnapshot.eventsRead).toBe(2);
    expect(full.eventsRead).toBe(12);
    expect(fromSnapshot.version).toBe(12);
    expect(full.version).toBe(12);
    expect(fromSnapshot.exists).toBe(true);
    expect(fromSnapshot.state).toEqual(full.state);
    expect(full.state.log).toHaveLength(12);
    expect(full.state.log[11]).toBe('n12');
  });

  it('aggregateStream reports a stream that does not exist', async () => {
    const store = new InMemoryEventStore();
    const result = await aggregateStream(store, newStream(), {
      evolve: orderDecider.evolve,
      initialState: orderDecider.initialState,
      snapshotName: 'v1',
    });
    expect(result).toEqual({ state: { status: 'none', total: 0, log: [] }, version: 0, exists: false, eventsRead: 0 });
  });
});
