import { openShop, type Shop, type ShopOptions } from '../src/shop.js';
import { startShopServer, type ShopServer, type ShopServerOptions } from '../src/http/shop-server.js';

export interface CallOptions {
  /** Sent as x-tenant-id; omit to send none. */
  readonly tenant?: string;
  /** Sent as JSON. */
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
}

export interface Answer<T = any> {
  readonly status: number;
  readonly headers: Headers;
  readonly body: T;
}

export interface TestShop {
  readonly shop: Shop;
  readonly server: ShopServer;
  call<T = any>(method: string, path: string, options?: CallOptions): Promise<Answer<T>>;
  close(): Promise<void>;
}

/** The shop on an in-memory PGlite (no data directory) behind its HTTP API on an ephemeral loopback port. */
export async function startTestShop(options: { shop?: ShopOptions; server?: Omit<ShopServerOptions, 'shop'> } = {}): Promise<TestShop> {
  const shop = await openShop({ pollIntervalMs: 200, ...options.shop });
  const server = await startShopServer({ shop, ...options.server });
  return {
    shop,
    server,
    async call(method, path, callOptions = {}) {
      const headers: Record<string, string> = { ...callOptions.headers };
      if (callOptions.tenant !== undefined) headers['x-tenant-id'] = callOptions.tenant;
      if (callOptions.body !== undefined) headers['content-type'] ??= 'application/json';
      const res = await fetch(`${server.url}${path}`, {
        method,
        headers,
        ...(callOptions.body === undefined ? {} : { body: typeof callOptions.body === 'string' ? callOptions.body : JSON.stringify(callOptions.body) }),
      });
      const text = await res.text();
      return { status: res.status, headers: res.headers, body: text === '' ? null : JSON.parse(text) };
    },
    async close() {
      await server.close();
      await shop.close();
    },
  };
}

/**
 * Polls `condition` until it holds, or fails naming `what` after `timeoutMs`: tests wait for
 * asynchronous work (relay, broker, consumer) this way, never with a fixed sleep.
 */
export async function waitUntil(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
