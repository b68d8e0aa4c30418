import { InvalidOptionsError, reportToStderr, type ErrorReporter } from '@causeway/core';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Shop } from '../shop.js';
import { toHttpError } from './http-error.js';
import { createRouter, type Reply } from './router.js';
import { notificationRoutes } from './notification-routes.js';
import { shopRoutes } from './shop-routes.js';

export interface ShopServerOptions {
  readonly shop: Shop;
  /** Interface to listen on. Default '127.0.0.1' (this machine only). */
  readonly host?: string;
  /** TCP port. Default 0: an ephemeral port, read it from `url`. */
  readonly port?: number;
  /** Largest request body in bytes, checked before anything is parsed. Default 65536 (64 KiB). */
  readonly maxBodyBytes?: number;
  /** Told about unexpected errors (those answered 500). Default: a line on stderr. */
  readonly onError?: ErrorReporter;
}

export interface ShopServer {
  /** Base URL, e.g. `http://127.0.0.1:43117`. */
  readonly url: string;
  readonly port: number;
  /** Stops accepting, ends open connections. Leaves the shop open. Idempotent. */
  close(): Promise<void>;
}

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' };

/** The shop's HTTP API on node:http, no framework. Tenant from `x-tenant-id`; JSON in and out. */
export async function startShopServer(options: ShopServerOptions): Promise<ShopServer> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 0;
  const maxBodyBytes = options.maxBodyBytes ?? 65_536;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new InvalidOptionsError(`port must be an integer from 0 to 65535; got ${String(port)}`);
  if (!Number.isInteger(maxBodyBytes) || maxBodyBytes < 1) throw new InvalidOptionsError(`maxBodyBytes must be an integer >= 1; got ${String(maxBodyBytes)}`);
  const report = options.onError ?? reportToStderr;
  const route = createRouter([...shopRoutes({ shop: options.shop, maxBodyBytes }), ...notificationRoutes({ shop: options.shop, maxBodyBytes })]);

  const serve = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let reply: Reply;
    try {
      const url = new URL(req.url ?? '/', 'http://shop.invalid');
      const { route: matched, params } = route(req.method ?? 'GET', url.pathname);
      reply = await matched.handle({ req, url, params });
    } catch (e) {
      const error = toHttpError(e);
      if (error.status === 500) report(e, `shop http ${req.method} ${req.url}`);
      // A refused body may still be arriving: answer, then close rather than read it to the end.
      const close = error.status === 413 ? { connection: 'close' } : {};
      reply = { status: error.status, body: error.body(), headers: { ...error.headers, ...close } };
    }
    const text = JSON.stringify(reply.body);
    res.writeHead(reply.status, { ...JSON_HEADERS, ...reply.headers, 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };

  const server = createServer((req, res) => {
    serve(req, res).catch((e: unknown) => {
      report(e, 'shop http response');
      res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | null = null;

  return {
    url: `http://${shown}:${address.port}`,
    port: address.port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
