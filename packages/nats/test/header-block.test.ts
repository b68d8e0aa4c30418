import { MsgHdrsImpl, MsgImpl } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { addHeader, eventHeaders } from '../src/header-block.js';

/** A received message as the client builds it: header block then body in one buffer. */
function received(block: string, body = '{}'): MsgImpl {
  const bytes = new TextEncoder().encode(block + body);
  const hdr = block === '' ? -1 : new TextEncoder().encode(block).length;
  return new MsgImpl({ subject: new Uint8Array(0), sid: 1, hdr, size: bytes.length }, bytes, { publish: () => undefined });
}

/** What the client's own `headers` getter gives, minus Nats-*, first value of each name. */
function viaClient(msg: MsgImpl): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, values] of msg.headers ?? []) if (!name.toLowerCase().startsWith('nats-') || name.length <= 5) out[name] = values[0] ?? '';
  return out;
}

describe('eventHeaders', () => {
  const blocks = [
    'NATS/1.0\r\nce-id: 0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b\r\nce-type: shop.order.placed\r\nNats-Msg-Id: x\r\ncontent-type: application/json\r\n\r\n',
    'NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 3\r\n\r\n',
    'NATS/1.0\r\nce-subject:  spaced value \t\r\nno colon line\r\nce-subject: second\r\nCe-Subject: other case\r\n\r\n',
    'NATS/1.0\r\nce-x: a: b\r\n: empty name\r\nconstructor: c\r\n__proto__: p\r\n\r\n',
    'NATS/1.0\r\nce-a: 1 \n\r\n\r\nce-c: 3',
    'NATS/1.0\r\nce-a: 1\nce-b: 2\r\n\r\n',
    'NATS/1.0\r\nce-ü: non-ascii name\r\n\r\n',
    'NATS/1.0\r\nNats-Msg-Id: a\rb\r\n\r\n',
    'NATS/1.0\r\n\r\n',
  ];

  it('reads what the client would, from the raw header block', () => {
    for (const block of blocks.slice(0, 5)) expect(eventHeaders(received(block)), block).toEqual(viaClient(received(block)));
    expect(eventHeaders(received(blocks[0] as string))).toEqual({
      'ce-id': '0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b',
      'ce-type': 'shop.order.placed',
      'content-type': 'application/json',
    });
    expect(eventHeaders(received(blocks[2] as string))).toMatchObject({ 'ce-subject': 'spaced value', 'Ce-Subject': 'other case' });
  });

  it('leaves a name or value the client refuses to the client, which throws as before', () => {
    for (const block of blocks.slice(5, 8)) {
      expect(() => received(block).headers).toThrow();
      expect(() => eventHeaders(received(block))).toThrow();
    }
  });

  it('gives nothing for a message without headers', () => {
    expect(eventHeaders(received(''))).toEqual({});
    expect(eventHeaders(received(blocks[8] as string))).toEqual({});
    expect(eventHeaders({ headers: undefined })).toEqual({});
  });

  it('falls back to msg.headers for other message objects', () => {
    const h = new MsgHdrsImpl();
    h.append('ce-id', 'a');
    h.append('ce-id', 'b');
    h.append('Nats-Msg-Id', 'm');
    expect(eventHeaders({ headers: h })).toEqual({ 'ce-id': 'a' });
  });
});

describe('addHeader', () => {
  it('writes the same header block as append()', () => {
    const pairs: Array<[string, string]> = [
      ['content-type', 'application/json'],
      ['ce-id', '0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b'],
      ['ce-subject', 'order-%C3%BC/42%20x'],
      ['ce-odd', '  padded value '],
      ['Nats-Msg-Id', '0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b'],
    ];
    const fast = new MsgHdrsImpl();
    const slow = new MsgHdrsImpl();
    for (const [name, value] of pairs) {
      addHeader(fast, name, value);
      slow.append(name, value);
    }
    expect(fast.toString()).toBe(slow.toString());
  });

  it('refuses what append() refuses', () => {
    expect(() => addHeader(new MsgHdrsImpl(), 'ce-bad:name', 'v')).toThrow(/not a valid character/);
    expect(() => addHeader(new MsgHdrsImpl(), 'ce-id', 'line\r\nbreak')).toThrow(/\\r or \\n/);
  });
});
