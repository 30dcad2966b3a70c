import createClient, { type Middleware } from 'openapi-fetch';
import type { paths } from './schema';
import { ApiError, errorFromBody } from './errors';
import { endsSession, sessionEnded } from '../lib/session';

/** Under TLS the server names its cookies with the `__Host-` prefix. */
const CSRF_COOKIES = ['__Host-berth_csrf', 'berth_csrf'];
const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export function readCookie(name: string, cookies: string = document.cookie): string | null {
  for (const part of cookies.split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return decodeURIComponent(rest.join('='));
  }
  return null;
}

/** Cookie-authenticated writes must echo the CSRF cookie in a header. */
export function csrfHeaders(method: string): Record<string, string> {
  const token = WRITES.has(method.toUpperCase())
    ? (CSRF_COOKIES.map((name) => readCookie(name)).find((value) => value !== null) ?? null)
    : null;
  return token ? { 'X-CSRF-Token': token } : {};
}

const csrf: Middleware = {
  onRequest({ request }) {
    for (const [name, value] of Object.entries(csrfHeaders(request.method))) {
      request.headers.set(name, value);
    }
    return request;
  },
};

/** Any 401 outside login means the session ended: every open page goes to login. */
const session: Middleware = {
  onResponse({ request, response }) {
    if (endsSession(response.status, new URL(request.url, window.location.href).pathname)) sessionEnded();
    return response;
  },
};

/** The typed client for every endpoint the server's OpenAPI document describes. */
export const api = createClient<paths>({ baseUrl: '', credentials: 'same-origin' });
api.use(csrf, session);

/**
 * Unwraps an openapi-fetch result: the data, or the contract's error thrown
 * as an ApiError, so callers handle one failure type.
 */
export async function unwrap<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok) throw errorFromBody(response, error);
  return data as T;
}

/**
 * The same for the endpoints that also answer `?watch=true` with Server-Sent
 * Events: without it they answer JSON, typed as the document's JSON answer.
 */
export async function unwrapJson<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<Exclude<T, string>> {
  const data = await unwrap(call);
  if (typeof data === 'string') throw new ApiError(500, 'unexpected_stream', 'The server answered a stream where JSON was asked for');
  return data as Exclude<T, string>;
}

export { ApiError };
