import type { IncomingMessage } from 'node:http';
import { HttpError } from './http-error.js';

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;
const utf8 = new TextDecoder('utf-8', { fatal: true });

function tooLarge(size: string, maxBytes: number): HttpError {
  return new HttpError(413, 'PAYLOAD_TOO_LARGE', `request body is ${size}; the limit is ${maxBytes} bytes`, { limitBytes: maxBytes });
}

/**
 * Reads a JSON request body of at most `maxBytes`. The size is checked before anything is
 * parsed: a declared Content-Length over the limit is refused before one byte is read, and a
 * body without one (chunked) is refused as soon as the bytes received pass the limit. The bytes
 * past the limit are never buffered.
 */
export function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const type = req.headers['content-type'];
  if (type === undefined || !JSON_TYPE.test(type)) {
    return Promise.reject(new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', `content-type must be application/json; got ${JSON.stringify(type ?? '')}`));
  }
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBytes) return Promise.reject(tooLarge(`${declared} bytes`, maxBytes));

  return new Promise<unknown>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    const onData = (chunk: Buffer): void => {
      if (refused) return; // drained, not kept: the answer is already on its way
      size += chunk.length;
      if (size > maxBytes) {
        refused = true;
        chunks.length = 0;
        reject(tooLarge(`more than ${maxBytes} bytes`, maxBytes));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('error', reject);
    // A client that goes away mid-body: settle (nobody reads the answer) rather than wait forever.
    req.once('close', () => {
      if (!req.complete) reject(new HttpError(400, 'BODY_INCOMPLETE', 'the request body ended before its end'));
    });
    req.once('end', () => {
      if (refused) return;
      let text: string;
      try {
        text = utf8.decode(Buffer.concat(chunks, size));
      } catch {
        reject(new HttpError(400, 'INVALID_JSON', 'request body is not valid UTF-8'));
        return;
      }
      if (text.trim() === '') {
        reject(new HttpError(400, 'INVALID_JSON', 'request body is empty; expected a JSON object'));
        return;
      }
      try {
        resolve(JSON.parse(text));
      } catch (e) {
        reject(new HttpError(400, 'INVALID_JSON', `request body is not valid JSON: ${e instanceof Error ? e.message : String(e)}`));
      }
    });
  });
}
