import { describe, expect, it } from 'vitest';
import {
  DEFAULT_PROJECTION_ERROR_POLICY,
  ProjectionHandlerError,
  defineProjection,
  projectionApplier,
  resolveErrorPolicy,
  type Projection,
  type RecordedEvent,
} from '@causeway/core';

/** Compiling a projection into the applier every feed uses: handlers, applyBatch runs, log order, errors. */
let seq = 0;
function event(eventType: string, n: number): RecordedEvent {
  seq++;
  return {
    eventId: `00000000-0000-7000-8000-${String(seq).padStart(12, '0')}`,
    eventType,
    eventVersion: 1,
    tenantId: 't',
    occurredAt: '2025-01-01T00:00:00.000Z',
    correlationId: 'c',
    causationId: null,
    producer: 'test',
    data: { n },
    metadata: {},
    streamId: 's',
    streamVersion: n,
    position: { tx: 7n, seq: BigInt(seq) },
    recordedAt: '2025-01-01T00:00:00.000000Z',
  };
}

/** Records every call: `b[1,2]` for an applyBatch call with events 1 and 2, `h3` for a handler call. */
function recording(withHandlers: boolean): { projection: Projection<string[]>; calls: string[] } {
  const calls: string[] = [];
  const n = (e: RecordedEvent): number => (e.data as { n: number }).n;
  return {
    calls,
    projection: {
      name: 'rec',
      version: 1,
      batchTypes: ['a.added', 'a.changed'],
      async applyBatch(events, tx) {
        tx.push('batch');
        calls.push(`b[${events.map(n).join(',')}]`);
      },
      ...(withHandlers
        ? {
            handlers: {
              async 'h.happened'(e, tx) {
                tx.push('handler');
                calls.push(`h${n(e)}`);
              },
            },
          }
        : {}),
    },
  };
}

describe('projectionApplier', () => {
  it('batch only: one applyBatch call per list with just the batchTypes events, in log order, through tx', async () => {
    const { projection, calls } = recording(false);
    const apply = projectionApplier(projection);
    const tx: string[] = [];
    await apply([event('a.added', 1), event('x.ignored', 2), event('a.changed', 3), event('a.added', 4)], tx);
    expect(calls).toEqual(['b[1,3,4]']);
    expect(tx).toEqual(['batch']);
    await apply([event('x.ignored', 5)], tx);
    expect(calls).toEqual(['b[1,3,4]']); // nothing to apply: no call at all
  });

  it('mixed: runs are cut by handled events so log order holds across both kinds; passed-over events cut nothing', async () => {
    const { projection, calls } = recording(true);
    const apply = projectionApplier(projection);
    await apply(
      [event('a.added', 1), event('a.added', 2), event('h.happened', 3), event('a.changed', 4), event('x.ignored', 5), event('a.added', 6), event('h.happened', 7)],
      [],
    );
    expect(calls).toEqual(['b[1,2]', 'h3', 'b[4,6]', 'h7']);
  });

  it('a throwing applyBatch run of several events names the range and no single culprit; a single event is named', async () => {
    const boom = new Error('boom');
    const apply = projectionApplier<unknown>({ name: 'bad', version: 2, batchTypes: ['a.added'], applyBatch: async () => Promise.reject(boom) });
    const two = [event('a.added', 1), event('a.added', 2)];
    const many = await apply(two, null).catch((e: unknown) => e);
    expect(many).toBeInstanceOf(ProjectionHandlerError);
    expect(many).toMatchObject({ code: 'HANDLER_FAILED', event: null, cause: boom });
    expect((many as Error).message).toContain('projection "bad" v2 applyBatch failed on 2 events from 7/');
    const one = await apply([two[1] as RecordedEvent], null).catch((e: unknown) => e);
    expect(one).toMatchObject({ code: 'HANDLER_FAILED', event: { eventId: two[1]?.eventId, eventType: 'a.added' }, cause: boom });
  });

  it('a throwing handler is named with its event, and the events after it are not applied', async () => {
    const seen: number[] = [];
    const apply = projectionApplier<unknown>({
      name: 'h',
      version: 1,
      handlers: {
        async 'h.happened'(e) {
          const n = (e.data as { n: number }).n;
          if (n === 2) throw new Error('no 2');
          seen.push(n);
        },
      },
    });
    const events = [event('h.happened', 1), event('h.happened', 2), event('h.happened', 3)];
    const error = await apply(events, null).catch((e: unknown) => e);
    expect(error).toMatchObject({ event: { eventId: events[1]?.eventId }, cause: { message: 'no 2' } });
    expect((error as Error).message).toContain(events[1]?.eventId);
    expect(seen).toEqual([1]);
  });
});

describe('defineProjection', () => {
  const fn = async (): Promise<void> => undefined;
  it('accepts handlers only, applyBatch only, and both over distinct types', () => {
    expect(() => defineProjection({ name: 'a', version: 1, handlers: { 'x.done': fn } })).not.toThrow();
    expect(() => defineProjection({ name: 'a', version: 1, batchTypes: ['x.done'], applyBatch: fn })).not.toThrow();
    expect(() => defineProjection({ name: 'a', version: 1, handlers: { 'y.done': fn }, batchTypes: ['x.done'], applyBatch: fn })).not.toThrow();
  });

  it.each([
    [{ name: 'a', version: 1 }, 'at least one handler or an applyBatch'],
    [{ name: 'a', version: 1, handlers: {} }, 'at least one handler or an applyBatch'],
    [{ name: 'a', version: 1, applyBatch: fn }, 'batchTypes must list at least one event type'],
    [{ name: 'a', version: 1, batchTypes: ['x.done'] }, 'applyBatch must be a function'],
    [{ name: 'a', version: 1, batchTypes: ['x.done'], applyBatch: fn, handlers: { 'x.done': fn } }, '"x.done" is in both handlers and batchTypes'],
    [{ name: 'A b', version: 0, handlers: { 'x.done': fn } }, 'version must be an integer >= 1'],
  ])('refuses %j naming the rule', (projection, message) => {
    expect(() => defineProjection(projection as Projection)).toThrow(message);
  });
});

describe('resolveErrorPolicy', () => {
  it('fills in the defaults: 3 retries from 100 ms up to 5 s, then stop', () => {
    expect(resolveErrorPolicy()).toEqual({ retries: 3, baseDelayMs: 100, maxDelayMs: 5000, onFailure: 'stop' });
    expect(resolveErrorPolicy({ onFailure: 'skip-and-record', retries: 0 })).toEqual({ ...DEFAULT_PROJECTION_ERROR_POLICY, retries: 0, onFailure: 'skip-and-record' });
  });

  it('refuses bad values with InvalidOptionsError naming each', () => {
    expect(() => resolveErrorPolicy({ retries: -1, onFailure: 'ignore' as 'stop' })).toThrow(/retries must be an integer from 0 to 100.*onFailure must be 'stop' or 'skip-and-record'/);
    expect(() => resolveErrorPolicy({ baseDelayMs: 500, maxDelayMs: 100 })).toThrow('maxDelayMs must be an integer >= baseDelayMs');
  });
});
