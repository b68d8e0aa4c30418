import type { IncomingMessage } from 'node:http';
import { HttpError } from './http-error.js';

export interface RequestContext {
  readonly req: IncomingMessage;
  readonly url: URL;
  /** Path parameters, percent-decoded. */
  readonly params: Readonly<Record<string, string>>;
}

export interface Reply {
  readonly status: number;
  readonly body: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface Route {
  readonly method: 'GET' | 'POST' | 'PATCH' | 'PUT';
  /** Literal segments and `:name` parameters, e.g. `/orders/:orderId/pay`. */
  readonly path: string;
  handle(ctx: RequestContext): Promise<Reply>;
}

export interface RouteMatch {
  readonly route: Route;
  readonly params: Record<string, string>;
}

/**
 * Finds the route for a method and path. A path that exists under other methods is a 405
 * (with Allow); a path that matches nothing is a 404.
 */
export function createRouter(routes: readonly Route[]): (method: string, pathname: string) => RouteMatch {
  const compiled = routes.map((route) => ({ route, segments: route.path.split('/').slice(1) }));
  return (method, pathname) => {
    const parts = pathname.split('/').slice(1);
    const allowed: string[] = [];
    for (const { route, segments } of compiled) {
      const params = matchSegments(segments, parts);
      if (params === null) continue;
      if (route.method === method) return { route, params };
      allowed.push(route.method);
    }
    if (allowed.length > 0) {
      throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${method} is not allowed on ${pathname}; use ${allowed.join(' or ')}`, {}, { allow: allowed.join(', ') });
    }
    throw new HttpError(404, 'NOT_FOUND', `no route for ${method} ${pathname}`);
  };
}

function matchSegments(segments: readonly string[], parts: readonly string[]): Record<string, string> | null {
  if (segments.length !== parts.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i] as string;
    const part = parts[i] as string;
    if (segment.startsWith(':')) {
      if (part === '') return null;
      try {
        params[segment.slice(1)] = decodeURIComponent(part);
      } catch {
        throw new HttpError(400, 'INVALID_PATH', `path segment ${JSON.stringify(part)} is not valid percent-encoding`);
      }
    } else if (segment !== part) {
      return null;
    }
  }
  return params;
}
