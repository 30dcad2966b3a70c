/**
 * The portal's picture of environments kept current from two sources that
 * may arrive in either order: a `GET` answer (a snapshot) and the live view's
 * Server-Sent Events. Resource versions decide which is newer, so a slow
 * snapshot never puts back an older state or an environment already deleted.
 */
import type { Environment } from '../api/environments';

/** One event of `?watch=true`: `environment` with the view, or `deleted` with its name. */
export type LiveEvent =
  | { kind: 'environment'; environment: Environment; version: number }
  | { kind: 'deleted'; name: string; version: number };

export interface LiveState {
  /** By name, in the order first seen. */
  items: Map<string, Environment>;
  /** Names deleted, with the resource version of the deletion. */
  gone: Map<string, number>;
}

export const emptyLive = (): LiveState => ({ items: new Map(), gone: new Map() });

function version(env: Environment): number {
  const rv = Number(env.resourceVersion);
  return Number.isFinite(rv) ? rv : 0;
}

/** Parses one SSE message; undefined for a type or body this portal does not know. */
export function parseLiveEvent(type: string, data: string, id: string): LiveEvent | undefined {
  const rv = Number(id);
  const v = Number.isFinite(rv) ? rv : 0;
  try {
    const body = JSON.parse(data) as unknown;
    if (typeof body !== 'object' || body === null) return undefined;
    if (type === 'environment' && typeof (body as Environment).name === 'string') {
      return { kind: 'environment', environment: body as Environment, version: v };
    }
    if (type === 'deleted' && typeof (body as { name?: unknown }).name === 'string') {
      return { kind: 'deleted', name: (body as { name: string }).name, version: v };
    }
  } catch {
    // A body that is not JSON: ignored, as an unknown event type is.
  }
  return undefined;
}

/** The state after one live event. */
export function applyEvent(state: LiveState, event: LiveEvent): LiveState {
  const items = new Map(state.items);
  const gone = new Map(state.gone);
  if (event.kind === 'environment') {
    const env = event.environment;
    const current = items.get(env.name);
    if (current && version(current) > version(env)) return state;
    // Seen again after its deletion (recreated, or visible again): it is back.
    gone.delete(env.name);
    items.set(env.name, env);
  } else {
    items.delete(event.name);
    gone.set(event.name, event.version);
  }
  return { items, gone };
}

/** The state after a `GET` answer: what it holds, unless the stream already knows newer. */
export function applySnapshot(state: LiveState, snapshot: Environment[]): LiveState {
  const items = new Map(state.items);
  for (const env of snapshot) {
    const deletedAt = state.gone.get(env.name);
    if (deletedAt !== undefined && deletedAt >= version(env)) continue;
    const current = items.get(env.name);
    if (!current || version(current) < version(env)) items.set(env.name, env);
  }
  return { items, gone: state.gone };
}
