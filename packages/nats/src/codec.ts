import {
  decodeArrival,
  decodeBinary,
  encodeBinary,
  MessageTooLargeError,
  percentDecode,
  type BinaryBinding,
  type DeliveryInfo,
  type Message,
  type WireLimits,
} from '@causeway/core';
import { MsgHdrsImpl, type MsgHdrs } from '@nats-io/transport-node';
import { addHeader, eventHeaders } from './header-block.js';

/**
 * CloudEvents NATS binding, binary mode: every attribute is a `ce-<name>` header with its value
 * percent-encoded (NATS headers are ASCII lines), the body is the JSON of `data`, `content-type`
 * is `application/json`, W3C trace context rides in plain `traceparent`/`tracestate` headers.
 * `Nats-Msg-Id` carries the event id so the server drops a re-publish inside the stream's
 * duplicate window.
 */
export const NATS_BINDING: BinaryBinding = { prefix: 'ce-', percentEncode: true };

/** Bytes the NATS header block adds beyond names and values: `NATS/1.0\r\n`, `: ` and `\r\n` per header, the final `\r\n`. */
function headerOverhead(count: number): number {
  return 12 + 4 * count;
}

export interface EncodedNatsMessage {
  readonly id: string;
  readonly key: string;
  /** The binding's headers plus `Nats-Msg-Id`: ready to send as they are. */
  readonly headers: MsgHdrs;
  readonly body: Uint8Array;
  /** Header block plus body, as the server counts it against max_payload. */
  readonly wireBytes: number;
}

export function encodeNatsMessage(message: Message, limits: WireLimits): EncodedNatsMessage {
  const binary = encodeBinary(message, NATS_BINDING, limits);
  const headers = new MsgHdrsImpl();
  let wireBytes = binary.body.length;
  let count = 0;
  for (const name in binary.headers) {
    const value = binary.headers[name] as string;
    addHeader(headers, name, value);
    wireBytes += name.length + value.length;
    count++;
  }
  const id = message.event.eventId;
  addHeader(headers, 'Nats-Msg-Id', id);
  wireBytes += 'Nats-Msg-Id'.length + id.length + headerOverhead(count + 1);
  return { id, key: binary.key, headers, body: binary.body, wireBytes };
}

/** Refuses a message the server would refuse anyway (its max_payload), before anything is sent. */
export function checkServerLimit(message: EncodedNatsMessage, maxPayload: number | undefined): void {
  if (maxPayload !== undefined && message.wireBytes > maxPayload) {
    throw new MessageTooLargeError(`message ${message.id} (server max_payload)`, message.wireBytes, maxPayload);
  }
}

type DeliveryFacts = Pick<DeliveryInfo, 'topic' | 'group' | 'attempt' | 'brokerId'>;

/** What decoding needs of a received message (a core `Msg` or a JetStream `JsMsg` both fit). */
export interface ReceivedNatsMessage {
  readonly headers?: MsgHdrs | undefined;
  readonly data: Uint8Array;
}

/**
 * Reads a delivered message into the runtime's DeliveryInfo. Never throws: what cannot be read
 * becomes `kind: 'undecodable'` with the reason, the headers and the body as they arrived.
 * The size limit is checked on the body before anything is parsed.
 */

export function decodeNatsMessage(msg: ReceivedNatsMessage, facts: DeliveryFacts, limits: WireLimits): DeliveryInfo {
  const cloudEvent = eventHeaders(msg);
  return decodeArrival(
    facts,
    () => {
      if (msg.data.length > limits.maxMessageBytes) throw new MessageTooLargeError('received message', msg.data.length, limits.maxMessageBytes);
      return decodeBinary(cloudEvent, msg.data, NATS_BINDING, limits);
    },
    // Every header as it arrived, Nats-* included: built only for a message that could not be read.
    () => ({ key: keyOf(cloudEvent), headers: allHeaders(msg.headers), body: msg.data }),
  );
}

function allHeaders(headers: MsgHdrs | undefined): Record<string, string> {
  const all: Record<string, string> = {};
  if (headers !== undefined) for (const [name, values] of headers) all[name] = values[0] ?? '';
  return all;
}

function keyOf(headers: Record<string, string>): string {
  const raw = Object.entries(headers).find(([name]) => name.toLowerCase() === `${NATS_BINDING.prefix}partitionkey`)?.[1];
  if (raw === undefined) return '';
  try {
    return percentDecode(raw);
  } catch {
    return raw;
  }
}
