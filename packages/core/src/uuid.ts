/**
 * UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then a 12-bit counter seeded at random each
 * millisecond (method 1), so ids made in one process sort in creation order.
 */
let lastMs = 0;
let counter = 0;
const hex: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

// Random bytes are drawn from the system source 4 KiB at a time: one getRandomValues call per id
// cost more than everything else in an append. Each id takes 16 fresh bytes and never reuses any.
const POOL_BYTES = 4096;
const pool = new Uint8Array(POOL_BYTES);
let poolAt = POOL_BYTES;
const bytes = new Uint8Array(16);

function fillRandom(): void {
  if (poolAt + 16 > POOL_BYTES) {
    globalThis.crypto.getRandomValues(pool);
    poolAt = 0;
  }
  bytes.set(pool.subarray(poolAt, poolAt + 16));
  poolAt += 16;
}

export function uuidv7(now: number = Date.now()): string {
  fillRandom();
  let ms = now;
  if (ms > lastMs) {
    lastMs = ms;
    counter = ((bytes[6] as number) & 0x07) << 8 | (bytes[7] as number); // leave headroom before overflow
  } else {
    ms = lastMs;
    counter++;
    if (counter > 0xfff) {
      lastMs++;
      ms = lastMs;
      counter = 0;
    }
  }
  bytes[0] = Math.floor(ms / 2 ** 40) & 0xff;
  bytes[1] = Math.floor(ms / 2 ** 32) & 0xff;
  bytes[2] = (ms >>> 24) & 0xff;
  bytes[3] = (ms >>> 16) & 0xff;
  bytes[4] = (ms >>> 8) & 0xff;
  bytes[5] = ms & 0xff;
  bytes[6] = 0x70 | ((counter >>> 8) & 0x0f);
  bytes[7] = counter & 0xff;
  bytes[8] = 0x80 | ((bytes[8] as number) & 0x3f);
  let s = '';
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) s += '-';
    s += hex[bytes[i] as number];
  }
  return s;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Lower-case canonical UUID text of any version. */
export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID.test(value);
}
