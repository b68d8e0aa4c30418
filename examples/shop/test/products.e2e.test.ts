import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PRODUCT_SEED } from '../src/catalog/product-seed.js';
import { startTestShop, type TestShop } from './support.js';

/**
 * The product search read model (PostgreSQL full-text search) through the HTTP API: the seed
 * catalogue goes in through POST /products, searches pass `?after=` to see it.
 */
let t: TestShop;
const A = 'catalog-a';
const B = 'catalog-b';
let seeded = '';

interface Hit {
  sku: string;
  name: string;
  rank: number;
}

async function search(tenant: string, q: string, after = seeded): Promise<Hit[]> {
  const r = await t.call('GET', `/products/search?q=${encodeURIComponent(q)}&after=${after}&limit=50`, { tenant });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  expect(r.body.query).toBe(q);
  return r.body.hits as Hit[];
}

beforeAll(async () => {
  t = await startTestShop();
  for (const product of PRODUCT_SEED) {
    const r = await t.call('POST', '/products', { tenant: A, body: product });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    seeded = r.body.position;
  }
});
afterAll(async () => {
  await t?.close();
});

describe('product search over HTTP', () => {
  it('the seed has twenty products', () => {
    expect(PRODUCT_SEED).toHaveLength(20);
    expect(new Set(PRODUCT_SEED.map((p) => p.sku)).size).toBe(20);
  });

  it('ranks the product whose name holds both words first, name matches above description-only ones', async () => {
    const hits = await search(A, 'mechanical or keyboard');
    expect(hits[0]?.sku).toBe('KB-MECH-87');
    expect(hits.map((h) => h.sku).sort()).toEqual(['KB-CAPS-03', 'KB-LOW-01', 'KB-MECH-87', 'KB-REST-02', 'MS-PAD-12']);
    const rank = (sku: string): number => hits.find((h) => h.sku === sku)?.rank ?? Number.NaN;
    // Name (weight A) beats description (weight C) for the same word.
    expect(rank('KB-LOW-01')).toBeGreaterThan(rank('KB-REST-02'));
    expect(rank('KB-LOW-01')).toBeGreaterThan(rank('MS-PAD-12'));
    for (let i = 1; i < hits.length; i++) expect((hits[i - 1] as Hit).rank).toBeGreaterThanOrEqual((hits[i] as Hit).rank);
  });

  it('understands web-search syntax: all words, stemming, "phrases" and -exclusions', async () => {
    expect((await search(A, 'usb-c hub')).map((h) => h.sku)).toEqual(['HB-USBC-7']);
    expect((await search(A, 'keyboards')).map((h) => h.sku)).toContain('KB-MECH-87'); // stemmed: keyboards ~ keyboard
    const phrase = (await search(A, '"desk mat"')).map((h) => h.sku);
    expect(phrase).toEqual(['MS-PAD-12']);
    const without = (await search(A, 'keyboard -wireless')).map((h) => h.sku);
    expect(without).toContain('KB-MECH-87');
    expect(without).not.toContain('KB-LOW-01');
    expect(await search(A, 'flux capacitor')).toEqual([]);
    expect(await search(A, 'the')).toEqual([]); // only a stop word: matches nothing, fails nothing
    expect(await search(A, '"unbalanced ( & | quote')).toEqual([]); // never a syntax error
  });

  it('an update to a product changes what finds it', async () => {
    expect((await search(A, 'wireless')).map((h) => h.sku)).toEqual(['KB-LOW-01']);
    const r = await t.call('PATCH', '/products/KB-LOW-01', { tenant: A, body: { name: 'Low-Profile Bluetooth Keyboard', price: 55 } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ sku: 'KB-LOW-01', version: 2 });
    expect(await search(A, 'wireless', r.body.position)).toEqual([]);
    const found = await search(A, 'bluetooth keyboard', r.body.position);
    expect(found[0]).toMatchObject({ sku: 'KB-LOW-01', name: 'Low-Profile Bluetooth Keyboard' });

    // Nothing changed: no event, no position, the version stays.
    const same = await t.call('PATCH', '/products/KB-LOW-01', { tenant: A, body: { price: 55 } });
    expect(same.body).toMatchObject({ version: 2, position: null });
    const missing = await t.call('PATCH', '/products/NOPE-1', { tenant: A, body: { price: 1 } });
    expect(missing.status).toBe(409);
    expect(missing.body.error.message).toBe('product NOPE-1 was never added');
  });

  it("tenant isolation: another tenant's search never sees these products, and may reuse their SKUs", async () => {
    expect(await search(B, 'keyboard')).toEqual([]);
    const own = await t.call('POST', '/products', {
      tenant: B,
      body: { sku: 'KB-MECH-87', name: 'Typewriter Keyboard', description: 'Round keys', category: 'keyboards', price: 120 },
    });
    expect(own.status).toBe(201);
    const hitsB = await search(B, 'keyboard', own.body.position);
    expect(hitsB.map((h) => [h.sku, h.name])).toEqual([['KB-MECH-87', 'Typewriter Keyboard']]);
    expect((await search(A, 'typewriter', own.body.position))).toEqual([]);
    const hitsA = await search(A, 'mechanical keyboard', own.body.position);
    expect(hitsA.map((h) => h.name)).toEqual(['Mechanical Keyboard']);
  });

  it('adding a product twice is refused and leaves the first one', async () => {
    const again = await t.call('POST', '/products', { tenant: A, body: { ...PRODUCT_SEED[0], name: 'Imposter' } });
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({ code: 'RULE_VIOLATED', message: 'product KB-MECH-87 was already added' });
    expect(await search(A, 'imposter')).toEqual([]);
  });
});
