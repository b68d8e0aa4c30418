import { MsgHdrsImpl, MsgImpl, type MsgHdrs } from '@nats-io/transport-node';

/**
 * NATS headers without the client's per-header costs. Its `append()` checks the name by building
 * an array of char codes and a string from it, then lists and filters every header already set
 * (quadratic in the count), and reading a message's `headers` does the same for each received
 * line. For a CloudEvent with a dozen headers that was ~17 KB of the ~55 KB a publish plus its
 * delivery allocated, and the young-generation GCs it caused showed in the p99 of single publishes.
 * MsgHdrsImpl and MsgImpl (with `headers`, `_msg`, `_rdata`) are part of the client's typed exports.
 *
 * Both paths here keep the client's rules: a name of printable ASCII without ':', a value
 * without CR or LF, trimmed. What the fast path cannot vouch for goes through the client's own
 * API, so anything it refused (with its error) it still refuses.
 */

/** A header name the client accepts as it is: printable ASCII (33-126) except ':'. */
const PLAIN_NAME = /^[!-9;-~]+$/;
/** A value the client would send unchanged: printable ASCII without spaces (so no CR/LF, nothing to trim). */
const PLAIN_VALUE = /^[!-~]*$/;

/** Adds a header to `headers` as `append()` would, skipping its checks when the name and value plainly pass them. */
export function addHeader(headers: MsgHdrsImpl, name: string, value: string): void {
  if (PLAIN_NAME.test(name) && PLAIN_VALUE.test(value) && !headers.headers.has(name)) headers.headers.set(name, [value]);
  else headers.append(name, value);
}

/** A lone CR or LF inside a header line: the client refuses the value. */
const LINE_BREAK = /[\r\n]/;

/** The client's decoder for header blocks: UTF-8, replacing bad bytes rather than failing. */
const decoder = new TextDecoder();

/**
 * Every header of a received message but the server's own (`Nats-*`), each with its first value,
 * read straight from the header block: what `msg.headers` would give, without building it. A
 * message that is not the client's own Msg, or a block whose names the client would refuse (its
 * `headers` getter throws then), is read through `msg.headers` as before.
 */
export function eventHeaders(msg: { readonly headers?: MsgHdrs | undefined }): Record<string, string> {
  if (msg instanceof MsgImpl && typeof msg._msg?.hdr === 'number' && msg._rdata instanceof Uint8Array) {
    if (msg._msg.hdr <= 0) return {};
    const parsed = parseBlock(msg._rdata.subarray(0, msg._msg.hdr));
    if (parsed !== undefined) return parsed;
  }
  const out: Record<string, string> = {};
  if (msg.headers !== undefined) {
    for (const [name, values] of msg.headers) if (!isServerHeader(name)) out[name] = values[0] ?? '';
  }
  return out;
}

/**
 * `NATS/1.0[ <code> <description>]\r\n` then `name: value\r\n` lines and a blank line, as
 * MsgHdrsImpl.decode reads it: lines without ':' are skipped, values trimmed, the first of
 * repeated names kept. Undefined when a name or value has a character the client refuses.
 */
function parseBlock(block: Uint8Array): Record<string, string> | undefined {
  const text = decoder.decode(block);
  const out: Record<string, string> = {};
  // Line by line with indexOf rather than split(): no array and no string per line.
  let start = text.indexOf('\r\n');
  if (start < 0) return out; // the status line only
  for (start += 2; start < text.length; ) {
    let end = text.indexOf('\r\n', start);
    if (end < 0) end = text.length;
    const colon = text.indexOf(':', start);
    if (colon >= 0 && colon < end) {
      const name = text.slice(start, colon);
      const value = text.slice(colon + 1, end).trim();
      if ((name !== '' && !PLAIN_NAME.test(name)) || LINE_BREAK.test(value)) return undefined;
      if (!isServerHeader(name) && !Object.hasOwn(out, name)) out[name] = value;
    }
    start = end + 2;
  }
  return out;
}

/** Nats-* headers belong to the server (msg id, expectations, status), not to the event. */
function isServerHeader(name: string): boolean {
  return name.length > 5 && name.slice(0, 5).toLowerCase() === 'nats-';
}
