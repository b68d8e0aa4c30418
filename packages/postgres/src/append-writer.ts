import { streamKey, type ExpectedVersion, type PreparedEvent } from '@causeway/core';
import { compareStreams, toOutcome, type AppendOutcome, type AppendRequest, type AppendRow, type EventColumns, type StreamState } from './append-outcome.js';
import { MAX_ROW_EVENTS, MAX_SINGLES, type AppendMode, type EventStoreSql } from './event-store-sql.js';
import type { SqlExecutor } from './sql-executor.js';

const EXPECTED_CODE = { any: -1, no_stream: -2, exists: -3 } as const;

/** expectedVersion as the SQL takes it: >= 0 exact, -1 any, -2 no_stream, -3 exists. */
function expectedCode(expected: ExpectedVersion): number {
  return typeof expected === 'number' ? expected : EXPECTED_CODE[expected];
}

/** Which stream write an append needs: upsert (any), create (no_stream / 0), or a conditional update. */
function appendMode(expected: ExpectedVersion): AppendMode {
  return expected === 'any' ? 'any' : expected === 'no_stream' || expected === 0 ? 'create' : 'bump';
}

interface EventRowOut {
  version: string | null;
  tx: string | null;
  seq: string | null;
  recorded: string | null;
}

/**
 * Writes appends, picking the statement by shape. Every shape makes the same checks inside one
 * statement (stream row first, under the expected-version condition, then the events), so the
 * choice is only about cost:
 * - one event: the append_one function (scalar parameters, plan kept by both engines);
 * - a few events: a multi-row statement with a parameter per value (appendRows);
 * - a coalesced batch of single-event appends: the same, set-based (appendSingles);
 * - anything larger, and on PGlite everything but one event: the append_batch function over arrays.
 */
export class AppendWriter {
  /** Statement texts by shape, built once each. */
  private readonly texts = new Map<string, string>();

  constructor(
    private readonly sql: EventStoreSql,
    private readonly prefix: string,
    /**
     * The engine keeps named statements prepared (the server). PGlite plans every plain statement
     * on every call, so there only the functions (whose plans it keeps) pay off: measured on 10-event
     * appends and on batches of 16 single appends, append_batch over arrays cost the least CPU.
     */
    private readonly keepsStatements: boolean,
  ) {}

  /** One outcome per request, in order. Requests in one call are to distinct streams. */
  async write(executor: SqlExecutor, requests: readonly AppendRequest[]): Promise<AppendOutcome[]> {
    if (requests.length === 1) {
      const only = requests[0] as AppendRequest;
      if (only.prepared.length === 1) return [await this.writeOneEvent(executor, only)];
      if (this.keepsStatements && only.prepared.length <= MAX_ROW_EVENTS) return [await this.writeRows(executor, only)];
    }
    // Lock streams in one global order so two batches rarely deadlock (a deadlock fails the batch,
    // and the coalescer then runs each append alone).
    const order = requests.map((_, i) => i);
    if (requests.length > 1) order.sort((a, b) => compareStreams((requests[a] as AppendRequest).stream, (requests[b] as AppendRequest).stream));
    const sorted = order.map((i) => requests[i] as AppendRequest);
    const rows =
      this.keepsStatements && sorted.length <= MAX_SINGLES && sorted.every((r) => r.prepared.length === 1)
        ? await this.writeSingles(executor, sorted)
        : await this.writeArrays(executor, sorted);
    const refused = sorted.filter((_, i) => (rows[i] as AppendRow).version === null).map((r) => r.stream);
    const states = new Map<string, StreamState>();
    if (refused.length > 0) {
      const { rows: found } = await executor.query<StreamState & { tenant_id: string; stream_id: string }>(this.sql.streamStates, [
        refused.map((r) => r.tenantId),
        refused.map((r) => r.streamId),
      ]);
      for (const f of found) states.set(streamKey({ tenantId: f.tenant_id, streamId: f.stream_id }), f);
    }
    const outcomes: AppendOutcome[] = new Array(requests.length);
    order.forEach((reqIndex, rowIndex) => {
      const request = requests[reqIndex] as AppendRequest;
      outcomes[reqIndex] = toOutcome(request, rows[rowIndex] as AppendRow, states.get(streamKey(request.stream)) ?? null);
    });
    return outcomes;
  }

  /** The commonest append, one event: append_one. */
  private async writeOneEvent(executor: SqlExecutor, request: AppendRequest): Promise<AppendOutcome> {
    const { envelope: env, dataJson, metadataJson } = request.prepared[0] as PreparedEvent;
    const { rows } = await executor.query<EventRowOut>(
      this.sql.appendOneEvent,
      [
        request.stream.tenantId, request.stream.streamId, request.streamType, expectedCode(request.expected),
        env.eventId, env.eventType, env.eventVersion, env.occurredAt, env.correlationId, env.causationId, env.producer, dataJson, metadataJson,
      ],
      `${this.prefix}.append-one`,
    );
    const r = rows[0];
    if (r && r.version !== null) return toOutcome(request, { version: r.version, tx: r.tx, seqs: [r.seq as string], recorded: [r.recorded as string] }, null);
    return this.refused(executor, request);
  }

