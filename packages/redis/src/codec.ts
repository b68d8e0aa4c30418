import {
  decodeArrival,
  decodeStructured,
  encodeStructured,
  SchemaError,
  type DeliveryInfo,
  type Message,
  type WireLimits,
} from '@causeway/core';

/**
 * One message = one stream entry. Redis Streams has no CloudEvents binding, so the event travels
 * in structured mode: the whole CloudEvent as JSON in the `cloudevent` field (core's
 * encodeStructured, with `partitionkey`, `traceparent` and `tracestate` inside). `id`, `type`,
 * `partitionkey` and `traceparent` are copied into fields of their own so that XRANGE, redis-cli
 * and tooling can see them without parsing JSON; the subscriber reads only `cloudevent`.
 */
export const FIELD = {
  cloudevent: 'cloudevent',
  id: 'id',
  type: 'type',
  partitionkey: 'partitionkey',
  traceparent: 'traceparent',
} as const;

/**
 * Appends the entry's field/value pairs, in XADD order, to `args` (the XADD command being built).
 * Throws MessageTooLargeError before anything is sent.
 */
export function appendEntry(args: string[], message: Message, limits: WireLimits): string[] {
  const { text, key } = encodeStructured(message, limits);
  args.push(FIELD.cloudevent, text, FIELD.id, message.event.eventId, FIELD.type, message.event.eventType, FIELD.partitionkey, key);
  if (message.traceparent !== undefined) args.push(FIELD.traceparent, message.traceparent);
  return args;
}

/** What the subscriber knows about an entry besides its fields. */
export interface EntryContext {
  readonly topic: string;
  readonly group: string;
  readonly attempt: number;
  /** The stream entry id (`<ms>-<seq>`). */
  readonly brokerId: string;
}

const decoder = new TextDecoder();
const CLOUDEVENT = Buffer.from(FIELD.cloudevent);

/**
 * Turns an entry into what createDelivery needs. `fields` is the entry's flat field/value list as
 * Redis returns it (Buffers). Never throws: an entry that is not a CloudEvent of ours (no
 * `cloudevent` field, bad JSON or UTF-8, missing attributes, over the size limit, which is
 * checked on the bytes before parsing) becomes an 'undecodable' delivery.
 */
export function decodeEntry(context: EntryContext, fields: readonly unknown[], limits: WireLimits): DeliveryInfo {
  let body: Uint8Array | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (isCloudeventName(fields[i])) {
      body = bytes(fields[i + 1]);
      break;
    }
  }
  const found = body;
  return decodeArrival(
    context,
    () => {
      if (found === undefined) throw new SchemaError([`redis entry has no "${FIELD.cloudevent}" field`]);
      return decodeStructured(found, limits);
    },
    () => {
      const headers: Record<string, string> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) {
        // The other fields are small copies; the body is kept as bytes, untouched.
        const name = utf8(fields[i]);
        if (name !== FIELD.cloudevent) headers[name] = utf8(fields[i + 1]);
      }
      return { key: headers[FIELD.partitionkey] ?? '', headers, body: found ?? new Uint8Array(0) };
    },
  );
}


/** Whether a field name is `cloudevent`; compared byte by byte (no native call: it runs per entry). */
function isCloudeventName(name: unknown): boolean {
  if (typeof name === 'string') return name === FIELD.cloudevent;
  if (!(name instanceof Uint8Array) || name.length !== CLOUDEVENT.length) return false;
  for (let i = 0; i < CLOUDEVENT.length; i++) if (name[i] !== CLOUDEVENT[i]) return false;
  return true;
}

/** An entry id (ASCII digits and a dash) as a string. */
export function entryId(value: unknown): string {
  return Buffer.isBuffer(value) ? value.toString('latin1') : String(value);
}

function utf8(value: unknown): string {
  return value instanceof Uint8Array ? decoder.decode(value) : String(value);
}

function bytes(value: unknown): Uint8Array {
  return value instanceof Uint8Array ? value : Buffer.from(String(value));
}
