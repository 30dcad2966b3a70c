import { describe, expect, it } from 'vitest';
import type { Environment } from '../api/environments';
import { applyEvent, applySnapshot, emptyLive, parseLiveEvent } from './live';

function env(name: string, rv: number, phase: 'Pending' | 'Ready' = 'Pending'): Environment {
  return {
    name,
    namespace: name,
    description: '',
    owner: 'a@example.com',
    role: 'owner',
    spec: {},
    status: { phase, conditions: [] },
    createdAt: '2026-01-01T00:00:00Z',
    resourceVersion: String(rv),
  };
}

const names = (state: ReturnType<typeof emptyLive>) => [...state.items.keys()];

describe('parseLiveEvent', () => {
  it('reads environment and deleted events with their resource version', () => {
    expect(parseLiveEvent('environment', JSON.stringify(env('a', 5)), '5')).toMatchObject({ kind: 'environment', version: 5 });
    expect(parseLiveEvent('deleted', '{"name":"a"}', '7')).toEqual({ kind: 'deleted', name: 'a', version: 7 });
  });
  it('ignores unknown types and bodies that are not JSON', () => {
    expect(parseLiveEvent('other', '{"name":"a"}', '1')).toBeUndefined();
    expect(parseLiveEvent('environment', 'not json', '1')).toBeUndefined();
    expect(parseLiveEvent('deleted', '{}', '1')).toBeUndefined();
  });
});

describe('applyEvent and applySnapshot', () => {
  it('a newer event replaces, an older one is ignored', () => {
    let s = applyEvent(emptyLive(), { kind: 'environment', environment: env('a', 5, 'Ready'), version: 5 });
    s = applyEvent(s, { kind: 'environment', environment: env('a', 4), version: 4 });
    expect(s.items.get('a')?.status?.phase).toBe('Ready');
  });
  it('a slow snapshot never puts back an older state', () => {
    let s = applyEvent(emptyLive(), { kind: 'environment', environment: env('a', 9, 'Ready'), version: 9 });
    s = applySnapshot(s, [env('a', 3), env('b', 2)]);
    expect(s.items.get('a')?.status?.phase).toBe('Ready');
    expect(names(s)).toEqual(['a', 'b']);
  });
  it('a snapshot older than a deletion does not bring it back', () => {
    let s = applySnapshot(emptyLive(), [env('a', 3)]);
    s = applyEvent(s, { kind: 'deleted', name: 'a', version: 8 });
    expect(names(s)).toEqual([]);
    s = applySnapshot(s, [env('a', 3)]);
    expect(names(s)).toEqual([]);
    expect(s.gone.get('a')).toBe(8);
  });
  it('an environment seen again after its deletion is back', () => {
    let s = applyEvent(emptyLive(), { kind: 'deleted', name: 'a', version: 8 });
    s = applyEvent(s, { kind: 'environment', environment: env('a', 12), version: 12 });
    expect(names(s)).toEqual(['a']);
    expect(s.gone.has('a')).toBe(false);
  });
});
