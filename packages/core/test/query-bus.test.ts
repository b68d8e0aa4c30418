import { describe, expect, it } from 'vitest';
import {
  InvalidOptionsError,
  TimeoutError,
  UnknownQueryError,
  createQueryBus,
  defineQuery,
  isUnknownQueryError,
  type LogPosition,
  type WaitForPosition,
} from '@causeway/core';

interface CustomerOrders {
  readonly customerId: string;
  readonly orderIds: readonly string[];
}
const ordersByCustomer = defineQuery<{ customerId: string }, CustomerOrders>('test.orders-by-customer');
const orderCount = defineQuery<{ tenantId: string }, number>('test.order-count');

const at = (tx: number, seq: number): LogPosition => ({ tx: BigInt(tx), seq: BigInt(seq) });

/** A waitFor the test releases by hand, recording what it was asked. */
function manualWait(): { waitFor: WaitForPosition; calls: Array<[LogPosition, number]>; release(): void; fail(e: unknown): void } {
  const calls: Array<[LogPosition, number]> = [];
  let release = (): void => undefined;
  let fail = (_e: unknown): void => undefined;
  const gate = new Promise<void>((resolve, reject) => {
    release = resolve;
    fail = reject;
  });
  return {
    calls,
    waitFor: (position, timeoutMs) => {
      calls.push([position, timeoutMs]);
      return gate;
    },
    release: () => release(),
    fail: (e) => fail(e),
  };
}