  /** An append of a few events: one row of parameters per event (appendRows); no rows back when refused. */
  private async writeRows(executor: SqlExecutor, request: AppendRequest): Promise<AppendOutcome> {
    const { prepared, expected } = request;
    const mode = appendMode(expected);
    const key = `rows-${mode}-${prepared.length}`;
    const params: unknown[] = [request.stream.tenantId, request.stream.streamId, request.streamType, prepared.length];
    for (const { envelope: env, dataJson, metadataJson } of prepared) {
      params.push(env.eventId, env.eventType, env.eventVersion, env.occurredAt, env.correlationId, env.causationId, env.producer, dataJson, metadataJson);
    }
    if (mode === 'bump') params.push(expectedCode(expected));
    const { rows } = await executor.query<EventRowOut>(this.text(key, () => this.sql.appendRows(mode, prepared.length)), params, `${this.prefix}.append-${key}`);
    const first = rows[0];
    if (first === undefined) return this.refused(executor, request);
    return toOutcome(request, { version: first.version, tx: first.tx, seqs: rows.map((r) => r.seq as string), recorded: rows.map((r) => r.recorded as string) }, null);
  }

  /** A batch of single-event appends, one row of parameters each (appendSingles); rows in request order. */
  private async writeSingles(executor: SqlExecutor, requests: readonly AppendRequest[]): Promise<AppendRow[]> {
    const params: unknown[] = [];
    for (const r of requests) {
      const { envelope: env, dataJson, metadataJson } = r.prepared[0] as PreparedEvent;
      params.push(
        r.stream.tenantId, r.stream.streamId, r.streamType, expectedCode(r.expected),
        env.eventId, env.eventType, env.eventVersion, env.occurredAt, env.correlationId, env.causationId, env.producer, dataJson, metadataJson,
      );
    }
    const key = `singles-${requests.length}`;
    const { rows } = await executor.query<EventRowOut>(this.text(key, () => this.sql.appendSingles(requests.length)), params, `${this.prefix}.append-${key}`);
    return rows.map((r) =>
      r.version === null ? { version: null, tx: null, seqs: null, recorded: null } : { version: r.version, tx: r.tx, seqs: [r.seq as string], recorded: [r.recorded as string] },
    );
  }

  /** Anything larger: the events as arrays, one statement (append_batch, or on the server a plain statement for one append). */
  private async writeArrays(executor: SqlExecutor, requests: readonly AppendRequest[]): Promise<AppendRow[]> {
    const a = { tenant: [] as string[], stream: [] as string[], type: [] as (string | null)[], expected: [] as number[], count: [] as number[] };
    const e: EventColumns = {
      append: [], id: [], type: [], version: [], occurred: [], correlation: [], causation: [], producer: [], data: [], metadata: [],
    };
    requests.forEach((r, position) => {
      a.tenant.push(r.stream.tenantId);
      a.stream.push(r.stream.streamId);
      a.type.push(r.streamType);
      a.expected.push(expectedCode(r.expected));
      a.count.push(r.prepared.length);
      for (const p of r.prepared) {
        const env = p.envelope;
        e.append.push(position + 1);
        e.id.push(env.eventId);
        e.type.push(env.eventType);
        e.version.push(env.eventVersion);
        e.occurred.push(env.occurredAt);
        e.correlation.push(env.correlationId);
        e.causation.push(env.causationId);
        e.producer.push(env.producer);
        e.data.push(p.dataJson);
        e.metadata.push(p.metadataJson);
      }
    });
    if (requests.length === 1 && this.keepsStatements) {
      const request = requests[0] as AppendRequest;
      const mode = appendMode(request.expected);
      const params: unknown[] = [
        request.stream.tenantId, request.stream.streamId, request.streamType, request.prepared.length,
        e.id, e.type, e.version, e.occurred, e.correlation, e.causation, e.producer, e.data, e.metadata,
      ];
      if (mode === 'bump') params.push(expectedCode(request.expected));
      return (await executor.query<AppendRow>(this.sql.appendOne[mode], params, `${this.prefix}.append-${mode}`)).rows;
    }
    const { rows } = await executor.query<AppendRow>(
      this.sql.appendBatch,
      [a.tenant, a.stream, a.type, a.expected, a.count, e.append, e.id, e.type, e.version, e.occurred, e.correlation, e.causation, e.producer, e.data, e.metadata],
      `${this.prefix}.append`,
    );
    return rows;
  }

  /** A refused append: read the stream's state to say why (closed, or the version it is at). */
  private async refused(executor: SqlExecutor, request: AppendRequest): Promise<AppendOutcome> {
    const { rows: found } = await executor.query<StreamState>(this.sql.streamStates, [[request.stream.tenantId], [request.stream.streamId]]);
    return toOutcome(request, { version: null, tx: null, seqs: null, recorded: null }, found[0] ?? null);
  }

  private text(key: string, build: () => string): string {
    let text = this.texts.get(key);
    if (text === undefined) {
      text = build();
      this.texts.set(key, text);
    }
    return text;
  }
}
