import createClient, { type Middleware } from 'openapi-fetch';
import type { paths } from './schema';
import { ApiError, errorFromBody, errorFromResponse } from './errors';
import { endsSession, sessionEnded } from '../lib/session';

const CSRF_COOKIE = 'berth_csrf';
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
  const token = WRITES.has(method.toUpperCase()) ? readCookie(CSRF_COOKIE) : null;
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
 * A request to an endpoint the OpenAPI document does not describe yet
 * (environments, templates, policy, requests, audit), typed by the caller.
 */
export async function request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json', ...csrfHeaders(method) };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const init: RequestInit = { method, headers, credentials: 'same-origin' };
  if (body !== undefined) init.body = JSON.stringify(body);
  if (signal) init.signal = signal;
  const response = await fetch(path, init);
  if (endsSession(response.status, path)) sessionEnded();
  if (!response.ok) throw await errorFromResponse(response);
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

export { ApiError };