describe('query bus', () => {
  it('routes a query to its handler and returns the typed answer', async () => {
    const bus = createQueryBus();
    const asked: string[] = [];
    bus.register(ordersByCustomer, async ({ customerId }) => {
      asked.push(customerId);
      return { customerId, orderIds: [`${customerId}-1`, `${customerId}-2`] };
    });
    bus.register(orderCount, async ({ tenantId }) => tenantId.length);

    const answer = await bus.ask(ordersByCustomer, { customerId: 'ada' });
    expect(answer).toEqual({ customerId: 'ada', orderIds: ['ada-1', 'ada-2'] });
    expect(await bus.ask(orderCount, { tenantId: 'shop-a' })).toBe(6);
    expect(asked).toEqual(['ada']);
    expect(bus.has(ordersByCustomer)).toBe(true);
    expect(bus.has('test.nothing')).toBe(false);

    // Compile-time checks: tsc (npm run typecheck) fails if these stop being errors.
    // @ts-expect-error params of the wrong shape
    await bus.ask(ordersByCustomer, { tenantId: 'x' }).catch(() => undefined);
    // @ts-expect-error the answer is a CustomerOrders, not a number
    const wrong: number = await bus.ask(ordersByCustomer, { customerId: 'ada' });
    expect(typeof wrong).toBe('object');
  });

  it('refuses an unknown query with an error naming it and what is registered', async () => {
    const bus = createQueryBus();
    bus.register(orderCount, async () => 1);
    const error = await bus.ask(ordersByCustomer, { customerId: 'ada' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnknownQueryError);
    expect(isUnknownQueryError(error)).toBe(true);
    expect((error as UnknownQueryError).code).toBe('UNKNOWN_QUERY');
    expect((error as UnknownQueryError).query).toBe('test.orders-by-customer');
    expect((error as Error).message).toMatch(/"test\.orders-by-customer".*registered: test\.order-count/);
  });

  it('refuses a second handler for the same query and keeps the first', async () => {
    const bus = createQueryBus();
    bus.register(orderCount, async () => 1);
    expect(() => bus.register(orderCount, async () => 2)).toThrow(InvalidOptionsError);
    expect(() => bus.register(defineQuery<{ tenantId: string }, number>('test.order-count'), async () => 3)).toThrow(/already has a handler/);
    expect(await bus.ask(orderCount, { tenantId: 't' })).toBe(1);
  });

  it('unregister frees the name, and a stale unregister leaves a newer handler alone', async () => {
    const bus = createQueryBus();
    const off = bus.register(orderCount, async () => 1);
    off();
    expect(bus.has(orderCount)).toBe(false);
    await expect(bus.ask(orderCount, { tenantId: 't' })).rejects.toBeInstanceOf(UnknownQueryError);
    bus.register(orderCount, async () => 2);
    off();
    expect(await bus.ask(orderCount, { tenantId: 't' })).toBe(2);
  });

  it('read-your-writes: with afterPosition the handler runs only once waitFor resolves', async () => {
    const wait = manualWait();
    const bus = createQueryBus({ waitFor: wait.waitFor });
    let runs = 0;
    bus.register(orderCount, async () => ++runs);

    const pending = bus.ask(orderCount, { tenantId: 't' }, { afterPosition: at(7, 3) });
    // Let every queued microtask run: the handler must still be waiting on the gate.
    await new Promise((resolve) => setImmediate(resolve));
    expect(runs).toBe(0);
    expect(wait.calls).toEqual([[at(7, 3), 5000]]);
    wait.release();
    expect(await pending).toBe(1);

    await bus.ask(orderCount, { tenantId: 't' }, { afterPosition: at(8, 1), timeoutMs: 250 });
    expect(wait.calls[1]).toEqual([at(8, 1), 250]);
  });

  it('does not wait when no afterPosition is given', async () => {
    const wait = manualWait();
    const bus = createQueryBus({ waitFor: wait.waitFor });
    bus.register(orderCount, async () => 42);
    expect(await bus.ask(orderCount, { tenantId: 't' })).toBe(42);
    expect(wait.calls).toEqual([]);
  });

  it("a query's own waitFor wins over the bus's", async () => {
    const busWait = manualWait();
    const ownWait = manualWait();
    ownWait.release();
    const bus = createQueryBus({ waitFor: busWait.waitFor, defaultTimeoutMs: 900 });
    bus.register(orderCount, async () => 5, { waitFor: ownWait.waitFor });
    expect(await bus.ask(orderCount, { tenantId: 't' }, { afterPosition: at(1, 1) })).toBe(5);
    expect(ownWait.calls).toEqual([[at(1, 1), 900]]);
    expect(busWait.calls).toEqual([]);
  });

  it('refuses afterPosition when no waitFor can honour it, without running the handler', async () => {
    const bus = createQueryBus();
    let runs = 0;
    bus.register(orderCount, async () => ++runs);
    await expect(bus.ask(orderCount, { tenantId: 't' }, { afterPosition: at(1, 1) })).rejects.toThrow(/asked with afterPosition, but neither it nor the bus has a waitFor/);
    expect(runs).toBe(0);
  });

  it('passes a failed wait (timeout) through and never runs the handler', async () => {
    const wait = manualWait();
    const bus = createQueryBus({ waitFor: wait.waitFor });
    let runs = 0;
    bus.register(orderCount, async () => ++runs);
    const pending = bus.ask(orderCount, { tenantId: 't' }, { afterPosition: at(9, 9), timeoutMs: 10 });
    wait.fail(new TimeoutError('read model did not reach 9/9'));
    await expect(pending).rejects.toBeInstanceOf(TimeoutError);
    expect(runs).toBe(0);
  });

  it("passes a handler's own error through unchanged", async () => {
    const bus = createQueryBus();
    const boom = new RangeError('no such page');
    bus.register(orderCount, async () => {
      throw boom;
    });
    await expect(bus.ask(orderCount, { tenantId: 't' })).rejects.toBe(boom);
  });

  it('validates names, timeouts and handlers', async () => {
    expect(() => defineQuery('Orders By Customer')).toThrow(InvalidOptionsError);
    expect(() => defineQuery('')).toThrow(/query name must match/);
    expect(() => createQueryBus({ defaultTimeoutMs: -1 })).toThrow(/defaultTimeoutMs/);
    expect(() => createQueryBus({ defaultTimeoutMs: 1.5 })).toThrow(InvalidOptionsError);
    const bus = createQueryBus({ waitFor: async () => undefined });
    expect(() => bus.register(orderCount, 'nope' as never)).toThrow(/must be a function/);
    bus.register(orderCount, async () => 1);
    await expect(bus.ask(orderCount, { tenantId: 't' }, { afterPosition: at(1, 1), timeoutMs: Number.NaN })).rejects.toThrow(/timeoutMs/);
  });
});
